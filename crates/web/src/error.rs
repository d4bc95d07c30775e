//! The one place errors become HTTP: RFC 9457 problem+json with a stable `code`.

use std::any::Any;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordertrack_app::{AppError, ErrorCode};
use ordertrack_domain::{ItemId, WorkflowProblem};
use serde::Serialize;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    detail: String,
    current_version: Option<i64>,
    pending_items: Vec<ItemId>,
    /// Every problem of a refused workflow, each with where it is.
    errors: Vec<WorkflowProblem>,
    /// Sent as `Retry-After` (whole seconds).
    retry_after: Option<std::time::Duration>,
    /// The order as it is now, on a version conflict of an order change.
    order: Option<Box<serde_json::Value>>,
}

/// An RFC 9457 problem: every refusal of the API, as
/// `application/problem+json`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Problem<'a> {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    kind: String,
    /// The status's reason phrase.
    title: &'a str,
    /// The HTTP status.
    status: u16,
    /// What went wrong, for people.
    detail: &'a str,
    /// What went wrong, for programs (stable).
    #[schema(schema_with = error_code_schema)]
    code: ErrorCode,
    /// The order's version now (`version_conflict`).
    #[serde(skip_serializing_if = "Option::is_none")]
    current_version: Option<i64>,
    /// The items not ready yet (`items_not_ready`).
    #[serde(skip_serializing_if = "<[ItemId]>::is_empty")]
    #[schema(value_type = Vec<ItemId>)]
    pending_items: &'a [ItemId],
    /// Every problem of a refused workflow.
    #[serde(skip_serializing_if = "<[WorkflowProblem]>::is_empty")]
    #[schema(value_type = Vec<WorkflowProblem>)]
    errors: &'a [WorkflowProblem],
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<&'a serde_json::Value>,
}

/// `code`: one of the stable codes, all of them listed.
fn error_code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
        .build()
}

impl ApiError {
    /// A problem with this status, code and human-readable detail.
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            current_version: None,
            pending_items: Vec::new(),
            errors: Vec::new(),
            retry_after: None,
            order: None,
        }
    }

    /// The same problem carrying the order as it is now (`order`).
    pub fn with_order(self, order: serde_json::Value) -> Self {
        ApiError {
            order: Some(Box::new(order)),
            ..self
        }
    }

    /// 429: a limit is used up; `Retry-After` says when to come back.
    pub fn too_many(
        code: ErrorCode, detail: impl Into<String>, retry_after: std::time::Duration,
    ) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, detail)
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let detail = error.to_string();
        match error {
            AppError::Unauthenticated => {
                ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, detail)
            }
            AppError::BadCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::BadCredentials, detail)
            }
            AppError::TooManyAttempts { retry_after } => {
                ApiError::too_many(ErrorCode::TooManyAttempts, detail, retry_after)
            }
            AppError::TooManyRegistrations { retry_after } => {
                ApiError::too_many(ErrorCode::TooManyRegistrations, detail, retry_after)
            }
            AppError::Busy { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy, detail)
            },
            AppError::TooSlow => ApiError {
                retry_after: Some(std::time::Duration::from_secs(5)),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy, detail)
            },
            AppError::Forbidden(_) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, detail)
            }
            AppError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, detail)
            }
            AppError::Invalid { code, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
            }
            AppError::InvalidWorkflow(errors) => ApiError {
                errors,
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidWorkflow,
                    detail,
                )
            },
            AppError::Conflict {
                code,
                current_version,
                pending_items,
                ..
            } => ApiError {
                current_version,
                pending_items,
                ..ApiError::new(StatusCode::CONFLICT, code, detail)
            },
            AppError::Gone { code, .. } => ApiError::new(StatusCode::GONE, code, detail),
            AppError::IdempotencyMismatch => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::IdempotencyKeyReused,
                detail,
            ),
            AppError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "something went wrong on our side; it has been logged",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (code, detail) = match &rejection {
            JsonRejection::JsonDataError(e) => (ErrorCode::InvalidBody, e.body_text()),
            JsonRejection::JsonSyntaxError(e) => (ErrorCode::MalformedJson, e.body_text()),
            JsonRejection::MissingJsonContentType(_) => (
                ErrorCode::UnsupportedMediaType,
                "send the body as application/json".to_owned(),
            ),
            JsonRejection::BytesRejection(_) => (
                ErrorCode::BodyTooLarge,
                format!("the body must be at most {} bytes", crate::MAX_BODY_BYTES),
            ),
            other => (ErrorCode::InvalidBody, other.body_text()),
        };
        ApiError::new(rejection.status(), code, detail)
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidPath,
            rejection.body_text(),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidQuery,
            rejection.body_text(),
        )
    }
}

impl From<WebSocketUpgradeRejection> for ApiError {
    fn from(rejection: WebSocketUpgradeRejection) -> Self {
        // 400, 405 or 426: a plain GET (no handshake) is told to upgrade.
        ApiError::new(
            rejection.status(),
            ErrorCode::InvalidWebsocketUpgrade,
            rejection.body_text(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let problem = Problem {
            kind: format!("https://ordertrack.invalid/problems/{}", self.code),
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            current_version: self.current_version,
            pending_items: &self.pending_items,
            errors: &self.errors,
            order: self.order.as_deref(),
        };
        let mut response = (self.status, Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(retry_after) = self.retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs()),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such resource",
    )
}

/// Known paths, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this resource does not support that method",
    )
}

/// A handler panicked: answer 500 without details (the panic is logged).
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = message, "handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "something went wrong on our side; it has been logged",
    )
    .into_response()
}
