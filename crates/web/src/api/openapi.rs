//! The OpenAPI 3.1 document of `/api/v1`, served at `/api/openapi.json`,
//! and its reading page at `/api/docs` (Swagger UI, vendored under
//! `assets/vendor/swagger-ui`: nothing is fetched at build or run time).
//!
//! Each API module lists its own operations (a `Doc` beside its `routes`,
//! each handler annotated with `#[utoipa::path]`); here they are put
//! under `/api/v1` together with what every operation shares: the two
//! ways to authenticate and the problem+json refusals. The integration test
//! `openapi::every_route_is_documented` compares the document with the
//! route table, both ways.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, Ref, RefOr, ResponseBuilder, SecurityRequirement,
};
use utoipa::{PartialSchema, ToSchema};

use crate::error::Problem;
use crate::extract::SESSION_COOKIE;
use crate::routes::Routes;

/// Where the JSON API lives; the document's paths start with it.
pub const API_PREFIX: &str = "/api/v1";

/// The security scheme of `Authorization: Bearer <token>`.
const BEARER: &str = "bearer";
/// The security scheme of the session cookie.
const COOKIE: &str = "session_cookie";

/// The document and the docs page, with the page's vendored assets.
pub fn routes() -> Routes {
    Routes::new()
        .get("/api/openapi.json", openapi_json)
        .get("/api/docs", docs_page)
        .get("/api/docs/swagger-ui.css", swagger_css)
        .get("/api/docs/swagger-ui-bundle.js", swagger_js)
        .get("/api/docs/docs.js", docs_js)
}

/// The whole document: every operation of `/api/v1`.
pub fn document() -> OpenApi {
    let mut v1 = super::doc();
    v1.merge(crate::streams::doc());
    let mut doc = OpenApi::builder()
        .info(
            InfoBuilder::new()
                .title("ordertrack API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The order desk's JSON API. Refusals are RFC 9457 \
                     `application/problem+json` with a stable `code`. Sign in with \
                     `POST /api/v1/auth/login` and send its `token` as \
                     `Authorization: Bearer <token>` (pages use the session cookie).",
                ))
                .build(),
        )
        .build()
        .nest(API_PREFIX, v1);
    add_shared(&mut doc);
    doc
}

/// The document as served, serialised once.
static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    // A document of plain maps and strings always serialises.
    document().to_json().unwrap_or_default()
});

/// The security schemes, the `Problem` schema, and on every operation its
/// security (unless it says otherwise: public ones say `security(())`) and
/// the refusals it may answer.
fn add_shared(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The `token` of `POST /api/v1/auth/login` or `/auth/register`.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The session cookie pages use (`__Host-ordertrack_session` over HTTPS). \
             A write signed in by the cookie alone must come from this site.",
        ))),
    );
    let mut schemas = vec![(Problem::name().into_owned(), Problem::schema())];
    Problem::schemas(&mut schemas);
    components.schemas.extend(schemas);

    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_refusals(operation);
        }
    }
}

/// Signed in by either scheme.
fn signed_in() -> Vec<SecurityRequirement> {
    vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        SecurityRequirement::new(COOKIE, Vec::<String>::new()),
    ]
}

fn add_refusals(operation: &mut Operation) {
    let public = operation.security.is_some();
    if !public {
        operation.security = Some(signed_in());
    }
    let has_body = operation.request_body.is_some();
    let refusals: &[(u16, &str)] = &[
        (
            400,
            "A path, query or header value that does not parse, or a body that is not JSON",
        ),
        (401, "Not signed in, or the session has ended"),
        (403, "Signed in, but not allowed to"),
        (404, "No such thing, or the caller may not know it exists"),
        (
            409,
            "A conflict: taken, changed meanwhile (`current_version`), done already",
        ),
        (413, "The body is larger than 64 KiB"),
        (415, "The body is not sent as `application/json`"),
        (
            422,
            "Well-formed but refused: out of bounds, not allowed by the workflow",
        ),
        (
            429,
            "Too many requests or streams; `Retry-After` says when to come back",
        ),
        (500, "Something failed on the server"),
        (
            503,
            "Busy or shutting down; `Retry-After` says when to come back",
        ),
    ];
    for (status, description) in refusals {
        let applies = match status {
            401 | 403 => !public || operation_is_write(operation),
            413 | 415 => has_body,
            _ => true,
        };
        if applies {
            operation
                .responses
                .responses
                .entry(status.to_string())
                .or_insert_with(|| problem(description));
        }
    }
}

/// Whether the operation takes a body or changes something: such public
/// operations (sign-in, register) can still refuse who sends them.
fn operation_is_write(operation: &Operation) -> bool {
    operation.request_body.is_some()
}

/// A refusal: a `Problem` as `application/problem+json`.
fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(Problem::name())))
                    .build(),
            )
            .build(),
    )
}

async fn openapi_json() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        DOCUMENT_JSON.as_str(),
    )
        .into_response()
}

/// Swagger UI adds style attributes and `<style>` elements as it renders,
/// so its page allows inline styles; scripts still come from here only.
const DOCS_CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
                        img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; \
                        form-action 'self'";

async fn docs_page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOCS_CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        include_str!("../../assets/api-docs.html"),
    )
        .into_response()
}

async fn swagger_css() -> Response {
    vendored(
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/swagger-ui/swagger-ui.css"),
    )
}

async fn swagger_js() -> Response {
    vendored(
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/swagger-ui/swagger-ui-bundle.js"),
    )
}

async fn docs_js() -> Response {
    vendored(
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/api-docs.js"),
    )
}

fn vendored(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
