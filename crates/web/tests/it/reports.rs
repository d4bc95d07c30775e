//! Reports (sales per day, time in each state, orders per weekday and
//! hour) checked against figures worked out by hand on a fixed history:
//! two stores in two time zones — Berlin across its spring-forward night
//! (29 March 2026, a 23-hour day) and New York across its own (8 March
//! 2026) — with orders placed and moved at chosen instants (written through
//! the store, as the application would, since the application reads the
//! clock). Also: CSV says what JSON says, who may read reports, bad
//! ranges, and the reports page with its charts and tables.

use ordertrack_domain::{Actor, Order, Role, StoreZone, UserId, Workflow};
use ordertrack_store::{Product, ReportDaysQuery, StoreRecord, StoreSettingsPatch};
use reqwest::header::ACCEPT;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::*;

const BERLIN: &str = "berlin-books";
const NEW_YORK: &str = "ny-news";
/// Berlin's range: the day before, of and after the change, and an empty day.
const BERLIN_RANGE: &str = "from=2026-03-28&to=2026-03-31";
/// New York's range: the day before and of the change.
const NEW_YORK_RANGE: &str = "from=2026-03-07&to=2026-03-08";

fn retail() -> Workflow {
    Workflow::builtin("retail").expect("the built-in retail workflow")
}

/// A retail store in `zone` with its staff, the staffed store's products
/// (House Burger 12.00, Chips 4.00, Cola 3.00) and a Bookmark at 1.05 (an
/// odd price, so an average can end in a half).
struct Shop {
    staff: StaffedStore,
    record: StoreRecord,
    /// [`BURGER`], [`CHIPS`], [`COLA`], [`BOOKMARK`].
    products: Vec<Product>,
}

impl Shop {
    async fn open(app: &TestApp, slug: &str, prefix: &str, zone: &str) -> Shop {
        let staff = app.staffed_store(slug, "retail", prefix).await;
        let record = app.store_record(slug).await;
        app.store
            .update_store_settings(
                record.id,
                StoreSettingsPatch {
                    timezone: Some(StoreZone::parse(zone).expect("a time zone")),
                    ..StoreSettingsPatch::default()
                },
            )
            .await
            .expect("set the time zone")
            .expect("the store exists");
        // Set straight in the store, the zone leaves the per-day rollups
        // stale (the reports would read the orders): rebuild them as the
        // settings API does, so the reports below read the rollups.
        app.app
            .rebuild_report_rollups(&record)
            .await
            .expect("rebuild the rollups");
        assert_eq!(rollups_zone(app, &record).await.as_deref(), Some(zone));
        let mut products = staff.products.clone();
        products.push(app.add_product(&record, "Bookmark", 105, "counter").await);
        Shop {
            staff,
            record,
            products,
        }
    }

    fn actor(user: &User, role: Role) -> Actor {
        Actor {
            id: UserId::new(user.id),
            role,
        }
    }

    fn cashier(&self) -> Actor {
        Shop::actor(&self.staff.cashier, Role::Cashier)
    }

    fn manager(&self) -> Actor {
        Shop::actor(&self.staff.manager, Role::Manager)
    }
}

/// What happens to an order of the fixture after it is placed.
#[derive(Clone, Copy)]
enum Then {
    /// Nothing: it stays pending.
    Pending,
    /// Confirmed this many seconds later, then nothing.
    Confirmed(i64),
    /// Confirmed, processing, shipped, delivered: each this many seconds
    /// after the step before (by the cashier).
    Delivered([i64; 4]),
    /// Cancelled this many seconds later, by whom, and why.
    Cancelled(i64, Who, Option<&'static str>),
}

/// A status change of [`TestApp::walk`].
type Step = WalkStep<'static>;

/// An order's lines: indices into [`Shop::products`] and quantities.
type Lines = &'static [(usize, u32)];

/// Who cancels.
#[derive(Clone, Copy)]
enum Who {
    Cashier,
    Manager,
    Customer,
}

impl Shop {
    /// Places an order of `lines` (product, quantity) for `customer` at
    /// `at`, then `then`.
    async fn order(
        &self, app: &TestApp, customer: &User, at: OffsetDateTime, lines: &[(usize, u32)],
        then: Then,
    ) -> Order {
        let lines: Vec<(&Product, u32)> = lines
            .iter()
            .map(|(i, n)| (&self.products[*i], *n))
            .collect();
        let placed = app
            .place_at(
                &self.record,
                &retail(),
                UserId::new(customer.id),
                &lines,
                at,
            )
            .await;
        let (actor, steps): (Actor, Vec<Step>) = match then {
            Then::Pending => return placed,
            Then::Confirmed(after) => (self.cashier(), vec![("confirmed", after, None)]),
            Then::Delivered(gaps) => (
                self.cashier(),
                ["confirmed", "processing", "shipped", "delivered"]
                    .into_iter()
                    .zip(gaps)
                    .map(|(to, after)| (to, after, None))
                    .collect(),
            ),
            Then::Cancelled(after, who, reason) => {
                let actor = match who {
                    Who::Cashier => self.cashier(),
                    Who::Manager => self.manager(),
                    Who::Customer => Shop::actor(customer, Role::Customer),
                };
                (actor, vec![("cancelled", after, reason)])
            }
        };
        app.walk(&retail(), placed, actor, &steps).await
    }
}

/// The two stores and the orders whose numbers and ids tests look for.
struct Fixture {
    berlin: Shop,
    new_york: Shop,
    /// Berlin's finished orders, slowest to done first.
    berlin_slowest: [Order; 3],
}

// Indices into [`Shop::products`].
const BURGER: usize = 0;
const CHIPS: usize = 1;
const COLA: usize = 2;
const BOOKMARK: usize = 3;

/// The history. Berlin is UTC+1 until 01:00 UTC on 29 March, UTC+2 after;
/// New York UTC−5 until 07:00 UTC on 8 March, UTC−4 after. Local times in
/// the comments.
async fn fixture(app: &TestApp) -> Fixture {
    use Then::*;
    use Who::*;
    let berlin = Shop::open(app, BERLIN, "B", "Europe/Berlin").await;
    let new_york = Shop::open(app, NEW_YORK, "N", "America/New_York").await;
    let alice = app.alice().await;
    let (b, n) = (&berlin, &new_york);
    let out_of_stock = Some("Out of stock");
    let duplicate = Some("Customer called, duplicate");
    // A table: one order a line.
    #[rustfmt::skip]
    let history: [(&Shop, OffsetDateTime, Lines, Then); 15] = [
        // Fri 27 March 23:30: the day before the range.
        (b, datetime!(2026-03-27 22:30 UTC), &[(BURGER, 1)], Delivered([60; 4])),
        // [1] Sat 28 March 11:00: 12.00, delivered after 2 + 10 + 30 + 60 min.
        (b, datetime!(2026-03-28 10:00 UTC), &[(BURGER, 1)], Delivered([120, 600, 1800, 3600])),
        // Sat 28 March 23:59:59: 4.00, cancelled.
        (b, datetime!(2026-03-28 22:59:59 UTC), &[(CHIPS, 1)], Cancelled(300, Cashier, out_of_stock)),
        // [3] Sun 29 March 00:00 (CET): 1.05, delivered after 1 + 4 + 5 + 20 min.
        (b, datetime!(2026-03-28 23:00 UTC), &[(BOOKMARK, 1)], Delivered([60, 240, 300, 1200])),
        // Sun 29 March 03:30 (CEST, just after the gap): 12.00, still open.
        (b, datetime!(2026-03-29 01:30 UTC), &[(BURGER, 1)], Confirmed(180)),
        // Sun 29 March 23:59: 3.00, cancelled by the manager.
        (b, datetime!(2026-03-29 21:59 UTC), &[(COLA, 1)], Cancelled(60, Manager, duplicate)),
        // [6] Mon 30 March 00:00: 16.00, delivered after 0.5 + 1.5 + 10 + 40 min.
        (b, datetime!(2026-03-29 22:00 UTC), &[(BURGER, 1), (CHIPS, 1)], Delivered([30, 90, 600, 2400])),
        // Mon 30 March 23:59:59: 4.00, pending.
        (b, datetime!(2026-03-30 21:59:59 UTC), &[(CHIPS, 1)], Pending),
        // Wed 1 April 00:00: after the range.
        (b, datetime!(2026-03-31 22:00 UTC), &[(COLA, 1)], Pending),
        // Fri 6 March 23:59:59 (EST): before the range.
        (n, datetime!(2026-03-07 04:59:59 UTC), &[(COLA, 1)], Pending),
        // Sat 7 March 23:59:59 (EST): 12.00, delivered after 10 min a step.
        (n, datetime!(2026-03-08 04:59:59 UTC), &[(BURGER, 1)], Delivered([600; 4])),
        // Sun 8 March 00:00 (EST): 3.00, cancelled by the customer.
        (n, datetime!(2026-03-08 05:00 UTC), &[(COLA, 1)], Cancelled(30, Customer, None)),
        // Sun 8 March 03:30 (EDT): 1.05, delivered after 1 min a step.
        (n, datetime!(2026-03-08 07:30 UTC), &[(BOOKMARK, 1)], Delivered([60; 4])),
        // Sun 8 March 23:59:59 (EDT): 4.00, pending.
        (n, datetime!(2026-03-09 03:59:59 UTC), &[(CHIPS, 1)], Pending),
        // Mon 9 March 00:00 (EDT): after the range.
        (n, datetime!(2026-03-09 04:00 UTC), &[(CHIPS, 1)], Pending),
    ];
    let mut placed = Vec::new();
    for (shop, at, lines, then) in history {
        placed.push(shop.order(app, &alice, at, lines, then).await);
    }
    let berlin_slowest = [placed[1].clone(), placed[6].clone(), placed[3].clone()];
    Fixture {
        berlin,
        new_york,
        berlin_slowest,
    }
}

/// A server with the demo and the [`fixture`]'s history.
async fn with_history() -> (TestApp, Fixture) {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    (app, f)
}

fn report_path(slug: &str, report: &str, query: &str) -> String {
    format!("/stores/{slug}/reports/{report}?{query}")
}

/// A report as JSON, for `token` (asserts 200).
async fn report(app: &TestApp, token: &str, slug: &str, report: &str, query: &str) -> Value {
    app.get(&report_path(slug, report, query), token)
        .await
        .expect(200)
}

fn day(date: &str, figures: [i64; 5]) -> Value {
    let mut value = totals(figures);
    value["date"] = json!(date);
    value
}

/// A sales report in euros: its days and totals.
fn sales(days: &[(&str, [i64; 5])], all: [i64; 5]) -> Value {
    json!({
        "currency": "EUR",
        "days": days.iter().map(|(date, figures)| day(date, *figures)).collect::<Vec<_>>(),
        "totals": totals(all),
    })
}

/// The zone a store's per-day rollups are built in (`None`: not built).
async fn rollups_zone(app: &TestApp, store: &StoreRecord) -> Option<String> {
    app.store
        .report_days(ReportDaysQuery {
            store: store.id,
            from: "1".into(),
            to: "0".into(),
            with_times: false,
        })
        .await
        .expect("report_days")
        .built_in
}

fn totals(figures: [i64; 5]) -> Value {
    json!({
        "orders": figures[0],
        "completed": figures[1],
        "cancelled": figures[2],
        "revenue_minor": figures[3],
        "average_minor": figures[4],
    })
}

#[tokio::test]
async fn sales_follow_each_stores_calendar_days_across_dst() {
    let (app, f) = with_history().await;
    let owner = owner_of(&f.berlin);

    // 28th: 12.00 delivered, 4.00 cancelled. 29th (23 hours): 1.05
    // delivered, 12.00 open, 3.00 cancelled — 13.05 over 2 orders is 6.525,
    // rounded half up. 30th: 16.00 delivered, 4.00 open. 31st: nothing.
    assert_eq!(
        report(&app, owner, BERLIN, "sales", BERLIN_RANGE).await,
        sales(
            &[
                ("2026-03-28", [2, 1, 1, 1200, 1200]),
                ("2026-03-29", [3, 1, 1, 1305, 653]),
                ("2026-03-30", [2, 1, 0, 2000, 1000]),
                ("2026-03-31", [0, 0, 0, 0, 0]),
            ],
            [7, 3, 2, 4505, 901],
        )
    );

    // New York: 7th 12.00 delivered; 8th (23 hours) 3.00 cancelled, 1.05
    // delivered, 4.00 open — 5.05 over 2 is 2.525; 17.05 over 3 is 5.683.
    let manager = &f.new_york.staff.manager.token;
    assert_eq!(
        report(&app, manager, NEW_YORK, "sales", NEW_YORK_RANGE).await,
        json!({
            "currency": "EUR",
            "days": [
                day("2026-03-07", [1, 1, 0, 1200, 1200]),
                day("2026-03-08", [3, 1, 1, 505, 253]),
            ],
            "totals": totals([4, 2, 1, 1705, 568]),
        })
    );

    // One day: the DST day alone.
    let sunday = report(
        &app,
        owner,
        BERLIN,
        "sales",
        "from=2026-03-29&to=2026-03-29",
    )
    .await;
    assert_eq!(
        sunday["days"],
        json!([day("2026-03-29", [3, 1, 1, 1305, 653])])
    );
    assert_eq!(sunday["totals"], totals([3, 1, 1, 1305, 653]));
}

#[tokio::test]
async fn a_time_zone_change_moves_the_orders_to_the_new_calendar_days() {
    let (app, f) = with_history().await;
    let owner = owner_of(&f.berlin);
    app.patch(
        &format!("/stores/{BERLIN}"),
        owner,
        &json!({"timezone": "UTC"}),
    )
    .await
    .expect(200);
    // On UTC's calendar: the 28th gains the Bookmark placed at Berlin's
    // midnight (23:00 UTC); the 29th the 16.00 placed at 22:00 UTC; the
    // 31st the Cola placed at 22:00 UTC (1 April in Berlin). 28th: 12.00
    // delivered, 4.00 cancelled, 1.05 delivered; 29th: 12.00 open, 3.00
    // cancelled, 16.00 delivered; 30th: 4.00 open; 31st: 3.00 open.
    assert_eq!(
        report(&app, owner, BERLIN, "sales", BERLIN_RANGE).await,
        sales(
            &[
                ("2026-03-28", [3, 2, 1, 1305, 653]),
                ("2026-03-29", [3, 1, 1, 2800, 1400]),
                ("2026-03-30", [1, 0, 0, 400, 400]),
                ("2026-03-31", [1, 0, 0, 300, 300]),
            ],
            [8, 3, 2, 4805, 801],
        )
    );
    assert_eq!(
        rollups_zone(&app, &f.berlin.record).await.as_deref(),
        Some("UTC"),
        "rebuilt on the new clock"
    );
}

fn spread(count: i64, p50: i64, p90: i64) -> Value {
    json!({"count": count, "p50_seconds": p50, "p90_seconds": p90})
}

fn state(status: &str, count: i64, p50: i64, p90: i64) -> Value {
    let mut value = spread(count, p50, p90);
    value["status"] = json!(status);
    value
}

#[tokio::test]
async fn times_are_percentiles_over_finished_orders() {
    let (app, f) = with_history().await;
    let owner = owner_of(&f.berlin);

    let times = report(&app, owner, BERLIN, "times", BERLIN_RANGE).await;
    // Delivered in range: B2 (120, 600, 1800, 3600 s), B4 (60, 240, 300,
    // 1200), B7 (30, 90, 600, 2400); nearest rank of three: p50 the
    // second, p90 the third. Open and cancelled orders do not count.
    assert_eq!(
        times,
        json!({
            "states": [
                state("pending", 3, 60, 120),
                state("confirmed", 3, 240, 600),
                state("processing", 3, 600, 1800),
                state("shipped", 3, 2400, 3600),
            ],
            "to_done": spread(3, 3120, 6120),
        })
    );
    // The DST day alone: B4.
    assert_eq!(
        report(
            &app,
            owner,
            BERLIN,
            "times",
            "from=2026-03-29&to=2026-03-29"
        )
        .await["to_done"],
        spread(1, 1800, 1800)
    );
    // New York: N1 (600 a step) and N3 (60 a step); of two, p50 is the
    // first, p90 the second.
    let times = report(
        &app,
        owner_of(&f.new_york),
        NEW_YORK,
        "times",
        NEW_YORK_RANGE,
    )
    .await;
    assert_eq!(times["states"][0], state("pending", 2, 60, 600));
    assert_eq!(times["to_done"], spread(2, 240, 2400));
    // No finished order: nothing to measure.
    assert_eq!(
        report(
            &app,
            owner,
            BERLIN,
            "times",
            "from=2026-03-31&to=2026-03-31"
        )
        .await,
        json!({
            "states": [],
            "to_done": {"count": 0, "p50_seconds": null, "p90_seconds": null},
        })
    );
}

fn owner_of(shop: &Shop) -> &str {
    &shop.staff.owner.token
}

/// The non-empty cells of an hours report, as `(weekday, hour, orders)`.
fn busy_cells(report: &Value) -> Vec<(String, i64, i64)> {
    report["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .filter(|c| c["orders"] != 0)
        .map(|c| {
            (
                c["weekday"].as_str().expect("weekday").to_owned(),
                c["hour"].as_i64().expect("hour"),
                c["orders"].as_i64().expect("orders"),
            )
        })
        .collect()
}

#[tokio::test]
async fn hours_count_orders_on_the_stores_wall_clock() {
    let (app, f) = with_history().await;

    let berlin = report(&app, owner_of(&f.berlin), BERLIN, "hours", BERLIN_RANGE).await;
    let cells = berlin["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 7 * 24);
    assert_eq!(cells[0], json!({"weekday": "mon", "hour": 0, "orders": 1}));
    assert_eq!(cells[167]["weekday"], "sun");
    assert_eq!(cells[167]["hour"], 23);
    let expected = |cells: &[(&str, i64, i64)]| -> Vec<(String, i64, i64)> {
        cells
            .iter()
            .map(|(d, h, n)| ((*d).to_owned(), *h, *n))
            .collect()
    };
    assert_eq!(
        busy_cells(&berlin),
        expected(&[
            ("mon", 0, 1),
            ("mon", 23, 1),
            ("sat", 11, 1),
            ("sat", 23, 1),
            ("sun", 0, 1),
            ("sun", 3, 1),
            ("sun", 23, 1),
        ])
    );
    let new_york = report(
        &app,
        owner_of(&f.new_york),
        NEW_YORK,
        "hours",
        NEW_YORK_RANGE,
    )
    .await;
    assert_eq!(
        busy_cells(&new_york),
        expected(&[("sat", 23, 1), ("sun", 0, 1), ("sun", 3, 1), ("sun", 23, 1)])
    );
}

/// Reads CSV text (no quoted fields in reports of these stores) into rows
/// of fields; the first is the header.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect()
}

/// A JSON number or null as its CSV field.
fn field(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The CSV a report's JSON must read as (columns as `docs/reports.md`
/// lists them).
fn expected_csv(report: &str, json: &Value) -> Vec<Vec<String>> {
    let figures = [
        "orders",
        "completed",
        "cancelled",
        "revenue_minor",
        "average_minor",
    ];
    let spread = ["count", "p50_seconds", "p90_seconds"];
    let row = |first: Vec<String>, value: &Value, keys: &[&str]| -> Vec<String> {
        first
            .into_iter()
            .chain(keys.iter().map(|k| field(&value[*k])))
            .collect()
    };
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    match report {
        "sales" => {
            let currency = json["currency"].as_str().expect("currency").to_owned();
            let mut rows = vec![strings(&[
                "date",
                "orders",
                "completed",
                "cancelled",
                "revenue_minor",
                "average_minor",
                "currency",
            ])];
            for day in json["days"].as_array().expect("days") {
                let date = day["date"].as_str().expect("date").to_owned();
                let mut line = row(vec![date], day, &figures);
                line.push(currency.clone());
                rows.push(line);
            }
            let mut total = row(vec!["total".to_owned()], &json["totals"], &figures);
            total.push(currency);
            rows.push(total);
            rows
        }
        "times" => {
            let mut rows = vec![strings(&[
                "kind",
                "status",
                "count",
                "p50_seconds",
                "p90_seconds",
            ])];
            for state in json["states"].as_array().expect("states") {
                let status = state["status"].as_str().expect("status").to_owned();
                rows.push(row(vec!["state".to_owned(), status], state, &spread));
            }
            rows.push(row(strings(&["to_done", ""]), &json["to_done"], &spread));
            rows
        }
        _ => {
            let mut rows = vec![strings(&["weekday", "hour", "orders"])];
            for cell in json["cells"].as_array().expect("cells") {
                let weekday = cell["weekday"].as_str().expect("weekday").to_owned();
                rows.push(row(vec![weekday], cell, &["hour", "orders"]));
            }
            rows
        }
    }
}

#[tokio::test]
async fn csv_has_the_same_figures_as_json() {
    let (app, f) = with_history().await;
    let owner = owner_of(&f.berlin);

    for name in ["sales", "times", "hours"] {
        let json = report(&app, owner, BERLIN, name, BERLIN_RANGE).await;
        let expected = expected_csv(name, &json);
        assert!(expected.len() > 2, "{name}: the fixture fills the report");

        // The `.csv` path.
        let by_path = app
            .get(
                &report_path(BERLIN, &format!("{name}.csv"), BERLIN_RANGE),
                owner,
            )
            .await;
        assert_eq!(by_path.status, 200, "{name}.csv");
        assert_eq!(by_path.content_type(), "text/csv; charset=utf-8");
        assert_eq!(
            by_path.header("content-disposition"),
            Some(
                format!("attachment; filename=\"{BERLIN}-{name}-2026-03-28-2026-03-31.csv\"")
                    .as_str()
            )
        );
        assert_eq!(csv_rows(&by_path.text), expected, "{name}.csv");

        // `Accept: text/csv` on the plain path.
        let negotiated = app
            .send(
                app.request(
                    reqwest::Method::GET,
                    &report_path(BERLIN, name, BERLIN_RANGE),
                    owner,
                )
                .header(ACCEPT, "text/csv"),
            )
            .await;
        assert_eq!(negotiated.status, 200, "{name} as text/csv");
        assert_eq!(negotiated.content_type(), "text/csv; charset=utf-8");
        assert_eq!(negotiated.header("vary"), Some("accept"));
        assert_eq!(csv_rows(&negotiated.text), expected, "{name} as text/csv");
    }
}

#[tokio::test]
async fn only_the_stores_owners_and_managers_read_its_reports() {
    let app = spawn_app().await;
    let berlin = Shop::open(&app, BERLIN, "B", "Europe/Berlin").await;
    let other = Shop::open(&app, NEW_YORK, "N", "America/New_York").await;
    let alice = app.alice().await;
    let admin = app.user("admin@demo.test").await;

    let cases: Vec<(&str, &str, u16)> = vec![
        ("owner", &berlin.staff.owner.token, 200),
        ("manager", &berlin.staff.manager.token, 200),
        ("platform admin", &admin.token, 200),
        ("cashier", &berlin.staff.cashier.token, 403),
        ("kitchen", &berlin.staff.kitchen.token, 403),
        ("driver", &berlin.staff.driver.token, 403),
        ("another store's owner", &other.staff.owner.token, 404),
        ("another store's manager", &other.staff.manager.token, 404),
        ("a customer", &alice.token, 404),
        ("nobody", ANON, 401),
    ];
    for name in [
        "sales",
        "times",
        "hours",
        "sales.csv",
        "times.csv",
        "hours.csv",
    ] {
        let path = report_path(BERLIN, name, BERLIN_RANGE);
        for (who, token, status) in &cases {
            let response = app.get(&path, token).await;
            assert_eq!(response.status, *status, "{who}: {name}");
            if *status != 200 {
                assert_eq!(response.content_type(), PROBLEM_JSON, "{who}: {name}");
            }
        }
        // Bad dates do not tell outsiders the store exists.
        let bad = report_path(BERLIN, name, "from=2026-03-31&to=2026-03-01");
        app.get(&bad, &other.staff.owner.token)
            .await
            .expect_problem(404, "not_found");
        app.get(&bad, &berlin.staff.cashier.token)
            .await
            .expect_problem(403, "forbidden");
    }
    // Pages as well.
    for (who, token, status) in [
        ("owner", &berlin.staff.owner.token, 200),
        ("manager", &berlin.staff.manager.token, 200),
        ("cashier", &berlin.staff.cashier.token, 403),
        ("another store's owner", &other.staff.owner.token, 404),
        ("a customer", &alice.token, 404),
    ] {
        let (got, _) = page(&app, token, &format!("/manage/{BERLIN}/reports")).await;
        assert_eq!(got, status, "{who}: the reports page");
    }
}

#[tokio::test]
async fn bad_ranges_are_422() {
    let app = spawn_app().await;
    let berlin = Shop::open(&app, BERLIN, "B", "Europe/Berlin").await;
    let owner = owner_of(&berlin);

    for query in [
        "from=2026-03-31&to=2026-03-01",
        "from=2026-02-30&to=2026-03-01",
        "from=2026-3-1&to=2026-03-02",
        "from=01.03.2026&to=2026-03-02",
        "from=2026-03-01&to=tomorrow",
        "from=2026-03-01T00:00:00Z&to=2026-03-02",
        // 367 days.
        "from=2027-01-01&to=2028-01-02",
        "from=0001-01-01&to=9999-12-31",
    ] {
        for name in ["sales", "times", "hours.csv"] {
            app.get(&report_path(BERLIN, name, query), owner)
                .await
                .expect_problem(422, "invalid_date_range");
        }
    }
    // A leap year is 366 days: allowed.
    let leap = report(
        &app,
        owner,
        BERLIN,
        "sales",
        "from=2028-01-01&to=2028-12-31",
    )
    .await;
    assert_eq!(leap["days"].as_array().map(Vec::len), Some(366));
    // Dates left out: the week to today.
    let week = report(&app, owner, BERLIN, "sales", "").await;
    assert_eq!(week["days"].as_array().map(Vec::len), Some(7));
    // Unknown parameters and reports.
    app.get(&report_path(BERLIN, "sales", "since=2026-03-01"), owner)
        .await
        .expect_problem(400, "invalid_query");
    app.get(&report_path(BERLIN, "profits", BERLIN_RANGE), owner)
        .await
        .expect_problem(404, "not_found");
    // The page shows the form again, with what is wrong.
    let (status, html) = page(
        &app,
        owner,
        &format!("/manage/{BERLIN}/reports?from=2026-03-31&to=2026-03-01"),
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("after it ends"), "{html}");
    assert!(html.contains("type=\"date\""));
}

#[tokio::test]
async fn the_reports_page_draws_each_chart_beside_its_table() {
    let (app, f) = with_history().await;
    let owner = owner_of(&f.berlin);

    let (status, manage) = page(&app, owner, &format!("/manage/{BERLIN}")).await;
    assert_eq!(status, 200);
    assert!(manage.contains(&format!("href=\"/manage/{BERLIN}/reports\"")));

    let (status, html) = page(
        &app,
        owner,
        &format!("/manage/{BERLIN}/reports?{BERLIN_RANGE}"),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "sales, hours and times charts"
    );
    assert!(
        html.matches("<table").count() >= 5,
        "a table per chart, slowest, cancellations"
    );
    for text in [
        "Sales per day",
        "Orders per hour",
        "Time in each state",
        "value=\"2026-03-28\"",
        "value=\"2026-03-31\"",
        // Totals and the rounded average of the DST day.
        "45.05 EUR",
        "6.53 EUR",
        "Europe/Berlin",
        // Cancellations with their reasons.
        "Out of stock",
        "Customer called, duplicate",
        "sales.csv?from=2026-03-28&amp;to=2026-03-31",
    ] {
        assert!(html.contains(text), "the page shows {text}");
    }
    // The slowest orders, slowest first, each linked.
    let positions: Vec<usize> = f
        .berlin_slowest
        .iter()
        .map(|order| {
            html.find(&format!("href=\"/orders/{}\"", order.id))
                .unwrap_or_else(|| panic!("{} is linked", order.number))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "slowest first: {positions:?}"
    );
    // SVG elements are closed (`<rect …></rect>`), so browsers keep them
    // siblings rather than nesting each in the one before.
    assert!(!html.contains("<rect") || html.contains("</rect>"));
    // Nothing fetched from elsewhere.
    assert!(!html.contains("https://"));
}

/// The page in Chromium: three charts laid out with their bars and heat
/// map cells drawn (each SVG element a sibling, not nested in the one
/// before), shot at phone and desktop width (`screenshots/reports-*.png`).
#[tokio::test(flavor = "multi_thread")]
async fn the_reports_page_draws_its_charts_in_a_browser() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let app = spawn_app_alone().await;
    fixture(&app).await;
    let owner = chrome.person().await;
    let page = &owner.page;
    sign_in(page, &app, &format!("owner@{BERLIN}.test")).await;
    goto(
        page,
        &app.page_url(&format!("/manage/{BERLIN}/reports?{BERLIN_RANGE}")),
    )
    .await;
    let drawn = eval(
        page,
        "(() => {
            const charts = [...document.querySelectorAll('svg.chart')];
            const tall = (r) => r.getBBox().height > 0;
            return {
                charts: charts.length,
                laid_out: charts.every((c) => c.getBoundingClientRect().height > 50),
                revenue_bars: [...document.querySelectorAll('svg.chart rect.bar')].filter(tall).length,
                heat_cells: document.querySelectorAll('svg.chart rect.heat').length,
                time_bars: [...document.querySelectorAll('svg.chart rect.p90')].filter((r) => r.getBBox().width > 0).length,
                nested: document.querySelectorAll('svg.chart rect rect').length,
            };
        })()",
    )
    .await;
    // Three days with revenue of four; four states and placed → done.
    assert_eq!(
        drawn,
        json!({
            "charts": 3,
            "laid_out": true,
            "revenue_bars": 3,
            "heat_cells": 168,
            "time_bars": 5,
            "nested": 0,
        }),
        "{}",
        describe(page).await
    );
    let written = screenshots(page, "reports").await;
    for path in &written {
        let size = std::fs::metadata(path).expect("screenshot written").len();
        assert!(size > 1000, "{} is only {size} bytes", path.display());
    }
    chrome.close().await;
}
