//! Network printers (issue 14): a store's printers get, when an order
//! enters the print trigger, each station's ticket with only its items and
//! the counter the receipt — real TCP listeners here, their ESC/POS read
//! back; a printer that refuses connections never holds up an order, shows
//! "failed" with the reason, and prints once it is back; printer addresses
//! only on hosts the operator allows; who may set printers up and reprint;
//! a restart neither loses nor repeats a job.

use std::time::{Duration, Instant};

use ordertrack_app::printing::PrintSettings;
use serde_json::{Value, json};

use crate::support::*;

/// Printing as the tests run it: printers on the loopback interface, a
/// failed job retried after 100 ms, never given up during a test.
fn quick_printing(hosts: &str) -> PrintSettings {
    PrintSettings {
        hosts: hosts.parse().expect("a host list"),
        retry_delays: vec![Duration::from_millis(100)],
        max_attempts: 10_000,
        connect_timeout: Duration::from_secs(2),
        write_timeout: Duration::from_secs(2),
        poll_interval: Duration::from_millis(200),
    }
}

async fn printing_app(hosts: &str) -> TestApp {
    spawn_app_guarded(Guards {
        printing: quick_printing(hosts),
        ..Guards::default()
    })
    .await
}

/// `POST /stores/{slug}/printers` as `token`.
async fn add_printer(app: &TestApp, slug: &str, token: &str, body: Value) -> Resp {
    app.post(&format!("/stores/{slug}/printers"), token, &body)
        .await
}

/// Adds a printer at `addr` for `stations` (and the receipt) as the owner.
async fn printer_at(
    app: &TestApp, store: &StaffedStore, name: &str, addr: std::net::SocketAddr, stations: &[&str],
    receipts: bool,
) -> Value {
    add_printer(
        app,
        &store.slug,
        &store.owner.token,
        json!({"name": name, "address": addr.to_string(), "stations": stations, "receipts": receipts}),
    )
    .await
    .expect(201)
}

/// Two burgers (one without onions), chips and a cola, placed by Alice.
async fn burger_order(app: &TestApp, store: &StaffedStore, alice: &User) -> Value {
    let ids = store.product_ids();
    let mut body = pickup(&store.slug, &[(ids[0], 2), (ids[1], 1), (ids[2], 1)]);
    body["items"][0]["notes"] = json!("no onions");
    app.place(&alice.token, &body).await.expect(201)
}

async fn print_jobs(app: &TestApp, token: &str, order: &Value) -> Vec<Value> {
    app.get(&format!("/orders/{}/print-jobs", id(order)), token)
        .await
        .expect(200)
        .as_array()
        .expect("a list")
        .clone()
}

/// Polls the order's print jobs until `done` holds (20 s at most).
async fn jobs_until(
    app: &TestApp, token: &str, order: &Value, what: &str, done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let jobs = print_jobs(app, token, order).await;
        if done(&jobs) {
            return jobs;
        }
        assert!(Instant::now() < deadline, "{what}: {jobs:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all_printed(jobs: &[Value], count: usize) -> bool {
    jobs.len() == count && jobs.iter().all(|job| job["status"] == "printed")
}

fn number(order: &Value) -> &str {
    order["number"].as_str().expect("an order number")
}

#[tokio::test]
async fn each_station_s_printer_gets_a_ticket_with_only_its_items_and_the_counter_the_receipt() {
    let app = printing_app("127.0.0.1").await;
    let store = app.staffed_store("print-stations", "restaurant", "P").await;
    let alice = app.alice().await;
    let mut grill = TestPrinter::start().await;
    let mut fryer = TestPrinter::start().await;
    let mut counter = TestPrinter::start().await;
    let added = printer_at(&app, &store, "Grill", grill.addr, &["Grill"], false).await;
    assert_eq!(added["address"], grill.addr.to_string());
    assert_eq!(added["stations"], json!(["grill"]));
    assert_eq!(
        (added["receipts"].clone(), added["enabled"].clone()),
        (json!(false), json!(true))
    );
    printer_at(&app, &store, "Fryer", fryer.addr, &["fryer"], false).await;
    printer_at(&app, &store, "Counter", counter.addr, &["drinks"], true).await;
    let listed = app
        .get(
            &format!("/stores/{}/printers", store.slug),
            &store.manager.token,
        )
        .await
        .expect(200);
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    assert_eq!(
        app.store_detail(&store.slug).await["print_trigger"],
        "confirmed"
    );

    // Placed: nothing prints until the order is confirmed.
    let order = burger_order(&app, &store, &alice).await;
    assert!(
        print_jobs(&app, &store.cashier.token, &order)
            .await
            .is_empty()
    );
    let confirmed = app.advance(&store.cashier.token, &order, "confirmed").await;

    let placed = time::OffsetDateTime::parse(
        order["created_at"].as_str().expect("a time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    let store_time = ordertrack_domain::StoreZone::utc().receipt_time(placed);
    let ticket = grill.next().await;
    for line in [
        number(&order),
        "Station: grill",
        "Pickup at the counter",
        &store_time,
    ] {
        assert!(
            ticket.has_line(line),
            "the grill ticket lacks {line:?}: {ticket:#?}"
        );
    }
    assert_eq!(ticket.items(), ["2 x House Burger"], "{ticket:#?}");
    assert!(ticket.has_line("  ! no onions"), "{ticket:#?}");
    let ticket = fryer.next().await;
    assert!(ticket.has_line(number(&order)) && ticket.has_line("Station: fryer"));
    assert_eq!(ticket.items(), ["1 x Chips"], "{ticket:#?}");
    assert!(!ticket.mentions("no onions"));

    // The counter prints the drinks ticket, then the receipt.
    let drinks = counter.next().await;
    assert!(drinks.has_line("Station: drinks"), "{drinks:#?}");
    assert_eq!(drinks.items(), ["1 x Cola"]);
    let receipt = counter.next().await;
    assert!(receipt.has_line("Store print-stations"), "{receipt:#?}");
    assert!(receipt.has_line(&format!("Order {}", number(&order))));
    assert!(receipt.mentions("2 x House Burger") && receipt.mentions("24.00 EUR"));
    assert!(receipt.mentions("1 x Chips") && receipt.mentions("1 x Cola"));
    assert!(
        receipt
            .lines
            .iter()
            .any(|l| l.starts_with("Total") && l.ends_with("31.00 EUR")),
        "{receipt:#?}"
    );
    assert!(receipt.has_line("Cash - unpaid"), "{receipt:#?}");

    let jobs = jobs_until(&app, &store.cashier.token, &order, "all printed", |jobs| {
        all_printed(jobs, 4)
    })
    .await;
    let kinds: Vec<(String, Value)> = jobs
        .iter()
        .map(|job| {
            (
                job["kind"].as_str().unwrap_or("").to_owned(),
                job["station"].clone(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("ticket".to_owned(), json!("grill")),
            ("ticket".to_owned(), json!("fryer")),
            ("ticket".to_owned(), json!("drinks")),
            ("receipt".to_owned(), Value::Null),
        ]
    );

    // Moving on prints nothing more: a later order's paper comes out, and
    // the first order still has its four jobs.
    app.advance(&store.kitchen.token, &confirmed, "preparing")
        .await;
    let ids = store.product_ids();
    let second = app
        .place(&alice.token, &pickup(&store.slug, &[(ids[1], 3)]))
        .await
        .expect(201);
    app.advance(&store.cashier.token, &second, "confirmed")
        .await;
    let ticket = fryer.next().await;
    assert!(ticket.has_line(number(&second)));
    assert_eq!(ticket.items(), ["3 x Chips"]);
    let receipt = counter.next().await;
    assert!(
        receipt.has_line(&format!("Order {}", number(&second))) && receipt.mentions("3 x Chips")
    );
    assert_eq!(
        print_jobs(&app, &store.cashier.token, &order).await.len(),
        4
    );
    assert!(
        !grill.has_more(),
        "the grill has nothing in the second order"
    );

    // The trigger is the store's to choose, among its workflow's states.
    let path = format!("/stores/{}", store.slug);
    app.patch(
        &path,
        &store.owner.token,
        &json!({"print_trigger": "nowhere"}),
    )
    .await
    .expect_problem(422, "unknown_status");
    let changed = app
        .patch(
            &path,
            &store.manager.token,
            &json!({"print_trigger": "preparing"}),
        )
        .await
        .expect(200);
    assert_eq!(changed["print_trigger"], "preparing");
    let third = app
        .place(&alice.token, &pickup(&store.slug, &[(ids[0], 1)]))
        .await
        .expect(201);
    let third = app.advance(&store.cashier.token, &third, "confirmed").await;
    app.advance(&store.kitchen.token, &third, "preparing").await;
    let ticket = grill.next().await;
    assert!(
        ticket.has_line(number(&third)),
        "printed on preparing: {ticket:#?}"
    );
    assert!(
        counter
            .next()
            .await
            .has_line(&format!("Order {}", number(&third)))
    );
    assert_eq!(
        print_jobs(&app, &store.cashier.token, &third).await.len(),
        2
    );
}

#[tokio::test]
async fn a_printer_that_refuses_connections_never_holds_up_the_order_and_prints_once_it_is_back() {
    let app = printing_app("127.0.0.1").await;
    let store = app.staffed_store("print-down", "restaurant", "D").await;
    let alice = app.alice().await;
    let addr = TestPrinter::refusing().await;
    printer_at(&app, &store, "Grill", addr, &["grill"], false).await;
    let order = burger_order(&app, &store, &alice).await;

    let started = Instant::now();
    let confirmed = app.advance(&store.cashier.token, &order, "confirmed").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the change waited {:?} for a printer",
        started.elapsed()
    );
    let jobs = jobs_until(&app, &store.cashier.token, &order, "failed", |jobs| {
        jobs.len() == 1 && jobs[0]["status"] == "failed"
    })
    .await;
    let reason = jobs[0]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(reason.contains("refused"), "{jobs:#?}");
    assert!(
        jobs[0]["next_attempt_at"].is_string(),
        "a retry is due: {jobs:#?}"
    );

    // The staff's order page says so, with the reason.
    let detail = format!("/dashboard/{}/orders/{}", store.slug, id(&order));
    let (status, html) = page(&app, &store.cashier.token, &detail).await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"data-print-status="failed""#), "{html}");
    assert!(html.contains("refused"), "{html}");

    // The order moves on meanwhile.
    let preparing = app
        .advance(&store.kitchen.token, &confirmed, "preparing")
        .await;
    assert_eq!(status_of(&preparing), "preparing");

    // The printer comes back on the same port: the retry prints.
    let mut grill = TestPrinter::on(addr).await;
    let ticket = grill.next().await;
    assert!(ticket.has_line(number(&order)));
    assert_eq!(ticket.items(), ["2 x House Burger"]);
    let jobs = jobs_until(&app, &store.cashier.token, &order, "printed", |jobs| {
        all_printed(jobs, 1)
    })
    .await;
    assert!(jobs[0]["attempts"].as_u64().unwrap_or(0) >= 2, "{jobs:#?}");
    assert!(jobs[0]["printed_at"].is_string());
    let (_, html) = page(&app, &store.cashier.token, &detail).await;
    assert!(html.contains(r#"data-print-status="printed""#), "{html}");
}

fn status_of(order: &Value) -> &str {
    status(order)
}

#[tokio::test]
async fn printers_only_go_where_the_operator_allows() {
    // By default no host is allowed at all.
    let app = spawn_app().await;
    let store = app.staffed_store("print-closed", "restaurant", "C").await;
    let refused = add_printer(
        &app,
        &store.slug,
        &store.owner.token,
        json!({"name": "Grill", "address": "192.168.1.50", "stations": ["grill"]}),
    )
    .await;
    let problem = refused.expect_problem(422, "printer_host_not_allowed");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("--printer-hosts"),
        "{problem}"
    );
    drop(app);

    // One address and one name allowed; `localhost` is loopback, which no
    // listed network covers.
    let app = printing_app("127.0.0.2,localhost").await;
    let store = app.staffed_store("print-hosts", "restaurant", "H").await;
    let owner = &store.owner.token;
    for address in ["10.0.0.5:9100", "127.0.0.1", "printer.local", "[::1]:9100"] {
        add_printer(
            &app,
            &store.slug,
            owner,
            json!({"name": "P", "address": address}),
        )
        .await
        .expect_problem(422, "printer_host_not_allowed");
    }
    for (name, address) in [
        ("P", "127.0.0.2:0"),
        ("P", "a b"),
        ("", "127.0.0.2"),
        ("P", ""),
    ] {
        add_printer(
            &app,
            &store.slug,
            owner,
            json!({"name": name, "address": address}),
        )
        .await
        .expect_problem(422, "invalid_printer");
    }
    add_printer(
        &app,
        &store.slug,
        owner,
        json!({"name": "P", "address": "127.0.0.2", "port": 1}),
    )
    .await
    .expect_problem(422, "invalid_body");
    let default_port = add_printer(
        &app,
        &store.slug,
        owner,
        json!({"name": "P", "address": "127.0.0.2"}),
    )
    .await
    .expect(201);
    assert_eq!(default_port["address"], "127.0.0.2:9100");
    app.delete(
        &format!("/stores/{}/printers/{}", store.slug, id(&default_port)),
        owner,
    )
    .await
    .expect(204);

    // A listed name passes when the printer is added, but it is resolved
    // again before every connection: `localhost` is loopback, which only a
    // listed network could allow; nothing is sent to the listener.
    let listener = TestPrinter::start().await;
    add_printer(
        &app,
        &store.slug,
        owner,
        json!({"name": "By name", "address": format!("localhost:{}", listener.addr.port()), "stations": ["grill"]}),
    )
    .await
    .expect(201);
    let alice = app.alice().await;
    let order = burger_order(&app, &store, &alice).await;
    app.advance(&store.cashier.token, &order, "confirmed").await;
    let jobs = jobs_until(&app, owner, &order, "refused after resolution", |jobs| {
        jobs.len() == 1 && jobs[0]["status"] == "failed"
    })
    .await;
    let reason = jobs[0]["last_error"].as_str().unwrap_or_default();
    assert!(reason.contains("resolves to"), "{jobs:#?}");
    let mut listener = listener;
    assert!(
        !listener.has_more(),
        "nothing reached the loopback listener"
    );
}

#[tokio::test]
async fn owners_and_managers_set_printers_up_and_staff_reprint() {
    let app = printing_app("127.0.0.1").await;
    let store = app.staffed_store("print-roles", "restaurant", "R").await;
    let alice = app.alice().await;
    let other_owner = app.login("owner@demo.test").await;
    let path = format!("/stores/{}/printers", store.slug);
    let body = |name: &str, addr: std::net::SocketAddr| json!({"name": name, "address": addr.to_string(), "stations": ["grill"], "receipts": true});
    let mut printer = TestPrinter::start().await;

    for (who, token, status) in [
        ("cashier", &store.cashier.token, 403),
        ("kitchen", &store.kitchen.token, 403),
        ("driver", &store.driver.token, 403),
        ("another store's owner", &other_owner, 404),
        ("a customer", &alice.token, 404),
    ] {
        let refused = app.post(&path, token, &body("P", printer.addr)).await;
        assert_eq!(
            refused.status.as_u16(),
            status,
            "{who} adding: {}",
            refused.text
        );
        let listed = app.get(&path, token).await;
        assert_eq!(
            listed.status.as_u16(),
            status,
            "{who} listing: {}",
            listed.text
        );
    }
    app.post(&path, ANON, &body("P", printer.addr))
        .await
        .expect_problem(401, "unauthenticated");
    let spare = app
        .post(&path, &store.manager.token, &body("Spare", printer.addr))
        .await
        .expect(201);
    let spare_path = format!("{path}/{}", id(&spare));
    app.delete(&spare_path, &store.cashier.token)
        .await
        .expect_problem(403, "forbidden");
    app.delete(
        &format!("/stores/demo-restaurant/printers/{}", id(&spare)),
        &other_owner,
    )
    .await
    .expect_problem(404, "not_found");
    app.delete(&spare_path, &store.manager.token)
        .await
        .expect(204);
    app.delete(&spare_path, &store.manager.token)
        .await
        .expect_problem(404, "not_found");
    app.post(&path, &store.owner.token, &body("Grill", printer.addr))
        .await
        .expect(201);

    let order = app
        .place(
            &alice.token,
            &pickup(&store.slug, &[(store.product_ids()[0], 1)]),
        )
        .await
        .expect(201);
    app.advance(&store.cashier.token, &order, "confirmed").await;
    let ticket = printer.next().await;
    let receipt = printer.next().await;
    let jobs = jobs_until(&app, &store.cashier.token, &order, "printed", |jobs| {
        all_printed(jobs, 2)
    })
    .await;

    // Print jobs are the staff's: the customer sees the order, not them.
    let jobs_path = format!("/orders/{}/print-jobs", id(&order));
    app.get(&jobs_path, &alice.token)
        .await
        .expect_problem(403, "forbidden");
    app.get(&jobs_path, &other_owner)
        .await
        .expect_problem(404, "not_found");
    let reprint = format!("{jobs_path}/{}/reprint", id(&jobs[0]));
    for (who, token, status) in [
        ("the customer", &alice.token, 403),
        // A driver sees deliveries only: this pickup order is not theirs.
        ("a driver", &store.driver.token, 404),
        ("another store's owner", &other_owner, 404),
    ] {
        let refused = app.post_empty(&reprint, token).await;
        assert_eq!(refused.status.as_u16(), status, "{who}: {}", refused.text);
    }
    app.post_empty(&format!("{jobs_path}/999999/reprint"), &store.kitchen.token)
        .await
        .expect_problem(404, "not_found");

    // Reprint: a fresh job, and the same ticket again.
    let again = app
        .post_empty(&reprint, &store.kitchen.token)
        .await
        .expect(201);
    assert_eq!(
        (again["kind"].clone(), again["station"].clone()),
        (json!("ticket"), json!("grill"))
    );
    assert_ne!(id(&again), id(&jobs[0]));
    assert_eq!(printer.next().await, ticket);
    // From the dashboard's order page: its button posts a form.
    let detail = format!("/dashboard/{}/orders/{}", store.slug, id(&order));
    let (_, html) = page(&app, &store.cashier.token, &detail).await;
    assert!(
        html.contains(&format!("data-reprint=\"{}\"", id(&jobs[1]))),
        "{html}"
    );
    let posted = app
        .post_page_form(
            &store.cashier.token,
            &format!("{detail}/print-jobs/{}/reprint", id(&jobs[1])),
            &[],
        )
        .await;
    assert_eq!(posted.status().as_u16(), 303);
    assert_eq!(printer.next().await, receipt);
    jobs_until(
        &app,
        &store.cashier.token,
        &order,
        "reprints printed",
        |jobs| all_printed(jobs, 4),
    )
    .await;
    // Another store's dashboard knows nothing of this order.
    let other = app
        .post_page_form(
            &other_owner,
            &format!(
                "/dashboard/demo-restaurant/orders/{}/print-jobs/{}/reprint",
                id(&order),
                id(&jobs[1])
            ),
            &[],
        )
        .await;
    assert_eq!(other.status().as_u16(), 404);
}

#[tokio::test]
async fn the_manage_page_adds_and_removes_printers() {
    let app = printing_app("127.0.0.1").await;
    let store = app.staffed_store("print-page", "restaurant", "M").await;
    let manage = format!("/manage/{}", store.slug);
    let added = app
        .post_page_form(
            &store.manager.token,
            &format!("{manage}/printers"),
            &[
                ("name", "Pass printer"),
                ("address", "127.0.0.1:9101"),
                ("stations", "grill, Fryer"),
                ("receipts", "on"),
            ],
        )
        .await;
    assert_eq!(added.status().as_u16(), 303);
    let printers = app
        .get(
            &format!("/stores/{}/printers", store.slug),
            &store.manager.token,
        )
        .await
        .expect(200);
    assert_eq!(printers[0]["stations"], json!(["grill", "fryer"]));
    assert_eq!(printers[0]["receipts"], json!(true));
    let (_, html) = page(&app, &store.manager.token, &manage).await;
    assert!(
        html.contains("Pass printer") && html.contains("127.0.0.1:9101"),
        "{html}"
    );
    let refused = app
        .post_page_form(
            &store.manager.token,
            &format!("{manage}/printers"),
            &[("name", "Elsewhere"), ("address", "10.0.0.1")],
        )
        .await;
    assert!(
        location(&refused).ends_with("flash=printer_host_not_allowed"),
        "{}",
        location(&refused)
    );
    let removed = app
        .post_page_form(
            &store.manager.token,
            &format!("{manage}/printers/{}/remove", id(&printers[0])),
            &[],
        )
        .await;
    assert_eq!(removed.status().as_u16(), 303);
    let (_, html) = page(&app, &store.manager.token, &manage).await;
    assert!(!html.contains("Pass printer"), "{html}");
}

#[tokio::test]
async fn a_restart_neither_loses_nor_repeats_a_print_job() {
    let mut app = printing_app("127.0.0.1").await;
    let store = app.staffed_store("print-restart", "restaurant", "S").await;
    let alice = app.alice().await;
    let mut grill = TestPrinter::start().await;
    printer_at(&app, &store, "Grill", grill.addr, &["grill"], false).await;
    let ids = store.product_ids();
    let first = app
        .place(&alice.token, &pickup(&store.slug, &[(ids[0], 1)]))
        .await
        .expect(201);
    app.advance(&store.cashier.token, &first, "confirmed").await;
    assert!(grill.next().await.has_line(number(&first)));
    let second = app
        .place(&alice.token, &pickup(&store.slug, &[(ids[0], 2)]))
        .await
        .expect(201);
    app.stop().await;

    // Confirmed while no instance prints (another process on the database).
    let tool = app.reopen().await;
    let cashier = tool
        .app()
        .authenticate(&store.cashier.token)
        .await
        .expect("the cashier");
    tool.app()
        .transition(
            &cashier,
            ordertrack_domain::OrderId::new(id(&second)),
            "confirmed",
            None,
            None,
        )
        .await
        .expect("confirmed");
    drop(tool);

    app.restart().await;
    let ticket = grill.next().await;
    assert!(
        ticket.has_line(number(&second)),
        "caught up after the restart: {ticket:#?}"
    );
    assert_eq!(ticket.items(), ["2 x House Burger"]);
    jobs_until(&app, &store.cashier.token, &second, "printed", |jobs| {
        all_printed(jobs, 1)
    })
    .await;
    // A third order shows the follower is past both; nothing came twice.
    let third = app
        .place(&alice.token, &pickup(&store.slug, &[(ids[0], 3)]))
        .await
        .expect(201);
    app.advance(&store.cashier.token, &third, "confirmed").await;
    assert!(grill.next().await.has_line(number(&third)));
    assert!(!grill.has_more(), "no document twice");
    assert_eq!(
        print_jobs(&app, &store.cashier.token, &first).await.len(),
        1
    );
    assert_eq!(
        print_jobs(&app, &store.cashier.token, &second).await.len(),
        1
    );
}
