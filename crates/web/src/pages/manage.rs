//! Owner and manager pages: the catalog and the staff.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use ordertrack_app::catalog::{ProductInput, StoreAdmin};
use ordertrack_app::invitations::invitation_path;
use ordertrack_app::printing::{PrinterAddress, PrinterInput};
use ordertrack_app::{AppError, ErrorCode};
use ordertrack_domain::{ProductId, Role, UserId};
use ordertrack_store::Printer;
use serde::Deserialize;

use super::layout::{Flash, money};
use super::{CsrfForm, FlashQuery, PageContext, PageError, SignedIn, layout, see_other};
use crate::AppState;
use crate::extract::ApiPath;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/manage/{slug}", manage)
        .post("/manage/{slug}/products", add_product)
        .post("/manage/{slug}/products/{id}", edit_product)
        .post("/manage/{slug}/staff", |s, c, p, f| {
            staff(s, c, p, f, StaffAction::Add)
        })
        .post("/manage/{slug}/staff/{user_id}/remove", remove_staff)
        .post("/manage/{slug}/invitations", |s, c, p, f| {
            staff(s, c, p, f, StaffAction::Invite)
        })
        .post("/manage/{slug}/printers", add_printer)
        .post("/manage/{slug}/email", save_email)
        .post(
            "/manage/{slug}/printers/{printer_id}/remove",
            remove_printer,
        )
}

/// Parses a price typed as `9.50` (or `9,50`, or `9`) into minor units.
fn parse_price(text: &str) -> Option<i64> {
    let text = text.trim().replace(',', ".");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty()
        || fraction.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let cents: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<2}").parse().ok()?
    };
    whole.checked_mul(100)?.checked_add(cents)
}

async fn manage(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(slug): ApiPath<String>, Query(query): Query<FlashQuery>,
) -> Result<Response, PageError> {
    let StoreAdmin {
        store,
        products,
        staff,
        ..
    } = state.app.store_admin(caller, &slug).await?;
    let printers = state.app.printers(caller, &slug).await?;
    let (settings, _) = state.app.store_settings(caller, &slug).await?;
    let workflow = state.app.current_workflow(&store).await?.workflow;
    let body = html! {
        h1 { "Manage " (store.name) }
        @if staff.is_some() {
            p { a href={ "/manage/" (slug) "/workflow" } { "Workflow settings" } " — the states orders go through and who moves them" }
        }
        p { a href={ "/manage/" (slug) "/reports" } { "Reports" } " — sales per day, busy hours, time in each state, cancellations" }
        section.card {
            h2 { "Products" }
            table.manage {
                thead { tr { th { "Name" } th { "Price (" (store.currency) ")" } th { "Station" } th { "Available" } th {} } }
                tbody {
                    @for product in &products {
                        tr {
                            td colspan="5" {
                                form.row method="post" action={ "/manage/" (slug) "/products/" (product.id) } {
                                    input type="hidden" name="csrf" value=(ctx.csrf);
                                    label { span.visually-hidden { "Name" } input type="text" name="name" value=(product.name) required maxlength="100"; }
                                    label { span.visually-hidden { "Price" } input type="text" name="price" value=(money(product.price_minor, "").trim()) inputmode="decimal" required size="7"; }
                                    label { span.visually-hidden { "Station" } input type="text" name="station" value=(product.station) required maxlength="40" size="9"; }
                                    label.choice { input type="checkbox" name="available" value="on" checked[product.available]; " available" }
                                    button type="submit" { "Save" }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Add a product" }
            form.row method="post" action={ "/manage/" (slug) "/products" } {
                input type="hidden" name="csrf" value=(ctx.csrf);
                label { "Name" input type="text" name="name" required maxlength="100"; }
                label { "Price" input type="text" name="price" inputmode="decimal" required size="7" placeholder="9.50"; }
                label { "Station" input type="text" name="station" required maxlength="40" size="9" placeholder="grill"; }
                input type="hidden" name="available" value="on";
                button type="submit" { "Add" }
            }
        }
        (printers_section(&slug, &ctx.csrf, &printers, settings.settings.print_trigger.as_str()))
        (email_section(&slug, &ctx.csrf, &settings.settings.email, &workflow))
        @if let Some(staff) = &staff {
            section.card {
                h2 { "Staff" }
                ul.staff {
                    @for member in staff {
                        li {
                            strong { (member.user.name) } " · " (member.user.email) " · " (member.role.as_str())
                            @if member.user.id != caller.user.id {
                                form.inline method="post" action={ "/manage/" (slug) "/staff/" (member.user.id) "/remove" } data-confirm="Remove this person from the staff?" {
                                    input type="hidden" name="csrf" value=(ctx.csrf);
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
                h3 { "Add staff" }
                p.muted { "The person needs an account first (they can register)." }
                (staff_form(&format!("/manage/{slug}/staff"), &ctx.csrf, "Add"))
                h3 { "Invite staff" }
                p.muted { "You get a link to pass on. It works once, for 7 days, for whoever signs in with this e-mail." }
                (staff_form(&format!("/manage/{slug}/invitations"), &ctx.csrf, "Invite"))
            }
        }
    };
    Ok(ctx.page(layout(
        "Manage",
        Some(caller),
        &ctx.csrf,
        Flash::from_code(query.flash.as_deref()),
        body,
    )))
}

/// The store's customer e-mail: the states that mail the customer and the
/// templates (blank: the built-in one).
fn email_section(
    slug: &str, csrf: &str, email: &ordertrack_store::EmailSettings,
    workflow: &ordertrack_domain::Workflow,
) -> Markup {
    use ordertrack_app::email::template::{DEFAULT_BODY, DEFAULT_SUBJECT, PLACEHOLDERS};
    html! {
        section.card data-email-settings {
            h2 { "E-mail to customers" }
            p.muted { "Sent when an order enters a ticked state, if the server has a mail server set up. Placeholders: "
                @for (i, name) in PLACEHOLDERS.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { "{" (name) "}" }
                }
                ". Leave a template blank for the built-in one." }
            form method="post" action={ "/manage/" (slug) "/email" } {
                input type="hidden" name="csrf" value=(csrf);
                fieldset {
                    legend { "Mail on" }
                    @for state in workflow.states() {
                        label.choice {
                            input type="checkbox" name="states" value=(state.key)
                                checked[email.states.iter().any(|s| s == state.key.as_str())];
                            " " (state.label)
                        }
                    }
                }
                label { "Subject"
                    input type="text" name="subject" maxlength="200" value=(email.subject.as_deref().unwrap_or("")) placeholder=(DEFAULT_SUBJECT); }
                label { "Body"
                    textarea name="body" rows="8" maxlength="5000" placeholder=(DEFAULT_BODY) { (email.body.as_deref().unwrap_or("")) } }
                button type="submit" { "Save e-mail settings" }
            }
        }
    }
}

/// Saves the e-mail form: the ticked states (repeated `states` fields) and
/// the templates.
async fn save_email(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(slug): ApiPath<String>, Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    ctx.check_csrf(&field("csrf").unwrap_or_default())?;
    let states = fields
        .iter()
        .filter(|(key, _)| key == "states")
        .map(|(_, value)| value.clone())
        .collect();
    let input = ordertrack_app::stores::SettingsInput {
        email: Some(ordertrack_app::email::EmailInput {
            states: Some(states),
            subject: Some(field("subject")),
            body: Some(field("body").map(|body| body.replace("\r\n", "\n"))),
        }),
        ..Default::default()
    };
    let result = state.app.update_store_settings(caller, &slug, input).await;
    saved(&slug, result.map(drop))
}

/// The store's network printers: each with its address and what it
/// prints, a remove button, and a form to add one.
fn printers_section(slug: &str, csrf: &str, printers: &[Printer], trigger: &str) -> Markup {
    html! {
        section.card data-printers {
            h2 { "Printers" }
            p.muted { "Kitchen tickets and receipts print on network printers (ESC/POS, port 9100) when an order enters "
                strong { (trigger) } " (the store setting print_trigger)." }
            @if printers.is_empty() { p.muted { "No printers yet." } }
            ul.staff {
                @for printer in printers {
                    li data-printer=(printer.id) {
                        strong { (printer.name) } " · " (PrinterAddress { host: printer.host.clone(), port: printer.port }.to_string())
                        @if !printer.stations.is_empty() { " · tickets: " (printer.stations.join(", ")) }
                        @if printer.receipts { " · receipts" }
                        @if !printer.enabled { " · off" }
                        form.inline method="post" action={ "/manage/" (slug) "/printers/" (printer.id) "/remove" } data-confirm="Remove this printer?" {
                            input type="hidden" name="csrf" value=(csrf);
                            button.danger type="submit" { "Remove" }
                        }
                    }
                }
            }
            h3 { "Add a printer" }
            form.row method="post" action={ "/manage/" (slug) "/printers" } {
                input type="hidden" name="csrf" value=(csrf);
                label { "Name" input type="text" name="name" required maxlength="60" placeholder="Grill printer"; }
                label { "Address" input type="text" name="address" required maxlength="300" placeholder="192.168.1.50:9100"; }
                label { "Stations" input type="text" name="stations" maxlength="400" placeholder="grill, fryer"; }
                label.choice { input type="checkbox" name="receipts" value="on"; " receipts" }
                button type="submit" { "Add" }
            }
        }
    }
}

/// A form naming an e-mail and a staff role ([`StaffForm`]), posted to `action`.
fn staff_form(action: &str, csrf: &str, button: &str) -> Markup {
    html! {
        form.row method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            label { "Email" input type="email" name="email" required; }
            label { "Role"
                select name="role" {
                    @for role in Role::STAFF { option value=(role.as_str()) { (role.as_str()) } }
                }
            }
            button type="submit" { (button) }
        }
    }
}

#[derive(Deserialize)]
struct ProductForm {
    csrf: String,
    name: String,
    price: String,
    station: String,
    available: Option<String>,
}

impl ProductForm {
    fn input(&self) -> Option<ProductInput> {
        Some(ProductInput {
            name: Some(self.name.clone()),
            description: None,
            price_minor: Some(parse_price(&self.price)?),
            station: Some(self.station.clone()),
            available: Some(self.available.is_some()),
        })
    }
}

fn saved(slug: &str, result: Result<(), AppError>) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(see_other(&format!("/manage/{slug}?flash=saved"))),
        Err(AppError::Invalid { .. }) => Ok(see_other(&format!("/manage/{slug}?flash=invalid"))),
        Err(error) => Err(error.into()),
    }
}

async fn add_product(
    State(state): State<AppState>, ctx: PageContext, ApiPath(slug): ApiPath<String>,
    Form(form): Form<ProductForm>,
) -> Result<Response, PageError> {
    save_product(&state, &ctx, &slug, None, &form).await
}

async fn edit_product(
    State(state): State<AppState>, ctx: PageContext,
    ApiPath((slug, id)): ApiPath<(String, ProductId)>, Form(form): Form<ProductForm>,
) -> Result<Response, PageError> {
    save_product(&state, &ctx, &slug, Some(id), &form).await
}

/// Adds a product (`id` none) or changes one, and says how it went.
async fn save_product(
    state: &AppState, ctx: &PageContext, slug: &str, id: Option<ProductId>, form: &ProductForm,
) -> Result<Response, PageError> {
    let caller = ctx.require_caller()?;
    ctx.check_csrf(&form.csrf)?;
    let Some(input) = form.input() else {
        return saved(
            slug,
            Err(AppError::invalid(ErrorCode::InvalidPrice, "bad price")),
        );
    };
    let result = match id {
        None => state
            .app
            .create_product(caller, slug, input)
            .await
            .map(drop),
        Some(id) => state
            .app
            .update_product(caller, slug, id, input)
            .await
            .map(drop),
    };
    saved(slug, result)
}

#[derive(Deserialize)]
struct StaffForm {
    csrf: String,
    email: String,
    role: Role,
}

/// What the staff form on the manage page asks for.
#[derive(Clone, Copy)]
enum StaffAction {
    /// Give a signed-up user a role now.
    Add,
    /// Make an invitation and show its link, once: only its hash is kept.
    Invite,
}

/// The handler behind the staff form's two buttons; each route names its
/// action.
async fn staff(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(slug): ApiPath<String>, Form(form): Form<StaffForm>, action: StaffAction,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    if let StaffAction::Add = action {
        let added = state.app.add_staff(caller, &slug, &form.email, form.role);
        return saved(&slug, added.await.map(|_| ()));
    }
    let issued = match state
        .app
        .create_invitation(caller, &slug, &form.email, form.role)
        .await
    {
        Ok(issued) => issued,
        Err(error) => return saved(&slug, Err(error)),
    };
    let url = invitation_path(&issued.token);
    let body = html! {
        h1 { "Invitation for " (issued.invitation.email) }
        section.card {
            p { "Send this link to " strong { (issued.invitation.email) } ". Signed in with that e-mail, they join "
                (issued.invitation.store.name) " as " (issued.invitation.role.as_str()) "." }
            p { a.invitation-link href=(url) { (url) } }
            p.muted { "It works once, until " (issued.invitation.expires_at.date()) " (UTC). It is shown only now." }
            p { a href={ "/manage/" (slug) } { "Back to the store" } }
        }
    };
    Ok(ctx.page(layout("Invitation", Some(caller), &ctx.csrf, None, body)))
}

#[derive(Deserialize)]
struct PrinterForm {
    csrf: String,
    name: String,
    address: String,
    /// Comma-separated.
    #[serde(default)]
    stations: String,
    receipts: Option<String>,
}

async fn add_printer(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(slug): ApiPath<String>, Form(form): Form<PrinterForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let input = PrinterInput {
        name: form.name,
        address: form.address,
        stations: form
            .stations
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        receipts: form.receipts.is_some(),
        enabled: true,
    };
    match state.app.add_printer(caller, &slug, input).await {
        Err(AppError::Invalid {
            code: ErrorCode::PrinterHostNotAllowed,
            ..
        }) => Ok(see_other(&format!(
            "/manage/{slug}?flash=printer_host_not_allowed"
        ))),
        result => saved(&slug, result.map(drop)),
    }
}

async fn remove_printer(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath((slug, printer)): ApiPath<(String, i64)>, Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    state.app.remove_printer(caller, &slug, printer).await?;
    Ok(see_other(&format!("/manage/{slug}?flash=removed")))
}

async fn remove_staff(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath((slug, user_id)): ApiPath<(String, UserId)>, Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    state.app.remove_staff(caller, &slug, user_id).await?;
    Ok(see_other(&format!("/manage/{slug}?flash=removed")))
}

#[cfg(test)]
mod tests {
    use super::parse_price;

    #[test]
    fn prices_parse_into_minor_units() {
        assert_eq!(parse_price("9.50"), Some(950));
        assert_eq!(parse_price("9,5"), Some(950));
        assert_eq!(parse_price("12"), Some(1200));
        assert_eq!(parse_price("0.05"), Some(5));
        for bad in ["", "-1", "1.234", "abc", "1.x", ".5"] {
            assert_eq!(parse_price(bad), None, "{bad}");
        }
    }
}
