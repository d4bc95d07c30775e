//! Who a person is in the order desk: a platform role, a per-store staff role, or a customer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::fulfilment::FulfilmentKind;

/// A role. `Admin` is platform-wide; `Owner`…`Driver` are held per store
/// (a membership); `Customer` is anyone who places orders.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Owner,
    Manager,
    Cashier,
    Kitchen,
    Driver,
    Customer,
}

impl Role {
    /// Every role, in order of authority.
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Owner,
        Role::Manager,
        Role::Cashier,
        Role::Kitchen,
        Role::Driver,
        Role::Customer,
    ];

    /// Roles a store membership may hold.
    pub const STAFF: [Role; 5] = [
        Role::Owner,
        Role::Manager,
        Role::Cashier,
        Role::Kitchen,
        Role::Driver,
    ];

    /// The stable lowercase name used in APIs, workflow files and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Cashier => "cashier",
            Role::Kitchen => "kitchen",
            Role::Driver => "driver",
            Role::Customer => "customer",
        }
    }

    /// Whether this role can be held as a membership of a store.
    pub fn is_staff(self) -> bool {
        Role::STAFF.contains(&self)
    }

    /// Whether this role may manage a store's catalog (products).
    pub fn manages_catalog(self) -> bool {
        matches!(self, Role::Admin | Role::Owner | Role::Manager)
    }

    /// Whether this role may change the kitchen status of an order's items
    /// (tap an item, bump a ticket).
    pub fn changes_items(self) -> bool {
        matches!(
            self,
            Role::Admin | Role::Owner | Role::Manager | Role::Cashier | Role::Kitchen
        )
    }

    /// The one fulfilment whose orders this role sees in a store's order
    /// lists, if it is limited to one: a driver works on deliveries only.
    pub fn only_fulfilment(self) -> Option<FulfilmentKind> {
        match self {
            Role::Driver => Some(FulfilmentKind::Delivery),
            _ => None,
        }
    }

    /// Whether this role may read a store's reports (sales, times, hours).
    pub fn reads_reports(self) -> bool {
        matches!(self, Role::Admin | Role::Owner | Role::Manager)
    }

    /// Whether this role may manage a store's staff.
    pub fn manages_staff(self) -> bool {
        matches!(self, Role::Admin | Role::Owner)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not the name of a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("chef".parse::<Role>().is_err());
    }

    #[test]
    fn only_store_roles_are_staff() {
        assert!(!Role::Admin.is_staff());
        assert!(!Role::Customer.is_staff());
        assert!(Role::Kitchen.is_staff());
    }

    #[test]
    fn drivers_see_deliveries_and_the_kitchen_crew_changes_items() {
        for role in Role::ALL {
            let expected = (role == Role::Driver).then_some(FulfilmentKind::Delivery);
            assert_eq!(role.only_fulfilment(), expected, "{role}");
            let crew = !matches!(role, Role::Driver | Role::Customer);
            assert_eq!(role.changes_items(), crew, "{role}");
        }
    }
}
