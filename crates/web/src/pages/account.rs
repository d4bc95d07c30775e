//! Register, sign in, sign out.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use ordertrack_app::AppError;
use ordertrack_app::auth::SignedIn;
use serde::Deserialize;

use super::{CsrfForm, PageContext, PageError, layout, local_path};
use crate::AppState;
use crate::extract::ClientIp;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/login", login_page)
        .post("/login", login)
        .get("/register", register_page)
        .post("/register", register)
        .post("/logout", logout)
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

fn login_form(ctx: &PageContext, next: &str, email: &str, error: Option<&str>) -> Markup {
    html! {
        section.card.narrow {
            h1 { "Sign in" }
            @if let Some(error) = error { p.flash.warn role="alert" { (error) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(ctx.csrf);
                input type="hidden" name="next" value=(next);
                label { "Email" input type="email" name="email" value=(email) required autocomplete="username"; }
                label { "Password" input type="password" name="password" required autocomplete="current-password"; }
                button type="submit" { "Sign in" }
            }
            p.muted { "New here? " a href={ "/register?next=" (super::encode_component(next)) } { "Create an account" } }
        }
    }
}

async fn login_page(ctx: PageContext, Query(query): Query<NextQuery>) -> Response {
    let next = local_path(query.next.as_deref());
    ctx.page(layout(
        "Sign in",
        ctx.caller.as_ref(),
        &ctx.csrf,
        None,
        login_form(&ctx, &next, "", None),
    ))
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    email: String,
    password: String,
    next: Option<String>,
}

fn signed_in_redirect(
    ctx: &PageContext, signed_in: &SignedIn, ttl: time::Duration, next: &str,
) -> Response {
    ctx.sign_in(&signed_in.token, ttl, super::see_other(next))
}

async fn login(
    State(state): State<AppState>, ctx: PageContext, ClientIp(client): ClientIp,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let next = local_path(form.next.as_deref());
    match state.app.login(&form.email, &form.password, client).await {
        Ok(signed_in) => Ok(signed_in_redirect(
            &ctx,
            &signed_in,
            state.app.session_ttl(),
            &next,
        )),
        Err(error @ (AppError::BadCredentials | AppError::TooManyAttempts { .. })) => {
            let markup = login_form(&ctx, &next, &form.email, Some(&error.to_string()));
            let mut response = ctx.page(layout("Sign in", None, &ctx.csrf, None, markup));
            *response.status_mut() = if matches!(error, AppError::TooManyAttempts { .. }) {
                axum::http::StatusCode::TOO_MANY_REQUESTS
            } else {
                axum::http::StatusCode::UNAUTHORIZED
            };
            Ok(response)
        }
        Err(error) => Err(error.into()),
    }
}

fn register_form(
    ctx: &PageContext, next: &str, name: &str, email: &str, error: Option<&str>,
) -> Markup {
    html! {
        section.card.narrow {
            h1 { "Create an account" }
            @if let Some(error) = error { p.flash.warn role="alert" { (error) } }
            form method="post" action="/register" {
                input type="hidden" name="csrf" value=(ctx.csrf);
                input type="hidden" name="next" value=(next);
                label { "Name" input type="text" name="name" value=(name) required maxlength="100" autocomplete="name"; }
                label { "Email" input type="email" name="email" value=(email) required autocomplete="email"; }
                label { "Password " span.muted { "(at least 8 characters)" } input type="password" name="password" required minlength="8" maxlength="128" autocomplete="new-password"; }
                button type="submit" { "Create account" }
            }
        }
    }
}

async fn register_page(ctx: PageContext, Query(query): Query<NextQuery>) -> Response {
    let next = local_path(query.next.as_deref());
    ctx.page(layout(
        "Register",
        ctx.caller.as_ref(),
        &ctx.csrf,
        None,
        register_form(&ctx, &next, "", "", None),
    ))
}

#[derive(Deserialize)]
struct RegisterForm {
    csrf: String,
    name: String,
    email: String,
    password: String,
    next: Option<String>,
}

async fn register(
    State(state): State<AppState>, ClientIp(client): ClientIp, ctx: PageContext,
    Form(form): Form<RegisterForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let next = local_path(form.next.as_deref());
    match state
        .app
        .register(&form.email, &form.password, &form.name, client)
        .await
    {
        Ok(signed_in) => Ok(signed_in_redirect(
            &ctx,
            &signed_in,
            state.app.session_ttl(),
            &next,
        )),
        Err(error @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => {
            let message = match error {
                AppError::Conflict { .. } => {
                    "An account with this email already exists.".to_owned()
                }
                other => other.to_string(),
            };
            let markup = register_form(&ctx, &next, &form.name, &form.email, Some(&message));
            let mut response = ctx.page(layout("Register", None, &ctx.csrf, None, markup));
            *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(error) => Err(error.into()),
    }
}

async fn logout(
    State(state): State<AppState>, ctx: PageContext, Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    if let Some(caller) = &ctx.caller {
        state.app.logout(caller).await?;
    }
    Ok(ctx.sign_out(super::see_other("/")))
}
