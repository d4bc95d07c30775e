//! Database ids, one type per kind of row, so an order id can never be
//! passed where a store id is expected. They serialise as plain numbers:
//! the JSON contract and the stored columns stay integers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The id stored as `raw`.
            pub const fn new(raw: i64) -> Self {
                $name(raw)
            }

            /// The stored integer.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

id_type!(
    /// Database id of a user.
    UserId
);
id_type!(
    /// Database id of a store (the tenant).
    StoreId
);
id_type!(
    /// Database id of a product.
    ProductId
);
id_type!(
    /// Database id of an order.
    OrderId
);
id_type!(
    /// Database id of an order's line item.
    ItemId
);
id_type!(
    /// Database id of a store's webhook endpoint.
    WebhookId
);
id_type!(
    /// Database id of one event's delivery to one webhook endpoint.
    DeliveryId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_numbers_in_json() {
        let id = OrderId::new(42);
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
        assert_eq!(serde_json::from_str::<OrderId>("42").unwrap(), id);
        assert_eq!("42".parse::<OrderId>().unwrap(), id);
        assert_eq!(id.to_string(), "42");
    }
}
