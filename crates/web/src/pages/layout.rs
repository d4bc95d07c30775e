//! The page frame (header, navigation, live indicator slot) and small
//! rendering helpers shared by all pages.

use maud::{DOCTYPE, Markup, html};
use ordertrack_app::Caller;
use ordertrack_domain::{Eta, EtaBasis, Role};
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
            "assigned" => ("ok", "Driver assigned."),
            "unassigned" => ("ok", "Driver unassigned."),
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
            "printer_host_not_allowed" => (
                "warn",
                "This server may not print to that address. Ask its operator to allow the \
                 printer's host (--printer-hosts).",
            ),
            "reprint" => ("ok", "Sent to the printer again."),
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
    title: &str, caller: Option<&Caller>, csrf: &str, flash: Option<Flash>, body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, &super::asset_url("app.css")))
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
            link rel="manifest" href="/manifest.webmanifest";
            link rel="icon" href=(super::asset_url("icon.svg")) type="image/svg+xml";
            meta name="theme-color" content="#1f6f5c";
            script type="module" src=(super::asset_url("live.js")) {}
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

pub use ordertrack_app::receipts::money;

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

/// When an order will be done, as a customer reads it at `now`: "any
/// minute now" once past the window's start; minutes up to an hour and a
/// half ("in about 12–18 min"); hours up to a day ("in about 3–5 h");
/// beyond, the window's end ("by Tue 14:00", UTC here — the page's script
/// shows the reader's own clock). Never a raw count of many minutes.
/// `live.js` (`etaText`) follows the same rules between page changes.
pub fn eta_text(eta: &Eta, now: OffsetDateTime) -> String {
    if now >= eta.earliest {
        return "any minute now".to_owned();
    }
    // Whole minutes, rounded up: "in about 1 min" until it is due.
    let minutes = |at: OffsetDateTime| ((at - now).whole_seconds() + 59) / 60;
    let (low, high) = (minutes(eta.earliest), minutes(eta.latest));
    let high = high.max(low);
    let range = |low: i64, high: i64, unit: &str| {
        if low == high {
            format!("in about {low} {unit}")
        } else {
            format!("in about {low}–{high} {unit}")
        }
    };
    if high <= 90 {
        return range(low, high, "min");
    }
    if high <= 24 * 60 {
        return range(((low + 30) / 60).max(1), (high + 59) / 60, "h");
    }
    let weekday = eta.latest.weekday().to_string();
    format!(
        "by {} {:02}:{:02} UTC",
        &weekday[..3],
        eta.latest.hour(),
        eta.latest.minute()
    )
}

/// The customer's line for an order's window; the page's script keeps the
/// text counting down from the window's instants.
pub fn eta_line(eta: &Eta, now: OffsetDateTime) -> Markup {
    let earliest = eta.earliest.format(&Rfc3339).unwrap_or_default();
    let latest = eta.latest.format(&Rfc3339).unwrap_or_default();
    let basis = match eta.basis {
        EtaBasis::Learned => "from this store's recent orders",
        EtaBasis::Workflow => "from the store's usual times",
    };
    html! {
        p.eta data-eta-earliest=(earliest) data-eta-latest=(latest) title=(basis) {
            "Expected " strong data-eta-text { (eta_text(eta, now)) }
        }
    }
}

/// Staff's "due 12:48" (the window's end), marked late once past it (the
/// page's script marks it when it passes).
pub fn due_tag(eta: &Eta, now: OffsetDateTime) -> Markup {
    let latest = eta.latest.format(&Rfc3339).unwrap_or_default();
    html! {
        span.due.late[now > eta.latest] data-due=(latest) {
            "due "
            time datetime=(latest) data-clock {
                (format!("{:02}:{:02} UTC", eta.latest.hour(), eta.latest.minute()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;

    fn window(now: OffsetDateTime, low: i64, high: i64) -> Eta {
        Eta {
            earliest: now + Duration::seconds(low),
            latest: now + Duration::seconds(high),
            basis: EtaBasis::Learned,
            band: None,
        }
    }

    #[test]
    fn the_window_reads_as_minutes_hours_or_a_day_and_time() {
        // A Monday.
        let now = datetime!(2026-03-02 12:00 UTC);
        let text = |low, high| eta_text(&window(now, low, high), now);
        assert_eq!(text(12 * 60, 18 * 60), "in about 12–18 min");
        assert_eq!(text(11 * 60 + 1, 12 * 60), "in about 12 min");
        assert_eq!(text(0, 600), "any minute now");
        assert_eq!(text(-60, 600), "any minute now");
        assert_eq!(text(3 * 3600, 5 * 3600 - 60), "in about 3–5 h");
        assert_eq!(text(60 * 60, 100 * 60), "in about 1–2 h");
        // 1,770 minutes (the retail path) is hours, not "1770 min".
        assert_eq!(text(1_770 * 60, 2_655 * 60), "by Wed 08:15 UTC");
        assert_eq!(text(600 * 60, 1_000 * 60), "in about 10–17 h");
    }

    #[test]
    fn due_is_late_only_past_the_window() {
        let now = datetime!(2026-03-02 12:00 UTC);
        let on_time = due_tag(&window(now, -600, 60), now).into_string();
        assert!(
            on_time.contains("due ") && !on_time.contains("late"),
            "{on_time}"
        );
        assert!(on_time.contains("12:01 UTC"), "{on_time}");
        let late = due_tag(&window(now, -600, -60), now).into_string();
        assert!(late.contains("class=\"due late\""), "{late}");
    }
}
