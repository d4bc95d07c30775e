//! Receipts and kitchen tickets (issue 14): the receipt page for the
//! order's customer, its store's staff and a guest with the tracking link —
//! number, lines, total, payment, the time on the store's wall clock — and
//! nobody else; a station's ticket with only that station's lines; the
//! `?paper=` choice (an unknown paper is a friendly 422 page). The PDF a
//! receipt printed to PDF by Chromium holds them, on the paper asked for.

use chromiumoxide::cdp::browser_protocol::page::PrintToPdfParams;
use ordertrack_domain::StoreZone;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::*;

const ZONE: &str = "Europe/Berlin";

/// A staffed store in Berlin taking cash and cards at the counter.
async fn berlin_store(app: &TestApp, slug: &str) -> StaffedStore {
    let store = app.staffed_store(slug, "restaurant", "K").await;
    app.patch(
        &format!("/stores/{slug}"),
        &store.owner.token,
        &json!({"timezone": ZONE, "payment_methods": ["cash", "card_at_counter"]}),
    )
    .await
    .expect(200);
    store
}

/// Two burgers (one note), one cola, paid by card at the counter, with a
/// note for the store; placed by `token`.
async fn burgers_and_cola(app: &TestApp, token: &str, store: &StaffedStore) -> Value {
    let ids = store.product_ids();
    let mut body = pickup(&store.slug, &[(ids[0], 2), (ids[2], 1)]);
    body["items"][0]["notes"] = json!("no onions");
    body["notes"] = json!("Ring twice");
    body["payment"] = json!({"method": "card_at_counter"});
    app.place(token, &body).await.expect(201)
}

/// A served app with a Berlin store, Alice's order of burgers and cola
/// there, and the path of its receipt.
pub struct Scene {
    pub app: TestApp,
    pub store: StaffedStore,
    pub alice: User,
    pub order: Value,
    pub path: String,
}

pub async fn scene(slug: &str) -> Scene {
    let app = spawn_app().await;
    let store = berlin_store(&app, slug).await;
    let alice = app.alice().await;
    let order = burgers_and_cola(&app, &alice.token, &store).await;
    let path = format!("/orders/{}/receipt", id(&order));
    Scene {
        app,
        store,
        alice,
        order,
        path,
    }
}

/// `at` (RFC 3339, as the API gives it) on the Berlin wall clock.
fn in_berlin(at: &Value, format: fn(&StoreZone, OffsetDateTime) -> String) -> String {
    let at = OffsetDateTime::parse(at.as_str().expect("a time"), &Rfc3339).expect("RFC 3339");
    format(&StoreZone::parse(ZONE).expect("a zone"), at)
}

fn number(order: &Value) -> &str {
    order["number"].as_str().expect("an order number")
}

#[track_caller]
fn shows(html: &str, what: &[&str]) {
    for text in what {
        assert!(html.contains(text), "the page lacks {text:?}: {html}");
    }
}

#[tokio::test]
async fn the_customer_and_staff_receipt_shows_lines_total_payment_and_the_store_s_time() {
    let Scene {
        app,
        store,
        alice,
        order,
        path,
    } = scene("receipts-k").await;
    let placed = in_berlin(&order["created_at"], StoreZone::receipt_time);

    let (status, html) = page(&app, &alice.token, &path).await;
    assert_eq!(status, 200, "{html}");
    shows(
        &html,
        &[
            "Store receipts-k",
            number(&order),
            &placed,
            "Pickup at the counter",
            "House Burger",
            "no onions",
            "12.00 EUR",
            "24.00 EUR",
            "Cola",
            "3.00 EUR",
            "27.00 EUR",
            "Notes: Ring twice",
            "Card at the counter — unpaid",
            "data-print",
            "/static/receipt.",
            "paper-80mm",
        ],
    );
    // The placed time is the store's, not UTC's.
    let utc = StoreZone::utc().receipt_time(
        OffsetDateTime::parse(order["created_at"].as_str().unwrap_or(""), &Rfc3339)
            .expect("RFC 3339"),
    );
    assert_ne!(placed, utc);
    assert!(!html.contains(&utc), "{html}");

    // Paid at the counter: the cashier's receipt says when, in Berlin.
    let paid = app
        .post(
            &format!("/orders/{}/payment", id(&order)),
            &store.cashier.token,
            &json!({"status": "paid", "expected_version": version(&order)}),
        )
        .await
        .expect(200);
    let paid_at = in_berlin(&paid["payment"]["paid_at"], StoreZone::clock_time);
    let (status, html) = page(&app, &store.cashier.token, &path).await;
    assert_eq!(status, 200, "{html}");
    shows(
        &html,
        &[
            number(&order),
            "27.00 EUR",
            &format!("Card at the counter — paid {paid_at}"),
        ],
    );

    // Part of it refunded: the amount is on the receipt.
    app.post(
        &format!("/orders/{}/payment", id(&order)),
        &store.manager.token,
        &json!({"status": "refunded", "amount_minor": 500, "reason": "cold chips",
                "expected_version": version(&paid)}),
    )
    .await
    .expect(200);
    let (_, html) = page(&app, &alice.token, &path).await;
    shows(
        &html,
        &[&format!(
            "Card at the counter — paid {paid_at}, refunded 5.00 EUR"
        )],
    );

    // The order page, the dashboard's order and its list link to it.
    let (_, order_page) = page(&app, &alice.token, &format!("/orders/{}", id(&order))).await;
    shows(&order_page, &[&path]);
    let detail = format!("/dashboard/{}/orders/{}", store.slug, id(&order));
    let (_, dashboard_order) = page(&app, &store.cashier.token, &detail).await;
    shows(&dashboard_order, &[&path]);
    let (_, dashboard) = page(
        &app,
        &store.cashier.token,
        &format!("/dashboard/{}", store.slug),
    )
    .await;
    shows(&dashboard, &[&path]);
}

#[tokio::test]
async fn nobody_else_sees_a_receipt() {
    let Scene {
        app,
        store: _,
        alice,
        order,
        path,
    } = scene("receipts-n").await;

    let bob = app.bob().await;
    let other_store = app.login("owner@demo.test").await;
    for (who, token) in [
        ("another customer", &bob.token),
        ("another store's owner", &other_store),
    ] {
        let (status, html) = page(&app, token, &path).await;
        assert_eq!(status, 404, "{who}: {html}");
        assert!(!html.contains(number(&order)), "{who}: {html}");
    }
    let (status, _) = page(&app, &alice.token, "/orders/999999/receipt").await;
    assert_eq!(status, 404);

    // Signed out: sent to sign in, like the order page.
    let (status, location) = signed_out_get(&app, &path).await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/login?next="), "{location}");
}

#[tokio::test]
async fn a_guest_receipt_names_nobody() {
    let app = spawn_app().await;
    let store = berlin_store(&app, "receipts-g").await;
    let alice = app.alice().await;
    let address = "17 Quiet Lane, Flat 3";
    let mut body = delivery(&store.slug, &[(store.product_ids()[1], 3)], address);
    body["payment"] = json!({"method": "cash"});
    body["notes"] = json!("Leave it with the neighbour");
    body["items"][0]["notes"] = json!("extra salt for Alice");
    let order = app.place(&alice.token, &body).await.expect(201);
    let token = order["tracking_token"].as_str().expect("a tracking token");
    let path = format!("/track/{token}/receipt");

    let (status, html) = page(&app, "", &path).await;
    assert_eq!(status, 200, "{html}");
    shows(
        &html,
        &[
            number(&order),
            "Chips",
            "4.00 EUR",
            "12.00 EUR",
            "Cash — unpaid",
            "Delivery",
            &in_berlin(&order["created_at"], StoreZone::receipt_time),
        ],
    );
    for personal in [
        alice.name.as_str(),
        "alice@demo.test",
        address,
        "Leave it with the neighbour",
        "extra salt for Alice",
    ] {
        assert!(
            !html.contains(personal),
            "the guest receipt shows {personal:?}: {html}"
        );
    }
    // The customer's own receipt of it does show them.
    let (_, own) = page(
        &app,
        &alice.token,
        &format!("/orders/{}/receipt", id(&order)),
    )
    .await;
    shows(
        &own,
        &[
            &format!("Delivery to {address}"),
            "Leave it with the neighbour",
            "extra salt for Alice",
        ],
    );
    // The tracking page links to it; a made-up token finds nothing.
    let (_, tracking) = page(&app, "", &format!("/track/{token}")).await;
    shows(&tracking, &[&path]);
    let (status, _) = page(&app, "", &format!("/track/{}/receipt", "0".repeat(32))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_kitchen_ticket_shows_only_its_station_s_items() {
    let app = spawn_app().await;
    let store = berlin_store(&app, "receipts-t").await;
    let alice = app.alice().await;
    let ids = store.product_ids();
    let mut body = pickup(&store.slug, &[(ids[0], 2), (ids[1], 1), (ids[2], 1)]);
    body["items"][0]["notes"] = json!("well done");
    let order = app.place(&alice.token, &body).await.expect(201);
    let ticket = format!("/kitchen/{}/orders/{}/ticket", store.slug, id(&order));

    // Station names are read as the kitchen display reads them.
    for station in ["grill", "%20Grill"] {
        let (status, html) = page(
            &app,
            &store.kitchen.token,
            &format!("{ticket}?station={station}"),
        )
        .await;
        assert_eq!(status, 200, "{html}");
        shows(
            &html,
            &[
                number(&order),
                "Station: grill",
                "House Burger",
                "well done",
                "Pickup at the counter",
                &in_berlin(&order["created_at"], StoreZone::receipt_time),
                "paper-80mm",
            ],
        );
        for other in ["Chips", "Cola"] {
            assert!(
                !html.contains(other),
                "the grill's ticket shows {other}: {html}"
            );
        }
        // A kitchen ticket is no receipt: no prices.
        assert!(!html.contains("EUR"), "{html}");
    }
    // Without a station: every line.
    let (status, html) = page(&app, &store.kitchen.token, &ticket).await;
    assert_eq!(status, 200, "{html}");
    shows(&html, &["All stations", "House Burger", "Chips", "Cola"]);

    // The kitchen display links each ticket to its printable page.
    app.move_order(&store.cashier.token, id(&order), "confirmed")
        .await;
    let (_, display) = page(
        &app,
        &store.kitchen.token,
        &format!("/kitchen/{}?station=grill", store.slug),
    )
    .await;
    shows(&display, &[&format!("{ticket}?station=grill")]);

    // Not staff of this store: no such ticket.
    let other_kitchen = app.login("kitchen@demo.test").await;
    for token in [&alice.token, &other_kitchen] {
        let (status, html) = page(&app, token, &ticket).await;
        assert_eq!(status, 404, "{html}");
    }
}

#[tokio::test]
async fn the_paper_is_chosen_by_query_and_an_unknown_one_is_refused() {
    let scene = scene("receipts-p").await;
    let (app, alice, order, path) = (&scene.app, &scene.alice, &scene.order, &scene.path);
    let token = order["tracking_token"].as_str().expect("a tracking token");

    for (paper, class) in [
        ("80mm", "paper-80mm"),
        ("58mm", "paper-58mm"),
        ("a4", "paper-a4"),
    ] {
        let (status, html) = page(app, &alice.token, &format!("{path}?paper={paper}")).await;
        assert_eq!(status, 200, "{html}");
        shows(&html, &[class, "27.00 EUR"]);
    }
    for bad in ["letter", "A4", "", "80"] {
        for url in [path.as_str(), &format!("/track/{token}/receipt")] {
            let (status, html) = page(app, &alice.token, &format!("{url}?paper={bad}")).await;
            assert_eq!(status, 422, "{bad:?}: {html}");
            shows(&html, &["paper must be 80mm, 58mm or a4"]);
            assert!(!html.contains("27.00 EUR"), "{html}");
        }
    }

    // The stylesheet sizes each paper and hides the toolbar in print.
    let css = app
        .client
        .get(app.page_url("/static/receipt.css"))
        .send()
        .await
        .expect("the stylesheet");
    assert_eq!(css.status().as_u16(), 200);
    let css = css.text().await.expect("CSS");
    shows(
        &css,
        &[
            "@page roll80 { size: 80mm",
            "@page roll58 { size: 58mm",
            "@page a4 { size: A4",
            "@media print",
            ".no-print { display: none",
        ],
    );
}

/// The text of a PDF (all pages, whitespace removed: extraction splits and
/// spaces words as the PDF places them) and its first page's width in
/// points.
fn pdf_text_and_width(pdf: &[u8]) -> (String, f32) {
    let document = lopdf::Document::load_mem(pdf).expect("a PDF");
    let pages = document.get_pages();
    let numbers: Vec<u32> = pages.keys().copied().collect();
    let text = document.extract_text(&numbers).expect("the PDF's text");
    let first = *pages.values().next().expect("a page");
    let media_box = document
        .get_object(first)
        .and_then(|page| page.as_dict())
        .and_then(|page| page.get(b"MediaBox"))
        .and_then(|media_box| media_box.as_array())
        .expect("the page's MediaBox");
    let width = media_box[2].as_float().expect("a width");
    (text.split_whitespace().collect(), width)
}

/// Chromium prints the receipt (`Page.printToPDF`, the page's own `@page`
/// size): the PDF's text holds the order number, lines and total, not the
/// toolbar, on an 80 mm, 58 mm or A4 page as `?paper=` says. Then the
/// receipt is shot for the README (`screenshots/receipt-*.png`).
#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_prints_to_pdf_with_its_number_and_total_on_the_paper_asked_for() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let scene = scene("receipts-b").await;
    let customer = chrome.person().await;
    let page = &customer.page;
    sign_in(page, &scene.app, "alice@demo.test").await;
    let number = number(&scene.order).to_owned();
    for (paper, millimetres) in [("80mm", 80.0), ("58mm", 58.0), ("a4", 210.0)] {
        let url = format!("{}?paper={paper}", scene.path);
        goto(page, &scene.app.page_url(&url)).await;
        // The script shows the Print button (the printer never sees it).
        wait_for(
            page,
            "document.querySelector('[data-print]')?.hidden === false",
            PATIENCE,
        )
        .await;
        let pdf = page
            .pdf(
                PrintToPdfParams::builder()
                    .print_background(true)
                    .prefer_css_page_size(true)
                    .build(),
            )
            .await
            .unwrap_or_else(|e| panic!("print {url} to PDF: {e}"));
        assert!(pdf.starts_with(b"%PDF"), "{paper}: not a PDF");
        let (text, width) = pdf_text_and_width(&pdf);
        for printed in [number.as_str(), "HouseBurger", "24.00EUR", "Total27.00EUR"] {
            assert!(
                text.contains(printed),
                "{paper}: the PDF lacks {printed:?}: {text}"
            );
        }
        for screen_only in ["Backtotheorder", "Paper:"] {
            assert!(
                !text.contains(screen_only),
                "{paper}: the PDF shows {screen_only:?}: {text}"
            );
        }
        let expected = millimetres * 72.0 / 25.4;
        assert!(
            (width - expected).abs() < 2.0,
            "{paper}: the page is {width} pt wide, not {expected}"
        );
    }
    goto(page, &scene.app.page_url(&scene.path)).await;
    for path in screenshots(page, "receipt").await {
        let size = std::fs::metadata(&path).expect("screenshot written").len();
        assert!(size > 1000, "{} is only {size} bytes", path.display());
    }
    chrome.close().await;
}
