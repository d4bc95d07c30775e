//! The demo: two stores, their menus and one account per role. A fixed
//! contract (the README and other clients use these logins).

use ordertrack_domain::Role;
use ordertrack_store::{NewProduct, NewStore, NewUser, StoreError};

use crate::{App, AppError};

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "demo-password";

/// Demo accounts: email, name, and what they are.
pub const DEMO_ACCOUNTS: &[(&str, &str, &str)] = &[
    ("admin@demo.test", "Ada Admin", "platform admin"),
    (
        "owner@demo.test",
        "Olivia Owner",
        "owner of demo-restaurant",
    ),
    (
        "manager@demo.test",
        "Max Manager",
        "manager of demo-restaurant",
    ),
    (
        "cashier@demo.test",
        "Cass Cashier",
        "cashier of demo-restaurant",
    ),
    (
        "kitchen@demo.test",
        "Kai Kitchen",
        "kitchen of demo-restaurant",
    ),
    (
        "driver@demo.test",
        "Dana Driver",
        "driver of demo-restaurant",
    ),
    ("seller@demo.test", "Sam Seller", "owner of demo-shop"),
    ("alice@demo.test", "Alice Customer", "customer"),
    ("bob@demo.test", "Bob Customer", "customer"),
];

const RESTAURANT_MENU: &[(&str, &str, i64, &str)] = &[
    (
        "Classic Burger",
        "Beef patty, lettuce, tomato, house sauce",
        950,
        "grill",
    ),
    (
        "Cheeseburger",
        "Classic burger with aged cheddar",
        1050,
        "grill",
    ),
    (
        "Veggie Burger",
        "Black bean patty, avocado, pickled onion",
        990,
        "grill",
    ),
    (
        "Grilled Chicken Sandwich",
        "Marinated chicken, slaw, brioche",
        1090,
        "grill",
    ),
    ("BBQ Ribs", "Half rack, smoky glaze", 1690, "grill"),
    ("Fries", "Skin-on, sea salt", 390, "fryer"),
    ("Sweet Potato Fries", "With chipotle mayo", 450, "fryer"),
    ("Onion Rings", "Beer batter", 420, "fryer"),
    ("Chicken Wings", "Six wings, hot or mild", 890, "fryer"),
    ("Lemonade", "Fresh squeezed", 350, "drinks"),
    ("Iced Tea", "Peach, unsweetened", 320, "drinks"),
    (
        "Vanilla Milkshake",
        "Made with real ice cream",
        520,
        "drinks",
    ),
];

const SHOP_CATALOG: &[(&str, &str, i64, &str)] = &[
    ("Logo T-Shirt", "Organic cotton, unisex", 1900, "warehouse"),
    ("Enamel Mug", "350 ml, dishwasher safe", 1200, "warehouse"),
    (
        "Canvas Tote Bag",
        "Heavy canvas, inside pocket",
        1500,
        "warehouse",
    ),
    ("Sticker Pack", "Ten vinyl stickers", 400, "warehouse"),
];

/// Seeds the demo unless it is already there. Returns whether it seeded.
pub async fn seed(app: &App) -> Result<bool, AppError> {
    if app.repo.store_by_slug("demo-restaurant").await?.is_some() {
        return Ok(false);
    }
    // One hash for all demo accounts keeps start-up fast; they share a password anyway.
    let password_hash = tokio::task::spawn_blocking(|| crate::auth::hash_password(DEMO_PASSWORD))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))??;

    let restaurant = app
        .admin_create_store(NewStore {
            slug: "demo-restaurant".into(),
            name: "Demo Restaurant".into(),
            currency: crate::stores::check_currency("EUR")?,
            workflow: "restaurant".into(),
            order_prefix: "R".into(),
        })
        .await?;
    let shop = app
        .admin_create_store(NewStore {
            slug: "demo-shop".into(),
            name: "Demo Shop".into(),
            currency: crate::stores::check_currency("EUR")?,
            workflow: "retail".into(),
            order_prefix: "S".into(),
        })
        .await?;
    for (store, catalog) in [(&restaurant, RESTAURANT_MENU), (&shop, SHOP_CATALOG)] {
        for (name, description, price_minor, station) in catalog {
            app.repo
                .create_product(
                    store.id,
                    NewProduct {
                        name: (*name).into(),
                        description: (*description).into(),
                        price_minor: *price_minor,
                        station: (*station).into(),
                        available: true,
                    },
                )
                .await?;
        }
    }
    for (email, name, _) in DEMO_ACCOUNTS {
        let user = match app
            .repo
            .create_user(NewUser {
                email: (*email).into(),
                name: (*name).into(),
                password_hash: password_hash.clone(),
                is_admin: *email == "admin@demo.test",
            })
            .await
        {
            Ok(user) => user,
            Err(StoreError::Conflict(_)) => continue,
            Err(error) => return Err(error.into()),
        };
        let membership = match *email {
            "owner@demo.test" => Some((restaurant.id, Role::Owner)),
            "manager@demo.test" => Some((restaurant.id, Role::Manager)),
            "cashier@demo.test" => Some((restaurant.id, Role::Cashier)),
            "kitchen@demo.test" => Some((restaurant.id, Role::Kitchen)),
            "driver@demo.test" => Some((restaurant.id, Role::Driver)),
            "seller@demo.test" => Some((shop.id, Role::Owner)),
            _ => None,
        };
        if let Some((store, role)) = membership {
            app.repo.set_membership(user.id, store, role).await?;
        }
    }
    Ok(true)
}
