//! Network printers: a store's printers (owners and managers), an order's
//! print jobs and the reprint (its store's staff).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ordertrack_app::printing::{PrinterAddress, PrinterInput};
use ordertrack_domain::OrderId;
use ordertrack_store::{PrintJob, PrintKind, PrintStatus, Printer};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthCaller};
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/stores/{slug}/printers", list)
        .post("/stores/{slug}/printers", add)
        .delete("/stores/{slug}/printers/{printer_id}", remove)
        .get("/orders/{id}/print-jobs", jobs)
        .post("/orders/{id}/print-jobs/{job_id}/reprint", reprint)
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, add, remove, jobs, reprint))]
pub(crate) struct Doc;

/// A printer as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct PrinterBody {
    pub id: i64,
    pub name: String,
    /// `host:port`.
    pub address: String,
    pub stations: Vec<String>,
    pub receipts: bool,
    pub enabled: bool,
}

impl From<&Printer> for PrinterBody {
    fn from(printer: &Printer) -> Self {
        PrinterBody {
            id: printer.id,
            name: printer.name.clone(),
            address: PrinterAddress {
                host: printer.host.clone(),
                port: printer.port,
            }
            .to_string(),
            stations: printer.stations.clone(),
            receipts: printer.receipts,
            enabled: printer.enabled,
        }
    }
}

/// A print job as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct PrintJobBody {
    pub id: i64,
    pub order_id: OrderId,
    pub printer_id: i64,
    pub printer_name: String,
    pub kind: PrintKind,
    pub station: Option<String>,
    pub status: PrintStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub printed_at: Option<OffsetDateTime>,
}

impl From<&PrintJob> for PrintJobBody {
    fn from(job: &PrintJob) -> Self {
        PrintJobBody {
            id: job.id,
            order_id: job.order_id,
            printer_id: job.printer_id,
            printer_name: job.printer_name.clone(),
            kind: job.kind,
            station: job.station.clone(),
            status: job.status,
            attempts: job.attempts,
            last_error: job.last_error.clone(),
            next_attempt_at: job.next_attempt_at,
            created_at: job.created_at,
            printed_at: job.printed_at,
        }
    }
}

#[utoipa::path(
    get,
    path = "/stores/{slug}/printers",
    tag = "printing",
    params(("slug" = String, Path, description = "The store's slug")),
    responses((status = 200, description = "The store's printers", body = Vec<PrinterBody>))
)]
async fn list(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
) -> Result<Json<Vec<PrinterBody>>, ApiError> {
    let printers = state.app.printers(&caller, &slug).await?;
    Ok(Json(printers.iter().map(PrinterBody::from).collect()))
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PrinterRequest {
    name: String,
    /// `host:port`; port 9100 if left out.
    address: String,
    #[serde(default)]
    stations: Vec<String>,
    /// Whether it prints the receipt (the counter's printer).
    #[serde(default)]
    receipts: bool,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

#[utoipa::path(
    post,
    path = "/stores/{slug}/printers",
    tag = "printing",
    params(("slug" = String, Path, description = "The store's slug")),
    request_body = PrinterRequest,
    responses((status = 201, description = "Added", body = PrinterBody))
)]
async fn add(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<PrinterRequest>,
) -> Result<(StatusCode, Json<PrinterBody>), ApiError> {
    let printer = state
        .app
        .add_printer(
            &caller,
            &slug,
            PrinterInput {
                name: body.name,
                address: body.address,
                stations: body.stations,
                receipts: body.receipts,
                enabled: body.enabled,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(PrinterBody::from(&printer))))
}

#[utoipa::path(
    delete,
    path = "/stores/{slug}/printers/{printer_id}",
    tag = "printing",
    params(("slug" = String, Path, description = "The store's slug"), ("printer_id" = i64, Path, description = "The printer's id")),
    responses((status = 204, description = "Removed"))
)]
async fn remove(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller,
    ApiPath((slug, printer)): ApiPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    state.app.remove_printer(&caller, &slug, printer).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/orders/{id}/print-jobs",
    tag = "printing",
    params(("id" = i64, Path, description = "The order's id")),
    responses((status = 200, description = "The order's print jobs", body = Vec<PrintJobBody>))
)]
async fn jobs(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
) -> Result<Json<Vec<PrintJobBody>>, ApiError> {
    let (_, jobs) = state.app.print_jobs(&caller, None, id).await?;
    Ok(Json(jobs.iter().map(PrintJobBody::from).collect()))
}

#[utoipa::path(
    post,
    path = "/orders/{id}/print-jobs/{job_id}/reprint",
    tag = "printing",
    params(("id" = i64, Path, description = "The order's id"), ("job_id" = i64, Path, description = "The print job's id")),
    responses((status = 201, description = "Queued again", body = PrintJobBody))
)]
async fn reprint(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller,
    ApiPath((id, job)): ApiPath<(OrderId, i64)>,
) -> Result<(StatusCode, Json<PrintJobBody>), ApiError> {
    let queued = state.app.reprint(&caller, None, id, job).await?;
    Ok((StatusCode::CREATED, Json(PrintJobBody::from(&queued))))
}
