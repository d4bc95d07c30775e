//! Opening a store on a fresh server (no demo), in each signup mode, and
//! running it: the owner's first order arriving live, the pause switch,
//! fulfilment and opening hours deciding what is taken.

use ordertrack_app::StoreSignup;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

use crate::support::*;

/// A server on an empty database, as `ordertrack serve` starts: no stores,
/// no accounts but the platform admin made here (as `user create --admin`
/// makes one).
async fn fresh_server(signup: StoreSignup) -> (TestApp, User) {
    let app = spawn_app_guarded(Guards {
        store_signup: signup,
        no_demo: true,
        ..Guards::default()
    })
    .await;
    assert_eq!(app.get("/stores", ANON).await.expect(200), json!([]));
    app.app
        .create_user("admin@shop.test", PASSWORD, "Platform Admin", true)
        .await
        .expect("an admin account");
    let admin = app.user("admin@shop.test").await;
    (app, admin)
}

fn new_store(slug: &str) -> Value {
    json!({"slug": slug, "name": "Rosie's Pizza", "currency": "EUR",
           "workflow": "restaurant", "timezone": "Europe/Berlin"})
}

/// The slugs `GET /stores` lists.
async fn listed(app: &TestApp) -> Vec<String> {
    app.get("/stores", ANON)
        .await
        .expect(200)
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["slug"].as_str().expect("a slug").to_owned())
        .collect()
}

/// A product on `slug`'s menu, added by its owner; its id.
async fn add_pizza(app: &TestApp, owner: &str, slug: &str) -> i64 {
    let product = app
        .post(
            &format!("/stores/{slug}/products"),
            owner,
            &json!({"name": "Margherita", "price_minor": 850, "station": "oven"}),
        )
        .await
        .expect(201);
    id(&product)
}

/// Posts a page form as the holder of `token` (CSRF token filled in);
/// the status and `Location`, redirects not followed.
async fn post_form(
    app: &TestApp,
    token: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let response = app.post_page_form(token, path, fields).await;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (response.status().as_u16(), location)
}

/// A page as the holder of `token` (or signed out): status and HTML.
async fn page(app: &TestApp, token: &str, path: &str) -> (u16, String) {
    let mut request = app.client.get(app.page_url(path));
    if !token.is_empty() {
        request = request.header(COOKIE, format!("ordertrack_session={token}"));
    }
    let response = request.send().await.expect("a page");
    let status = response.status().as_u16();
    (status, response.text().await.expect("the page"))
}

#[tokio::test]
async fn closed_signup_lets_only_platform_admins_open_stores() {
    let (app, admin) = fresh_server(StoreSignup::Closed).await;
    let customer = app.register("carla@shop.test", "Carla").await;

    app.post("/stores", &customer.token, &new_store("carlas-cafe"))
        .await
        .expect_problem(403, "forbidden");
    app.post("/stores", ANON, &new_store("carlas-cafe"))
        .await
        .expect_problem(401, "unauthenticated");
    let (status, _) = page(&app, &customer.token, "/stores/new").await;
    assert_eq!(status, 403, "no \"Open a store\" page for customers");

    let store = app
        .post("/stores", &admin.token, &new_store("rosies-pizza"))
        .await
        .expect(201);
    assert_eq!(store["slug"], "rosies-pizza");
    assert_eq!(store["status"], "active");
    assert_eq!(store["timezone"], "Europe/Berlin");
    assert_eq!(store["currency"], "EUR");
    assert_eq!(store["accepting_orders"], true);
    assert_eq!(store["fulfilment"], json!(["pickup", "delivery"]));
    assert_eq!(listed(&app).await, ["rosies-pizza"]);
    let me = app.get("/auth/me", &admin.token).await.expect(200);
    assert_eq!(
        me["memberships"],
        json!([{"store": "rosies-pizza", "store_id": id(&store), "role": "owner"}]),
        "the caller owns the store they opened"
    );
    // Without a time zone: UTC.
    let plain = app
        .post(
            "/stores",
            &admin.token,
            &json!({"slug": "plain-shop", "name": "Plain", "currency": "USD", "workflow": "retail"}),
        )
        .await
        .expect(201);
    assert_eq!(plain["timezone"], "UTC");
}

#[tokio::test]
async fn bad_store_descriptions_are_refused_and_change_nothing() {
    let (app, admin) = fresh_server(StoreSignup::Closed).await;
    app.post("/stores", &admin.token, &new_store("rosies-pizza"))
        .await
        .expect(201);
    let with = |field: &str, value: Value| {
        let mut body = new_store("another-shop");
        body[field] = value;
        body
    };
    for (body, status, code) in [
        (new_store("rosies-pizza"), 409, "already_exists"),
        (with("slug", json!("Rosies")), 422, "invalid_slug"),
        (with("slug", json!("ab")), 422, "invalid_slug"),
        (with("slug", json!("a".repeat(41))), 422, "invalid_slug"),
        (with("slug", json!("-dash-first")), 422, "invalid_slug"),
        (with("slug", json!("rosies_pizza")), 422, "invalid_slug"),
        (with("slug", json!("admin")), 422, "invalid_slug"),
        (with("slug", json!("new")), 422, "invalid_slug"),
        (with("currency", json!("XYZ")), 422, "invalid_currency"),
        (with("currency", json!("eur")), 422, "invalid_currency"),
        (with("workflow", json!("bakery")), 422, "unknown_workflow"),
        (
            with("timezone", json!("Mars/Olympus")),
            422,
            "invalid_timezone",
        ),
        (with("timezone", json!("")), 422, "invalid_timezone"),
        (with("name", json!("")), 422, "invalid_name"),
        (
            with("name", json!("Evil\u{202e}Shop")),
            422,
            "invalid_characters",
        ),
        (with("owner", json!(7)), 422, "invalid_body"),
    ] {
        app.post("/stores", &admin.token, &body)
            .await
            .expect_problem(status, code);
    }
    // 40 characters is fine.
    app.post(
        "/stores",
        &admin.token,
        &with("slug", json!("a".repeat(40))),
    )
    .await
    .expect(201);
    assert_eq!(listed(&app).await.len(), 2, "only the good ones were made");
}

#[tokio::test]
async fn approval_signup_hides_a_store_until_an_admin_approves_it() {
    let (app, admin) = fresh_server(StoreSignup::Approval).await;
    let owner = app.register("olga@shop.test", "Olga").await;
    let customer = app.register("carla@shop.test", "Carla").await;

    let store = app
        .post("/stores", &owner.token, &new_store("olgas-deli"))
        .await
        .expect(201);
    assert_eq!(store["status"], "pending_approval");
    // The owner can set it up meanwhile.
    let pizza = add_pizza(&app, &owner.token, "olgas-deli").await;

    // Invisible, and no orders.
    assert!(listed(&app).await.is_empty());
    app.get("/stores/olgas-deli", ANON)
        .await
        .expect_problem(404, "not_found");
    assert_eq!(page(&app, ANON, "/stores/olgas-deli").await.0, 404);
    app.place(&customer.token, &pickup("olgas-deli", &[(pizza, 1)]))
        .await
        .expect_problem(404, "not_found");

    // The admin sees it waiting; nobody else may approve it.
    let (status, html) = page(&app, &admin.token, "/admin/stores").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("olgas-deli") && html.contains("Approve"),
        "{html}"
    );
    assert_eq!(page(&app, &owner.token, "/admin/stores").await.0, 403);
    app.post_empty("/stores/olgas-deli/approve", &owner.token)
        .await
        .expect_problem(403, "forbidden");

    // Approved from the admin page: live.
    let (status, location) =
        post_form(&app, &admin.token, "/admin/stores/olgas-deli/approve", &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/admin/stores?flash=approved")
    );
    assert_eq!(listed(&app).await, ["olgas-deli"]);
    let (_, html) = page(&app, &admin.token, "/admin/stores").await;
    assert!(!html.contains("olgas-deli"), "no longer waiting");
    app.place(&customer.token, &pickup("olgas-deli", &[(pizza, 1)]))
        .await
        .expect(201);
    // Approving again changes nothing.
    let again = app
        .post_empty("/stores/olgas-deli/approve", &admin.token)
        .await
        .expect(200);
    assert_eq!(again["status"], "active");
}

#[tokio::test]
async fn open_signup_puts_a_store_live_at_once() {
    let (app, _admin) = fresh_server(StoreSignup::Open).await;
    let owner = app.register("olga@shop.test", "Olga").await;

    // Through the "Open a store" page: the form, then the manage page.
    let (status, html) = page(&app, &owner.token, "/").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("href=\"/stores/new\""),
        "a link to open a store"
    );
    let (status, html) = page(&app, &owner.token, "/stores/new").await;
    assert_eq!(status, 200);
    for words in ["restaurant", "kitchen", "retail", "Time zone", "Currency"] {
        assert!(html.contains(words), "{words} in {html}");
    }
    let (status, location) = post_form(
        &app,
        &owner.token,
        "/stores/new",
        &[
            ("name", "Olga's Deli"),
            ("slug", "olgas-deli"),
            ("currency", "eur"),
            ("timezone", "Europe/Berlin"),
            ("workflow", "kitchen"),
        ],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/manage/olgas-deli?flash=opened")
    );
    assert_eq!(listed(&app).await, ["olgas-deli"]);
    let detail = app.store_detail("olgas-deli").await;
    assert_eq!(
        (detail["currency"].clone(), detail["workflow"].clone()),
        (json!("EUR"), json!("kitchen"))
    );
    assert_eq!(page(&app, &owner.token, "/manage/olgas-deli").await.0, 200);

    // A bad form comes back with what was typed and why.
    let (status, _) = post_form(
        &app,
        &owner.token,
        "/stores/new",
        &[
            ("name", "Copy"),
            ("slug", "olgas-deli"),
            ("currency", "EUR"),
            ("timezone", "UTC"),
            ("workflow", "kitchen"),
        ],
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn a_customer_orders_from_a_new_store_and_its_owner_sees_it_live() {
    let (app, _admin) = fresh_server(StoreSignup::Open).await;
    let owner = app.register("olga@shop.test", "Olga").await;
    let customer = app.register("carla@shop.test", "Carla").await;
    app.post("/stores", &owner.token, &new_store("olgas-deli"))
        .await
        .expect(201);
    let pizza = add_pizza(&app, &owner.token, "olgas-deli").await;

    let (status, html) = page(&app, &owner.token, "/dashboard/olgas-deli").await;
    assert_eq!(status, 200);
    assert!(html.contains("Pause new orders"), "{html}");
    let (mut stream, _) = app
        .ready_sse("/stores/olgas-deli/events", Some(&owner.token))
        .await;
    let order = app
        .place(&customer.token, &pickup("olgas-deli", &[(pizza, 2)]))
        .await
        .expect(201);
    assert_eq!(
        order["number"].as_str().map(|n| n.starts_with("O-")),
        Some(true)
    );
    let event = stream.next_event().await.expect("the new order, live");
    let event = event.json();
    assert_eq!(event["type"], "order_created", "{event}");
    assert_eq!(event["order_id"], order["id"], "{event}");
    assert_eq!(
        ids(&app.store_orders(&owner.token, "olgas-deli").await),
        [id(&order)]
    );
}

#[tokio::test]
async fn pausing_refuses_orders_with_store_closed_until_resumed() {
    let (app, admin) = fresh_server(StoreSignup::Closed).await;
    app.post("/stores", &admin.token, &new_store("rosies-pizza"))
        .await
        .expect(201);
    let pizza = add_pizza(&app, &admin.token, "rosies-pizza").await;
    let store = app
        .store
        .store_by_slug("rosies-pizza")
        .await
        .expect("a read")
        .expect("the store");
    let manager = app
        .staff(
            "manager@shop.test",
            &store,
            ordertrack_domain::Role::Manager,
        )
        .await;
    let cashier = app
        .staff(
            "cashier@shop.test",
            &store,
            ordertrack_domain::Role::Cashier,
        )
        .await;
    let customer = app.register("carla@shop.test", "Carla").await;
    let order = || pickup("rosies-pizza", &[(pizza, 1)]);

    // Who may pause: owners and managers; a manager only that and the hours.
    app.patch(
        "/stores/rosies-pizza",
        &cashier.token,
        &json!({"accepting_orders": false}),
    )
    .await
    .expect_problem(403, "forbidden");
    app.patch(
        "/stores/rosies-pizza",
        &manager.token,
        &json!({"name": "Manager's Pizza"}),
    )
    .await
    .expect_problem(403, "forbidden");
    let paused = app
        .patch(
            "/stores/rosies-pizza",
            &manager.token,
            &json!({"accepting_orders": false}),
        )
        .await
        .expect(200);
    assert_eq!(paused["accepting_orders"], false);
    assert_eq!(paused["taking_orders"], false);
    assert_eq!(paused["ordering_message"], "Not taking orders right now");

    let refused = app.place(&customer.token, &order()).await;
    refused.expect_problem(409, "store_closed");
    let (status, html) = page(&app, &customer.token, "/stores/rosies-pizza").await;
    assert_eq!(status, 200);
    assert!(html.contains("Not taking orders right now"), "{html}");
    assert!(
        html.contains("disabled"),
        "no way to place an order: {html}"
    );
    let (_, dashboard) = page(&app, &manager.token, "/dashboard/rosies-pizza").await;
    assert!(dashboard.contains("Resume"), "{dashboard}");

    // One click on the dashboard resumes.
    let (status, location) = post_form(
        &app,
        &manager.token,
        "/dashboard/rosies-pizza/ordering",
        &[("accepting", "true")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/dashboard/rosies-pizza?flash=resumed")
    );
    app.place(&customer.token, &order()).await.expect(201);
    let (_, html) = page(&app, &customer.token, "/stores/rosies-pizza").await;
    assert!(!html.contains("Not taking orders"), "{html}");

    // And pauses again.
    let (status, _) = post_form(
        &app,
        &admin.token,
        "/dashboard/rosies-pizza/ordering",
        &[("accepting", "false")],
    )
    .await;
    assert_eq!(status, 303);
    app.place(&customer.token, &order())
        .await
        .expect_problem(409, "store_closed");
    assert_eq!(
        post_form(
            &app,
            &cashier.token,
            "/dashboard/rosies-pizza/ordering",
            &[("accepting", "true")]
        )
        .await
        .0,
        403
    );
}

/// `HH:MM`, `minutes` from now (UTC), wrapped around midnight.
fn clock_in(minutes: i64) -> String {
    let now = time::OffsetDateTime::now_utc();
    let of_day =
        (i64::from(now.hour()) * 60 + i64::from(now.minute()) + minutes).rem_euclid(24 * 60);
    format!("{:02}:{:02}", of_day / 60, of_day % 60)
}

/// The same opening every day of the week.
fn every_day(open: &str, close: &str) -> Value {
    let day = json!([{"open": open, "close": close}]);
    json!({"monday": day, "tuesday": day, "wednesday": day, "thursday": day,
           "friday": day, "saturday": day, "sunday": day})
}

#[tokio::test]
async fn opening_hours_and_fulfilment_decide_what_orders_are_taken() {
    let (app, admin) = fresh_server(StoreSignup::Closed).await;
    app.post("/stores", &admin.token, &new_store("rosies-pizza"))
        .await
        .expect(201);
    let pizza = add_pizza(&app, &admin.token, "rosies-pizza").await;
    let customer = app.register("carla@shop.test", "Carla").await;
    let owner = &admin.token;

    // Hours in UTC that open in two hours: closed now, back then.
    let opens = clock_in(120);
    let later = app
        .patch(
            "/stores/rosies-pizza",
            owner,
            &json!({"timezone": "UTC", "opening_hours": every_day(&opens, &clock_in(180))}),
        )
        .await
        .expect(200);
    assert_eq!(later["taking_orders"], false);
    let message = later["ordering_message"].as_str().expect("a message");
    assert!(message.contains(&opens), "{message}");
    app.place(&customer.token, &pickup("rosies-pizza", &[(pizza, 1)]))
        .await
        .expect_problem(409, "store_closed");
    let (_, html) = page(&app, ANON, "/stores/rosies-pizza").await;
    assert!(html.contains(&format!("at {opens}")), "{html}");

    // Hours around now (past midnight or not): open.
    let open = app
        .patch(
            "/stores/rosies-pizza",
            owner,
            &json!({"opening_hours": every_day(&clock_in(-60), &clock_in(60))}),
        )
        .await
        .expect(200);
    assert_eq!(open["taking_orders"], true, "{open}");
    app.place(&customer.token, &pickup("rosies-pizza", &[(pizza, 1)]))
        .await
        .expect(201);

    // Pickup only: a delivery is refused.
    app.patch(
        "/stores/rosies-pizza",
        owner,
        &json!({"fulfilment": ["pickup"]}),
    )
    .await
    .expect(200);
    app.place(
        &customer.token,
        &delivery("rosies-pizza", &[(pizza, 1)], "1 Main Street"),
    )
    .await
    .expect_problem(409, "store_closed");
    app.place(&customer.token, &pickup("rosies-pizza", &[(pizza, 1)]))
        .await
        .expect(201);

    // No hours: open around the clock.
    let always = app
        .patch(
            "/stores/rosies-pizza",
            owner,
            &json!({"opening_hours": null}),
        )
        .await
        .expect(200);
    assert_eq!(always["opening_hours"], Value::Null);
    assert_eq!(always["fulfilment"], json!(["pickup"]));
    assert_eq!(always["taking_orders"], true);

    // Bad settings change nothing.
    for (body, code) in [
        (json!({"timezone": "Nowhere/Else"}), "invalid_timezone"),
        (json!({"fulfilment": []}), "invalid_fulfilment"),
        (json!({"fulfilment": ["drone"]}), "invalid_body"),
        (
            json!({"opening_hours": every_day("10:00", "10:00")}),
            "invalid_opening_hours",
        ),
        (
            json!({"opening_hours": every_day("25:00", "10:00")}),
            "invalid_body",
        ),
        (json!({"opening_hours": {"someday": []}}), "invalid_body"),
        (json!({"accepting_orders": "no"}), "invalid_body"),
        (json!({"status": "active"}), "invalid_body"),
        (json!({"name": ""}), "invalid_name"),
    ] {
        app.patch("/stores/rosies-pizza", owner, &body)
            .await
            .expect_problem(422, code);
    }
    app.patch(
        "/stores/nowhere",
        owner,
        &json!({"accepting_orders": false}),
    )
    .await
    .expect_problem(404, "not_found");
    let detail = app.store_detail("rosies-pizza").await;
    assert_eq!(detail["timezone"], "UTC");
    assert_eq!(detail["taking_orders"], true);
    assert_eq!(detail["name"], "Rosie's Pizza");
}
