//! Every request body the order desk reads — the API's JSON and the pages'
//! forms — through the real router: the first input byte picks the route,
//! the second the caller (anonymous, customer, each staff role, admin), the
//! rest is the body. No answer may be a 5xx or a panic.

#![no_main]

use axum::body::Body;
use axum::http::{Method, header};
use libfuzzer_sys::fuzz_target;
use ordertrack_fuzz::Desk;

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Every route with a body. (Sign-out is left out: it would end the
/// sessions the other requests use.)
const ROUTES: [(Method, &str, &str); 22] = [
    (Method::POST, "/api/v1/auth/register", JSON),
    (Method::POST, "/api/v1/auth/login", JSON),
    (Method::POST, "/api/v1/orders", JSON),
    (Method::POST, "/api/v1/orders/{order}/transitions", JSON),
    (Method::PATCH, "/api/v1/orders/{order}/items/{item}", JSON),
    (Method::POST, "/api/v1/orders/{order}/bump", JSON),
    (Method::POST, "/api/v1/orders/{order}/handoff", JSON),
    (Method::POST, "/api/v1/stores/{slug}/products", JSON),
    (
        Method::PATCH,
        "/api/v1/stores/{slug}/products/{product}",
        JSON,
    ),
    (Method::POST, "/api/v1/stores/{slug}/staff", JSON),
    (Method::POST, "/login", FORM),
    (Method::POST, "/register", FORM),
    (Method::POST, "/stores/{slug}/checkout", FORM),
    (Method::POST, "/orders/{order}/cancel", FORM),
    (
        Method::POST,
        "/dashboard/{slug}/orders/{order}/transition",
        FORM,
    ),
    (Method::POST, "/manage/{slug}/products", FORM),
    (Method::POST, "/manage/{slug}/products/{product}", FORM),
    (Method::POST, "/manage/{slug}/staff", FORM),
    (
        Method::POST,
        "/kitchen/{slug}/orders/{order}/items/{item}",
        FORM,
    ),
    (Method::POST, "/kitchen/{slug}/orders/{order}/bump", FORM),
    (Method::POST, "/kitchen/{slug}/orders/{order}/handoff", FORM),
    (Method::POST, "/kitchen/{slug}/orders/{order}/recall", FORM),
];

fuzz_target!(|data: &[u8]| {
    let [route, caller, body @ ..] = data else {
        return;
    };
    let desk = Desk::get();
    let (method, template, content_type) = &ROUTES[usize::from(*route) % ROUTES.len()];
    let path = desk.path(template);
    let request = desk
        .request(method.clone(), &path, *caller)
        .header(header::CONTENT_TYPE, *content_type)
        .body(Body::from(body.to_vec()))
        .expect("request");
    let response = desk.send(request);
    desk.check(&path, &response);
});
