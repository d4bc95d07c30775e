//! Opening a store ("Open a store", for signed-in users when the operator's
//! signup mode allows it) and the platform admin's list of stores waiting
//! for approval.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use ordertrack_app::AppError;
use ordertrack_app::stores::StoreSetup;
use ordertrack_domain::{StoreStatus, Workflow};
use serde::Deserialize;

use super::layout::Flash;
use super::{CsrfForm, FlashQuery, PageContext, PageError, SignedIn, layout, see_other};
use crate::AppState;
use crate::extract::ApiPath;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/stores/new", new_store_page)
        .post("/stores/new", open_store)
        .get("/admin/stores", pending_stores)
        .post("/admin/stores/{slug}/approve", approve)
}

/// What each built-in workflow is for, in words.
fn workflow_description(name: &str) -> &'static str {
    match name {
        "restaurant" => {
            "A restaurant with a counter: the cashier confirms each order, the kitchen \
             cooks it, a driver delivers it (or the customer picks it up)."
        }
        "kitchen" => {
            "A kitchen without a cashier: orders are confirmed, prepared and handed \
             over; no delivery steps."
        }
        "retail" => "A shop that ships goods: orders are confirmed, packed, shipped and delivered.",
        _ => "",
    }
}

/// The steps of a workflow, in its words (cancelled left out).
fn workflow_path(workflow: &Workflow) -> String {
    workflow
        .states()
        .iter()
        .filter(|state| !workflow.is_cancelled(&state.key))
        .map(|state| state.label.as_str())
        .collect::<Vec<_>>()
        .join(" → ")
}

#[derive(Deserialize, Default)]
struct StoreForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    workflow: String,
}

/// Time zones offered in the field's suggestions (any IANA name is taken).
const ZONE_SUGGESTIONS: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Rome",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
];

fn store_form(
    state: &AppState, ctx: &PageContext, form: &StoreForm, error: Option<&str>,
) -> Markup {
    let workflows = state.app.workflows();
    let chosen = if form.workflow.is_empty() {
        "restaurant"
    } else {
        form.workflow.as_str()
    };
    html! {
        h1 { "Open a store" }
        @if let Some(error) = error {
            p.flash.warn role="alert" { (error) }
        }
        form.card.store-setup method="post" action="/stores/new" {
            input type="hidden" name="csrf" value=(ctx.csrf);
            label { "Name " input type="text" name="name" value=(form.name) required maxlength="100" placeholder="Rosie's Pizza"; }
            label { "Address of the store page "
                span.muted { "(3–40 lower-case letters, digits and dashes: /stores/" em { "rosies-pizza" } ")" }
                input type="text" name="slug" value=(form.slug) required minlength="3" maxlength="40" pattern="[a-z0-9][a-z0-9-]*[a-z0-9]" placeholder="rosies-pizza";
            }
            label { "Currency " span.muted { "(ISO 4217 code, e.g. EUR)" }
                input type="text" name="currency" value=(if form.currency.is_empty() { "EUR" } else { form.currency.as_str() }) required minlength="3" maxlength="3" size="4";
            }
            label { "Time zone " span.muted { "(your opening hours are read in it)" }
                input type="text" name="timezone" list="zones" value=(if form.timezone.is_empty() { "UTC" } else { form.timezone.as_str() }) required maxlength="64";
            }
            datalist #zones { @for zone in ZONE_SUGGESTIONS { option value=(zone) {} } }
            fieldset {
                legend { "How your orders run" }
                @for name in Workflow::BUILTIN_NAMES {
                    @if let Ok(workflow) = workflows.get(name) {
                        label.choice.workflow {
                            input type="radio" name="workflow" value=(name) checked[name == chosen];
                            " " strong { (name) } " — " (workflow_description(name))
                            br;
                            span.muted { (workflow_path(&workflow)) }
                        }
                    }
                }
            }
            p.muted { "Next you add your first products and your staff on the store's manage page." }
            button type="submit" { "Open the store" }
        }
    }
}

async fn new_store_page(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
) -> Result<Response, PageError> {
    if !state.app.may_open_store(caller) {
        return Err(
            AppError::Forbidden("stores are opened by the platform's admins here".into()).into(),
        );
    }
    let body = store_form(&state, &ctx, &StoreForm::default(), None);
    Ok(ctx.page(layout("Open a store", Some(caller), &ctx.csrf, None, body)))
}

async fn open_store(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    Form(form): Form<StoreForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let setup = StoreSetup {
        slug: form.slug.trim().to_owned(),
        name: form.name.clone(),
        currency: form.currency.trim().to_uppercase(),
        workflow: form.workflow.as_str().into(),
        timezone: Some(form.timezone.trim().to_owned()).filter(|z| !z.is_empty()),
    };
    match state.app.open_store(caller, setup).await {
        Ok(opened) => {
            let flash = match opened.settings.status {
                StoreStatus::Active => "opened",
                StoreStatus::PendingApproval => "opened_pending",
            };
            Ok(see_other(&format!(
                "/manage/{}?flash={flash}",
                opened.store.slug
            )))
        }
        Err(error @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => {
            let message = error.to_string();
            let body = store_form(&state, &ctx, &form, Some(&message));
            let mut response =
                ctx.page(layout("Open a store", Some(caller), &ctx.csrf, None, body));
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(error) => Err(error.into()),
    }
}

async fn pending_stores(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    Query(query): Query<FlashQuery>,
) -> Result<Response, PageError> {
    let pending = state.app.pending_stores(caller).await?;
    let body = html! {
        h1 { "Stores awaiting approval" }
        @if pending.is_empty() { p.muted { "No store is waiting." } }
        ul.cards {
            @for found in &pending {
                li.card data-store=(found.store.slug) {
                    h2 { (found.store.name) }
                    p.muted { "/stores/" (found.store.slug) " · " (found.store.workflow) " · " (found.store.currency) " · " (found.settings.timezone) }
                    form method="post" action={ "/admin/stores/" (found.store.slug) "/approve" } {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        button type="submit" { "Approve" }
                    }
                }
            }
        }
    };
    Ok(ctx.page(layout(
        "Stores awaiting approval",
        Some(caller),
        &ctx.csrf,
        Flash::from_code(query.flash.as_deref()),
        body,
    )))
}

async fn approve(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(slug): ApiPath<String>, Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    state.app.approve_store(caller, &slug).await?;
    Ok(see_other("/admin/stores?flash=approved"))
}
