//! The owner's workflow settings page: the store's workflow as JSON in a
//! text area, every problem the validator finds listed beside it (where and
//! what), and a one-click switch to a built-in.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use ordertrack_app::{AppError, StoreWorkflowView, WorkflowUpload};
use ordertrack_domain::{Workflow, WorkflowProblem};
use serde::Deserialize;

use super::layout::Flash;
use super::{FlashQuery, PageContext, PageError, SignedIn, layout, see_other};
use crate::AppState;
use crate::extract::ApiPath;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/manage/{slug}/workflow", show)
        .post("/manage/{slug}/workflow", save)
}

/// The workflow as the text area shows it.
fn pretty(workflow: &Workflow) -> String {
    serde_json::to_string_pretty(workflow).unwrap_or_default()
}

/// The page: the current version, the editor (with `text` and the
/// `problems` of a refused save, if any) and the built-ins.
fn page(
    ctx: &PageContext, slug: &str, current: &StoreWorkflowView, text: &str,
    problems: &[WorkflowProblem],
) -> Markup {
    html! {
        h1 { "Workflow" }
        p.muted {
            a href={ "/manage/" (slug) } { "← Manage" }
            " · now running " strong { (current.workflow.label()) }
            @if current.version == 0 { " (built-in)" } @else { " (version " (current.version) ")" }
        }
        p { "Saving makes a new version: new orders follow it, orders placed before finish on the version they started with." }
        div.workflow-editor {
            form method="post" action={ "/manage/" (slug) "/workflow" } {
                input type="hidden" name="csrf" value=(ctx.csrf);
                label for="definition" { "Workflow (JSON: states, labels, icons, messages, expected minutes, who may move what)" }
                textarea id="definition" name="definition" rows="30" cols="80" spellcheck="false" { (text) }
                button type="submit" { "Save as new version" }
            }
            @if !problems.is_empty() {
                section.card.problems aria-live="polite" {
                    h2 { (problems.len()) " problem" @if problems.len() != 1 { "s" } }
                    ul {
                        @for problem in problems {
                            li {
                                @if !problem.path.is_empty() { code { (problem.path) } ": " }
                                (problem.error.to_string())
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Start from a built-in" }
            form.row method="post" action={ "/manage/" (slug) "/workflow" } {
                input type="hidden" name="csrf" value=(ctx.csrf);
                label { "Built-in"
                    select name="builtin" {
                        @for name in Workflow::BUILTIN_NAMES { option value=(name) { (name) } }
                    }
                }
                button type="submit" { "Use it" }
            }
        }
    }
}

async fn show(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(slug): ApiPath<String>, Query(query): Query<FlashQuery>,
) -> Result<Response, PageError> {
    let current = state.app.owned_store_workflow(caller, &slug).await?;
    let body = page(&ctx, &slug, &current, &pretty(&current.workflow), &[]);
    Ok(ctx.page(layout(
        "Workflow",
        Some(caller),
        &ctx.csrf,
        Flash::from_code(query.flash.as_deref()),
        body,
    )))
}

#[derive(Deserialize)]
struct WorkflowForm {
    csrf: String,
    definition: Option<String>,
    builtin: Option<String>,
}

async fn save(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(slug): ApiPath<String>, Form(form): Form<WorkflowForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let text = form.definition.unwrap_or_default();
    let upload = match form.builtin {
        Some(name) => WorkflowUpload::Builtin(name),
        None => WorkflowUpload::Definition(text.clone()),
    };
    match state.app.set_store_workflow(caller, &slug, upload).await {
        Ok(_) => Ok(see_other(&format!("/manage/{slug}/workflow?flash=saved"))),
        Err(AppError::InvalidWorkflow(problems)) => {
            let current = state.app.owned_store_workflow(caller, &slug).await?;
            let body = page(&ctx, &slug, &current, &text, &problems);
            let mut response = ctx.page(layout(
                "Workflow",
                Some(caller),
                &ctx.csrf,
                Flash::from_code(Some("invalid")),
                body,
            ));
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response.into_response())
        }
        Err(AppError::Invalid { .. }) => {
            Ok(see_other(&format!("/manage/{slug}/workflow?flash=invalid")))
        }
        Err(error) => Err(error.into()),
    }
}
