//! `/workflows` and `/stores/{slug}/workflow`: the built-in workflows, and
//! the versioned workflow each store runs.

use axum::Json;
use axum::extract::State;
use ordertrack_app::{StoreWorkflowView, WorkflowUpload};
use ordertrack_domain::Workflow;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthCaller};
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/workflows", builtins)
        .get("/stores/{slug}/workflow", show)
        .put("/stores/{slug}/workflow", replace)
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(builtins, show, replace))]
pub(crate) struct Doc;

/// A version of a store's workflow: `{version, name, label, states, …}`
/// (the workflow's own fields beside its version).
#[derive(Serialize, ToSchema)]
pub struct StoreWorkflowBody {
    version: i64,
    #[serde(flatten)]
    workflow: Workflow,
}

impl From<StoreWorkflowView> for StoreWorkflowBody {
    fn from(view: StoreWorkflowView) -> Self {
        StoreWorkflowBody {
            version: view.version,
            workflow: Workflow::clone(&view.workflow),
        }
    }
}

/// The workflow the store runs now (its staff).
#[utoipa::path(
    get,
    path = "/stores/{slug}/workflow",
    tag = "workflows",
    params(("slug" = String, Path, description = "The store's slug")),
    responses((status = 200, description = "The workflow the store runs now", body = StoreWorkflowBody))
)]
async fn show(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
) -> Result<Json<StoreWorkflowBody>, ApiError> {
    let view = state.app.store_workflow(&caller, &slug).await?;
    Ok(Json(view.into()))
}

/// What a body asks for: `{"builtin": name}` alone, or a whole workflow.
pub fn upload_of(body: &Value) -> WorkflowUpload {
    if let Some(fields) = body.as_object()
        && fields.len() == 1
        && let Some(Value::String(name)) = fields.get("builtin")
    {
        return WorkflowUpload::Builtin(name.clone());
    }
    WorkflowUpload::Definition(body.to_string())
}

/// What a workflow upload is: `{"builtin": name}` alone, or a whole
/// workflow (as `upload_of` reads the body).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only described: the body is read as JSON by `upload_of`.
enum WorkflowUploadBody {
    Builtin(BuiltinChoice),
    Definition(Workflow),
}

/// A built-in workflow by name.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only described, as part of `WorkflowUploadBody`.
struct BuiltinChoice {
    builtin: String,
}

/// Sets the workflow new orders run (owner): a new version.
#[utoipa::path(
    put,
    path = "/stores/{slug}/workflow",
    tag = "workflows",
    params(("slug" = String, Path, description = "The store's slug")),
    request_body = WorkflowUploadBody,
    responses((status = 200, description = "The new version", body = StoreWorkflowBody))
)]
async fn replace(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<StoreWorkflowBody>, ApiError> {
    let view = state
        .app
        .set_store_workflow(&caller, &slug, upload_of(&body))
        .await?;
    Ok(Json(view.into()))
}

/// A built-in workflow with its definition (the schema an upload uses).
#[derive(Serialize, ToSchema)]
struct BuiltinBody {
    name: String,
    label: String,
    workflow: Workflow,
}

/// The built-in workflows, each with its JSON definition (public).
#[utoipa::path(
    get,
    path = "/workflows",
    tag = "workflows",
    responses((status = 200, description = "The built-in workflows", body = Vec<BuiltinBody>)),
    security(())
)]
async fn builtins(State(state): State<AppState>) -> Json<Vec<BuiltinBody>> {
    Json(
        state
            .app
            .workflows()
            .builtins()
            .iter()
            .map(|workflow| BuiltinBody {
                name: workflow.name().to_owned(),
                label: workflow.label().to_owned(),
                workflow: Workflow::clone(workflow),
            })
            .collect(),
    )
}
