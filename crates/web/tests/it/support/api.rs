//! Helpers that speak the HTTP API of a [`TestApp`]: requests with a bearer
//! token, [`Resp`] (a response read to the end, with problem+json checks),
//! accounts, stores and orders, and small readers of JSON bodies.

use ordertrack_app::Caller;
use ordertrack_domain::{Actor, Order, Role, UserId, Workflow, plan_transition};
use ordertrack_store::testing::order_placed_at;
use ordertrack_store::{NewProduct, NewStore, Product, StoreRecord};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderMap};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::TestApp;

/// The password of every demo account (and of every account tests create).
pub const PASSWORD: &str = ordertrack_app::demo::DEMO_PASSWORD;
/// Pass as the token for a request without credentials.
pub const ANON: &str = "";
/// The media type of every error response.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// The demo stores.
pub const RESTAURANT: &str = "demo-restaurant";
pub const SHOP: &str = "demo-shop";

/// A response, read to the end.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Resp {
    pub async fn from(response: reqwest::Response) -> Resp {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Content-Type` header, or "".
    pub fn content_type(&self) -> &str {
        self.header(CONTENT_TYPE.as_str()).unwrap_or("")
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status}, got {}: {}",
            self.status,
            self.text
        );
        self.body
    }

    /// Asserts a 2xx status and returns the JSON body.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            self.status.is_success(),
            "expected success, got {}: {}",
            self.status,
            self.text
        );
        self.body
    }

    /// Asserts a 4xx RFC 9457 problem: problem+json, a non-empty `code`, a
    /// `status` member equal to the HTTP status. Returns the code.
    #[track_caller]
    pub fn problem(&self) -> &str {
        assert!(
            self.status.is_client_error(),
            "expected a 4xx problem, got {}: {}",
            self.status,
            self.text
        );
        assert!(
            self.content_type().starts_with(PROBLEM_JSON),
            "expected {PROBLEM_JSON}, got `{}` ({}): {}",
            self.content_type(),
            self.status,
            self.text
        );
        assert_eq!(
            self.body["status"].as_u64(),
            Some(u64::from(self.status.as_u16())),
            "problem `status` member: {}",
            self.text
        );
        assert!(
            self.body["title"].is_string() && self.body["type"].is_string(),
            "problem needs `type` and `title`: {}",
            self.text
        );
        let code = self.body["code"].as_str().unwrap_or("");
        assert!(!code.is_empty(), "problem without a code: {}", self.text);
        code
    }

    /// Asserts a problem with exactly this status and code.
    #[track_caller]
    pub fn expect_problem(&self, status: u16, code: &str) -> &Value {
        let actual = self.problem();
        assert_eq!(
            (self.status.as_u16(), actual),
            (status, code),
            "unexpected problem: {}",
            self.text
        );
        &self.body
    }
}

/// Someone signed in.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub token: String,
}

/// An extra store set up by a test, with one account per staff role.
#[derive(Debug, Clone)]
pub struct StaffedStore {
    pub slug: String,
    pub owner: User,
    pub manager: User,
    pub cashier: User,
    pub kitchen: User,
    pub driver: User,
    pub products: Vec<Product>,
}

impl StaffedStore {
    /// The ids of the store's products.
    pub fn product_ids(&self) -> Vec<i64> {
        self.products.iter().map(|p| p.id.get()).collect()
    }
}

// ---- bodies and JSON helpers ----

/// A pickup order body: `items` as `(product, quantity)`.
pub fn pickup(store: &str, items: &[(i64, i64)]) -> Value {
    json!({
        "store": store,
        "items": lines(items),
        "fulfilment": {"type": "pickup"},
    })
}

/// A delivery order body.
pub fn delivery(store: &str, items: &[(i64, i64)], address: &str) -> Value {
    json!({
        "store": store,
        "items": lines(items),
        "fulfilment": {"type": "delivery", "address": address},
    })
}

fn lines(items: &[(i64, i64)]) -> Value {
    items
        .iter()
        .map(|(product, quantity)| json!({"product": product, "quantity": quantity}))
        .collect()
}

/// `value["id"]` as an integer.
#[track_caller]
pub fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer id in {value}"))
}

/// `value["version"]` as an integer.
#[track_caller]
pub fn version(order: &Value) -> i64 {
    order["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("no version in {order}"))
}

/// `value["status"]` as a string.
#[track_caller]
pub fn status(order: &Value) -> &str {
    order["status"]
        .as_str()
        .unwrap_or_else(|| panic!("no status in {order}"))
}

/// The ids of some objects.
pub fn ids(values: &[Value]) -> Vec<i64> {
    values.iter().map(id).collect()
}

/// The ids of an order's items, in order.
pub fn item_ids(order: &Value) -> Vec<i64> {
    order["items"]
        .as_array()
        .expect("order items")
        .iter()
        .map(id)
        .collect()
}

/// One history entry as `(from, to, actor role, actor id)`.
pub type Step = (Option<String>, String, String, i64);

/// An order's history as steps.
pub fn steps(history: &[Value]) -> Vec<Step> {
    history
        .iter()
        .map(|entry| {
            (
                entry["from"].as_str().map(str::to_owned),
                entry["to"].as_str().expect("history `to`").to_owned(),
                entry["actor"]["role"]
                    .as_str()
                    .expect("history actor role")
                    .to_owned(),
                entry["actor"]["id"].as_i64().expect("history actor id"),
            )
        })
        .collect()
}

/// A step for comparing with [`steps`].
pub fn step(from: Option<&str>, to: &str, role: &str, actor: &User) -> Step {
    (
        from.map(str::to_owned),
        to.to_owned(),
        role.to_owned(),
        actor.id,
    )
}

/// Asserts that consecutive history entries chain (`to` of one is `from`
/// of the next) and the first one creates the order.
#[track_caller]
pub fn assert_chained(history: &[Value]) {
    assert!(!history.is_empty(), "history is never empty");
    assert!(
        history[0]["from"].is_null(),
        "first entry creates the order: {}",
        history[0]
    );
    for pair in history.windows(2) {
        assert_eq!(
            pair[1]["from"], pair[0]["to"],
            "history is not a path: {} then {}",
            pair[0], pair[1]
        );
    }
}

// ---- requests ----

impl TestApp {
    /// The URL of an API path (`/orders` → `http://…/api/v1/orders`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// A request to an API path, with `Authorization: Bearer token` unless
    /// the token is [`ANON`].
    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        if token.is_empty() {
            builder
        } else {
            builder.header(AUTHORIZATION, format!("Bearer {token}"))
        }
    }

    pub async fn send(&self, builder: RequestBuilder) -> Resp {
        Resp::from(builder.send().await.expect("send the request")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(Method::GET, path, token)).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(self.request(Method::POST, path, token).json(body))
            .await
    }

    /// A POST without a body.
    pub async fn post_empty(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(Method::POST, path, token)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(self.request(Method::PATCH, path, token).json(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(Method::DELETE, path, token)).await
    }

    /// A request with a raw body and (optionally) a content type.
    pub async fn raw(
        &self, method: Method, path: &str, token: &str, content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Resp {
        let mut builder = self.request(method, path, token).body(body);
        if let Some(content_type) = content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        self.send(builder).await
    }

    // ---- accounts ----

    /// Signs in; the raw response.
    pub async fn login_response(&self, email: &str, password: &str) -> Resp {
        self.post(
            "/auth/login",
            ANON,
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs in with the shared password and returns the token.
    pub async fn login(&self, email: &str) -> String {
        self.user(email).await.token
    }

    /// Signs in with the shared password.
    pub async fn user(&self, email: &str) -> User {
        let body = self.login_response(email, PASSWORD).await.expect(200);
        user_of(&body)
    }

    /// Registers a customer (password [`PASSWORD`]).
    pub async fn register(&self, email: &str, name: &str) -> User {
        let body = self
            .post(
                "/auth/register",
                ANON,
                &json!({"email": email, "password": PASSWORD, "name": name}),
            )
            .await
            .expect(201);
        user_of(&body)
    }

    /// The CSRF token the pages give a signed-in session's forms (it is
    /// bound to the session).
    pub async fn session_csrf(&self, token: &str) -> String {
        let page = self
            .client
            .get(self.page_url("/orders"))
            .header(
                reqwest::header::COOKIE,
                format!("ordertrack_session={token}"),
            )
            .send()
            .await
            .expect("a page")
            .text()
            .await
            .expect("the page");
        csrf_field(&page)
    }

    /// The demo customers.
    pub async fn alice(&self) -> User {
        self.user("alice@demo.test").await
    }

    pub async fn bob(&self) -> User {
        self.user("bob@demo.test").await
    }

    /// The caller behind a token, for calling the App directly.
    pub async fn caller(&self, token: &str) -> Caller {
        self.app.authenticate(token).await.expect("a valid token")
    }

    /// Creates an account with a staff role in a store, and signs it in.
    pub async fn staff(&self, email: &str, store: &StoreRecord, role: Role) -> User {
        let user = self
            .app
            .create_user(email, PASSWORD, &format!("{role} of {}", store.slug), false)
            .await
            .expect("create a staff account");
        self.app
            .admin_set_membership(user.id, store.id, role)
            .await
            .expect("give the staff role");
        self.user(email).await
    }

    // ---- stores and products ----

    /// Creates a store (no staff, no products).
    pub async fn create_store(&self, slug: &str, workflow: &str, prefix: &str) -> StoreRecord {
        self.app
            .admin_create_store(NewStore {
                slug: slug.into(),
                name: format!("Store {slug}"),
                currency: "EUR".parse().expect("a currency code"),
                workflow: workflow.into(),
                order_prefix: prefix.into(),
            })
            .await
            .expect("create a store")
    }

    /// A store's record, read from the store directly.
    pub async fn store_record(&self, slug: &str) -> StoreRecord {
        self.store
            .store_by_slug(slug)
            .await
            .expect("read the store")
            .expect("the store exists")
    }

    /// Adds a product to a store directly.
    pub async fn add_product(
        &self, store: &StoreRecord, name: &str, price_minor: i64, station: &str,
    ) -> Product {
        self.store
            .create_product(
                store.id,
                NewProduct {
                    name: name.into(),
                    description: String::new(),
                    price_minor,
                    station: station.into(),
                    available: true,
                },
            )
            .await
            .expect("create a product")
    }

    /// A store with a workflow, three products (grill, fryer, drinks) and one
    /// signed-in account per staff role (`{role}@{slug}.test`).
    pub async fn staffed_store(&self, slug: &str, workflow: &str, prefix: &str) -> StaffedStore {
        let record = self.create_store(slug, workflow, prefix).await;
        let mut products = Vec::new();
        for (name, price, station) in [
            ("House Burger", 1200, "grill"),
            ("Chips", 400, "fryer"),
            ("Cola", 300, "drinks"),
        ] {
            products.push(self.add_product(&record, name, price, station).await);
        }
        let email = |role: &str| format!("{role}@{slug}.test");
        StaffedStore {
            owner: self.staff(&email("owner"), &record, Role::Owner).await,
            manager: self.staff(&email("manager"), &record, Role::Manager).await,
            cashier: self.staff(&email("cashier"), &record, Role::Cashier).await,
            kitchen: self.staff(&email("kitchen"), &record, Role::Kitchen).await,
            driver: self.staff(&email("driver"), &record, Role::Driver).await,
            slug: slug.to_owned(),
            products,
        }
    }

    /// `GET /stores/{slug}`.
    pub async fn store_detail(&self, slug: &str) -> Value {
        self.get(&format!("/stores/{slug}"), ANON).await.expect(200)
    }

    /// The products of a store, as the API lists them.
    pub async fn products(&self, slug: &str) -> Vec<Value> {
        self.store_detail(slug).await["products"]
            .as_array()
            .expect("products")
            .clone()
    }

    /// The ids of a store's products.
    pub async fn product_ids(&self, slug: &str) -> Vec<i64> {
        ids(&self.products(slug).await)
    }

    /// The id of a store's product by name.
    pub async fn product_id(&self, slug: &str, name: &str) -> i64 {
        let products = self.products(slug).await;
        let product = products
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{slug} has no product {name}"));
        id(product)
    }

    // ---- orders ----

    /// `POST /orders`; the raw response.
    pub async fn place(&self, token: &str, body: &Value) -> Resp {
        self.post("/orders", token, body).await
    }

    /// Places a pickup order and returns it (asserts 201).
    pub async fn place_order(&self, token: &str, store: &str, items: &[(i64, i64)]) -> Value {
        self.place(token, &pickup(store, items)).await.expect(201)
    }

    /// Places a delivery order and returns it (asserts 201).
    pub async fn place_delivery(
        &self, token: &str, store: &str, items: &[(i64, i64)], address: &str,
    ) -> Value {
        self.place(token, &delivery(store, items, address))
            .await
            .expect(201)
    }

    /// Places a pickup order of one unit of the store's first product.
    pub async fn place_simple(&self, token: &str, store: &str) -> Value {
        let product = self.product_ids(store).await[0];
        self.place_order(token, store, &[(product, 1)]).await
    }

    /// `POST /orders/{id}/transitions`; the raw response.
    pub async fn transition(
        &self, token: &str, order: i64, to: &str, expected_version: i64,
    ) -> Resp {
        self.post(
            &format!("/orders/{order}/transitions"),
            token,
            &json!({"to": to, "expected_version": expected_version}),
        )
        .await
    }

    /// Moves `order` to `to` whatever its version (asserts 200) and returns it.
    pub async fn move_order(&self, token: &str, order: i64, to: &str) -> Value {
        self.post(
            &format!("/orders/{order}/transitions"),
            token,
            &json!({"to": to}),
        )
        .await
        .expect(200)
    }

    /// Moves `order` to `to` at its current version (asserts 200) and returns it.
    pub async fn advance(&self, token: &str, order: &Value, to: &str) -> Value {
        let moved = self
            .transition(token, id(order), to, version(order))
            .await
            .expect(200);
        assert_eq!(status(&moved), to);
        assert_eq!(version(&moved), version(order) + 1);
        moved
    }

    /// Posts a page form as the holder of `token` (CSRF token filled in),
    /// redirects not followed.
    pub async fn post_page_form(
        &self, token: &str, path: &str, fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let csrf = self.session_csrf(token).await;
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client")
            .post(self.page_url(path))
            .header(
                reqwest::header::COOKIE,
                format!("ordertrack_session={token}"),
            )
            .form(&form)
            .send()
            .await
            .expect("a form post")
    }

    /// Marks every item of `order` ready, one by one (asserts 200 each);
    /// the order as the last change left it.
    pub async fn all_items_ready(&self, token: &str, order: Value) -> Value {
        let mut order = order;
        for item in item_ids(&order) {
            order = self
                .set_item(token, id(&order), item, "ready")
                .await
                .expect(200);
        }
        order
    }

    /// `PATCH /orders/{id}/items/{item}`; the raw response.
    pub async fn set_item(&self, token: &str, order: i64, item: i64, status: &str) -> Resp {
        self.patch(
            &format!("/orders/{order}/items/{item}"),
            token,
            &json!({"status": status}),
        )
        .await
    }

    /// `POST /orders/{id}/assignment` of the user `driver` to `order`, at
    /// its version.
    pub async fn assign_driver(&self, token: &str, order: &Value, driver: i64) -> Resp {
        self.post(
            &format!("/orders/{}/assignment", id(order)),
            token,
            &json!({"driver": driver, "expected_version": version(order)}),
        )
        .await
    }

    /// `GET /orders/{id}` (asserts 200).
    pub async fn order(&self, token: &str, order: i64) -> Value {
        self.get(&format!("/orders/{order}"), token)
            .await
            .expect(200)
    }

    /// `GET /orders/{id}/history` (asserts 200).
    pub async fn history(&self, token: &str, order: i64) -> Vec<Value> {
        self.get(&format!("/orders/{order}/history"), token)
            .await
            .expect(200)
            .as_array()
            .expect("history is an array")
            .clone()
    }

    /// The first page (up to 100) of `GET /orders{query}`.
    pub async fn list(&self, token: &str, query: &str) -> Vec<Value> {
        let body = self
            .get(&format!("/orders{query}"), token)
            .await
            .expect(200);
        body["items"].as_array().expect("items").clone()
    }

    /// The caller's own orders (first 100).
    pub async fn my_orders(&self, token: &str) -> Vec<Value> {
        self.list(token, "?limit=100").await
    }

    /// A store's orders as its staff see them (first 100).
    pub async fn store_orders(&self, token: &str, slug: &str) -> Vec<Value> {
        self.list(token, &format!("?store={slug}&limit=100")).await
    }
}

/// The CSRF token a page's forms carry.
pub fn csrf_field(html: &str) -> String {
    const FIELD: &str = "name=\"csrf\" value=\"";
    let start = html
        .find(FIELD)
        .unwrap_or_else(|| panic!("no CSRF field in {html}"))
        + FIELD.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn user_of(session: &Value) -> User {
    let user = &session["user"];
    User {
        id: id(user),
        name: user["name"].as_str().expect("user name").to_owned(),
        token: session["token"].as_str().expect("token").to_owned(),
    }
}

// ---- pages ----

/// Posts a page form as the holder of `token` (CSRF token filled in);
/// the status and `Location`, redirects not followed.
pub async fn post_form(
    app: &TestApp, token: &str, path: &str, fields: &[(&str, &str)],
) -> (u16, String) {
    let csrf = app.session_csrf(token).await;
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
        .post(app.page_url(path))
        .header(COOKIE, format!("ordertrack_session={token}"))
        .form(&form)
        .send()
        .await
        .expect("a form post");
    (response.status().as_u16(), location(&response))
}

/// A page asked for signed out, redirects not followed: the status and
/// the `Location` header (empty without one).
pub async fn signed_out_get(app: &TestApp, path: &str) -> (u16, String) {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
        .get(app.page_url(path))
        .send()
        .await
        .expect("the page");
    (response.status().as_u16(), location(&response))
}

/// A response's `Location` header (empty without one).
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A page as the holder of `token` (or signed out): status and HTML.
pub async fn page(app: &TestApp, token: &str, path: &str) -> (u16, String) {
    let mut request = app.client.get(app.page_url(path));
    if !token.is_empty() {
        request = request.header(COOKIE, format!("ordertrack_session={token}"));
    }
    let response = request.send().await.expect("a page");
    let status = response.status().as_u16();
    (status, response.text().await.expect("the page"))
}

// ---- history at chosen instants ----

/// A status change of [`TestApp::walk`]: the status, the seconds after the
/// change before, and a note.
pub type WalkStep<'a> = (&'a str, i64, Option<&'a str>);

impl TestApp {
    /// Places an order of `lines` for `customer` at `at`, written through
    /// the store as the application would (the application reads the
    /// clock; history tests choose their instants).
    pub async fn place_at(
        &self, record: &StoreRecord, workflow: &Workflow, customer: UserId,
        lines: &[(&Product, u32)], at: OffsetDateTime,
    ) -> Order {
        self.store
            .place_order(order_placed_at(record, workflow, customer, lines, at))
            .await
            .expect("place an order")
            .order
    }

    /// Moves `order` through `steps` as `actor`, each step the given
    /// seconds after the one before (the first after the order's last
    /// change), written through the store.
    pub async fn walk(
        &self, workflow: &Workflow, mut order: Order, actor: Actor, steps: &[WalkStep<'_>],
    ) -> Order {
        let mut at = order.updated_at;
        for (to, after, note) in steps {
            at += time::Duration::seconds(*after);
            let change = plan_transition(
                workflow,
                &order,
                actor,
                to,
                note.map(str::to_owned),
                Some(order.version),
                at,
            )
            .unwrap_or_else(|e| panic!("{} -> {to}: {e}", order.status));
            let finishes = change.finishes;
            order = self
                .store
                .apply_status_change(change)
                .await
                .expect("apply a status change");
            if finishes {
                // Its durations, as the follower of the event log keeps
                // them a moment later (now, so the test need not wait).
                self.app
                    .keep_followed_durations()
                    .await
                    .expect("the ETA follower's round");
            }
        }
        order
    }
}
