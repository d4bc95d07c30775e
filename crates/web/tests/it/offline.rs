//! Staff screens through a network drop, in a real Chromium: the kitchen
//! display keeps taking bumps and item taps while the network is cut
//! ([`NetLink`]: the browser's only road to the server), shows them
//! pending, shows its cached screen on a reload, and applies each change
//! exactly once when the network is back — a change someone else made
//! meanwhile is shown as a conflict on the card, never overwritten. And an
//! upgrade of the server: the page runs the new build's assets, and the
//! service worker drops the old build's caches. And ten tabs of one
//! browser share one live connection, handed over when its tab closes.

use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::target::SetAutoAttachParams;
use serde_json::Value;

use crate::support::*;

/// The kitchen display of the demo restaurant, all stations.
const KITCHEN: &str = "/kitchen/demo-restaurant";

/// Live changes must reach an open page within this time.
const LIVE: Duration = Duration::from_secs(1);

/// Lets the page's service workers run: the driver attaches to every new
/// target of a page and holds it until a debugger releases it, which it
/// does not do for workers.
async fn let_workers_run(page: &Page) {
    page.execute(SetAutoAttachParams::new(false, false))
        .await
        .expect("stop holding new workers");
}

/// JS: the service worker controls the page and keeps a copy of it.
const PAGE_KEPT: &str = "(async () => { if (!navigator.serviceWorker.controller) return false; \
     for (const name of await caches.keys()) { \
       if (name.startsWith('ordertrack-pages-') && await (await caches.open(name)).match(location.href)) return true; \
     } return false; })()";

/// Waits until the async JS expression `condition` resolves to `true`.
async fn wait_until(page: &Page, condition: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(Value::Bool(true)) = try_eval(page, condition).await {
            return;
        }
        if std::time::Instant::now() >= deadline {
            let worker = try_eval(
                page,
                "(async () => { const r = await navigator.serviceWorker.getRegistration();                  const again = await navigator.serviceWorker.register('/sw.js').then(() => 'registers', e => String(e));                  return JSON.stringify({ registered: !!r, active: r?.active?.state, installing: r?.installing?.state,                  waiting: r?.waiting?.state, again, caches: await caches.keys() }); })()",
            )
            .await;
            panic!(
                "waited for `{condition}`; the worker: {worker:?}; the page shows {}",
                describe(page).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reloads the page and waits until the new document has loaded (the
/// reload is started after the evaluation returns, so the evaluation never
/// races the navigation).
async fn reload(page: &Page) {
    eval(
        page,
        "window.__before_reload = true; setTimeout(() => location.reload(), 0); true",
    )
    .await;
    wait_for(
        page,
        "!window.__before_reload && document.readyState === 'complete'",
        PATIENCE,
    )
    .await;
}

/// JS: the ticket of order `id`.
fn ticket(id: i64) -> String {
    format!("document.querySelector(\"article.ticket[data-order-id='{id}']\")")
}

/// JS: the text of the queue's notes on the ticket of order `id`.
fn notes(id: i64) -> String {
    format!(
        "[...({}?.querySelectorAll('[data-queue-note]') || [])].map(n => n.dataset.queueNote + ':' + n.textContent).join('|')",
        ticket(id)
    )
}

/// How many history entries of `order` went to `to`.
fn entries_to(history: &[Value], to: &str) -> usize {
    history.iter().filter(|entry| entry["to"] == to).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn kitchen_changes_taken_offline_apply_once_when_the_network_returns() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let link = NetLink::to(server.addr).await;
    let alice_token = server.login("alice@demo.test").await;
    let cashier = server.login("cashier@demo.test").await;
    let cook = server.login("kitchen@demo.test").await;
    let mut orders = Vec::new();
    for _ in 0..4 {
        let order = server
            .order_dishes(
                &alice_token,
                &[("Classic Burger", 1), ("Fries", 1)],
                "pickup",
            )
            .await;
        server.move_order(&cashier, id(&order), "confirmed").await;
        orders.push(server.move_order(&cashier, id(&order), "preparing").await);
    }
    let [first, second, third, fourth] = [0, 1, 2, 3].map(|n| id(&orders[n]));
    let burger = items_at(&orders[2], "grill")[0];

    // The customer of the first order watches it (over her own network).
    let alice = chrome.person().await;
    let customer = &alice.page;
    sign_in(customer, &server, "alice@demo.test").await;
    goto(customer, &server.page_url(&format!("/orders/{first}"))).await;
    wait_live(customer).await;

    let kai = chrome.person().await;
    let kitchen = &kai.page;
    let_workers_run(kitchen).await;
    sign_in_at(kitchen, &link.base, "kitchen@demo.test").await;
    goto(kitchen, &link.url(KITCHEN)).await;
    wait_live(kitchen).await;
    wait_until(kitchen, PAGE_KEPT).await;

    link.cut();
    wait_for(
        kitchen,
        "document.querySelector('[data-live-text]').textContent.startsWith('Reconnecting')",
        PATIENCE,
    )
    .await;
    // Two bumps, one item tapped twice (queued → preparing → ready), and a
    // bump of a ticket someone else is about to change.
    click(
        kitchen,
        &format!("article.ticket[data-order-id='{first}'] button[data-bump]"),
    )
    .await;
    wait_for(
        kitchen,
        &format!("{}.classList.contains('pending')", ticket(first)),
        PATIENCE,
    )
    .await;
    click(
        kitchen,
        &format!("article.ticket[data-order-id='{second}'] button[data-bump]"),
    )
    .await;
    let tap = format!("article.ticket[data-order-id='{third}'] button[data-item-id='{burger}']");
    click(kitchen, &tap).await;
    wait_for(
        kitchen,
        "document.querySelector('[data-queue-count]')?.textContent.startsWith('3 actions')",
        PATIENCE,
    )
    .await;
    click(kitchen, &tap).await;
    click(
        kitchen,
        &format!("article.ticket[data-order-id='{fourth}'] button[data-bump]"),
    )
    .await;
    wait_for(
        kitchen,
        "document.querySelector('[data-queue-count]')?.textContent === '5 actions waiting to be sent'",
        PATIENCE,
    )
    .await;
    for order in [first, second, third, fourth] {
        let shown = text(kitchen, &notes(order)).await;
        assert!(
            shown.starts_with("pending:⏳ Pending:"),
            "order {order}: {shown}"
        );
    }
    assert!(text(kitchen, &notes(first)).await.contains("Bump"));

    // Meanwhile, through the API, someone moves the fourth order on.
    let fries = items_at(&orders[3], "fryer")[0];
    server
        .set_item(&cook, fourth, fries, "preparing")
        .await
        .expect(200);

    // A reload without network shows the kept screen, marked offline, with
    // the changes still waiting.
    reload(kitchen).await;
    wait_for(
        kitchen,
        "document.querySelector('[data-offline-banner]')?.textContent.startsWith('Offline — last update ')",
        PATIENCE,
    )
    .await;
    wait_for(kitchen, &format!("!!{}", ticket(first)), PATIENCE).await;
    wait_for(
        kitchen,
        "document.querySelector('[data-queue-count]')?.textContent === '5 actions waiting to be sent'",
        PATIENCE,
    )
    .await;
    assert_eq!(
        text(kitchen, "document.querySelector('h1').textContent")
            .await
            .split(" · ")
            .next(),
        Some("Kitchen")
    );

    // A double replay: the first bump queued twice under its one key.
    let queued = eval(
        kitchen,
        &format!(
            "(async () => {{ const db = await new Promise((ok, no) => {{ const r = indexedDB.open('ordertrack-offline', 1); \
               r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); }}); \
             const all = await new Promise(ok => {{ const q = db.transaction('actions').objectStore('actions').getAll(); q.onsuccess = () => ok(q.result); }}); \
             const copy = {{ ...all.find(a => a.order === '{first}') }}; delete copy.seq; \
             await new Promise(ok => {{ const t = db.transaction('actions', 'readwrite'); t.objectStore('actions').add(copy); t.oncomplete = ok; }}); \
             db.close(); return all.length + 1; }})()"
        ),
    )
    .await;
    assert_eq!(queued, Value::from(6));

    link.restore();
    wait_for(
        kitchen,
        "document.querySelector('[data-queue-count]')?.hidden === true \
         && !document.querySelector('[data-queue-note=pending]') \
         && !document.querySelector('[data-offline-banner]')",
        PATIENCE,
    )
    .await;

    // Each change applied exactly once.
    for order in [first, second] {
        let now = server.order(&cashier, order).await;
        assert_eq!(status(&now), "ready", "order {order}");
        let history = server.history(&cashier, order).await;
        assert_eq!(
            entries_to(&history, "ready"),
            1,
            "order {order}: {history:?}"
        );
        for entry in &history {
            let to = entry["to"].as_str().unwrap_or_default();
            assert_eq!(entries_to(&history, to), 1, "order {order}: {history:?}");
        }
    }
    assert_eq!(
        server.history(&cashier, first).await.len(),
        server.history(&cashier, second).await.len(),
        "one bump each"
    );
    let third_now = server.order(&cashier, third).await;
    let burger_now = third_now["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["id"] == burger)
        .expect("the burger")
        .clone();
    assert_eq!(burger_now["status"], "ready");
    assert_eq!(
        version(&third_now),
        version(&orders[2]) + 2,
        "two taps, two changes"
    );
    // The conflict: shown on the card, the order as someone else left it.
    let fourth_now = server.order(&cashier, fourth).await;
    assert_eq!(status(&fourth_now), "preparing");
    assert_eq!(
        entries_to(&server.history(&cashier, fourth).await, "ready"),
        0
    );
    wait_for(
        kitchen,
        &format!("{}.includes('conflict:⚠ Not applied: Bump')", notes(fourth)),
        PATIENCE,
    )
    .await;
    wait_for(
        kitchen,
        &format!(
            "{}?.querySelector(\"button[data-item-id='{fries}']\")?.dataset.itemStatus === 'preparing'",
            ticket(fourth)
        ),
        PATIENCE,
    )
    .await;
    for order in [first, second, third] {
        assert!(
            !text(kitchen, &notes(order)).await.contains("conflict"),
            "order {order}"
        );
    }

    // The customer's open page shows the bump.
    wait_for(
        customer,
        "document.querySelector('#tracker .status-label')?.textContent.trim() === 'Ready'",
        LIVE + PATIENCE,
    )
    .await;
    chrome.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_an_upgrade_the_page_runs_the_new_build_s_assets() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let mut server = spawn_app_alone_guarded(Guards {
        asset_salt: Some("A".into()),
        ..Guards::default()
    })
    .await;
    let a = ordertrack_web::pages::Assets::embedded(Some("A"));
    let b = ordertrack_web::pages::Assets::embedded(Some("B"));
    let kai = chrome.person().await;
    let kitchen = &kai.page;
    let_workers_run(kitchen).await;
    sign_in(kitchen, &server, "kitchen@demo.test").await;
    goto(kitchen, &server.page_url(KITCHEN)).await;
    wait_until(kitchen, PAGE_KEPT).await;
    assert_eq!(
        text(kitchen, "document.documentElement.dataset.assets").await,
        a.url("live.js")
    );
    let shell_a = format!("ordertrack-shell-{}", a.version());
    let names = eval(kitchen, "caches.keys()").await;
    assert!(
        names
            .as_array()
            .is_some_and(|names| names.contains(&Value::from(shell_a.clone()))),
        "{names} lacks {shell_a}"
    );

    server.stop().await;
    server.set_asset_salt(Some("B"));
    server.restart().await;
    reload(kitchen).await;
    wait_for(
        kitchen,
        &format!(
            "document.documentElement.dataset.assets === {}",
            js_string(&b.url("live.js"))
        ),
        PATIENCE,
    )
    .await;
    // The new worker took over and dropped the old build's caches.
    wait_until(
        kitchen,
        &format!(
            "(async () => {{ const names = await caches.keys(); \
               return names.includes({}) && !names.some(n => n.includes({})); }})()",
            js_string(&format!("ordertrack-shell-{}", b.version())),
            js_string(a.version())
        ),
    )
    .await;
    // Reloading again (now through the new worker) still runs B.
    reload(kitchen).await;
    wait_for(
        kitchen,
        &format!(
            "document.readyState === 'complete' && document.documentElement.dataset.assets === {}",
            js_string(&b.url("live.js"))
        ),
        PATIENCE,
    )
    .await;
    assert!(
        text(
            kitchen,
            "[...document.styleSheets].map(s => s.href).join(' ')"
        )
        .await
        .contains(&b.url("app.css"))
    );
    chrome.close().await;
}

/// The `/metrics` gauge of open SSE streams.
async fn open_sse_streams(server: &TestApp) -> i64 {
    let text = server
        .client
        .get(server.page_url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|line| line.starts_with("ordertrack_open_streams{") && line.contains("sse"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as i64)
        .sum()
}

/// Waits until the server holds exactly `n` open SSE streams.
async fn wait_streams(server: &TestApp, n: i64) {
    // Longer than the heartbeat, which finds a stream whose tab is gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let open = open_sse_streams(server).await;
        if open == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{open} streams open, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_dashboard_tabs_share_one_stream_and_survive_the_leader_closing() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app_alone().await;
    let alice = server.login("alice@demo.test").await;
    let cashier = server.login("cashier@demo.test").await;
    let order = server.place_simple(&alice, RESTAURANT).await;
    let order_id = id(&order);
    let casey = chrome.person().await;
    sign_in(&casey.page, &server, "cashier@demo.test").await;
    let dashboard = server.page_url(&format!("/dashboard/{RESTAURANT}"));
    let mut tabs = vec![casey.page.clone()];
    for _ in 1..10 {
        tabs.push(chrome.window(&casey).await);
    }
    for tab in &tabs {
        goto(tab, &dashboard).await;
        wait_live(tab).await;
    }
    wait_streams(&server, 1).await;

    let shows = |to: &str| {
        format!(
            "document.querySelector(\"tr[data-order-id='{order_id}'] [data-status]\")?.dataset.status === '{to}'"
        )
    };
    server.move_order(&cashier, order_id, "confirmed").await;
    for tab in &tabs {
        wait_for(tab, &shows("confirmed"), LIVE).await;
    }
    assert_eq!(
        open_sse_streams(&server).await,
        1,
        "one stream for ten tabs"
    );

    // Closing the tab that holds the connection hands it over.
    let mut leading = None;
    for (n, tab) in tabs.iter().enumerate() {
        if eval(tab, "'liveLeader' in document.documentElement.dataset").await == Value::Bool(true)
        {
            assert!(leading.is_none(), "one leader");
            leading = Some(n);
        }
    }
    let leader = tabs.remove(leading.expect("a leading tab"));
    leader.close().await.expect("close the leading tab");
    // Another tab takes over and opens the connection again.
    let deadline = std::time::Instant::now() + PATIENCE;
    'handed: loop {
        for tab in &tabs {
            if text(tab, "document.documentElement.dataset.liveLeader").await == "open" {
                break 'handed;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no tab took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for tab in &tabs {
        wait_live(tab).await;
    }
    server.move_order(&cashier, order_id, "preparing").await;
    for tab in &tabs {
        wait_for(tab, &shows("preparing"), LIVE).await;
    }
    // The closed tab's stream ends (at the latest with the next heartbeat):
    // one stream for the nine.
    wait_streams(&server, 1).await;
    chrome.close().await;
}
