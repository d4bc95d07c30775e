//! Customer e-mail (issue 16): an order entering a state its store mails
//! on sends its customer one mail through SMTP — received here by
//! `aiosmtpd`, a real SMTP server independent of the order desk, and
//! parsed by Python's `email` package — with the order's number, its
//! status's display name, the tracking link and the RFC 8058 one-click
//! unsubscribe headers. Unsubscribing stops the mail; an SMTP server that
//! is down for a while gets every mail once it is back, none twice.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// A server mailing through `sink`, a staffed restaurant `slug` and a
/// customer; `None` (the test skips, or under `CI=true` fails) without
/// aiosmtpd.
async fn mailing(slug: &str) -> Option<(SmtpSink, TestApp, StaffedStore)> {
    if !smtp_sink_available() {
        return None;
    }
    let sink = SmtpSink::start().await;
    let app = spawn_app_guarded(Guards {
        smtp_url: Some(sink.url()),
        ..Guards::default()
    })
    .await;
    let store = app.staffed_store(slug, "restaurant", "M").await;
    Some((sink, app, store))
}

/// Places a delivery order of the store's first product for `customer`.
async fn delivery_order(app: &TestApp, store: &StaffedStore, customer: &User) -> Value {
    app.place_delivery(
        &customer.token,
        &store.slug,
        &[(store.product_ids()[0], 1)],
        "1 Mail Street",
    )
    .await
}

/// Waits a little and checks no more than `count` mails arrived.
async fn no_more_than(sink: &SmtpSink, count: usize) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), count, "unexpected mail: {mails:#?}");
}

/// The tracking link of `order` on `app`.
fn tracking_url(app: &TestApp, order: &Value) -> String {
    format!(
        "{}/track/{}",
        app.base,
        order["tracking_token"].as_str().expect("a tracking token")
    )
}

/// Checks one mail tells of `order` being in `status` (its display name)
/// and carries its tracking link and the unsubscribe headers.
fn assert_tells(app: &TestApp, mail: &Mail, customer: &str, order: &Value, status: &str) {
    let number = order["number"].as_str().expect("an order number");
    assert_eq!(mail.rcpt_tos(), [customer.to_owned()], "{mail:#?}");
    assert!(mail.to().contains(customer), "{mail:#?}");
    assert!(mail.subject().contains(number), "{mail:#?}");
    assert!(mail.subject().contains(status), "{mail:#?}");
    assert!(mail.text().contains(number), "{mail:#?}");
    assert!(mail.text().contains(status), "{mail:#?}");
    let link = tracking_url(app, order);
    assert!(mail.text().contains(&link), "{mail:#?}");
    assert!(
        mail.html().contains(&format!("<a href=\"{link}\">")),
        "{mail:#?}"
    );
    assert_eq!(mail.list_unsubscribe_post(), "List-Unsubscribe=One-Click");
    let unsubscribe = mail.unsubscribe_url();
    assert!(
        unsubscribe.starts_with(&format!("{}/unsubscribe/", app.base)),
        "{mail:#?}"
    );
    assert!(mail.text().contains(&unsubscribe), "{mail:#?}");
}

/// The one mail (of the default template) telling of `status`.
fn in_status<'a>(mails: &[&'a Mail], status: &str) -> &'a Mail {
    let found: Vec<&Mail> = mails
        .iter()
        .copied()
        .filter(|mail| mail.subject().ends_with(&format!(" is {status}")))
        .collect();
    assert_eq!(found.len(), 1, "one mail for {status}: {mails:#?}");
    found[0]
}

/// The mails that tell of `order` (by its number in the subject).
fn about<'a>(mails: &'a [Mail], order: &Value) -> Vec<&'a Mail> {
    let number = order["number"].as_str().expect("an order number");
    mails
        .iter()
        .filter(|mail| mail.subject().contains(number))
        .collect()
}

#[tokio::test]
async fn one_mail_per_chosen_state_with_number_status_and_tracking_link() {
    let Some((sink, app, store)) = mailing("mail-diner").await else {
        return;
    };
    let email = "ann@mail-diner.test";
    let customer = app.register(email, "Ann Customer").await;
    let owner = &store.owner.token;

    // Default states: confirmed, ready, out for delivery, delivered,
    // cancelled. Placed (pending), preparing and completed send nothing.
    let order = delivery_order(&app, &store, &customer).await;
    let order = app.advance(owner, &order, "confirmed").await;
    let order = app.advance(owner, &order, "preparing").await;
    let order = app.all_items_ready(owner, order).await;
    assert_eq!(status(&order), "ready", "the last item makes it ready");
    let order = app.advance(owner, &order, "out_for_delivery").await;
    let order = app.advance(owner, &order, "delivered").await;
    app.advance(owner, &order, "completed").await;
    let cancelled = delivery_order(&app, &store, &customer).await;
    app.advance(owner, &cancelled, "cancelled").await;

    let mails = sink.wait_for(5).await;
    no_more_than(&sink, 5).await;
    let told = about(&mails, &order);
    let statuses = ["Confirmed", "Ready", "Out for delivery", "Delivered"];
    assert_eq!(told.len(), statuses.len(), "{told:#?}");
    for status in statuses {
        assert_tells(&app, in_status(&told, status), email, &order, status);
    }
    let told = about(&mails, &cancelled);
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_tells(&app, told[0], email, &cancelled, "Cancelled");

    // A manager picks other states and writes the store's own template.
    let settings = app
        .patch(
            &format!("/stores/{}", store.slug),
            &store.manager.token,
            &json!({"email": {
                "states": ["preparing"],
                "subject": "{order_number} — {status} at {store_name}",
                "body": "Hi {customer_name}!\n\n{order_number} is {status}: {tracking_url}\n{eta}",
            }}),
        )
        .await
        .expect(200);
    assert_eq!(settings["email"]["states"], json!(["preparing"]));
    assert_eq!(settings["email"]["custom_subject"], json!(true));
    let custom = delivery_order(&app, &store, &customer).await;
    let custom = app.advance(owner, &custom, "confirmed").await;
    app.advance(owner, &custom, "preparing").await;
    let mails = sink.wait_for(6).await;
    no_more_than(&sink, 6).await;
    let told = about(&mails, &custom);
    assert_eq!(told.len(), 1, "{told:#?}");
    let number = custom["number"].as_str().expect("a number");
    assert!(
        told[0]
            .subject()
            .starts_with(&format!("{number} — Preparing at ")),
        "{:#?}",
        told[0]
    );
    assert!(
        told[0].text().starts_with("Hi Ann Customer!"),
        "{:#?}",
        told[0]
    );
    assert!(told[0].text().contains("Expected in"), "{:#?}", told[0]);
    assert_tells(&app, told[0], email, &custom, "Preparing");

    // Bad settings are a 422 and change nothing.
    for (body, code) in [
        (json!({"email": {"states": ["nowhere"]}}), "unknown_status"),
        (
            json!({"email": {"subject": "{nope}"}}),
            "invalid_email_template",
        ),
        (
            json!({"email": {"subject": "one\ntwo"}}),
            "invalid_email_template",
        ),
        (
            json!({"email": {"body": "{status"}}),
            "invalid_email_template",
        ),
    ] {
        let refused = app
            .patch(&format!("/stores/{}", store.slug), owner, &body)
            .await
            .expect(422);
        assert_eq!(refused["code"], code, "{body}: {refused}");
    }
    let cashier = app
        .patch(
            &format!("/stores/{}", store.slug),
            &store.cashier.token,
            &json!({"email": {"states": []}}),
        )
        .await
        .expect(403);
    assert_eq!(cashier["code"], "forbidden");
    let detail = app.store_detail(&store.slug).await;
    assert_eq!(detail["email"]["states"], json!(["preparing"]));
}

#[tokio::test]
async fn unsubscribing_stops_the_mail() {
    let Some((sink, app, store)) = mailing("unsub-diner").await else {
        return;
    };
    let email = "bo@unsub-diner.test";
    let customer = app.register(email, "Bo Customer").await;
    let other = app.register("cy@unsub-diner.test", "Cy Customer").await;
    let owner = &store.owner.token;
    let order = delivery_order(&app, &store, &customer).await;
    let order = app.advance(owner, &order, "confirmed").await;
    let mails = sink.wait_for(1).await;
    let url = mails[0].unsubscribe_url();
    assert!(url.starts_with(&app.base), "{url}");

    // The link shows a page with the button; following it changes nothing.
    let shown = app.client.get(&url).send().await.expect("the page");
    assert_eq!(shown.status(), 200);
    assert!(
        shown
            .text()
            .await
            .expect("a page")
            .contains("data-unsubscribe")
    );
    // A forged token is a 404 and unsubscribes nobody.
    let (user_id, _) = url
        .rsplit('/')
        .next()
        .and_then(|token| token.split_once('.'))
        .expect("id.mac");
    for forged in [
        format!("{}/unsubscribe/{}.{}", app.base, other.id, "0".repeat(32)),
        format!("{}/unsubscribe/{user_id}", app.base),
        format!("{}/unsubscribe/x.y", app.base),
    ] {
        let refused = app
            .client
            .post(&forged)
            .form(&[("List-Unsubscribe", "One-Click")])
            .send()
            .await
            .expect("a post");
        assert_eq!(refused.status(), 404, "{forged}");
    }

    // Still subscribed: the next state mails.
    let order = app.advance(owner, &order, "preparing").await;
    let order = app.all_items_ready(owner, order).await;
    sink.wait_for(2).await;

    // One click, as a mail provider makes it (RFC 8058): a POST with no
    // session and no CSRF token.
    let done = app
        .client
        .post(&url)
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .expect("the one-click post");
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .expect("a page")
            .contains("data-unsubscribed")
    );

    let order = app.advance(owner, &order, "out_for_delivery").await;
    app.advance(owner, &order, "delivered").await;
    // Someone else still gets theirs, so the sender did run meanwhile.
    let theirs = delivery_order(&app, &store, &other).await;
    app.advance(owner, &theirs, "confirmed").await;
    let mails = sink.wait_for(3).await;
    no_more_than(&sink, 3).await;
    assert_eq!(mails[2].rcpt_tos(), ["cy@unsub-diner.test".to_owned()]);
    assert_eq!(
        mails.iter().filter(|m| m.rcpt_tos() == [email]).count(),
        2,
        "nothing after unsubscribing: {mails:#?}"
    );
}

#[tokio::test]
async fn mail_waits_for_a_server_that_is_down_and_arrives_once() {
    let Some((mut sink, app, store)) = mailing("down-diner").await else {
        return;
    };
    let email = "di@down-diner.test";
    let customer = app.register(email, "Di Customer").await;
    let owner = &store.owner.token;
    sink.down().await;

    // Changes go through at once while the mail server is down.
    let orders = [
        delivery_order(&app, &store, &customer).await,
        delivery_order(&app, &store, &customer).await,
    ];
    let mut moved = Vec::new();
    for order in &orders {
        let started = std::time::Instant::now();
        let order = app.advance(owner, order, "confirmed").await;
        let order = app.advance(owner, &order, "cancelled").await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a change never waits for mail"
        );
        moved.push(order);
    }
    // Several retries fail meanwhile (200 ms apart).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(sink.mails().is_empty());

    sink.up().await;
    let mails = sink.wait_for(4).await;
    no_more_than(&sink, 4).await;
    for order in &moved {
        let told = about(&mails, order);
        assert_eq!(
            told.len(),
            2,
            "confirmed and cancelled, once each: {told:#?}"
        );
        for status in ["Confirmed", "Cancelled"] {
            assert_tells(&app, in_status(&told, status), email, order, status);
        }
    }

    // Operators see it: the follower's lag and the attempts by outcome.
    let metrics = app
        .client
        .get(app.page_url("/metrics"))
        .send()
        .await
        .expect("/metrics")
        .text()
        .await
        .expect("the exposition");
    let figure = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert!(figure("ordertrack_outbox_lag_events{follower=\"email\"}") >= 0.0);
    assert_eq!(
        figure("ordertrack_email_deliveries_total{outcome=\"sent\"}"),
        4.0
    );
    assert!(figure("ordertrack_email_deliveries_total{outcome=\"retried\"}") >= 4.0);
}

#[tokio::test]
async fn the_manage_page_edits_what_the_store_mails() {
    let app = spawn_app().await;
    let store = app.staffed_store("page-diner", "restaurant", "P").await;
    let manage = format!("/manage/{}", store.slug);
    let (status, html) = page(&app, &store.manager.token, &manage).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-email-settings"), "{html}");
    assert!(
        html.contains(r#"name="states" value="out_for_delivery" checked"#),
        "the default states are ticked: {html}"
    );

    let saved = app
        .post_page_form(
            &store.manager.token,
            &format!("{manage}/email"),
            &[
                ("states", "ready"),
                ("states", "delivered"),
                ("subject", "{order_number} is {status}"),
                ("body", "Hello!\r\n\r\n{tracking_url}"),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303);
    assert!(
        saved.headers()["location"]
            .to_str()
            .is_ok_and(|to| to.ends_with("?flash=saved"))
    );
    let detail = app.store_detail(&store.slug).await;
    assert_eq!(
        detail["email"],
        json!({
            "states": ["ready", "delivered"],
            "subject": "{order_number} is {status}",
            "body": "Hello!\n\n{tracking_url}",
            "custom_subject": true,
            "custom_body": true,
        })
    );

    // A bad template is refused with a message, and nothing changes.
    let refused = app
        .post_page_form(
            &store.manager.token,
            &format!("{manage}/email"),
            &[("states", "ready"), ("subject", "{nope}"), ("body", "")],
        )
        .await;
    assert!(
        refused.headers()["location"]
            .to_str()
            .is_ok_and(|to| to.ends_with("?flash=invalid"))
    );
    assert_eq!(
        app.store_detail(&store.slug).await["email"]["subject"],
        "{order_number} is {status}"
    );

    // Blank templates go back to the built-in ones.
    app.post_page_form(
        &store.owner.token,
        &format!("{manage}/email"),
        &[("states", "ready"), ("subject", ""), ("body", "")],
    )
    .await;
    let email = &app.store_detail(&store.slug).await["email"];
    assert_eq!(email["custom_subject"], json!(false));
    assert_eq!(email["custom_body"], json!(false));
    assert_eq!(
        email["subject"],
        ordertrack_app::email::template::DEFAULT_SUBJECT
    );
}
