//! Who a person is in the order desk: a platform role, a per-store staff role, or a customer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A role. `Admin` is platform-wide; `Owner`…`Driver` are held per store
/// (a membership); `Customer` is anyone who places orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
}
