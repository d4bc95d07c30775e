//! The operator's tools (issue 16): `backup` while the order desk serves
//! and takes orders, `restore` into a fresh data dir that then serves
//! them; JSON logs whose request lines carry the request's id.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// Runs `ordertrack <args> --data-dir <data_dir>` to the end; its output.
fn run(args: &[&str], data_dir: &std::path::Path) -> String {
    let output = ordertrack(args, data_dir).output().expect("run ordertrack");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "ordertrack {args:?} failed:\n{text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_orders_come_in_restores_every_order_acknowledged_before_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let server = Server::start(&mut serving("demo", &data));
    let client = client();
    let desk = Desk::signed_in(&client, &server).await;

    // Alice keeps ordering from four tabs while the backup runs.
    let acknowledged = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (desk, acknowledged, stop) = (desk.clone(), acknowledged.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(response) = desk.place(&[(desk.products[0], 1)], None).await else {
                    continue;
                };
                if response.status() == 201 {
                    let order: Value = response.json().await.expect("the order");
                    let id = order["id"].as_i64().expect("an id");
                    acknowledged.lock().expect("ids").push(id);
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().expect("ids").len() < 30 {
        assert!(Instant::now() < deadline, "orders are acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let before: Vec<i64> = acknowledged.lock().expect("ids").clone();
    let copy = dir.path().join("copy.db");
    let copy_arg = copy.to_str().expect("a UTF-8 path").to_owned();
    let backup_data = data.clone();
    let said =
        tokio::task::spawn_blocking(move || run(&["backup", "--to", &copy_arg], &backup_data))
            .await
            .expect("the backup ran");
    assert!(said.contains("backed up to"), "{said}");
    // Orders kept coming in while it ran: the server never stopped.
    let during = acknowledged.lock().expect("ids").len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("a writer");
    }
    assert!(
        acknowledged.lock().expect("ids").len() > during,
        "orders were still acknowledged after the backup"
    );
    assert!(
        !dir.path().join("copy.db.partial").exists(),
        "no half-written copy is left behind"
    );

    // Restored into a fresh data dir, the copy is sound and holds every
    // order acknowledged before the backup began.
    let restored = dir.path().join("restored");
    let from = copy.to_str().expect("a UTF-8 path");
    let said = run(&["restore", "--from", from], &restored);
    assert!(said.contains("restored from"), "{said}");
    let db = rusqlite::Connection::open(restored.join("ordertrack.db")).expect("open");
    let verdict: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(verdict, "ok");
    let kept: HashSet<i64> = db
        .prepare("SELECT id FROM orders")
        .expect("a statement")
        .query_map([], |row| row.get(0))
        .expect("the orders")
        .collect::<Result<_, _>>()
        .expect("ids");
    let missing: Vec<i64> = before
        .iter()
        .copied()
        .filter(|id| !kept.contains(id))
        .collect();
    assert!(missing.is_empty(), "lost acknowledged orders {missing:?}");
    drop(db);

    // And it serves them: the restored desk shows Alice her last order.
    let last = *before.last().expect("orders");
    let restored_server = Server::start(&mut serving("serve", &restored));
    let alice = token(&client, &restored_server, "alice@demo.test", DEMO_PASSWORD).await;
    let (status, order) = get(
        &client,
        &restored_server,
        &format!("/api/v1/orders/{last}"),
        Some(&alice),
    )
    .await;
    assert_eq!(status, 200, "{order}");
    drop(server);
}

#[test]
fn a_copy_that_is_not_a_sound_ordertrack_database_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database at all, just bytes").expect("write");
    let output = ordertrack(
        &["restore", "--from", junk.to_str().expect("UTF-8")],
        &dir.path().join("data"),
    )
    .output()
    .expect("run ordertrack");
    assert!(!output.status.success());
    assert!(
        !dir.path().join("data").join("ordertrack.db").exists()
            || std::fs::metadata(dir.path().join("data").join("ordertrack.db"))
                .map(|meta| meta.len() == 0)
                .unwrap_or(true),
        "nothing was restored"
    );

    // A sound SQLite file that is not ours is refused too.
    let foreign = dir.path().join("foreign.db");
    let conn = rusqlite::Connection::open(&foreign).expect("open");
    conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
        .expect("a table");
    drop(conn);
    let output = ordertrack(
        &["restore", "--from", foreign.to_str().expect("UTF-8")],
        &dir.path().join("data"),
    )
    .output()
    .expect("run ordertrack");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("not an ordertrack database"), "{said}");
}

#[tokio::test]
async fn json_logs_put_the_request_id_on_the_lines_of_its_request() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut command = serving("demo", &dir.path().join("data"));
    command
        .arg("--log-format")
        .arg("json")
        // The per-request line is at debug.
        .env("ORDERTRACK_LOG", "info,tower_http=debug");
    let server = Server::start(&mut command);
    let response = client()
        .get(server.url("/api/v1/stores"))
        .header("x-request-id", "trace-me-4711")
        .send()
        .await
        .expect("GET /stores");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|id| id.to_str().ok()),
        Some("trace-me-4711")
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = None;
    while found.is_none() {
        let Some(line) = server.next_line(deadline) else {
            break;
        };
        if let Ok(log) = serde_json::from_str::<Value>(&line)
            && log["span"]["request_id"] == "trace-me-4711"
        {
            found = Some(log);
        }
    }
    let log = found.unwrap_or_else(|| {
        panic!(
            "no JSON line with the request id; output:\n{}",
            server.output()
        )
    });
    assert_eq!(log["span"]["route"], "/api/v1/stores", "{log}");
    // Every log line is JSON (the URL and the demo logins are the
    // binary's own greeting on stdout, not log lines).
    for line in server.output().lines() {
        let greeting = line.starts_with("ordertrack listening on")
            || line.starts_with("demo logins")
            || line.starts_with("  ");
        if !greeting {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        }
    }
}
