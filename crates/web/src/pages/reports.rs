//! The reports page for a store's owners and managers: a date range (a
//! GET form), sales per day, orders per weekday and hour, time in each
//! state, the slowest orders and the cancellations of the range. Each chart
//! is SVG drawn here, on the server, by hand (nothing fetched, no script),
//! with a table of the same figures beside it for screen readers and for
//! reading exact numbers.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use ordertrack_app::AppError;
use ordertrack_app::reports::{ReportRequest, ReportsOverview};
use ordertrack_domain::report::{HoursReport, SalesReport, TimesReport, WEEKDAYS};
use serde::Deserialize;

use super::layout::{Flash, money, time_tag};
use super::{PageError, SignedIn, encode_component, layout};
use crate::AppState;
use crate::extract::ApiPath;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new().get("/manage/{slug}/reports", show)
}

/// The range form's fields (both optional: the API's defaults apply).
#[derive(Deserialize)]
struct RangeForm {
    from: Option<String>,
    to: Option<String>,
}

async fn show(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(slug): ApiPath<String>, Query(form): Query<RangeForm>,
) -> Result<Response, PageError> {
    let request = ReportRequest {
        from: form.from.clone(),
        to: form.to.clone(),
    };
    match state.app.reports_overview(caller, &slug, &request).await {
        Ok(overview) => {
            let body = page(&slug, &overview);
            Ok(ctx.page(layout("Reports", Some(caller), &ctx.csrf, None, body)))
        }
        // Bad dates: the form again, with what is wrong, to fix them.
        Err(AppError::Invalid { message, .. }) => {
            let body = html! {
                h1 { "Reports" }
                (back_link(&slug))
                (range_form(&slug, form.from.as_deref(), form.to.as_deref()))
            };
            let mut response = ctx.page(layout(
                "Reports",
                Some(caller),
                &ctx.csrf,
                Some(Flash {
                    kind: "warn",
                    text: message,
                }),
                body,
            ));
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(error) => Err(error.into()),
    }
}

fn back_link(slug: &str) -> Markup {
    html! { p.muted { a href={ "/manage/" (slug) } { "← Manage" } } }
}

fn range_form(slug: &str, from: Option<&str>, to: Option<&str>) -> Markup {
    html! {
        form.row.report-range method="get" action={ "/manage/" (slug) "/reports" } {
            label { "From" input type="date" name="from" value=[from] required; }
            label { "To" input type="date" name="to" value=[to] required; }
            button type="submit" { "Show" }
        }
    }
}

fn page(slug: &str, overview: &ReportsOverview) -> Markup {
    let scope = &overview.scope;
    let (from, to) = (scope.range.from().to_string(), scope.range.to().to_string());
    let query = format!(
        "?from={}&to={}",
        encode_component(&from),
        encode_component(&to)
    );
    let csv = |report: &str| {
        format!(
            "/api/v1/stores/{}/reports/{report}.csv{query}",
            encode_component(slug)
        )
    };
    let currency = scope.store.currency.code();
    html! {
        h1 { "Reports · " (scope.store.name) }
        (back_link(slug))
        (range_form(slug, Some(&from), Some(&to)))
        p.muted {
            "Days and hours on the store's clock (" (scope.zone.name()) "). Download as CSV: "
            a href=(csv("sales")) { "sales" } ", "
            a href=(csv("times")) { "times" } ", "
            a href=(csv("hours")) { "hours" } "."
        }
        section.card.report #sales {
            h2 { "Sales per day" }
            div.chart-pair {
                (sales_chart(&overview.sales, currency))
                (sales_table(&overview.sales, currency))
            }
        }
        section.card.report #hours {
            h2 { "Orders per hour" }
            div.chart-pair {
                (hours_chart(&overview.hours))
                (hours_table(&overview.hours))
            }
        }
        section.card.report #times {
            h2 { "Time in each state" }
            p.muted { "Orders placed in the range and finished: median (p50) and 90th percentile (p90)." }
            div.chart-pair {
                (times_chart(&overview.times))
                (times_table(&overview.times))
            }
        }
        section.card.report #slowest {
            h2 { "Slowest orders" }
            @if overview.slowest.is_empty() {
                p.muted { "No finished orders in this range." }
            } @else {
                table {
                    caption.visually-hidden { "The slowest finished orders, from placing to done" }
                    thead { tr { th scope="col" { "Order" } th scope="col" { "Placed" } th scope="col" { "Placed to done" } } }
                    tbody {
                        @for order in &overview.slowest {
                            tr {
                                td { a href={ "/orders/" (order.id) } { (order.number) } }
                                td { (time_tag(order.placed_at)) }
                                td { (duration(order.to_done_seconds)) }
                            }
                        }
                    }
                }
            }
        }
        section.card.report #cancellations {
            h2 { "Cancellations" }
            @if overview.cancellations.is_empty() {
                p.muted { "No cancelled orders in this range." }
            } @else {
                table {
                    caption.visually-hidden { "Cancelled orders, newest first, with who cancelled them and why" }
                    thead { tr { th scope="col" { "Order" } th scope="col" { "Placed" } th scope="col" { "Cancelled by" } th scope="col" { "Reason" } th scope="col" { "Total" } } }
                    tbody {
                        @for cancel in &overview.cancellations {
                            tr {
                                td { a href={ "/orders/" (cancel.id) } { (cancel.number) } }
                                td { (time_tag(cancel.placed_at)) }
                                td { @if let Some(role) = cancel.by { (role.as_str()) } @else { "—" } }
                                td { @if let Some(reason) = &cancel.reason { (reason) } @else { span.muted { "no reason given" } } }
                                td { (money(cancel.total_minor, currency)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Seconds as people read them: `45 s`, `4 min 5 s`, `1 h 20 min`, `2 d 3 h`
/// (a zero second part left out: `5 min`, `1 h`, `2 d`).
fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (big, unit, small, small_unit) = match s {
        0..60 => return format!("{s} s"),
        60..3600 => (s / 60, "min", s % 60, "s"),
        3600..86400 => (s / 3600, "h", s % 3600 / 60, "min"),
        _ => (s / 86400, "d", s % 86400 / 3600, "h"),
    };
    if small == 0 {
        format!("{big} {unit}")
    } else {
        format!("{big} {unit} {small} {small_unit}")
    }
}

/// Chart geometry, in SVG user units.
const WIDTH: i64 = 720;
const BAR_AREA: i64 = 200;
const MARGIN: i64 = 40;

/// A bar's length for `value` of `max` over `full` units.
fn scaled(value: i64, max: i64, full: i64) -> i64 {
    if max <= 0 {
        0
    } else {
        (i128::from(value.max(0)) * i128::from(full) / i128::from(max)) as i64
    }
}

fn sales_chart(sales: &SalesReport, currency: &str) -> Markup {
    let max = sales
        .days
        .iter()
        .map(|d| d.figures.revenue_minor)
        .max()
        .unwrap_or(0);
    let count = i64::try_from(sales.days.len()).unwrap_or(1).max(1);
    let step = (WIDTH - MARGIN) / count;
    let bar = (step * 4 / 5).max(1);
    // Label about a dozen days at most, so the labels never overlap.
    let every = usize::try_from(count / 12 + 1).unwrap_or(1);
    let height = BAR_AREA + 40;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (height) }
            role="img" aria-labelledby="sales-chart-title" {
            title #sales-chart-title { "Revenue per day, " (currency) }
            text.axis x="0" y="12" { (money(max, currency)) }
            line.axis x1=(MARGIN) y1=(BAR_AREA + 10) x2=(WIDTH) y2=(BAR_AREA + 10) {}
            @for (i, day) in sales.days.iter().enumerate() {
                @let x = MARGIN + i64::try_from(i).unwrap_or(0) * step;
                @let h = scaled(day.figures.revenue_minor, max, BAR_AREA - 10);
                rect.bar x=(x) y=(BAR_AREA + 10 - h) width=(bar) height=(h) {
                    title { (day.date) ": " (money(day.figures.revenue_minor, currency)) ", " (day.figures.orders) " orders" }
                }
                @if i % every == 0 {
                    text.axis x=(x) y=(BAR_AREA + 30) { (day.date.strftime("%m-%d")) }
                }
            }
        }
    }
}

fn sales_table(sales: &SalesReport, currency: &str) -> Markup {
    html! {
        div.table-scroll {
            table.figures {
                caption.visually-hidden { "Sales per day" }
                thead { tr {
                    th scope="col" { "Day" } th scope="col" { "Orders" } th scope="col" { "Completed" }
                    th scope="col" { "Cancelled" } th scope="col" { "Revenue" } th scope="col" { "Average" }
                } }
                tbody {
                    @for day in &sales.days {
                        tr {
                            th scope="row" { (day.date) }
                            td { (day.figures.orders) } td { (day.figures.completed) } td { (day.figures.cancelled) }
                            td { (money(day.figures.revenue_minor, currency)) } td { (money(day.figures.average_minor, currency)) }
                        }
                    }
                }
                tfoot { tr {
                    th scope="row" { "Total" }
                    td { (sales.totals.orders) } td { (sales.totals.completed) } td { (sales.totals.cancelled) }
                    td { (money(sales.totals.revenue_minor, currency)) } td { (money(sales.totals.average_minor, currency)) }
                } }
            }
        }
    }
}

fn hours_chart(hours: &HoursReport) -> Markup {
    const CELL: i64 = 26;
    const LEFT: i64 = 40;
    const TOP: i64 = 20;
    let max = hours.max();
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg"
            viewBox={ "0 0 " (LEFT + 24 * CELL) " " (TOP + 7 * CELL) }
            role="img" aria-labelledby="hours-chart-title" {
            title #hours-chart-title { "Orders per weekday and hour: darker is busier" }
            @for hour in (0..24i64).step_by(3) {
                text.axis x=(LEFT + hour * CELL + 2) y=(TOP - 6) { (hour) ":00" }
            }
            @for (row, (_, name)) in WEEKDAYS.iter().enumerate() {
                text.axis x="0" y=(TOP + i64::try_from(row).unwrap_or(0) * CELL + CELL * 2 / 3) { (name) }
            }
            @for (i, cell) in hours.cells().enumerate() {
                @let i = i64::try_from(i).unwrap_or(0);
                // Empty cells stay faint; the busiest is fully dark.
                @let opacity = if max == 0 { 0.0 } else { 0.08 + 0.92 * cell.orders as f64 / max as f64 };
                rect.heat x=(LEFT + (i % 24) * CELL) y=(TOP + (i / 24) * CELL)
                    width=(CELL - 2) height=(CELL - 2) fill-opacity=(format!("{opacity:.2}")) {
                    title { (cell.weekday) " " (cell.hour) ":00–" (cell.hour) ":59: " (cell.orders) " orders" }
                }
            }
        }
    }
}

fn hours_table(hours: &HoursReport) -> Markup {
    let cells: Vec<_> = hours.cells().collect();
    html! {
        div.table-scroll {
            table.figures.hours {
                caption.visually-hidden { "Orders per weekday (rows) and hour of the day (columns)" }
                thead { tr {
                    th scope="col" { "Day" }
                    @for hour in 0..24 { th scope="col" { (hour) } }
                } }
                tbody {
                    @for (row, (_, name)) in WEEKDAYS.iter().enumerate() {
                        tr {
                            th scope="row" { (name) }
                            @for cell in cells.iter().skip(row * 24).take(24) { td { (cell.orders) } }
                        }
                    }
                }
            }
        }
    }
}

fn times_chart(times: &TimesReport) -> Markup {
    const ROW: i64 = 34;
    const LEFT: i64 = 150;
    let rows: Vec<(&str, Option<i64>, Option<i64>)> = times
        .states
        .iter()
        .map(|s| {
            (
                s.status.as_str(),
                s.spread.p50_seconds,
                s.spread.p90_seconds,
            )
        })
        .chain(std::iter::once((
            "placed → done",
            times.to_done.p50_seconds,
            times.to_done.p90_seconds,
        )))
        .collect();
    let max = rows
        .iter()
        .filter_map(|(_, _, p90)| *p90)
        .max()
        .unwrap_or(0);
    let full = WIDTH - LEFT - 90;
    let height = i64::try_from(rows.len()).unwrap_or(1) * ROW + 10;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (height) }
            role="img" aria-labelledby="times-chart-title" {
            title #times-chart-title { "Median (dark) and 90th percentile (light) time in each state" }
            @for (i, (status, p50, p90)) in rows.iter().enumerate() {
                @let y = i64::try_from(i).unwrap_or(0) * ROW + 5;
                text.axis x="0" y=(y + 18) { (status) }
                rect.p90 x=(LEFT) y=(y) width=(scaled(p90.unwrap_or(0), max, full)) height="24" {
                    title { (status) " p90: " (p90.map(duration).unwrap_or_default()) }
                }
                rect.p50 x=(LEFT) y=(y + 6) width=(scaled(p50.unwrap_or(0), max, full)) height="12" {
                    title { (status) " p50: " (p50.map(duration).unwrap_or_default()) }
                }
                text.axis x=(LEFT + scaled(p90.unwrap_or(0), max, full) + 6) y=(y + 18) {
                    (p90.map(duration).unwrap_or_else(|| "—".to_owned()))
                }
            }
        }
    }
}

fn times_table(times: &TimesReport) -> Markup {
    let cell = |seconds: Option<i64>| seconds.map(duration).unwrap_or_else(|| "—".to_owned());
    html! {
        div.table-scroll {
            table.figures {
                caption.visually-hidden { "Time in each state: orders, median and 90th percentile" }
                thead { tr { th scope="col" { "State" } th scope="col" { "Orders" } th scope="col" { "p50" } th scope="col" { "p90" } } }
                tbody {
                    @for state in &times.states {
                        tr {
                            th scope="row" { (state.status) }
                            td { (state.spread.count) }
                            td { (cell(state.spread.p50_seconds)) }
                            td { (cell(state.spread.p90_seconds)) }
                        }
                    }
                }
                tfoot { tr {
                    th scope="row" { "Placed → done" }
                    td { (times.to_done.count) }
                    td { (cell(times.to_done.p50_seconds)) }
                    td { (cell(times.to_done.p90_seconds)) }
                } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(300), "5 min");
        assert_eq!(duration(245), "4 min 5 s");
        assert_eq!(duration(4800), "1 h 20 min");
        assert_eq!(duration(3600), "1 h");
        assert_eq!(duration(183_600), "2 d 3 h");
        assert_eq!(duration(172_800), "2 d");
        assert_eq!(duration(-3), "0 s");
    }

    #[test]
    fn bars_scale_to_the_largest() {
        assert_eq!(scaled(50, 100, 200), 100);
        assert_eq!(scaled(100, 100, 200), 200);
        assert_eq!(scaled(7, 0, 200), 0);
        assert_eq!(scaled(-5, 100, 200), 0);
    }
}
