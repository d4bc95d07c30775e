//! How an order reaches its customer: picked up at the counter or delivered to an address.

use serde::{Deserialize, Serialize};

/// Pickup or delivery, without the address (what workflows branch on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FulfilmentKind {
    Pickup,
    Delivery,
}

impl FulfilmentKind {
    /// The stable lowercase name used in APIs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            FulfilmentKind::Pickup => "pickup",
            FulfilmentKind::Delivery => "delivery",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pickup" => Some(FulfilmentKind::Pickup),
            "delivery" => Some(FulfilmentKind::Delivery),
            _ => None,
        }
    }
}
