//! `/stores/{slug}/reports/…`: sales per day, time in each state, orders
//! per weekday and hour, for the store's owners and managers — as JSON, or
//! as CSV with the same figures (`Accept: text/csv`, or the path with
//! `.csv`). `docs/reports.md` describes the fields and columns.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ordertrack_app::AppError;
use ordertrack_app::reports::{ReportRequest, ReportScope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::views::{HoursBody, SalesBody, SpreadBody, TimesBody};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, AuthCaller};
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new().get("/stores/{slug}/reports/{report}", report)
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(report))]
pub(crate) struct Doc;

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD`, both optional.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

impl From<RangeQuery> for ReportRequest {
    fn from(query: RangeQuery) -> Self {
        ReportRequest {
            from: query.from,
            to: query.to,
        }
    }
}

/// The reports a path may name (`{report}`), as the document lists them.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Only described: the path is read by `Report::parse`.
enum ReportName {
    #[serde(rename = "sales")]
    Sales,
    #[serde(rename = "times")]
    Times,
    #[serde(rename = "hours")]
    Hours,
    #[serde(rename = "sales.csv")]
    SalesCsv,
    #[serde(rename = "times.csv")]
    TimesCsv,
    #[serde(rename = "hours.csv")]
    HoursCsv,
}

/// A report's JSON body: the one its path names.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only described: each report is sent as its own body.
enum ReportBody {
    Sales(SalesBody),
    Times(TimesBody),
    Hours(HoursBody),
}

/// How a report is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

impl Format {
    /// What the `Accept` header asks for: CSV if `text/csv` comes before
    /// any JSON type in it (q-values aside), else JSON.
    fn accepted(headers: &HeaderMap) -> Format {
        headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|range| range.split(';').next())
            .map(str::trim)
            .find_map(|media| match media.to_ascii_lowercase().as_str() {
                "text/csv" => Some(Format::Csv),
                "application/json" | "application/*" | "*/*" => Some(Format::Json),
                _ => None,
            })
            .unwrap_or(Format::Json)
    }
}

/// A report body that also reads as CSV.
trait CsvReport: Serialize {
    /// The report's name in the file name (`sales`).
    const NAME: &'static str;
    /// The CSV text: a header line, then one line per row.
    fn csv(&self) -> String;
}

/// Sends `body` as `format`: JSON, or CSV as a download named after the
/// store and the range. Answers to a negotiated path vary on `Accept`.
fn answer<B: CsvReport>(
    format: Format, negotiated: bool, scope: &ReportScope, body: B,
) -> Response {
    let mut response = match format {
        Format::Json => Json(body).into_response(),
        Format::Csv => {
            let disposition = format!(
                "attachment; filename=\"{}-{}-{}-{}.csv\"",
                scope.store.slug,
                B::NAME,
                scope.range.from(),
                scope.range.to()
            );
            let mut response = body.csv().into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
    };
    if negotiated {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept"));
    }
    response
}

/// A CSV field: quoted when it holds a comma, quote or line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// An optional number as a CSV field (empty for none).
fn number(value: Option<i64>) -> String {
    value.map(|n| n.to_string()).unwrap_or_default()
}

impl CsvReport for SalesBody {
    const NAME: &'static str = "sales";
    fn csv(&self) -> String {
        let mut out =
            String::from("date,orders,completed,cancelled,revenue_minor,average_minor,currency\n");
        let currency = field(self.currency.code());
        let rows = self
            .days
            .iter()
            .map(|day| (day.date.as_str(), &day.figures))
            .chain(std::iter::once(("total", &self.totals)));
        for (date, f) in rows {
            let _ = writeln!(
                out,
                "{date},{},{},{},{},{},{currency}",
                f.orders, f.completed, f.cancelled, f.revenue_minor, f.average_minor
            );
        }
        out
    }
}

impl CsvReport for TimesBody {
    const NAME: &'static str = "times";
    fn csv(&self) -> String {
        let mut out = String::from("kind,status,count,p50_seconds,p90_seconds\n");
        let line = |out: &mut String, kind: &str, status: &str, s: &SpreadBody| {
            let _ = writeln!(
                out,
                "{kind},{},{},{},{}",
                field(status),
                s.count,
                number(s.p50_seconds),
                number(s.p90_seconds)
            );
        };
        for state in &self.states {
            line(&mut out, "state", &state.status, &state.spread);
        }
        line(&mut out, "to_done", "", &self.to_done);
        out
    }
}

impl CsvReport for HoursBody {
    const NAME: &'static str = "hours";
    fn csv(&self) -> String {
        let mut out = String::from("weekday,hour,orders\n");
        for cell in &self.cells {
            let _ = writeln!(out, "{},{},{}", cell.weekday, cell.hour, cell.orders);
        }
        out
    }
}

/// Which report a path names: `sales`, `times` or `hours`, each also
/// with `.csv` (then CSV whatever `Accept` says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Sales,
    Times,
    Hours,
}

impl Report {
    /// The report and, for a `.csv` path, its fixed format.
    fn parse(name: &str) -> Option<(Report, Option<Format>)> {
        let (name, format) = match name.strip_suffix(".csv") {
            Some(name) => (name, Some(Format::Csv)),
            None => (name, None),
        };
        let report = match name {
            "sales" => Report::Sales,
            "times" => Report::Times,
            "hours" => Report::Hours,
            _ => return None,
        };
        Some((report, format))
    }
}

/// `GET /stores/{slug}/reports/{report}`.
#[utoipa::path(
    get,
    path = "/stores/{slug}/reports/{report}",
    tag = "reports",
    params(("slug" = String, Path, description = "The store's slug"), ("report" = inline(ReportName), Path, description = "`sales`, `times` or `hours`; with `.csv`, CSV whatever `Accept` says"), RangeQuery),
    responses((status = 200, description = "The report, as JSON or (asked for by `Accept: text/csv` or a `.csv` path) as CSV", content((ReportBody = "application/json"), (String = "text/csv"))))
)]
async fn report(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller,
    ApiPath((slug, name)): ApiPath<(String, String)>, ApiQuery(query): ApiQuery<RangeQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (report, fixed) = Report::parse(&name).ok_or(AppError::NotFound("report"))?;
    let format = fixed.unwrap_or_else(|| Format::accepted(&headers));
    let negotiated = fixed.is_none();
    let request = ReportRequest::from(query);
    let app = &state.app;
    Ok(match report {
        Report::Sales => {
            let view = app.sales_report(&caller, &slug, &request).await?;
            answer(format, negotiated, &view.scope, SalesBody::from(&view))
        }
        Report::Times => {
            let view = app.times_report(&caller, &slug, &request).await?;
            answer(format, negotiated, &view.scope, TimesBody::from(&view))
        }
        Report::Hours => {
            let view = app.hours_report(&caller, &slug, &request).await?;
            answer(format, negotiated, &view.scope, HoursBody::from(&view))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Format {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(value).expect("a header"),
        );
        Format::accepted(&headers)
    }

    #[test]
    fn csv_is_sent_when_asked_for_first() {
        assert_eq!(accept("text/csv"), Format::Csv);
        assert_eq!(accept("Text/CSV; charset=utf-8"), Format::Csv);
        assert_eq!(accept("text/csv, application/json;q=0.5"), Format::Csv);
        assert_eq!(accept("application/json, text/csv"), Format::Json);
        assert_eq!(accept("*/*"), Format::Json);
        assert_eq!(Format::accepted(&HeaderMap::new()), Format::Json);
    }

    #[test]
    fn report_paths_name_a_report_and_maybe_csv() {
        assert_eq!(Report::parse("sales"), Some((Report::Sales, None)));
        assert_eq!(
            Report::parse("hours.csv"),
            Some((Report::Hours, Some(Format::Csv)))
        );
        assert_eq!(Report::parse("times.json"), None);
        assert_eq!(Report::parse(".csv"), None);
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(field("preparing"), "preparing");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
