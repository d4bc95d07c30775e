//! The pages in a real browser: headless Chromium (Debian's `chromium`)
//! driven through chromiumoxide against a real server with the demo seeded.
//!
//! Each test launches its own Chromium; each person in a test is an isolated
//! browser context (own cookies). Waits poll the DOM (`wait_for`) instead of
//! sleeping. Pages must show changes within a deadline, so each test has the
//! server side to itself (`spawn_app_alone`). Without Chromium the tests
//! print "SKIPPED" and pass, except with `CI=true`, where they fail.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ordertrack_domain::{FulfilmentKind, OrderId, Role, Workflow};
use serde_json::Value;

use crate::support::*;

/// Live changes must reach an open page within this time.
const LIVE: Duration = Duration::from_secs(1);

/// JS: the tracker shows `label` and `entries` timeline entries.
fn tracker_shows(label: &str, entries: usize) -> String {
    format!(
        "document.querySelector('#tracker .status-label')?.textContent.trim() === {} \
         && document.querySelectorAll('#tracker ol.timeline li').length === {entries}",
        js_string(label)
    )
}

/// JS: the status badge text of the tracker item named `name`.
fn item_badge(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('#tracker ul.items li')]\
         .find(li => li.querySelector('span')?.textContent.includes({}))\
         ?.querySelector('.badge')?.textContent.trim()",
        js_string(name)
    )
}

/// JS: the `data-transition` values of the buttons on an order detail page, sorted.
const BUTTONS: &str = "[...document.querySelectorAll('#panel button[data-transition]')].map(b => b.dataset.transition).sort()";

fn sorted(keys: impl IntoIterator<Item = String>) -> Vec<String> {
    keys.into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// The transitions `role` may make from `status` (pickup orders).
fn allowed(role: Role, status: &str) -> Vec<String> {
    let workflow = Workflow::builtin("restaurant").expect("the restaurant workflow");
    sorted(
        workflow
            .next_states(role, status, FulfilmentKind::Pickup)
            .into_iter()
            .map(|s| s.key.to_string()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn register_order_confirmation_tracker() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let carol = chrome.person().await;
    let page = &carol.page;

    // Register through the form.
    goto(page, &server.page_url("/register")).await;
    fill(page, "input[name=name]", "Carol Customer").await;
    fill(page, "input[name=email]", "carol@example.test").await;
    fill(page, "input[name=password]", "carol-password").await;
    click(page, "form[action='/register'] button[type=submit]").await;
    wait_for(
        page,
        "location.pathname === '/' && document.readyState === 'complete' \
         && !!document.querySelector('form[action=\"/logout\"]')",
        PATIENCE,
    )
    .await;
    assert!(
        text(page, "document.querySelector('header').innerText")
            .await
            .contains("Carol Customer")
    );

    // From the store list to the menu.
    click(page, "main a[href='/stores/demo-restaurant']").await;
    wait_for(
        page,
        "location.pathname === '/stores/demo-restaurant' && document.readyState === 'complete' \
         && !!document.querySelector('form[data-cart]')",
        PATIENCE,
    )
    .await;
    fill(page, "input[data-product-name='Classic Burger']", "2").await;
    fill(page, "input[data-product-name='Fries']", "1").await;
    // The cart total is computed as the quantities change: 2 × 9.50 + 3.90.
    wait_for(
        page,
        "document.querySelector('[data-cart-total]').textContent === '22.90 EUR'",
        PATIENCE,
    )
    .await;
    click(page, "input[name=fulfilment][value=delivery]").await;
    click(page, "input[name=fulfilment][value=pickup]").await;
    fill(page, "textarea[name=notes]", "No onions, please").await;
    click(page, "form[data-cart] button[type=submit]").await;

    // The confirmation is the order page with its tracker.
    wait_for(
        page,
        "/^\\/orders\\/\\d+$/.test(location.pathname) && location.search.includes('flash=placed') \
         && document.readyState === 'complete' && !!document.querySelector('#tracker')",
        PATIENCE,
    )
    .await;
    let id: i64 = text(page, "location.pathname.split('/')[2]")
        .await
        .parse()
        .expect("an order id in the URL");
    assert!(
        text(page, "document.querySelector('.flash.ok').textContent")
            .await
            .contains("Order placed"),
        "{}",
        describe(page).await
    );
    assert_eq!(status_label(page).await, "Order received");
    assert_eq!(
        text(page, "document.querySelector('#tracker').dataset.status").await,
        "pending"
    );
    assert_eq!(
        text(
            page,
            "document.querySelector('#tracker .progress').getAttribute('aria-valuenow')"
        )
        .await,
        "5"
    );
    assert_eq!(timeline_len(page).await, 1);
    assert!(
        text(
            page,
            "document.querySelector('#tracker ol.timeline li').textContent"
        )
        .await
        .contains("Order received")
    );
    let items = text(
        page,
        "document.querySelector('#tracker ul.items').innerText",
    )
    .await;
    assert!(items.contains("2 × Classic Burger"), "{items}");
    assert!(items.contains("1 × Fries"), "{items}");
    let link = text(
        page,
        "document.querySelector('[data-tracking-link]').getAttribute('href')",
    )
    .await;
    assert!(
        link.starts_with("/track/") && link.len() > 10,
        "tracking link {link}"
    );
    let main = text(page, "document.querySelector('main').innerText").await;
    assert!(main.contains("Pickup at the counter"), "{main}");
    assert!(main.contains("No onions, please"), "{main}");
    wait_live(page).await;

    // The order is really there, as placed.
    let cashier = server.login("cashier@demo.test").await;
    let order = server.order(&cashier, id).await;
    assert_eq!(order["status"], "pending");
    assert_eq!(order["customer_name"], "Carol Customer");
    assert_eq!(order["fulfilment"]["type"], "pickup");
    assert_eq!(order["total_minor"], 2290);
    assert_eq!(
        link,
        format!("/track/{}", order["tracking_token"].as_str().unwrap())
    );
    chrome.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_moves_show_on_the_open_order_page_without_reload() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let kitchen_token = server.login("kitchen@demo.test").await;
    let order = server
        .order_dishes(
            &alice_token,
            &[("Classic Burger", 1), ("Lemonade", 1)],
            "pickup",
        )
        .await;
    let id = id(&order);

    let alice = chrome.person().await;
    let customer = &alice.page;
    sign_in(customer, &server, "alice@demo.test").await;
    goto(customer, &server.page_url(&format!("/orders/{id}"))).await;
    wait_for(customer, &tracker_shows("Order received", 1), PATIENCE).await;
    wait_live(customer).await;
    mark(customer).await;

    // The cashier, in their own (incognito) context, opens the order from the dashboard.
    let cass = chrome.person().await;
    let desk = &cass.page;
    sign_in(desk, &server, "cashier@demo.test").await;
    goto(desk, &server.page_url("/dashboard/demo-restaurant")).await;
    click(desk, &format!("tr[data-order-id='{id}'] a")).await;
    wait_for(
        desk,
        &format!(
            "location.pathname === '/dashboard/demo-restaurant/orders/{id}' \
             && document.readyState === 'complete' && !!document.querySelector('#panel')"
        ),
        PATIENCE,
    )
    .await;
    wait_live(desk).await;

    // Each move by a click on the dashboard reaches the customer within a second.
    for (to, label, entries) in [("confirmed", "Confirmed", 2), ("preparing", "Preparing", 3)] {
        click(desk, &format!("#panel button[data-transition={to}]")).await;
        // The move is done once the cashier's own page shows it.
        wait_for(
            desk,
            &format!("document.querySelector('#panel #tracker')?.dataset.status === '{to}'"),
            PATIENCE,
        )
        .await;
        let started = Instant::now();
        wait_for(customer, &tracker_shows(label, entries), LIVE).await;
        println!(
            "{to}: on the customer's page {:?} after the move",
            started.elapsed()
        );
    }

    // A move through the API (the kitchen) as well.
    let moved = server.move_order(&kitchen_token, id, "cooking").await;
    assert_eq!(moved["status"], "cooking");
    let started = Instant::now();
    wait_for(customer, &tracker_shows("Cooking", 4), LIVE).await;
    println!(
        "cooking: on the customer's page {:?} after the move",
        started.elapsed()
    );

    assert_eq!(
        text(
            customer,
            "document.querySelector('#tracker .progress').getAttribute('aria-valuenow')"
        )
        .await,
        "50"
    );
    let timeline = text(
        customer,
        "document.querySelector('#tracker ol.timeline').innerText",
    )
    .await;
    for label in ["Order received", "Confirmed", "Preparing", "Cooking"] {
        assert!(
            timeline.contains(label),
            "timeline lacks {label}: {timeline}"
        );
    }
    // Every change was announced with a toast.
    assert!(
        eval(
            customer,
            "document.querySelectorAll('#toasts .toast').length"
        )
        .await
        .as_i64()
        .unwrap_or(0)
            >= 1
    );
    assert!(
        text(
            customer,
            "document.querySelector('[data-live-text]').textContent"
        )
        .await
        .starts_with("Live")
    );
    assert_not_reloaded(customer).await;
    chrome.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn my_orders_badges_change_live() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let cashier = server.login("cashier@demo.test").await;
    let first = id(&server
        .order_dishes(&alice_token, &[("Fries", 1)], "pickup")
        .await);
    let second = id(&server
        .order_dishes(&alice_token, &[("Iced Tea", 2)], "pickup")
        .await);

    let alice = chrome.person().await;
    let page = &alice.page;
    sign_in(page, &server, "alice@demo.test").await;
    goto(page, &server.page_url("/orders")).await;
    let badge = |id: i64| {
        format!(
            "document.querySelector('#my-orders .order-row[data-order-id=\"{id}\"] .badge[data-status]')?.dataset.status"
        )
    };
    assert_eq!(text(page, &badge(first)).await, "pending");
    assert_eq!(text(page, &badge(second)).await, "pending");
    wait_live(page).await;
    mark(page).await;

    server.move_order(&cashier, first, "confirmed").await;
    wait_for(page, &format!("{} === 'confirmed'", badge(first)), LIVE).await;
    assert!(
        text(page, &format!("document.querySelector('#my-orders .order-row[data-order-id=\"{first}\"] .badge').textContent"))
            .await
            .contains("Confirmed")
    );
    assert_eq!(text(page, &badge(second)).await, "pending");

    server.move_order(&cashier, second, "cancelled").await;
    wait_for(page, &format!("{} === 'cancelled'", badge(second)), LIVE).await;

    // A new order shows up on top, live too.
    let third = id(&server
        .order_dishes(&alice_token, &[("Lemonade", 1)], "pickup")
        .await);
    wait_for(
        page,
        &format!("document.querySelector('#my-orders .order-row')?.dataset.orderId === '{third}'"),
        LIVE,
    )
    .await;
    assert_eq!(text(page, &badge(first)).await, "confirmed");
    assert_not_reloaded(page).await;
    chrome.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kitchen_taps_and_bump_reach_the_customer_page() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let cashier = server.login("cashier@demo.test").await;
    let order = server
        .order_dishes(
            &alice_token,
            &[("Classic Burger", 1), ("Cheeseburger", 1), ("Fries", 1)],
            "pickup",
        )
        .await;
    let id = id(&order);
    let item = |name: &str| {
        order["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .and_then(|i| i["id"].as_i64())
            .unwrap()
    };
    let (burger, fries) = (item("Classic Burger"), item("Fries"));
    server.move_order(&cashier, id, "confirmed").await;
    server.move_order(&cashier, id, "preparing").await;

    let alice = chrome.person().await;
    let customer = &alice.page;
    sign_in(customer, &server, "alice@demo.test").await;
    goto(customer, &server.page_url(&format!("/orders/{id}"))).await;
    wait_for(customer, &tracker_shows("Preparing", 3), PATIENCE).await;
    wait_live(customer).await;
    mark(customer).await;

    let kai = chrome.person().await;
    let kitchen = &kai.page;
    sign_in(kitchen, &server, "kitchen@demo.test").await;
    goto(
        kitchen,
        &server.page_url("/kitchen/demo-restaurant?station=grill"),
    )
    .await;
    let ticket = format!("article.ticket[data-order-id='{id}']");
    wait_for(
        kitchen,
        &format!("!!document.querySelector(\"{ticket}\")"),
        PATIENCE,
    )
    .await;
    wait_live(kitchen).await;
    // The grill sees only its own items.
    let shown = text(
        kitchen,
        &format!("document.querySelector(\"{ticket}\").innerText"),
    )
    .await;
    assert!(
        shown.contains("Classic Burger") && shown.contains("Cheeseburger"),
        "{shown}"
    );
    assert!(!shown.contains("Fries"), "{shown}");

    // Tap: queued → preparing → ready, each reaching the customer.
    let button = |item: i64| format!("{ticket} button[data-item-id='{item}']");
    for status in ["preparing", "ready"] {
        click(kitchen, &button(burger)).await;
        wait_for(
            kitchen,
            &format!(
                "document.querySelector(\"{}\")?.dataset.itemStatus === '{status}'",
                button(burger)
            ),
            PATIENCE,
        )
        .await;
        wait_for(
            customer,
            &format!("{} === '{status}'", item_badge("Classic Burger")),
            LIVE,
        )
        .await;
    }
    assert_eq!(status_label(customer).await, "Preparing");

    // Bump: the rest of the grill's items are done; the ticket leaves the grill.
    click(kitchen, &format!("{ticket} button[data-bump]")).await;
    wait_for(
        kitchen,
        &format!("!document.querySelector(\"{ticket}\")"),
        PATIENCE,
    )
    .await;
    wait_for(
        customer,
        &format!("{} === 'ready'", item_badge("Cheeseburger")),
        LIVE,
    )
    .await;
    assert_eq!(text(customer, &item_badge("Fries")).await, "queued");
    assert_eq!(status_label(customer).await, "Preparing");

    // The fryer finishes the last item: the order advances to ready by itself.
    goto(
        kitchen,
        &server.page_url("/kitchen/demo-restaurant?station=fryer"),
    )
    .await;
    wait_live(kitchen).await;
    for status in ["preparing", "ready"] {
        click(kitchen, &button(fries)).await;
        if status == "preparing" {
            wait_for(
                kitchen,
                &format!(
                    "document.querySelector(\"{}\")?.dataset.itemStatus === 'preparing'",
                    button(fries)
                ),
                PATIENCE,
            )
            .await;
        }
        wait_for(
            customer,
            &format!("{} === '{status}'", item_badge("Fries")),
            LIVE,
        )
        .await;
    }
    wait_for(customer, &tracker_shows("Ready", 4), LIVE).await;
    assert_eq!(
        text(
            customer,
            "document.querySelector('#tracker').dataset.status"
        )
        .await,
        "ready"
    );
    assert_eq!(server.order(&cashier, id).await["status"], "ready");
    assert_not_reloaded(customer).await;
    chrome.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_tracking_link_works_signed_out() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let cashier = server.login("cashier@demo.test").await;
    let order = server
        .order_dishes(&alice_token, &[("Veggie Burger", 1)], "delivery")
        .await;
    let id = id(&order);
    let number = order["number"].as_str().unwrap().to_owned();

    let alice = chrome.person().await;
    sign_in(&alice.page, &server, "alice@demo.test").await;
    goto(&alice.page, &server.page_url(&format!("/orders/{id}"))).await;
    let link = text(
        &alice.page,
        "document.querySelector('[data-tracking-link]').getAttribute('href')",
    )
    .await;
    assert!(link.starts_with("/track/"), "{link}");

    // Someone else, signed out, follows the link.
    let friend = chrome.person().await;
    let page = &friend.page;
    goto(page, &server.page_url(&link)).await;
    assert!(
        text(page, "document.querySelector('h1').textContent")
            .await
            .contains(&number)
    );
    assert_eq!(
        eval(page, "!!document.querySelector('form[action=\"/logout\"]')").await,
        Value::Bool(false),
        "the guest is signed out"
    );
    assert_eq!(
        eval(page, "!!document.querySelector('a[href=\"/login\"]')").await,
        Value::Bool(true)
    );
    wait_for(page, &tracker_shows("Order received", 1), PATIENCE).await;
    wait_live(page).await;
    mark(page).await;

    server.move_order(&cashier, id, "confirmed").await;
    wait_for(page, &tracker_shows("Confirmed", 2), LIVE).await;
    server.move_order(&cashier, id, "preparing").await;
    wait_for(page, &tracker_shows("Preparing", 3), LIVE).await;
    assert_not_reloaded(page).await;

    // A made-up token shows nothing.
    let other = chrome.tab(&friend).await;
    goto(
        &other,
        &server.page_url("/track/not-a-real-token-0123456789"),
    )
    .await;
    assert_eq!(
        text(&other, "document.querySelector('h1').textContent").await,
        "Not found"
    );
    chrome.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_cannot_open_another_customers_order() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let bob_token = server.login("bob@demo.test").await;
    let order = server
        .order_dishes(&alice_token, &[("BBQ Ribs", 1)], "pickup")
        .await;
    let id = id(&order);
    let number = order["number"].as_str().unwrap().to_owned();
    let page_of = |token: &str| {
        server
            .client
            .get(server.page_url(&format!("/orders/{id}")))
            .header("cookie", format!("ordertrack_session={token}"))
            .send()
    };

    // With Bob's session cookie the page is a 404; with Alice's it is hers.
    let as_bob = page_of(&bob_token).await.expect("request");
    assert_eq!(as_bob.status().as_u16(), 404);
    let body = as_bob.text().await.unwrap();
    assert!(body.contains("Not found"), "{body}");
    assert!(!body.contains(&number), "the 404 leaks the order: {body}");
    let as_alice = page_of(&alice_token).await.expect("request");
    assert_eq!(as_alice.status().as_u16(), 200);
    assert!(as_alice.text().await.unwrap().contains(&number));

    // In Bob's browser: the friendly 404 page, nothing of Alice's order.
    let bob = chrome.person().await;
    let page = &bob.page;
    sign_in(page, &server, "bob@demo.test").await;
    goto(page, &server.page_url(&format!("/orders/{id}"))).await;
    wait_for(
        page,
        "document.querySelector('main h1')?.textContent === 'Not found'",
        PATIENCE,
    )
    .await;
    assert_eq!(
        eval(page, "!!document.querySelector('#tracker')").await,
        Value::Bool(false)
    );
    assert!(
        !text(page, "document.body.innerText")
            .await
            .contains(&number)
    );
    // Nor its tracker fragment or its stream.
    let fragment = text(
        page,
        &format!("fetch('/orders/{id}/tracker').then(r => String(r.status))"),
    )
    .await;
    assert_eq!(fragment, "404");
    let stream = text(
        page,
        &format!("fetch('/api/v1/orders/{id}/events').then(r => String(r.status))"),
    )
    .await;
    assert_eq!(stream, "404");
    chrome.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_see_only_the_buttons_their_role_allows() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let cashier_token = server.login("cashier@demo.test").await;
    let id = id(&server
        .order_dishes(&alice_token, &[("Onion Rings", 1)], "pickup")
        .await);
    let detail = server.page_url(&format!("/dashboard/demo-restaurant/orders/{id}"));

    // The cashier on a pending order: confirm or cancel, nothing else.
    let cass = chrome.person().await;
    let desk = &cass.page;
    sign_in(desk, &server, "cashier@demo.test").await;
    goto(desk, &detail).await;
    let expected = allowed(Role::Cashier, "pending");
    assert_eq!(expected, ["cancelled", "confirmed"]);
    assert_eq!(strings(&eval(desk, BUTTONS).await), expected);
    wait_live(desk).await;

    // Once confirmed (elsewhere) the cashier's buttons follow, live.
    server.move_order(&cashier_token, id, "confirmed").await;
    let expected = allowed(Role::Cashier, "confirmed");
    assert_eq!(expected, ["cancelled", "preparing"]);
    wait_for(
        desk,
        &format!(
            "JSON.stringify({BUTTONS}) === {}",
            js_string(&serde_json::to_string(&expected).unwrap())
        ),
        PATIENCE,
    )
    .await;

    // The kitchen on the same confirmed order: only "preparing".
    let kai = chrome.person().await;
    let kitchen = &kai.page;
    sign_in(kitchen, &server, "kitchen@demo.test").await;
    goto(kitchen, &detail).await;
    let expected = allowed(Role::Kitchen, "confirmed");
    assert_eq!(expected, ["preparing"]);
    assert_eq!(strings(&eval(kitchen, BUTTONS).await), expected);

    // The driver has nothing to do on a pickup order that is being prepared.
    let dana = chrome.person().await;
    let driver = &dana.page;
    sign_in(driver, &server, "driver@demo.test").await;
    goto(driver, &detail).await;
    assert_eq!(
        strings(&eval(driver, BUTTONS).await),
        allowed(Role::Driver, "confirmed")
    );
    assert!(allowed(Role::Driver, "confirmed").is_empty());
    chrome.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reconnects_after_a_restart_and_catches_up_without_reload() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let mut server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let order = server
        .order_dishes(&alice_token, &[("Chicken Wings", 1)], "pickup")
        .await;
    let id = id(&order);
    let token = order["tracking_token"].as_str().unwrap().to_owned();

    // The customer's order page and a guest's tracking page, both live.
    let alice = chrome.person().await;
    sign_in(&alice.page, &server, "alice@demo.test").await;
    goto(&alice.page, &server.page_url(&format!("/orders/{id}"))).await;
    let guest = chrome.person().await;
    goto(&guest.page, &server.page_url(&format!("/track/{token}"))).await;
    let pages = [&alice.page, &guest.page];
    for page in pages {
        wait_for(page, &tracker_shows("Order received", 1), PATIENCE).await;
        wait_live(page).await;
        mark(page).await;
    }

    // The server goes away: the pages say so instead of showing stale data as current.
    server.stop().await;
    for page in pages {
        wait_for(
            page,
            "document.querySelector('[data-live-text]').textContent.includes('Reconnecting') \
             && document.querySelector('[data-live-indicator]').classList.contains('down') \
             && document.querySelector('#tracker').classList.contains('stale')",
            PATIENCE,
        )
        .await;
    }

    // Meanwhile the order moves (another process on the same database).
    {
        let reopened = server.reopen().await;
        let offline = reopened.app();
        let cashier = sign_in_directly(offline, "cashier@demo.test").await;
        offline
            .transition(
                &cashier,
                OrderId::new(id),
                "confirmed",
                Some("Confirmed while you were offline".into()),
                None,
            )
            .await
            .expect("confirm while the server is down");
    }
    for page in pages {
        assert_eq!(status_label(page).await, "Order received");
        assert!(
            text(
                page,
                "document.querySelector('[data-live-text]').textContent"
            )
            .await
            .contains("Reconnecting")
        );
    }

    // Back on the same port: the pages catch up by themselves.
    server.restart().await;
    for page in pages {
        wait_for(
            page,
            &format!(
                "{} && document.querySelector('#tracker ol.timeline').textContent.includes('Confirmed while you were offline') \
                 && document.querySelector('[data-live-text]').textContent.startsWith('Live') \
                 && !document.querySelector('#tracker').classList.contains('stale')",
                tracker_shows("Confirmed", 2)
            ),
            PATIENCE,
        )
        .await;
        assert_not_reloaded(page).await;
    }

    // And stay live on the new server.
    let cashier = server.login("cashier@demo.test").await;
    server.move_order(&cashier, id, "preparing").await;
    for page in pages {
        wait_for(page, &tracker_shows("Preparing", 3), LIVE).await;
        assert_not_reloaded(page).await;
    }
    chrome.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expo_hands_off_only_when_every_station_is_done() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let cashier = server.login("cashier@demo.test").await;
    let kitchen_token = server.login("kitchen@demo.test").await;
    let order = server
        .order_dishes(
            &alice_token,
            &[("Grilled Chicken Sandwich", 1), ("Sweet Potato Fries", 2)],
            "pickup",
        )
        .await;
    let id = id(&order);
    let grill = items_at(&order, "grill");
    let fryer = items_at(&order, "fryer");
    assert_eq!((grill.len(), fryer.len()), (1, 1));
    // Confirmed: the kitchen works on it, and nothing advances it by itself.
    server.move_order(&cashier, id, "confirmed").await;

    let kai = chrome.person().await;
    let expo = &kai.page;
    sign_in(expo, &server, "kitchen@demo.test").await;
    goto(expo, &server.page_url("/kitchen/demo-restaurant/expo")).await;
    let ticket = format!("article.ticket[data-order-id='{id}']");
    let handoff = format!("{ticket} button[data-handoff]");
    let station_done = |s: &str| {
        format!(
            "document.querySelector(\"{ticket} ul.stations li[data-station='{s}']\")?.classList.contains('done')"
        )
    };
    wait_for(
        expo,
        &format!("!!document.querySelector(\"{handoff}\")"),
        PATIENCE,
    )
    .await;
    wait_live(expo).await;
    assert_eq!(
        eval(
            expo,
            &format!("document.querySelector(\"{handoff}\").disabled")
        )
        .await,
        Value::Bool(true)
    );
    assert_eq!(eval(expo, &station_done("grill")).await, Value::Bool(false));
    assert_eq!(eval(expo, &station_done("fryer")).await, Value::Bool(false));

    // The grill finishes its item on its own screen (another tab).
    let station = chrome.tab(&kai).await;
    goto(
        &station,
        &server.page_url("/kitchen/demo-restaurant?station=grill"),
    )
    .await;
    let item = format!("{ticket} button[data-item-id='{}']", grill[0]);
    for status in ["preparing", "ready"] {
        click(&station, &item).await;
        wait_for(
            &station,
            &format!(
                "document.querySelector(\"{item}\")?.dataset.itemStatus === '{status}' || \
                 ('{status}' === 'ready' && !document.querySelector(\"{ticket}\"))"
            ),
            PATIENCE,
        )
        .await;
    }
    wait_for(expo, &station_done("grill"), PATIENCE).await;
    assert_eq!(eval(expo, &station_done("fryer")).await, Value::Bool(false));
    assert_eq!(
        eval(
            expo,
            &format!("document.querySelector(\"{handoff}\").disabled")
        )
        .await,
        Value::Bool(true)
    );

    // Forcing the hand-off form anyway is refused by the server.
    eval(
        expo,
        &format!("document.querySelector(\"{handoff}\").form.requestSubmit()"),
    )
    .await;
    wait_for(
        expo,
        "[...document.querySelectorAll('#toasts .toast')].some(t => t.textContent.includes('every station'))",
        PATIENCE,
    )
    .await;
    assert_eq!(server.order(&cashier, id).await["status"], "confirmed");

    // The fryer finishes too: now — and only now — the hand-off is possible.
    server
        .set_item(&kitchen_token, id, fryer[0], "ready")
        .await
        .ok();
    wait_for(
        expo,
        &format!(
            "{} && document.querySelector(\"{handoff}\")?.disabled === false",
            station_done("fryer")
        ),
        PATIENCE,
    )
    .await;
    assert_eq!(server.order(&cashier, id).await["status"], "confirmed");
    click(expo, &handoff).await;
    wait_for(
        expo,
        &format!("!document.querySelector(\"{ticket}\")"),
        PATIENCE,
    )
    .await;
    let order = server.order(&cashier, id).await;
    assert_eq!(order["status"], "ready", "{order}");
    chrome.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn screenshots_of_every_main_screen() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let bob_token = server.login("bob@demo.test").await;
    let cashier = server.login("cashier@demo.test").await;
    let kitchen_token = server.login("kitchen@demo.test").await;

    // Orders in several states, so every screen has something to show.
    let ready = server
        .order_dishes(
            &bob_token,
            &[("Cheeseburger", 1), ("Iced Tea", 1)],
            "pickup",
        )
        .await;
    let ready_id = id(&ready);
    server.move_order(&cashier, ready_id, "confirmed").await;
    server
        .move_order(&kitchen_token, ready_id, "preparing")
        .await;
    for item in items_at(&ready, "grill")
        .into_iter()
        .chain(items_at(&ready, "drinks"))
    {
        server
            .set_item(&kitchen_token, ready_id, item, "ready")
            .await
            .ok();
    }
    let main = server
        .order_dishes(
            &alice_token,
            &[("Classic Burger", 2), ("Fries", 1), ("Lemonade", 2)],
            "pickup",
        )
        .await;
    let main_id = id(&main);
    server.move_order(&cashier, main_id, "confirmed").await;
    server
        .move_order(&kitchen_token, main_id, "preparing")
        .await;
    server
        .set_item(
            &kitchen_token,
            main_id,
            items_at(&main, "grill")[0],
            "preparing",
        )
        .await
        .ok();
    server
        .set_item(
            &kitchen_token,
            main_id,
            items_at(&main, "drinks")[0],
            "ready",
        )
        .await
        .ok();
    let delivery = server
        .order_dishes(
            &alice_token,
            &[("BBQ Ribs", 1), ("Onion Rings", 1)],
            "delivery",
        )
        .await;
    server
        .move_order(&cashier, id(&delivery), "confirmed")
        .await;
    server
        .order_dishes(
            &bob_token,
            &[("Veggie Burger", 1), ("Vanilla Milkshake", 1)],
            "pickup",
        )
        .await;
    let token = main["tracking_token"].as_str().unwrap().to_owned();

    let mut written = Vec::new();
    let alice = chrome.person().await;
    let page = &alice.page;
    sign_in(page, &server, "alice@demo.test").await;
    goto(page, &server.page_url("/")).await;
    written.extend(screenshots(page, "stores").await);
    goto(page, &server.page_url("/stores/demo-restaurant")).await;
    fill(page, "input[data-product-name='Classic Burger']", "2").await;
    fill(page, "input[data-product-name='Lemonade']", "1").await;
    written.extend(screenshots(page, "menu").await);
    goto(page, &server.page_url(&format!("/orders/{main_id}"))).await;
    wait_live(page).await;
    written.extend(screenshots(page, "tracker").await);
    goto(page, &server.page_url("/orders")).await;
    wait_live(page).await;
    written.extend(screenshots(page, "my-orders").await);

    let guest = chrome.person().await;
    goto(&guest.page, &server.page_url(&format!("/track/{token}"))).await;
    wait_live(&guest.page).await;
    written.extend(screenshots(&guest.page, "tracking").await);

    let olivia = chrome.person().await;
    let page = &olivia.page;
    sign_in(page, &server, "owner@demo.test").await;
    goto(page, &server.page_url("/dashboard/demo-restaurant")).await;
    wait_live(page).await;
    written.extend(screenshots(page, "dashboard").await);
    goto(
        page,
        &server.page_url(&format!("/dashboard/demo-restaurant/orders/{main_id}")),
    )
    .await;
    wait_live(page).await;
    written.extend(screenshots(page, "order-detail").await);
    goto(page, &server.page_url("/manage/demo-restaurant")).await;
    written.extend(screenshots(page, "manage").await);

    let kai = chrome.person().await;
    let page = &kai.page;
    sign_in(page, &server, "kitchen@demo.test").await;
    goto(page, &server.page_url("/kitchen/demo-restaurant")).await;
    wait_live(page).await;
    written.extend(screenshots(page, "kitchen").await);
    goto(page, &server.page_url("/kitchen/demo-restaurant/expo")).await;
    wait_live(page).await;
    written.extend(screenshots(page, "expo").await);

    assert_eq!(written.len(), 20);
    for path in &written {
        let size = std::fs::metadata(path).expect("screenshot written").len();
        assert!(size > 1000, "{} is only {size} bytes", path.display());
        println!("screenshot: {}", path.display());
    }
    chrome.close().await;
}

/// Issue 13's first defect: a live refresh of the seller's order panel (an
/// item changed by the kitchen) must not wipe the note the cashier is
/// typing, nor take the cursor out of it; once sent, the note is gone from
/// the field and in the order's history.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_refresh_keeps_what_the_cashier_is_typing() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let cashier_token = server.login("cashier@demo.test").await;
    let kitchen_token = server.login("kitchen@demo.test").await;
    let order = server
        .order_dishes(
            &alice_token,
            &[("Classic Burger", 1), ("Lemonade", 1)],
            "pickup",
        )
        .await;
    let id = id(&order);
    let items = item_ids(&order);
    server.move_order(&cashier_token, id, "confirmed").await;

    let cass = chrome.person().await;
    let desk = &cass.page;
    sign_in(desk, &server, "cashier@demo.test").await;
    goto(
        desk,
        &server.page_url(&format!("/dashboard/demo-restaurant/orders/{id}")),
    )
    .await;
    wait_for(
        desk,
        "!!document.querySelector('#panel input[name=note]')",
        PATIENCE,
    )
    .await;
    wait_live(desk).await;
    mark(desk).await;

    // Half a note typed, the cursor in the field after "Ring the".
    let typed = "Ring the bell twice";
    eval(
        desk,
        &format!(
            "(() => {{ const f = document.querySelector('#panel input[name=note]'); \
             f.focus(); f.value = {}; f.setSelectionRange(8, 8); \
             f.dispatchEvent(new Event('input', {{ bubbles: true }})); }})()",
            js_string(typed)
        ),
    )
    .await;

    // Meanwhile the kitchen starts the burger: the panel refreshes live.
    server
        .set_item(&kitchen_token, id, items[0], "preparing")
        .await
        .expect(200);
    wait_for(
        desk,
        &format!("{} === 'preparing'", item_badge("Classic Burger")),
        PATIENCE,
    )
    .await;
    let field = eval(
        desk,
        "(() => { const f = document.querySelector('#panel input[name=note]'); \
         return [f.value, document.activeElement === f, f.selectionStart]; })()",
    )
    .await;
    assert_eq!(
        field,
        serde_json::json!([typed, true, 8]),
        "the note, the focus and the cursor survive the refresh"
    );
    assert_not_reloaded(desk).await;

    // Sent with a move, the note is in the history and the field is empty.
    click(desk, "#panel button[data-transition=preparing]").await;
    wait_for(
        desk,
        "document.querySelector('#panel #tracker')?.dataset.status === 'preparing'",
        PATIENCE,
    )
    .await;
    let note = eval(
        desk,
        "document.querySelector('#panel input[name=note]')?.value ?? ''",
    )
    .await;
    assert_eq!(
        note,
        Value::String(String::new()),
        "a sent note is not carried over"
    );
    let history = server.history(&cashier_token, id).await;
    assert!(
        history.iter().any(|entry| entry["note"] == typed),
        "{history:?}"
    );
    chrome.close().await;
}

/// The customer's tracker shows the ETA window as text and, when the
/// kitchen bumps the order, the new (shorter) window without a reload.
#[tokio::test(flavor = "multi_thread")]
async fn the_tracker_shows_the_eta_window_and_it_moves_when_the_kitchen_bumps() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let cashier = server.login("cashier@demo.test").await;
    let kitchen = server.login("kitchen@demo.test").await;
    let order = server
        .order_dishes(&alice_token, &[("Classic Burger", 1)], "pickup")
        .await;
    let id = id(&order);
    let confirmed = server.move_order(&cashier, id, "confirmed").await;

    let alice = chrome.person().await;
    let customer = &alice.page;
    sign_in(customer, &server, "alice@demo.test").await;
    goto(customer, &server.page_url(&format!("/orders/{id}"))).await;
    wait_for(customer, &tracker_shows("Confirmed", 2), PATIENCE).await;
    wait_live(customer).await;
    mark(customer).await;
    // A window in minutes (the demo store's expected minutes: no
    // finished orders yet), never a single raw number.
    let eta = "document.querySelector('#tracker [data-eta-text]')?.textContent.trim()";
    let latest = "new Date(document.querySelector('#tracker [data-eta-latest]').dataset.etaLatest).getTime()";
    let before = text(customer, eta).await;
    assert!(
        eval(
            customer,
            &format!("/^in about \\d+–\\d+ min$/.test({})", js_string(&before))
        )
        .await
            == Value::Bool(true),
        "{before}"
    );
    let latest_before = eval(customer, latest).await.as_f64().expect("a time");

    server
        .post(
            &format!("/orders/{id}/bump"),
            &kitchen,
            &serde_json::json!({"expected_version": version(&confirmed)}),
        )
        .await
        .expect(200);
    wait_for(customer, &tracker_shows("Ready", 4), PATIENCE).await;
    // Bumped ahead of the usual pace: the window ends sooner, and says so.
    let after = text(customer, eta).await;
    assert_ne!(after, before);
    let latest_after = eval(customer, latest).await.as_f64().expect("a time");
    assert!(latest_after < latest_before, "{before} -> {after}");
    assert_not_reloaded(customer).await;
    chrome.close().await;
}

/// Issue 14, driver assignment: the cashier picks the driver on the order's
/// page and the customer's open order page shows the driver's first name
/// at once, through its live stream (no reload); the driver, on a phone,
/// sees the delivery's address and the customer's note and works it with
/// one tap per step — "Out for delivery", "Delivered", "Paid (cash)" — while
/// the customer watches. The phone's view is shot for the README.
#[tokio::test(flavor = "multi_thread")]
async fn the_customer_sees_the_driver_live_and_the_driver_works_the_delivery_from_a_phone() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice_token = server.login("alice@demo.test").await;
    let cashier = server.login("cashier@demo.test").await;
    let dana_id = server.user("driver@demo.test").await.id;
    let ribs = server.product_id(RESTAURANT, "BBQ Ribs").await;
    let mut body = delivery(RESTAURANT, &[(ribs, 1)], "12 Harbour Lane, Flat 3");
    body["notes"] = serde_json::json!("Ring twice, the bell is weak");
    let order = server.place(&alice_token, &body).await.expect(201);
    let id = id(&order);
    let order = server.move_order(&cashier, id, "confirmed").await;
    server
        .post(
            &format!("/orders/{id}/bump"),
            &cashier,
            &serde_json::json!({"expected_version": version(&order)}),
        )
        .await
        .expect(200);

    // The customer's order page, live; nobody is bringing it yet.
    let alice = chrome.person().await;
    let mine = &alice.page;
    sign_in(mine, &server, "alice@demo.test").await;
    goto(mine, &server.page_url(&format!("/orders/{id}"))).await;
    wait_live(mine).await;
    mark(mine).await;
    assert_eq!(
        eval(mine, "!!document.querySelector('[data-driver-name]')").await,
        Value::Bool(false)
    );

    // The cashier assigns Dana from the order's page.
    let cass = chrome.person().await;
    let counter = &cass.page;
    sign_in(counter, &server, "cashier@demo.test").await;
    goto(
        counter,
        &server.page_url(&format!("/dashboard/{RESTAURANT}/orders/{id}")),
    )
    .await;
    wait_live(counter).await;
    eval(
        counter,
        &format!("document.querySelector('select[data-assign-driver]').value = '{dana_id}'"),
    )
    .await;
    click(counter, "[data-driver-card] button[type=submit]").await;
    wait_for(
        counter,
        "document.querySelector('[data-driver-card] [data-driver]')?.textContent.trim() === 'Dana Driver'",
        PATIENCE,
    )
    .await;
    // The customer sees her first name, live, without a reload.
    wait_for(
        mine,
        "document.querySelector('[data-driver-name]')?.textContent.trim() === 'Dana'",
        LIVE,
    )
    .await;
    assert_not_reloaded(mine).await;
    assert_eq!(
        eval(mine, "document.body.innerText.includes('Dana Driver')").await,
        Value::Bool(false),
        "the customer sees the first name only"
    );
    // The counter's order page: the Unpaid badge with "Mark paid", and the
    // driver with the "Assign driver" select.
    let mut written = screenshots(counter, "assign-driver").await;

    // Dana, on her phone: the delivery with its address and note.
    let dana = chrome.person().await;
    let phone = &dana.page;
    let (_, width, height, mobile) = SCREENS[0];
    set_viewport(phone, width, height, mobile).await;
    sign_in(phone, &server, "driver@demo.test").await;
    goto(phone, &server.page_url(&format!("/dashboard/{RESTAURANT}"))).await;
    wait_live(phone).await;
    let card = format!("article.delivery[data-order-id='{id}']");
    let card_text = text(
        phone,
        &format!("document.querySelector({})?.innerText", js_string(&card)),
    )
    .await;
    assert!(card_text.contains("12 Harbour Lane, Flat 3"), "{card_text}");
    assert!(
        card_text.contains("Ring twice, the bell is weak"),
        "{card_text}"
    );
    assert!(card_text.contains("Paid (cash)"), "{card_text}");
    written.extend(screenshots(phone, "driver").await);
    assert_eq!(written.len(), 4);
    assert!(
        written
            .iter()
            .all(|path| { std::fs::metadata(path).is_ok_and(|file| file.len() > 1000) })
    );
    set_viewport(phone, width, height, mobile).await;

    // One tap per step; the customer's page follows each, live.
    click(
        phone,
        &format!("{card} button[data-transition='out_for_delivery']"),
    )
    .await;
    wait_for(
        phone,
        &format!(
            "!!document.querySelector({})",
            js_string(&format!("{card} button[data-transition='delivered']"))
        ),
        PATIENCE,
    )
    .await;
    wait_for(
        mine,
        "document.querySelector('#tracker .status-label')?.textContent.trim() === 'Out for delivery'",
        LIVE,
    )
    .await;
    click(
        phone,
        &format!("{card} button[data-transition='delivered']"),
    )
    .await;
    wait_for(
        mine,
        "document.querySelector('#tracker .status-label')?.textContent.trim() === 'Delivered'",
        PATIENCE,
    )
    .await;
    wait_for(
        phone,
        &format!(
            "!document.querySelector({}) && !!document.querySelector({})",
            js_string(&format!("{card} button[data-transition]")),
            js_string(&format!("{card} button[data-mark-paid]")),
        ),
        PATIENCE,
    )
    .await;
    click(phone, &format!("{card} button[data-mark-paid]")).await;
    wait_for(
        mine,
        "document.querySelector('#tracker [data-payment-status]')?.dataset.paymentStatus === 'paid'",
        PATIENCE,
    )
    .await;
    assert_not_reloaded(mine).await;

    let done = server.order(&cashier, id).await;
    assert_eq!(done["status"], "delivered", "{done}");
    assert_eq!(done["payment"]["status"], "paid", "{done}");
    let history = server.history(&cashier, id).await;
    let last = history.last().expect("an entry");
    assert_eq!(last["actor"]["id"], dana_id, "{last}");
    assert_eq!(last["payment"]["status"], "paid", "{last}");
    chrome.close().await;
}
