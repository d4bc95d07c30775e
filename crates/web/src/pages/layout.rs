//! The page frame (header, navigation, live indicator slot) and small
//! rendering helpers shared by all pages.

use maud::{DOCTYPE, Markup, html};
use ordertrack_app::Caller;
use ordertrack_domain::Role;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A one-line message shown at the top of a page after an action.
pub struct Flash {
    pub kind: &'static str,
    pub text: String,
}

impl Flash {
    /// A flash from a `?flash=` code set by a redirect.
    pub fn from_code(code: Option<&str>) -> Option<Flash> {
        let (kind, text) = match code? {
            "placed" => ("ok", "Order placed. You can follow it live right here."),
            "moved" => ("ok", "Order updated."),
            "cancelled" => ("ok", "Order cancelled."),
            "conflict" => (
                "warn",
                "Someone else changed this order first — here is its current state.",
            ),
            "not_allowed" => (
                "warn",
                "That step is not possible from the order's current state.",
            ),
            "items_not_ready" => ("warn", "Not every item is ready yet."),
            "payment_required" => ("warn", "This order must be paid first."),
            "paid" => ("ok", "Marked paid."),
            "refunded" => ("ok", "Refund recorded."),
            "reviewed" => ("ok", "Thank you for your rating!"),
            "saved" => ("ok", "Saved."),
            "removed" => ("ok", "Removed."),
            "invalid" => ("warn", "Please check the form and try again."),
            "opened" => (
                "ok",
                "Your store is open. Add your first products below, then share its page.",
            ),
            "opened_pending" => (
                "ok",
                "Your store waits for the platform's approval. Meanwhile, add your products below.",
            ),
            "approved" => ("ok", "Approved: the store is live."),
            "paused" => ("ok", "New orders are paused."),
            "resumed" => ("ok", "Taking orders again."),
            "store_closed" => ("warn", "The store is not taking orders right now."),
            _ => return None,
        };
        Some(Flash {
            kind,
            text: text.to_owned(),
        })
    }
}

/// The page frame.
pub fn layout(
    title: &str,
    caller: Option<&Caller>,
    csrf: &str,
    flash: Option<Flash>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, "/static/app.css"))
            body {
                a.skip href="#main" { "Skip to content" }
                header.topbar {
                    a.brand href="/" { "ordertrack" }
                    nav aria-label="Main" {
                        a href="/" { "Stores" }
                        @if let Some(caller) = caller {
                            a href="/orders" { "My orders" }
                            @if caller.user.is_admin {
                                a href="/admin/stores" { "Approvals" }
                            }
                            @for membership in &caller.memberships {
                                @match membership.role {
                                    Role::Kitchen => {
                                        a href={ "/kitchen/" (membership.store_slug) } { "Kitchen · " (membership.store_slug) }
                                    }
                                    _ => {
                                        a href={ "/dashboard/" (membership.store_slug) } { "Dashboard · " (membership.store_slug) }
                                    }
                                }
                                @if membership.role.manages_catalog() {
                                    a href={ "/manage/" (membership.store_slug) } { "Manage · " (membership.store_slug) }
                                }
                            }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.link type="submit" { "Sign out " span.muted { "(" (caller.user.name) ")" } }
                            }
                        } @else {
                            a href="/login" { "Sign in" }
                            a href="/register" { "Register" }
                        }
                    }
                }
                div #toasts aria-live="polite" {}
                main #main {
                    @if let Some(flash) = flash {
                        p.flash.(flash.kind) role="status" { (flash.text) }
                    }
                    (body)
                }
            }
        }
    }
}

/// A page's `head`: its title, its stylesheet and the live script.
pub fn head(title: &str, stylesheet: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · ordertrack" }
            link rel="stylesheet" href=(stylesheet);
            script type="module" src="/static/live.js" {}
        }
    }
}

/// A friendly error page.
pub fn error_page(title: &str, message: &str) -> Markup {
    layout(
        title,
        None,
        "",
        None,
        html! {
            section.card.error {
                h1 { (title) }
                p { (message) }
                p { a href="/" { "Back to the stores" } }
            }
        },
    )
}

/// The live indicator: the script fills it in; without JS it says nothing is live.
pub fn live_indicator() -> Markup {
    html! {
        div.live data-live-indicator {
            span.dot aria-hidden="true" {}
            span data-live-text { "Live updates need JavaScript — reload to refresh." }
            button.secondary type="button" data-live-toggle hidden { "Pause live updates" }
        }
    }
}

/// Money in minor units, e.g. `12.50 EUR`.
pub fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", abs / 100, abs % 100)
}

/// A time the browser shows in local time (UTC without JS).
pub fn time_tag(at: OffsetDateTime) -> Markup {
    let iso = at.format(&Rfc3339).unwrap_or_default();
    let fallback = format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    );
    html! { time datetime=(iso) data-local { (fallback) } }
}

/// A status badge: colour class, icon and text (never colour alone).
/// An order's payment status as a badge; an unpaid order's stands out.
pub fn payment_badge(payment: &ordertrack_domain::Payment) -> Markup {
    let status = payment.status.as_str();
    html! {
        span.badge.{ "payment-" (status) } data-payment=(status) { (payment.status.label()) }
    }
}

pub fn status_badge(status: &str, label: &str, icon: &str) -> Markup {
    html! {
        span.badge.{ "status-" (status) } data-status=(status) {
            span aria-hidden="true" { (icon) } " " (label)
        }
    }
}
