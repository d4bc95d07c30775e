//! Reports for a store's owners and managers: sales per calendar day, the
//! time finished orders spent in each state, orders per weekday and hour,
//! and, for the reports page, the slowest orders and the cancellations of
//! the range. Who may read them is decided here (owners, managers and
//! platform admins; the store's other staff get 403, anyone else 404); the
//! sales and times reports read the store's per-day rollups
//! (`domain::rollup`, at most 366 rows), the hours report and the page the
//! orders of the range in one query over the placing-time index; the
//! figures are computed by `domain::report`, on the store's wall clock.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use ordertrack_domain::report::{
    self, HoursReport, Outcome, ReportOrder, ReportRange, ReportStep, SalesReport, Timeline,
    TimesReport,
};
use ordertrack_domain::rollup::{self, DayRollup, OutcomeRules};
use ordertrack_domain::{OrderId, Role, StoreZone, Workflow};
use ordertrack_store::{
    ReportDaysQuery, ReportQuery, ReportRows, RollupRebuild, StoreRecord, StoreWithSettings,
};
use time::OffsetDateTime;

use crate::{App, AppError, Caller, ErrorCode};

/// How many of the slowest orders the reports page lists.
pub const SLOWEST_LISTED: usize = 10;

/// How many cancellations the reports page lists (the newest).
pub const CANCELLATIONS_LISTED: usize = 50;

/// The dates a report is asked for, as the request spells them
/// (`YYYY-MM-DD`; left out or empty: the defaults of
/// [`ReportRange::from_query`]).
#[derive(Debug, Clone, Default)]
pub struct ReportRequest {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The store and range a report is about.
#[derive(Debug, Clone)]
pub struct ReportScope {
    pub store: StoreRecord,
    /// The store's time zone: the days and hours are on its wall clock.
    pub zone: StoreZone,
    pub range: ReportRange,
}

/// Sales per day.
#[derive(Debug, Clone)]
pub struct SalesView {
    pub scope: ReportScope,
    pub report: SalesReport,
}

/// Time in each state and to done, finished orders only.
#[derive(Debug, Clone)]
pub struct TimesView {
    pub scope: ReportScope,
    pub report: TimesReport,
}

/// Orders per weekday and hour.
#[derive(Debug, Clone)]
pub struct HoursView {
    pub scope: ReportScope,
    pub report: HoursReport,
}

/// One of the slowest finished orders of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowOrder {
    pub id: OrderId,
    pub number: String,
    pub placed_at: OffsetDateTime,
    pub to_done_seconds: i64,
}

/// A cancelled order of a range, with who cancelled it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub id: OrderId,
    pub number: String,
    pub placed_at: OffsetDateTime,
    /// When it was cancelled (`None` if its history does not say).
    pub cancelled_at: Option<OffsetDateTime>,
    pub by: Option<Role>,
    pub reason: Option<String>,
    pub total_minor: i64,
}

/// Everything the reports page shows, from one read of the range.
#[derive(Debug, Clone)]
pub struct ReportsOverview {
    pub scope: ReportScope,
    pub sales: SalesReport,
    pub times: TimesReport,
    pub hours: HoursReport,
    /// Slowest first, at most [`SLOWEST_LISTED`].
    pub slowest: Vec<SlowOrder>,
    /// Newest first, at most [`CANCELLATIONS_LISTED`].
    pub cancellations: Vec<Cancellation>,
}

/// The workflows the orders of a range run under, by version: what decides
/// whether an order is done or cancelled.
struct OrderWorkflows(HashMap<i64, Arc<Workflow>>);

impl OrderWorkflows {
    fn of(&self, order: &ReportOrder) -> Option<&Workflow> {
        self.0.get(&order.workflow_version).map(Arc::as_ref)
    }

    fn outcome(&self, order: &ReportOrder) -> Outcome {
        match self.of(order) {
            Some(workflow) if workflow.is_cancelled(&order.status) => Outcome::Cancelled,
            Some(workflow) if workflow.is_done(&order.status) => Outcome::Done,
            _ => Outcome::Open,
        }
    }
}

/// The history of each order, by order (the store returns it grouped).
fn steps_by_order(steps: &[ReportStep]) -> HashMap<OrderId, &[ReportStep]> {
    steps
        .chunk_by(|a, b| a.order_id == b.order_id)
        .filter_map(|chunk| Some((chunk.first()?.order_id, chunk)))
        .collect()
}

impl App {
    /// Authorises a report and reads its range: the store's owners,
    /// managers and platform admins; its other staff get 403, anyone else
    /// 404 (before the dates are looked at). Bad dates are 422
    /// `invalid_date_range`.
    async fn report_scope(
        &self, caller: &Caller, slug: &str, request: &ReportRequest,
    ) -> Result<ReportScope, AppError> {
        let StoreWithSettings { store, settings } = self.store_with_settings(slug).await?;
        let role = self
            .staff_role(caller, &store)
            .map_err(|_| AppError::NotFound("store"))?;
        if !role.reads_reports() {
            return Err(AppError::Forbidden(
                "only owners and managers read a store's reports".into(),
            ));
        }
        let zone = settings.timezone;
        let invalid = |message: String| AppError::invalid(ErrorCode::InvalidDateRange, message);
        let range = ReportRange::from_query(
            request.from.as_deref(),
            request.to.as_deref(),
            &zone,
            crate::now(),
        )
        .map_err(|e| invalid(e.to_string()))?;
        if range.bounds(&zone).is_none() {
            return Err(invalid(format!(
                "{} to {} is out of reach",
                range.from(),
                range.to()
            )));
        }
        Ok(ReportScope { store, zone, range })
    }

    /// The raw rows of a report's range (every order placed in it, and
    /// with `with_history` their history).
    async fn scope_rows(
        &self, scope: &ReportScope, with_history: bool,
    ) -> Result<ReportRows, AppError> {
        let (from, until) = scope
            .range
            .bounds(&scope.zone)
            .ok_or_else(|| AppError::Internal("a checked range is out of reach".into()))?;
        Ok(self
            .repo
            .report_rows(ReportQuery {
                store: scope.store.id,
                from,
                until,
                with_history,
            })
            .await?)
    }

    /// Authorises a report and reads its raw rows (see
    /// [`App::report_scope`]).
    async fn read_report(
        &self, caller: &Caller, slug: &str, request: &ReportRequest, with_history: bool,
    ) -> Result<(ReportScope, ReportRows), AppError> {
        let scope = self.report_scope(caller, slug, request).await?;
        let rows = self.scope_rows(&scope, with_history).await?;
        Ok((scope, rows))
    }

    /// The per-day rollups of a report's range (one read of at most 366
    /// rows), or `None` while the store's are not built in its current
    /// time zone (then the report reads the orders).
    async fn scope_days(
        &self, scope: &ReportScope, with_times: bool,
    ) -> Result<Option<HashMap<rollup::Date, DayRollup>>, AppError> {
        let found = self
            .repo
            .report_days(ReportDaysQuery {
                store: scope.store.id,
                from: scope.range.from().to_string(),
                to: scope.range.to().to_string(),
                with_times,
            })
            .await?;
        if found.built_in.as_deref() != Some(scope.zone.name()) {
            return Ok(None);
        }
        Ok(Some(rollup::days_by_date(found.days)))
    }

    /// Rebuilds a store's per-day rollups from all its orders, in its
    /// current time zone (after the zone changed, or when an older
    /// database has none). Writes of the store's orders wait meanwhile.
    pub async fn rebuild_report_rollups(&self, store: &StoreRecord) -> Result<(), AppError> {
        let latest = self
            .repo
            .latest_store_workflow(store.id)
            .await?
            .map_or(0, |stored| stored.version);
        let mut rules = Vec::new();
        for version in 0..=latest {
            // A version that cannot be read classifies its orders as open,
            // as the reports read from the orders do.
            if let Ok(workflow) = self.workflow_at(store, version).await {
                rules.push((version, OutcomeRules::of(&workflow)));
            }
        }
        self.repo
            .rebuild_report_days(RollupRebuild {
                store: store.id,
                rules,
            })
            .await?;
        Ok(())
    }

    /// Builds the rollups of every store that has none in its current time
    /// zone (at start: a database from before rollups, or a zone change
    /// whose rebuild did not finish). Returns how many were rebuilt.
    pub async fn ensure_report_rollups(&self) -> Result<usize, AppError> {
        let mut rebuilt = 0;
        for StoreWithSettings { store, settings } in self.repo.stores_with_settings().await? {
            // An empty range: only the zone they were built in is read.
            let built_in = self
                .repo
                .report_days(ReportDaysQuery {
                    store: store.id,
                    from: "1".into(),
                    to: "0".into(),
                    with_times: false,
                })
                .await?
                .built_in;
            if built_in.as_deref() != Some(settings.timezone.name()) {
                self.rebuild_report_rollups(&store).await?;
                rebuilt += 1;
            }
        }
        Ok(rebuilt)
    }

    /// The workflow of every version the orders of `rows` run under.
    async fn order_workflows(
        &self, store: &StoreRecord, rows: &ReportRows,
    ) -> Result<OrderWorkflows, AppError> {
        let mut workflows = HashMap::new();
        for order in &rows.orders {
            if let Entry::Vacant(slot) = workflows.entry(order.workflow_version) {
                slot.insert(self.workflow_at(store, order.workflow_version).await?);
            }
        }
        Ok(OrderWorkflows(workflows))
    }

    /// The timelines of the finished orders of `rows` and the state order
    /// (the store's current workflow's) to list them in.
    async fn timelines(
        &self, store: &StoreRecord, rows: &ReportRows, workflows: &OrderWorkflows,
    ) -> Result<(Vec<Timeline>, Vec<String>), AppError> {
        let steps = steps_by_order(&rows.steps);
        let timelines = rows
            .orders
            .iter()
            .filter(|order| workflows.outcome(order) == Outcome::Done)
            .filter_map(|order| {
                let workflow = workflows.of(order)?;
                report::timeline(order.id, steps.get(&order.id)?, |s| workflow.is_done(s))
            })
            .collect();
        let current = self.current_workflow(store).await?.workflow;
        let order = current.states().iter().map(|s| s.key.to_string()).collect();
        Ok((timelines, order))
    }

    fn sales_of(rows: &ReportRows, scope: &ReportScope, workflows: &OrderWorkflows) -> SalesReport {
        report::sales_report(
            &scope.range,
            &scope.zone,
            rows.orders
                .iter()
                .map(|o| (o.placed_at, o.total_minor, workflows.outcome(o))),
        )
    }

    /// Sales per calendar day of the range (owners and managers).
    pub async fn sales_report(
        &self, caller: &Caller, slug: &str, request: &ReportRequest,
    ) -> Result<SalesView, AppError> {
        let scope = self.report_scope(caller, slug, request).await?;
        if let Some(days) = self.scope_days(&scope, false).await? {
            let report = rollup::sales_from_days(&scope.range, &days);
            return Ok(SalesView { scope, report });
        }
        let rows = self.scope_rows(&scope, false).await?;
        let workflows = self.order_workflows(&scope.store, &rows).await?;
        let report = Self::sales_of(&rows, &scope, &workflows);
        Ok(SalesView { scope, report })
    }

    /// Time in each state and to done over the orders placed in the range
    /// that are done (owners and managers).
    pub async fn times_report(
        &self, caller: &Caller, slug: &str, request: &ReportRequest,
    ) -> Result<TimesView, AppError> {
        let scope = self.report_scope(caller, slug, request).await?;
        if let Some(days) = self.scope_days(&scope, true).await? {
            let current = self.current_workflow(&scope.store).await?.workflow;
            let order: Vec<&str> = current.states().iter().map(|s| s.key.as_str()).collect();
            let report = rollup::times_from_days(days.values().map(|day| &day.times), &order);
            return Ok(TimesView { scope, report });
        }
        let rows = self.scope_rows(&scope, true).await?;
        let workflows = self.order_workflows(&scope.store, &rows).await?;
        let (timelines, order) = self.timelines(&scope.store, &rows, &workflows).await?;
        let order: Vec<&str> = order.iter().map(String::as_str).collect();
        let report = report::times_report(&timelines, &order);
        Ok(TimesView { scope, report })
    }

    /// Orders placed in the range per weekday and hour (owners and
    /// managers).
    pub async fn hours_report(
        &self, caller: &Caller, slug: &str, request: &ReportRequest,
    ) -> Result<HoursView, AppError> {
        let (scope, rows) = self.read_report(caller, slug, request, false).await?;
        let report = report::hours_report(&scope.zone, rows.orders.iter().map(|o| o.placed_at));
        Ok(HoursView { scope, report })
    }

    /// Every report of the range, the slowest orders and the cancellations,
    /// from one read (the reports page; owners and managers).
    pub async fn reports_overview(
        &self, caller: &Caller, slug: &str, request: &ReportRequest,
    ) -> Result<ReportsOverview, AppError> {
        let (scope, rows) = self.read_report(caller, slug, request, true).await?;
        let workflows = self.order_workflows(&scope.store, &rows).await?;
        let sales = Self::sales_of(&rows, &scope, &workflows);
        let hours = report::hours_report(&scope.zone, rows.orders.iter().map(|o| o.placed_at));
        let (timelines, order) = self.timelines(&scope.store, &rows, &workflows).await?;
        let state_order: Vec<&str> = order.iter().map(String::as_str).collect();
        let times = report::times_report(&timelines, &state_order);
        let orders: HashMap<OrderId, &ReportOrder> =
            rows.orders.iter().map(|o| (o.id, o)).collect();
        let slowest = report::slowest(&timelines, SLOWEST_LISTED)
            .into_iter()
            .filter_map(|timeline| {
                let order = orders.get(&timeline.order)?;
                Some(SlowOrder {
                    id: order.id,
                    number: order.number.clone(),
                    placed_at: order.placed_at,
                    to_done_seconds: timeline.to_done_seconds,
                })
            })
            .collect();
        let steps = steps_by_order(&rows.steps);
        let cancellations = rows
            .orders
            .iter()
            .rev()
            .filter(|order| workflows.outcome(order) == Outcome::Cancelled)
            .take(CANCELLATIONS_LISTED)
            .map(|order| {
                let cancel = workflows.of(order).and_then(|workflow| {
                    report::cancellation(steps.get(&order.id).copied().unwrap_or_default(), |s| {
                        workflow.is_cancelled(s)
                    })
                });
                Cancellation {
                    id: order.id,
                    number: order.number.clone(),
                    placed_at: order.placed_at,
                    cancelled_at: cancel.map(|entry| entry.at),
                    by: cancel.map(|entry| entry.actor.role),
                    reason: cancel.and_then(|entry| entry.note.clone()),
                    total_minor: order.total_minor,
                }
            })
            .collect();
        Ok(ReportsOverview {
            scope,
            sales,
            times,
            hours,
            slowest,
            cancellations,
        })
    }
}
