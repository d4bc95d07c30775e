//! The authorization matrix: every route the router serves
//! (`ordertrack_web::routes::table`, the table the router is built from) ×
//! every kind of caller, each cell the status that caller gets. A route
//! added without a row here fails [`every_route_has_a_row`]; a row whose
//! route is gone fails it too.
//!
//! Each cell runs on fresh data where the request changes something (a new
//! order, a new staff member, a new session), so one cell's effect never
//! decides another's answer. Requests are valid apart from who sends them:
//! the status is the authorization's answer. Reads of what the caller may
//! not see are 404 (BOLA), never 403; pages send signed-out visitors to
//! sign in (303).

use std::collections::BTreeSet;

use ordertrack_app::SignInLimits;
use ordertrack_app::printing::PrintSettings;
use ordertrack_domain::{OrderId, Role as StaffRole, StoreId};
use ordertrack_store::{NewPrintJob, NewPrinter, PrintKind};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::*;

/// Who calls. `Customer` placed the order the row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Customer,
    OtherCustomer,
    Owner,
    Manager,
    Cashier,
    Kitchen,
    Driver,
    /// Owner of another store.
    OtherStoreStaff,
    Admin,
}

/// The columns of [`ROWS`], in order.
const WHO: [Who; 10] = [
    Who::Anonymous,
    Who::Customer,
    Who::OtherCustomer,
    Who::Owner,
    Who::Manager,
    Who::Cashier,
    Who::Kitchen,
    Who::Driver,
    Who::OtherStoreStaff,
    Who::Admin,
];

impl Who {
    fn email(self) -> Option<&'static str> {
        match self {
            Who::Anonymous => None,
            Who::Customer => Some("alice@demo.test"),
            Who::OtherCustomer => Some("bob@demo.test"),
            Who::Owner => Some("owner@demo.test"),
            Who::Manager => Some("manager@demo.test"),
            Who::Cashier => Some("cashier@demo.test"),
            Who::Kitchen => Some("kitchen@demo.test"),
            Who::Driver => Some("driver@demo.test"),
            Who::OtherStoreStaff => Some("seller@demo.test"),
            Who::Admin => Some("admin@demo.test"),
        }
    }
}

/// How a row's request is sent.
#[derive(Clone, Copy)]
enum Via {
    /// `Authorization: Bearer`, JSON body if any.
    Api,
    /// A page: the session cookie; a form post also the CSRF token.
    Page,
    /// A WebSocket handshake with the Bearer token.
    WebSocket,
}

/// What the order the row is about must be like before the request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prep {
    /// Just placed (pending), a delivery of the demo restaurant.
    Placed,
    /// In the kitchen (`preparing`).
    Preparing,
    /// Handed off (`ready`, every item ready).
    HandedOff,
    /// Done: delivered.
    Delivered,
}

/// The body of a request, built from the cell's data.
#[derive(Clone, Copy)]
enum Body {
    None,
    Json(fn(&Cell) -> Value),
    Form(fn(&Cell) -> Vec<(String, String)>),
}

/// One route: how to call it and what each caller (columns in [`WHO`]
/// order) gets.
struct Row {
    method: Method,
    /// The route's template, as the router's table has it.
    route: &'static str,
    send: Via,
    prep: Prep,
    body: Body,
    /// The request ends the caller's session (sign out): each cell signs in
    /// afresh.
    own_session: bool,
    expect: [u16; 10],
}

/// The data one cell's request is about.
struct Cell {
    order: i64,
    item: i64,
    version: i64,
    tracking: String,
    product: i64,
    /// A staff member of the demo restaurant (a cashier), made for this
    /// cell, for the routes that remove one.
    member: i64,
    /// An account that is nobody's staff yet, for the routes that add one.
    newcomer: String,
    /// The demo restaurant's driver (a user id), for assigning one.
    driver: i64,
    /// A fresh e-mail, for registering.
    fresh_email: String,
    /// A fresh store slug, for opening a store.
    fresh_slug: String,
    /// An invitation (its token) to [`INVITES`], addressed to the cell's
    /// caller, for the routes that show or accept one.
    invitation: String,
    /// A genuine unsubscribe token (the customer's): the link is the
    /// whole authorisation, whoever follows it.
    unsubscribe: String,
    /// A printer of the demo restaurant (no station, no receipts: it is
    /// never sent anything), for the routes about one.
    printer: i64,
    /// A print job of the cell's order on that printer, for the reprint.
    job: i64,
    /// A webhook of the demo restaurant (made for the cell where the row
    /// deletes it).
    webhook: i64,
    /// A delivery of [`Setup::webhook`].
    delivery: i64,
}

/// The store the matrix's invitations are to: joining it changes nobody's
/// access to the demo restaurant the other rows are about.
const INVITES: &str = "matrix-invites";

/// Where the matrix's webhooks point: a loopback port nothing listens on
/// (the test server allows loopback; nothing is ever answered).
const MATRIX_HOOK: &str = "http://127.0.0.1:9/matrix";

/// Where the matrix's push subscriptions point (nothing is sent to them).
const MATRIX_PUSH: &str = "http://127.0.0.1:9/push";

fn form(cell_csrf: &str, fields: &[(&str, String)]) -> Vec<(String, String)> {
    let mut all = vec![("csrf".to_owned(), cell_csrf.to_owned())];
    all.extend(fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    all
}

const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PATCH: Method = Method::PATCH;
const DELETE: Method = Method::DELETE;
const PUT: Method = Method::PUT;

fn row(method: Method, route: &'static str, send: Via, expect: [u16; 10]) -> Row {
    Row {
        method,
        route,
        send,
        prep: Prep::Placed,
        body: Body::None,
        own_session: false,
        expect,
    }
}

impl Row {
    fn prep(self, prep: Prep) -> Row {
        Row { prep, ..self }
    }
    fn json(self, body: fn(&Cell) -> Value) -> Row {
        Row {
            body: Body::Json(body),
            ..self
        }
    }
    fn form(self, body: fn(&Cell) -> Vec<(String, String)>) -> Row {
        Row {
            body: Body::Form(body),
            ..self
        }
    }
    fn own_session(self) -> Row {
        Row {
            own_session: true,
            ..self
        }
    }
}

/// Every caller gets this.
const fn all(status: u16) -> [u16; 10] {
    [status; 10]
}

/// The matrix. Columns: anonymous, the order's customer, another customer,
/// owner, manager, cashier, kitchen, driver (the demo restaurant's staff),
/// another store's owner, platform admin.
fn rows() -> Vec<Row> {
    use Via::*;
    // Forms carry the CSRF token in `csrf`; [`request`] fills it in.
    vec![
        // ---- public ----
        row(GET, "/healthz", Page, all(200)),
        row(GET, "/readyz", Page, all(200)),
        // From this machine (these requests are); other clients need the
        // operator's token (operations.rs).
        row(GET, "/metrics", Page, all(200)),
        row(GET, "/static/app.css", Page, all(200)),
        row(GET, "/static/live.js", Page, all(200)),
        row(GET, "/static/receipt.css", Page, all(200)),
        // Every asset by its plain or versioned name (here: an icon).
        row(GET, "/static/{file}", Page, all(200)),
        row(GET, "/sw.js", Page, all(200)),
        row(GET, "/manifest.webmanifest", Page, all(200)),
        // The API's description and its reading page (openapi.rs).
        row(GET, "/api/openapi.json", Page, all(200)),
        row(GET, "/api/docs", Page, all(200)),
        row(GET, "/api/docs/swagger-ui.css", Page, all(200)),
        row(GET, "/api/docs/swagger-ui-bundle.js", Page, all(200)),
        row(GET, "/api/docs/docs.js", Page, all(200)),
        row(GET, "/", Page, all(200)),
        row(GET, "/login", Page, all(200)),
        row(POST, "/login", Page, all(303)).form(|_| {
            form(
                "",
                &[
                    ("email", "bob@demo.test".into()),
                    ("password", PASSWORD.into()),
                ],
            )
        }),
        row(GET, "/register", Page, all(200)),
        row(POST, "/register", Page, all(303)).form(|c| {
            form(
                "",
                &[
                    ("name", "New Customer".into()),
                    ("email", c.fresh_email.clone()),
                    ("password", PASSWORD.into()),
                ],
            )
        }),
        row(POST, "/logout", Page, all(303))
            .own_session()
            .form(|_| form("", &[])),
        row(GET, "/stores/{slug}", Page, all(200)),
        row(GET, "/track/{token}", Page, all(200)),
        row(GET, "/track/{token}/tracker", Page, all(200)),
        row(GET, "/track/{token}/receipt", Page, all(200)),
        row(GET, "/api/v1/stores", Api, all(200)),
        row(GET, "/api/v1/stores/{slug}", Api, all(200)),
        row(GET, "/api/v1/stores/{slug}/products", Api, all(200)),
        row(GET, "/api/v1/workflows", Api, all(200)),
        row(GET, "/api/v1/track/{token}", Api, all(200)),
        row(GET, "/api/v1/track/{token}/events", Api, all(200)),
        row(GET, "/api/v1/ws", WebSocket, all(101)),
        row(POST, "/api/v1/auth/register", Api, all(201)).json(
            |c| json!({"email": c.fresh_email, "password": PASSWORD, "name": "New Customer"}),
        ),
        row(POST, "/api/v1/auth/login", Api, all(200))
            .json(|_| json!({"email": "bob@demo.test", "password": PASSWORD})),
        // ---- anyone signed in ----
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            POST,
            "/api/v1/auth/logout",
            Api,
            [401, 204, 204, 204, 204, 204, 204, 204, 204, 204],
        )
        .own_session(),
        row(
            GET,
            "/api/v1/auth/me",
            Api,
            [401, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
        row(
            GET,
            "/api/v1/me/events",
            Api,
            [401, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
        row(
            GET,
            "/api/v1/orders",
            Api,
            [401, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
        row(
            POST,
            "/api/v1/orders",
            Api,
            [401, 201, 201, 201, 201, 201, 201, 201, 201, 201],
        )
        .json(|c| {
            json!({"store": RESTAURANT, "items": [{"product": c.product, "quantity": 1}],
                       "fulfilment": {"type": "pickup"}})
        }),
        row(
            GET,
            "/orders",
            Page,
            [303, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
        row(
            GET,
            "/orders/list",
            Page,
            [303, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
        row(
            POST,
            "/stores/{slug}/checkout",
            Page,
            [303, 303, 303, 303, 303, 303, 303, 303, 303, 303],
        )
        .form(|c| {
            form(
                "",
                &[
                    (&format!("qty_{}", c.product), "1".into()),
                    ("fulfilment", "pickup".into()),
                ],
            )
        }),
        // ---- one order: its customer, its store's staff, admins ----
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            GET,
            "/api/v1/orders/{id}",
            Api,
            [401, 200, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/api/v1/orders/{id}/history",
            Api,
            [401, 200, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/api/v1/orders/{id}/events",
            Api,
            [401, 200, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/orders/{id}",
            Page,
            [303, 200, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/orders/{id}/tracker",
            Page,
            [303, 200, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/orders/{id}/receipt",
            Page,
            [303, 200, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/orders/{id}/review",
            Page,
            [303, 200, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        // Rating a done order: its customer only (once).
        row(
            POST,
            "/orders/{id}/review",
            Page,
            [303, 303, 404, 403, 403, 403, 403, 403, 404, 403],
        )
        .prep(Prep::Delivered)
        .form(|_| form("", &[("rating", "5".into())])),
        row(
            POST,
            "/api/v1/orders/{id}/review",
            Api,
            [401, 201, 404, 403, 403, 403, 403, 403, 404, 403],
        )
        .prep(Prep::Delivered)
        .json(|_| json!({"rating": 5, "comment": "Lovely"})),
        row(
            POST,
            "/api/v1/orders/{id}/transitions",
            Api,
            [401, 403, 404, 200, 200, 200, 403, 403, 404, 200],
        )
        .json(|c| json!({"to": "confirmed", "expected_version": c.version})),
        // Corrections: managers and owners of the store, and admins.
        row(
            POST,
            "/api/v1/orders/{id}/corrections",
            Api,
            [401, 403, 404, 200, 200, 403, 403, 403, 404, 200],
        )
        .json(|c| json!({"to": "ready", "reason": "Entered by mistake", "expected_version": c.version})),
        // Marking paid: the counter (a driver only for money taken at the
        // door; this order is cash), never the kitchen or the customer.
        row(
            POST,
            "/api/v1/orders/{id}/payment",
            Api,
            [401, 403, 404, 200, 200, 200, 403, 403, 404, 200],
        )
        .json(|c| json!({"status": "paid", "expected_version": c.version})),
        // Assigning a driver: the counter (a driver only themselves, where
        // the store lets them; the demo's does not).
        row(
            POST,
            "/api/v1/orders/{id}/assignment",
            Api,
            [401, 403, 404, 200, 200, 200, 403, 403, 404, 200],
        )
        .json(|c| json!({"driver": c.driver, "expected_version": c.version})),
        row(
            DELETE,
            "/api/v1/orders/{id}/assignment",
            Api,
            [401, 403, 404, 200, 200, 200, 403, 403, 404, 200],
        ),
        // The customer's cancel button: only the customer, only a cancel.
        row(
            POST,
            "/orders/{id}/cancel",
            Page,
            [303, 303, 404, 404, 404, 404, 404, 404, 404, 404],
        )
        .form(|c| form("", &[("expected_version", c.version.to_string())])),
        row(
            PATCH,
            "/api/v1/orders/{id}/items/{item_id}",
            Api,
            [401, 403, 404, 200, 200, 200, 200, 403, 404, 200],
        )
        .prep(Prep::Preparing)
        .json(|_| json!({"status": "preparing"})),
        row(
            POST,
            "/api/v1/orders/{id}/bump",
            Api,
            [401, 403, 404, 200, 200, 200, 200, 403, 404, 200],
        )
        .prep(Prep::Preparing)
        .json(|c| json!({"expected_version": c.version})),
        // A hand-off needs every item ready, and in the restaurant the last
        // ready item hands the order off by itself: those who may, learn so.
        row(
            POST,
            "/api/v1/orders/{id}/handoff",
            Api,
            [401, 403, 404, 409, 409, 409, 409, 403, 404, 409],
        )
        .prep(Prep::Preparing)
        .json(|c| json!({"expected_version": c.version})),
        // The restaurant has no way back from `ready`: whoever sees the order
        // learns so (the way back is checked before the role).
        row(
            POST,
            "/api/v1/orders/{id}/recall",
            Api,
            [401, 409, 404, 409, 409, 409, 409, 409, 404, 409],
        )
        .prep(Prep::HandedOff),
        // ---- a store's back office: its staff and admins ----
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            GET,
            "/api/v1/stores/{slug}/events",
            Api,
            [401, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/api/v1/stores/{slug}/kitchen",
            Api,
            [401, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/dashboard/{slug}",
            Page,
            [303, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/dashboard/{slug}/list",
            Page,
            [303, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/dashboard/{slug}/orders/{id}",
            Page,
            [303, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/kitchen/{slug}/orders/{id}/ticket",
            Page,
            [303, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/dashboard/{slug}/orders/{id}/panel",
            Page,
            [303, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            POST,
            "/dashboard/{slug}/orders/{id}/payment",
            Page,
            [303, 404, 404, 303, 303, 303, 403, 403, 404, 303],
        )
        .form(|c| {
            form(
                "",
                &[
                    ("status", "paid".into()),
                    ("expected_version", c.version.to_string()),
                ],
            )
        }),
        row(
            POST,
            "/dashboard/{slug}/orders/{id}/assignment",
            Page,
            [303, 404, 404, 303, 303, 303, 403, 403, 404, 303],
        )
        .form(|c| {
            form(
                "",
                &[
                    ("driver", c.driver.to_string()),
                    ("expected_version", c.version.to_string()),
                ],
            )
        }),
        row(
            POST,
            "/dashboard/{slug}/orders/{id}/transition",
            Page,
            [303, 404, 404, 303, 303, 303, 403, 403, 404, 303],
        )
        .form(|c| {
            form(
                "",
                &[
                    ("to", "confirmed".into()),
                    ("expected_version", c.version.to_string()),
                ],
            )
        }),
        row(
            GET,
            "/kitchen/{slug}",
            Page,
            [303, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/kitchen/{slug}/tickets",
            Page,
            [303, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/kitchen/{slug}/expo",
            Page,
            [303, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            GET,
            "/kitchen/{slug}/expo/tickets",
            Page,
            [303, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            POST,
            "/kitchen/{slug}/orders/{id}/items/{item_id}",
            Page,
            [303, 403, 404, 303, 303, 303, 303, 403, 404, 303],
        )
        .prep(Prep::Preparing)
        .form(|_| form("", &[])),
        row(
            POST,
            "/kitchen/{slug}/orders/{id}/bump",
            Page,
            [303, 403, 404, 303, 303, 303, 303, 403, 404, 303],
        )
        .prep(Prep::Preparing)
        .form(|_| form("", &[])),
        row(
            POST,
            "/kitchen/{slug}/orders/{id}/handoff",
            Page,
            [303, 403, 404, 409, 409, 409, 409, 403, 404, 409],
        )
        .prep(Prep::Preparing)
        .form(|_| form("", &[])),
        row(
            POST,
            "/kitchen/{slug}/orders/{id}/recall",
            Page,
            [303, 409, 404, 409, 409, 409, 409, 409, 404, 409],
        )
        .prep(Prep::HandedOff)
        .form(|_| form("", &[])),
        // ---- opening stores (signup `closed`: platform admins only) ----
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            POST,
            "/api/v1/stores",
            Api,
            [401, 403, 403, 403, 403, 403, 403, 403, 403, 201],
        )
        .json(|c| {
            json!({"slug": c.fresh_slug, "name": "Matrix Store", "currency": "EUR",
                   "workflow": "restaurant", "timezone": "Europe/Berlin"})
        }),
        row(
            POST,
            "/api/v1/stores/{slug}/approve",
            Api,
            [401, 403, 403, 403, 403, 403, 403, 403, 403, 200],
        ),
        row(
            GET,
            "/stores/new",
            Page,
            [303, 403, 403, 403, 403, 403, 403, 403, 403, 200],
        ),
        row(
            POST,
            "/stores/new",
            Page,
            [303, 403, 403, 403, 403, 403, 403, 403, 403, 303],
        )
        .form(|c| {
            form(
                "",
                &[
                    ("name", "Matrix Store".into()),
                    ("slug", c.fresh_slug.clone()),
                    ("currency", "EUR".into()),
                    ("timezone", "Europe/Berlin".into()),
                    ("workflow", "kitchen".into()),
                ],
            )
        }),
        row(
            GET,
            "/admin/stores",
            Page,
            [303, 403, 403, 403, 403, 403, 403, 403, 403, 200],
        ),
        row(
            POST,
            "/admin/stores/{slug}/approve",
            Page,
            [303, 403, 403, 403, 403, 403, 403, 403, 403, 303],
        )
        .form(|_| form("", &[])),
        // ---- store settings: owners; managers the pause and the hours ----
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            PATCH,
            "/api/v1/stores/{slug}",
            Api,
            [401, 403, 403, 200, 200, 403, 403, 403, 403, 200],
        )
        .json(|_| json!({"accepting_orders": true})),
        row(
            POST,
            "/dashboard/{slug}/ordering",
            Page,
            [303, 403, 403, 303, 303, 403, 403, 403, 403, 303],
        )
        .form(|_| form("", &[("accepting", "true".into())])),
        // ---- the store's workflow: its staff read it, owners set it ----
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            GET,
            "/api/v1/stores/{slug}/workflow",
            Api,
            [401, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            PUT,
            "/api/v1/stores/{slug}/workflow",
            Api,
            [401, 403, 403, 200, 403, 403, 403, 403, 403, 200],
        )
        .json(|_| json!({"builtin": "restaurant"})),
        // ---- catalog and staff: owners (and managers, for the catalog) ----
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            POST,
            "/api/v1/stores/{slug}/products",
            Api,
            [401, 403, 403, 201, 201, 403, 403, 403, 403, 201],
        )
        .json(|_| json!({"name": "Matrix Special", "price_minor": 500, "station": "grill"})),
        row(
            PATCH,
            "/api/v1/stores/{slug}/products/{id}",
            Api,
            [401, 403, 403, 200, 200, 403, 403, 403, 403, 200],
        )
        .json(|_| json!({"available": true})),
        row(
            GET,
            "/api/v1/stores/{slug}/staff",
            Api,
            [401, 404, 404, 200, 403, 403, 403, 403, 404, 200],
        ),
        row(
            GET,
            "/api/v1/stores/{slug}/reviews",
            Api,
            [401, 404, 404, 200, 200, 403, 403, 403, 404, 200],
        ),
        row(
            POST,
            "/api/v1/stores/{slug}/staff",
            Api,
            [401, 403, 403, 201, 403, 403, 403, 403, 403, 201],
        )
        .json(|c| json!({"email": c.newcomer, "role": "cashier"})),
        row(
            DELETE,
            "/api/v1/stores/{slug}/staff/{user_id}",
            Api,
            [401, 403, 403, 204, 403, 403, 403, 403, 403, 204],
        ),
        row(
            POST,
            "/api/v1/stores/{slug}/invitations",
            Api,
            [401, 403, 403, 201, 403, 403, 403, 403, 403, 201],
        )
        .json(|_| json!({"email": "invitee@matrix.test", "role": "cashier"})),
        row(
            POST,
            "/manage/{slug}/invitations",
            Page,
            [303, 403, 403, 200, 403, 403, 403, 403, 403, 200],
        )
        .form(|_| {
            form(
                "",
                &[
                    ("email", "invitee@matrix.test".into()),
                    ("role", "cashier".into()),
                ],
            )
        }),
        // ---- an invitation: whoever it is addressed to (each cell's
        // caller, to another store than the demo restaurant) ----
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            GET,
            "/invitations/{token}",
            Page,
            [303, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
        row(
            POST,
            "/invitations/{token}/accept",
            Page,
            [303, 303, 303, 303, 303, 303, 303, 303, 303, 303],
        )
        .form(|_| form("", &[])),
        row(
            POST,
            "/manage/{slug}/email",
            Page,
            // As `PATCH /api/v1/stores/{slug}` (the same use case): the
            // store is public, changing it is forbidden.
            [303, 403, 403, 303, 303, 403, 403, 403, 403, 303],
        )
        .form(|_| {
            form(
                "",
                &[
                    ("states", "confirmed".into()),
                    ("states", "ready".into()),
                    ("subject", "{order_number}: {status}".into()),
                    ("body", String::new()),
                ],
            )
        }),
        row(
            GET,
            "/unsubscribe/{token}",
            Page,
            [200, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
        row(
            POST,
            "/unsubscribe/{token}",
            Page,
            [200, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        )
        .form(|_| form("", &[])),
        row(
            POST,
            "/api/v1/invitations/{token}/accept",
            Api,
            [401, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
        row(
            GET,
            "/manage/{slug}",
            Page,
            [303, 404, 404, 200, 200, 403, 403, 403, 404, 200],
        ),
        row(
            GET,
            "/manage/{slug}/workflow",
            Page,
            [303, 404, 404, 200, 403, 403, 403, 403, 404, 200],
        ),
        // ---- printers: owners and managers set them up; the store's
        // staff see an order's print jobs and reprint (drivers: not) ----
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            GET,
            "/api/v1/stores/{slug}/printers",
            Api,
            [401, 404, 404, 200, 200, 403, 403, 403, 404, 200],
        ),
        row(
            POST,
            "/api/v1/stores/{slug}/printers",
            Api,
            [401, 404, 404, 201, 201, 403, 403, 403, 404, 201],
        )
        .json(|_| json!({"name": "Matrix printer", "address": "127.0.0.1:9"})),
        row(
            DELETE,
            "/api/v1/stores/{slug}/printers/{printer_id}",
            Api,
            [401, 404, 404, 204, 204, 403, 403, 403, 404, 204],
        ),
        row(
            POST,
            "/manage/{slug}/printers",
            Page,
            [303, 404, 404, 303, 303, 403, 403, 403, 404, 303],
        )
        .form(|_| {
            form(
                "",
                &[
                    ("name", "Matrix printer".into()),
                    ("address", "127.0.0.1:9".into()),
                ],
            )
        }),
        row(
            POST,
            "/manage/{slug}/printers/{printer_id}/remove",
            Page,
            [303, 404, 404, 303, 303, 403, 403, 403, 404, 303],
        )
        .form(|_| form("", &[])),
        row(
            GET,
            "/api/v1/orders/{id}/print-jobs",
            Api,
            [401, 403, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            POST,
            "/api/v1/orders/{id}/print-jobs/{job_id}/reprint",
            Api,
            [401, 403, 404, 201, 201, 201, 201, 403, 404, 201],
        ),
        row(
            GET,
            "/dashboard/{slug}/orders/{id}/printing",
            Page,
            [303, 404, 404, 200, 200, 200, 200, 200, 404, 200],
        ),
        row(
            POST,
            "/dashboard/{slug}/orders/{id}/print-jobs/{job_id}/reprint",
            Page,
            [303, 404, 404, 303, 303, 303, 303, 403, 404, 303],
        )
        .form(|_| form("", &[])),
        // ---- reports: owners and managers ----
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            GET,
            "/api/v1/stores/{slug}/reports/{report}",
            Api,
            [401, 404, 404, 200, 200, 403, 403, 403, 404, 200],
        ),
        row(
            GET,
            "/manage/{slug}/reports",
            Page,
            [303, 404, 404, 200, 200, 403, 403, 403, 404, 200],
        ),
        row(
            POST,
            "/manage/{slug}/workflow",
            Page,
            [303, 403, 403, 303, 403, 403, 403, 403, 403, 303],
        )
        .form(|_| form("", &[("builtin", "restaurant".into())])),
        row(
            POST,
            "/manage/{slug}/products",
            Page,
            [303, 403, 403, 303, 303, 403, 403, 403, 403, 303],
        )
        .form(|_| {
            form(
                "",
                &[
                    ("name", "Matrix Special".into()),
                    ("price", "5.00".into()),
                    ("station", "grill".into()),
                ],
            )
        }),
        row(
            POST,
            "/manage/{slug}/products/{id}",
            Page,
            [303, 403, 403, 303, 303, 403, 403, 403, 403, 303],
        )
        .form(|_| {
            form(
                "",
                &[
                    ("name", "Classic Burger".into()),
                    ("price", "9.50".into()),
                    ("station", "grill".into()),
                    ("available", "on".into()),
                ],
            )
        }),
        row(
            POST,
            "/manage/{slug}/staff",
            Page,
            [303, 403, 403, 303, 403, 403, 403, 403, 403, 303],
        )
        .form(|c| {
            form(
                "",
                &[("email", c.newcomer.clone()), ("role", "cashier".into())],
            )
        }),
        // ---- Web Push: any signed-in customer for their account ----
        row(GET, "/api/v1/push/public-key", Api, all(200)),
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            POST,
            "/api/v1/push/subscriptions",
            Api,
            [401, 201, 201, 201, 201, 201, 201, 201, 201, 201],
        )
        .json(|_| json!({"endpoint": MATRIX_PUSH, "keys": {"p256dh": VAPID.public_key(), "auth": "AAAAAAAAAAAAAAAAAAAAAA"}})),
        row(
            DELETE,
            "/api/v1/push/subscriptions",
            Api,
            [401, 204, 204, 204, 204, 204, 204, 204, 204, 204],
        )
        .json(|_| json!({"endpoint": MATRIX_PUSH})),
        // ---- webhooks: owners (and admins) ----
        //                                              anon cust other owner mgr cash kitch drv  else admin
        row(
            GET,
            "/api/v1/stores/{slug}/webhooks",
            Api,
            [401, 404, 404, 200, 403, 403, 403, 403, 404, 200],
        ),
        row(
            POST,
            "/api/v1/stores/{slug}/webhooks",
            Api,
            [401, 404, 404, 201, 403, 403, 403, 403, 404, 201],
        )
        .json(|_| json!({"url": MATRIX_HOOK, "events": ["*"], "enabled": false})),
        row(
            DELETE,
            "/api/v1/stores/{slug}/webhooks/{id}",
            Api,
            [401, 404, 404, 204, 403, 403, 403, 403, 404, 204],
        ),
        row(
            POST,
            "/api/v1/stores/{slug}/webhooks/{id}/rotate-secret",
            Api,
            [401, 404, 404, 200, 403, 403, 403, 403, 404, 200],
        ),
        row(
            GET,
            "/api/v1/stores/{slug}/webhooks/{id}/deliveries",
            Api,
            [401, 404, 404, 200, 403, 403, 403, 403, 404, 200],
        ),
        row(
            POST,
            "/api/v1/stores/{slug}/webhooks/{id}/deliveries/{delivery_id}/retry",
            Api,
            [401, 404, 404, 202, 403, 403, 403, 403, 404, 202],
        ),
        row(
            POST,
            "/manage/{slug}/staff/{user_id}/remove",
            Page,
            [303, 403, 403, 303, 403, 403, 403, 403, 403, 303],
        )
        .form(|_| form("", &[])),
    ]
}

#[test]
fn every_route_has_a_row() {
    let served: BTreeSet<String> = ordertrack_web::routes::table()
        .iter()
        .map(|route| format!("{} {}", route.method, route.path))
        .collect();
    let rows: Vec<String> = rows()
        .iter()
        .map(|row| format!("{} {}", row.method, row.route))
        .collect();
    let covered: BTreeSet<String> = rows.iter().cloned().collect();
    assert_eq!(covered.len(), rows.len(), "a route has two rows");
    let missing: Vec<&String> = served.difference(&covered).collect();
    let stale: Vec<&String> = covered.difference(&served).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "the authorization matrix must have exactly one row per route.\n\
         routes without a row (add one to authz_matrix::rows): {missing:#?}\n\
         rows without a route: {stale:#?}"
    );
}

/// What every cell shares: the callers' sessions and their CSRF tokens.
struct Callers {
    tokens: Vec<String>,
    csrf: Vec<String>,
    /// The signed-out visitor's CSRF cookie (its field is `csrf[0]`).
    anonymous_cookie: String,
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

async fn sign_in(app: &TestApp, who: Who) -> String {
    match who.email() {
        Some(email) => app.login(email).await,
        None => String::new(),
    }
}

impl Callers {
    async fn sign_in(app: &TestApp, client: &reqwest::Client) -> Callers {
        let login = client
            .get(app.page_url("/login"))
            .send()
            .await
            .expect("the login page");
        let anonymous_cookie = login
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("ordertrack_csrf="))
            .and_then(|v| v.split(';').next())
            .expect("a CSRF cookie")
            .to_owned();
        let anonymous_csrf = csrf_field(&login.text().await.expect("the login page"));
        let mut tokens = Vec::new();
        let mut csrf = Vec::new();
        for who in WHO {
            let token = sign_in(app, who).await;
            csrf.push(if token.is_empty() {
                anonymous_csrf.clone()
            } else {
                app.session_csrf(&token).await
            });
            tokens.push(token);
        }
        Callers {
            tokens,
            csrf,
            anonymous_cookie,
        }
    }
}

/// What the cells' data is made with.
struct Setup {
    alice: String,
    owner: String,
    product: i64,
    restaurant: i64,
    /// The demo restaurant's driver.
    driver: i64,
    /// The owner of [`INVITES`].
    inviter: ordertrack_app::Caller,
    /// The demo restaurant's owner, for making webhooks.
    owner_caller: ordertrack_app::Caller,
    /// A webhook of the demo restaurant that has a delivery.
    webhook: i64,
    delivery: i64,
}

impl Setup {
    async fn new(app: &TestApp) -> Setup {
        let restaurant = app.store_record(RESTAURANT).await;
        let owner = app.login("owner@demo.test").await;
        let alice = app.login("alice@demo.test").await;
        let owner_caller = app.caller(&owner).await;
        let (webhook, delivery) = matrix_delivery(app, &owner_caller, &alice).await;
        Setup {
            alice,
            owner,
            owner_caller,
            webhook,
            delivery,
            product: app.product_ids(RESTAURANT).await[0],
            restaurant: restaurant.id.get(),
            driver: app.user("driver@demo.test").await.id,
            inviter: {
                let store = app.create_store(INVITES, "restaurant", "MI").await;
                let owner = app
                    .staff("owner@matrix-invites.test", &store, StaffRole::Owner)
                    .await;
                app.caller(&owner.token).await
            },
        }
    }

    /// Fresh data for the `n`th cell, of `row`.
    async fn cell(&self, app: &TestApp, row: &Row, who: Who, n: usize) -> Cell {
        let mut order = app
            .place_delivery(
                &self.alice,
                RESTAURANT,
                &[(self.product, 1)],
                "1 Matrix Road",
            )
            .await;
        if row.prep != Prep::Placed {
            order = app.advance(&self.owner, &order, "confirmed").await;
            order = app.advance(&self.owner, &order, "preparing").await;
        }
        if matches!(row.prep, Prep::HandedOff | Prep::Delivered) {
            order = app
                .post(
                    &format!("/orders/{}/bump", id(&order)),
                    &self.owner,
                    &json!({"expected_version": version(&order)}),
                )
                .await
                .expect(200);
        }
        if row.prep == Prep::Delivered {
            order = app.advance(&self.owner, &order, "out_for_delivery").await;
            order = app.advance(&self.owner, &order, "delivered").await;
        }
        // Accounts cost a password hash each: only for the rows that use them.
        let mut member = 0;
        if row.route.contains("{user_id}") {
            let user = app
                .app
                .create_user(&format!("member{n}@matrix.test"), PASSWORD, "Member", false)
                .await
                .expect("a staff account");
            app.app
                .admin_set_membership(user.id, StoreId::new(self.restaurant), StaffRole::Cashier)
                .await
                .expect("a staff role");
            member = user.id.get();
        }
        let newcomer = format!("newcomer{n}@matrix.test");
        if row.route.ends_with("/staff") && row.method == POST {
            app.app
                .create_user(&newcomer, PASSWORD, "Newcomer", false)
                .await
                .expect("an account");
        }
        let mut invitation = String::new();
        if row.route.contains("/invitations/{token}") {
            invitation = app
                .app
                .create_invitation(
                    &self.inviter,
                    INVITES,
                    who.email().unwrap_or("nobody@matrix.test"),
                    StaffRole::Cashier,
                )
                .await
                .expect("an invitation")
                .token;
        }
        let mut unsubscribe = String::new();
        if row.route.starts_with("/unsubscribe/") {
            let alice = app
                .store
                .user_credentials("alice@demo.test")
                .await
                .expect("read a user")
                .expect("the demo customer");
            unsubscribe = app.app.unsubscribe_token(alice.user.id);
        }
        let (mut printer, mut job) = (0, 0);
        if row.route.contains("{printer_id}") || row.route.contains("{job_id}") {
            let added = app
                .store
                .add_printer(NewPrinter {
                    setup: ordertrack_store::PrinterSetup {
                        store_id: StoreId::new(self.restaurant),
                        name: format!("Matrix printer {n}"),
                        host: "127.0.0.1".into(),
                        port: 9,
                        stations: Vec::new(),
                        receipts: false,
                        enabled: true,
                    },
                    at: ordertrack_app::now(),
                })
                .await
                .expect("a printer");
            printer = added.id;
            if row.route.contains("{job_id}") {
                job = app
                    .store
                    .queue_print_job(NewPrintJob {
                        order_id: OrderId::new(id(&order)),
                        store_id: StoreId::new(self.restaurant),
                        printer_id: added.id,
                        kind: PrintKind::Receipt,
                        station: None,
                        at: ordertrack_app::now(),
                    })
                    .await
                    .expect("a print job")
                    .id;
            }
        }
        let webhook = if row.method == DELETE && row.route.contains("/webhooks/") {
            matrix_webhook(app, &self.owner_caller, false).await
        } else {
            self.webhook
        };
        Cell {
            printer,
            job,
            webhook,
            delivery: self.delivery,
            order: id(&order),
            item: item_ids(&order)[0],
            version: version(&order),
            tracking: order["tracking_token"]
                .as_str()
                .expect("a tracking token")
                .to_owned(),
            product: self.product,
            member,
            newcomer,
            driver: self.driver,
            fresh_email: format!("fresh{n}@matrix.test"),
            fresh_slug: format!("matrix-store-{n}"),
            invitation,
            unsubscribe,
        }
    }
}

/// A webhook of the demo restaurant to [`MATRIX_HOOK`]; its id.
async fn matrix_webhook(app: &TestApp, owner: &ordertrack_app::Caller, enabled: bool) -> i64 {
    app.app
        .create_webhook(
            owner,
            RESTAURANT,
            ordertrack_app::webhooks::WebhookInput {
                url: MATRIX_HOOK.into(),
                events: vec!["order.created".into()],
                enabled: Some(enabled),
            },
        )
        .await
        .expect("a webhook")
        .id
        .get()
}

/// A webhook of the demo restaurant with one delivery (of an order placed
/// for it); their ids.
async fn matrix_delivery(app: &TestApp, owner: &ordertrack_app::Caller, alice: &str) -> (i64, i64) {
    let webhook = matrix_webhook(app, owner, true).await;
    app.place_simple(alice, RESTAURANT).await;
    for _ in 0..500 {
        let log = app
            .app
            .webhook_deliveries(
                owner,
                RESTAURANT,
                ordertrack_domain::WebhookId::new(webhook),
                None,
            )
            .await
            .expect("the delivery log");
        if let Some(delivery) = log.first() {
            return (webhook, delivery.id.get());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the matrix's webhook never got a delivery");
}

/// The row's path for this cell.
fn path(route: &str, cell: &Cell) -> String {
    route
        .replace("{printer_id}", &cell.printer.to_string())
        .replace("{job_id}", &cell.job.to_string())
        .replace("/webhooks/{id}", &format!("/webhooks/{}", cell.webhook))
        .replace("{delivery_id}", &cell.delivery.to_string())
        .replace(
            "/invitations/{token}",
            &format!("/invitations/{}", cell.invitation),
        )
        .replace(
            "/unsubscribe/{token}",
            &format!("/unsubscribe/{}", cell.unsubscribe),
        )
        .replace("{slug}", RESTAURANT)
        .replace("{id}", &cell.order.to_string())
        .replace("{item_id}", &cell.item.to_string())
        .replace("{token}", &cell.tracking)
        .replace("{user_id}", &cell.member.to_string())
        .replace("{report}", "sales")
        .replace("{file}", "icon.svg")
        // `/stores/{slug}/products/{id}` and `/manage/{slug}/products/{id}`: a product.
        .replace(
            &format!("/products/{}", cell.order),
            &format!("/products/{}", cell.product),
        )
}

/// Sends one cell's request; its status.
async fn request(
    app: &TestApp, client: &reqwest::Client, row: &Row, cell: &Cell, token: &str, csrf: &str,
    anonymous_cookie: &str,
) -> u16 {
    let url = format!("{}{}", app.base, path(row.route, cell));
    if let Via::WebSocket = row.send {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url
            .replacen("http://", "ws://", 1)
            .into_client_request()
            .expect("a WebSocket request");
        if !token.is_empty() {
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("a header"),
            );
        }
        return match tokio_tungstenite::connect_async(request).await {
            Ok((_, response)) => response.status().as_u16(),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            Err(error) => panic!("{} {}: {error}", row.method, row.route),
        };
    }
    let mut builder = client.request(row.method.clone(), &url);
    match row.send {
        Via::Api if !token.is_empty() => {
            builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        Via::Page if token.is_empty() => {
            builder = builder.header(COOKIE, format!("ordertrack_csrf={anonymous_cookie}"));
        }
        Via::Page => {
            builder = builder.header(COOKIE, format!("ordertrack_session={token}"));
        }
        _ => {}
    }
    match row.body {
        Body::None => {}
        Body::Json(body) => builder = builder.json(&body(cell)),
        Body::Form(body) => {
            let mut fields = body(cell);
            if let Some(field) = fields.iter_mut().find(|(name, _)| name == "csrf") {
                field.1 = csrf.to_owned();
            }
            builder = builder.form(&fields);
        }
    }
    let response = builder.send().await.expect("send the request");
    let status = response.status();
    // Streams never end: the status is all there is to read.
    if status.is_client_error() && matches!(row.send, Via::Api) {
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(
            content_type.starts_with(PROBLEM_JSON),
            "{} {}: a {status} is problem+json, not `{content_type}`",
            row.method,
            row.route
        );
    }
    status.as_u16()
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_rules_say() {
    // Every cell signs its callers up afresh, all from one address: far
    // more accounts a minute than one address may open by default.
    let app = spawn_app_guarded(Guards {
        sign_in: SignInLimits {
            registrations_per_ip: 100_000,
            ..SignInLimits::default()
        },
        // The printer rows add printers on the loopback interface.
        printing: PrintSettings {
            hosts: "127.0.0.1".parse().expect("a host list"),
            ..PrintSettings::default()
        },
        ..Guards::default()
    })
    .await;
    let client = no_redirects();
    let callers = Callers::sign_in(&app, &client).await;
    let setup = Setup::new(&app).await;
    let mut wrong = Vec::new();
    let mut n = 0;
    for row in rows() {
        for (column, who) in WHO.into_iter().enumerate() {
            n += 1;
            let cell = setup.cell(&app, &row, who, n).await;
            let (token, csrf) = if row.own_session && who != Who::Anonymous {
                let token = sign_in(&app, who).await;
                let csrf = match row.send {
                    Via::Page => app.session_csrf(&token).await,
                    _ => String::new(),
                };
                (token, csrf)
            } else {
                (callers.tokens[column].clone(), callers.csrf[column].clone())
            };
            let status = request(
                &app,
                &client,
                &row,
                &cell,
                &token,
                &csrf,
                &callers.anonymous_cookie,
            )
            .await;
            if status != row.expect[column] {
                wrong.push(format!(
                    "{} {} as {who:?}: expected {}, got {status}",
                    row.method, row.route, row.expect[column]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {n} cells differ from the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
