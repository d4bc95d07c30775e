//! The binary as a user runs it: `ordertrack demo` answers on the URL it
//! prints and every printed login works with the contract's roles; `serve`
//! never creates demo accounts; `migrate` and `user create` work.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// Runs a one-shot subcommand to completion.
fn run(args: &[&str], data_dir: &Path) -> Output {
    ordertrack(args, data_dir).output().expect("run ordertrack")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The emails `demo` printed under "demo logins".
fn printed_logins(server: &Server) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let Some(line) = server.next_line(deadline) else {
            panic!("no `demo logins` header; output:\n{}", server.output());
        };
        if line.starts_with("demo logins") {
            assert!(
                line.contains(DEMO_PASSWORD),
                "the header names the password: {line}"
            );
            break;
        }
    }
    let mut emails = Vec::new();
    // The logins follow the header at once; stop after a quiet second.
    while let Some(line) = server.line_within(Duration::from_secs(1)) {
        if line.starts_with("  ") && line.contains('@') {
            let email = line.split_whitespace().next().expect("an email");
            emails.push(email.to_owned());
        }
    }
    emails
}

/// `(store, role)` pairs of `/auth/me`.
fn memberships(me: &Value) -> BTreeSet<(String, String)> {
    me["memberships"]
        .as_array()
        .unwrap_or_else(|| panic!("memberships is a list: {me}"))
        .iter()
        .map(|m| {
            (
                m["store"].as_str().expect("store").to_owned(),
                m["role"].as_str().expect("role").to_owned(),
            )
        })
        .collect()
}

/// `(store, role)` memberships an account must have.
type Staff = Vec<(&'static str, &'static str)>;

/// The demo contract: every account, whether it is admin, and its memberships.
fn demo_contract() -> BTreeMap<&'static str, (bool, Staff)> {
    BTreeMap::from([
        ("admin@demo.test", (true, vec![])),
        (
            "owner@demo.test",
            (false, vec![("demo-restaurant", "owner")]),
        ),
        (
            "manager@demo.test",
            (false, vec![("demo-restaurant", "manager")]),
        ),
        (
            "cashier@demo.test",
            (false, vec![("demo-restaurant", "cashier")]),
        ),
        (
            "kitchen@demo.test",
            (false, vec![("demo-restaurant", "kitchen")]),
        ),
        (
            "driver@demo.test",
            (false, vec![("demo-restaurant", "driver")]),
        ),
        ("seller@demo.test", (false, vec![("demo-shop", "owner")])),
        ("alice@demo.test", (false, vec![])),
        ("bob@demo.test", (false, vec![])),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_answers_on_its_url_and_every_printed_login_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&mut serving("demo", dir.path()));
    let printed = printed_logins(&server);
    let client = client();

    let health = client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);

    let contract = demo_contract();
    let printed_set: BTreeSet<&str> = printed.iter().map(String::as_str).collect();
    assert_eq!(printed.len(), printed_set.len(), "each login printed once");
    assert_eq!(
        printed_set,
        contract.keys().copied().collect(),
        "demo prints exactly the contract's logins; output:\n{}",
        server.output()
    );

    for email in &printed {
        let (status, body) = login(&client, &server, email, DEMO_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "login {email}: {body}");
        assert_eq!(body["user"]["email"], json!(email));
        let token = body["token"].as_str().expect("token");
        let (status, me) = get(&client, &server, "/api/v1/auth/me", Some(token)).await;
        assert_eq!(status, StatusCode::OK, "me {email}: {me}");
        let (admin, expected) = &contract[email.as_str()];
        assert_eq!(me["email"], json!(email));
        assert!(me["id"].as_i64().is_some(), "me has an id: {me}");
        assert!(me["name"].as_str().is_some_and(|n| !n.is_empty()));
        assert_eq!(me["is_admin"], json!(admin), "is_admin of {email}");
        let expected: BTreeSet<(String, String)> = expected
            .iter()
            .map(|(store, role)| ((*store).to_owned(), (*role).to_owned()))
            .collect();
        assert_eq!(memberships(&me), expected, "memberships of {email}");
    }

    let (status, _) = login(&client, &server, "alice@demo.test", "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The two demo stores and their catalogs.
    let (status, stores) = get(&client, &server, "/api/v1/stores", None).await;
    assert_eq!(status, StatusCode::OK);
    let workflows: BTreeMap<String, String> = stores
        .as_array()
        .expect("a list of stores")
        .iter()
        .map(|s| {
            (
                s["slug"].as_str().expect("slug").to_owned(),
                s["workflow"].as_str().expect("workflow").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        workflows,
        BTreeMap::from([
            ("demo-restaurant".to_owned(), "restaurant".to_owned()),
            ("demo-shop".to_owned(), "retail".to_owned()),
        ])
    );
    let (status, restaurant) = get(&client, &server, "/api/v1/stores/demo-restaurant", None).await;
    assert_eq!(status, StatusCode::OK);
    let products = restaurant["products"].as_array().expect("products");
    assert!(
        (10..=14).contains(&products.len()),
        "about a dozen products, got {}",
        products.len()
    );
    let stations: BTreeSet<&str> = products
        .iter()
        .map(|p| p["station"].as_str().expect("station"))
        .collect();
    assert_eq!(stations, BTreeSet::from(["drinks", "fryer", "grill"]));
    let (status, shop) = get(&client, &server, "/api/v1/stores/demo-shop", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!shop["products"].as_array().expect("products").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_restarted_on_its_data_keeps_one_set_of_accounts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = Server::start(&mut serving("demo", dir.path()));
    let client = client();
    let alice = token(&client, &first, "alice@demo.test", DEMO_PASSWORD).await;
    first.kill();

    let second = Server::start(&mut serving("demo", dir.path()));
    assert_eq!(printed_logins(&second).len(), 9);
    let (status, me) = get(&client, &second, "/api/v1/auth/me", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK, "a session survives a restart: {me}");
    let (_, stores) = get(&client, &second, "/api/v1/stores", None).await;
    assert_eq!(stores.as_array().expect("stores").len(), 2, "seeded once");
    token(&client, &second, "owner@demo.test", DEMO_PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_creates_no_demo_accounts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&mut serving("serve", dir.path()));
    let client = client();
    let health = client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);

    for email in ["alice@demo.test", "admin@demo.test", "owner@demo.test"] {
        let (status, body) = login(&client, &server, email, DEMO_PASSWORD).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{email} must not exist: {body}"
        );
    }
    let (status, stores) = get(&client, &server, "/api/v1/stores", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stores, json!([]), "serve creates no stores");
    let (status, _) = get(&client, &server, "/api/v1/stores/demo-restaurant", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        !server.output().contains("demo logins"),
        "serve prints no demo logins"
    );
}

/// How many migrations a `migrate` run reports.
fn applied(output: &Output) -> usize {
    assert!(output.status.success(), "migrate failed:\n{}", text(output));
    let out = text(output);
    let line = out
        .lines()
        .find(|l| l.contains("migration(s) applied"))
        .unwrap_or_else(|| panic!("no migration report in:\n{out}"));
    line.rsplit(": ")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable report `{line}`"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_applies_each_migration_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = applied(&run(&["migrate"], dir.path()));
    assert!(first >= 1, "a fresh database gets its migrations");
    assert!(dir.path().join("ordertrack.db").exists());
    assert_eq!(
        applied(&run(&["migrate"], dir.path())),
        0,
        "migrate is idempotent"
    );

    // The migrated database serves.
    let server = Server::start(&mut serving("serve", dir.path()));
    let (status, stores) = get(&client(), &server, "/api/v1/stores", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stores, json!([]));
}

/// Finding 7h: the data dir, the database and its `-wal`/`-shm` were
/// created readable by everyone (0755/0644).
#[tokio::test]
async fn database_files_are_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("data");
    let server = Server::start(&mut serving("serve", &dir));
    let (status, _) = get(&client(), &server, "/api/v1/stores", None).await;
    assert_eq!(status, StatusCode::OK);
    let mode = |name: &str| {
        let path = if name.is_empty() {
            dir.clone()
        } else {
            dir.join(name)
        };
        std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data dir");
    for file in [
        "ordertrack.db",
        "ordertrack.db-wal",
        "ordertrack.db-shm",
        "secret",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_adds_staff_who_can_see_the_store_orders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&mut serving("demo", dir.path()));
    let client = client();

    // Alice places an order the new cashier should see.
    let desk = Desk::signed_in(&client, &server).await;
    let placed = desk
        .place(&[(desk.products[0], 1)], None)
        .await
        .expect("place order");
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.expect("order");

    // Before: no such account.
    let (status, _) = login(&client, &server, "newcashier@demo.test", "cashier-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The CLI works on the running server's data.
    let created = run(
        &[
            "user",
            "create",
            "--email",
            "newcashier@demo.test",
            "--name",
            "New Cashier",
            "--password",
            "cashier-password",
            "--store",
            "demo-restaurant",
            "--role",
            "cashier",
        ],
        dir.path(),
    );
    assert!(
        created.status.success(),
        "user create failed:\n{}",
        text(&created)
    );
    assert!(
        text(&created).contains("newcashier@demo.test"),
        "user create reports the account:\n{}",
        text(&created)
    );

    let cashier = token(&client, &server, "newcashier@demo.test", "cashier-password").await;
    let (status, me) = get(&client, &server, "/api/v1/auth/me", Some(&cashier)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        memberships(&me),
        BTreeSet::from([("demo-restaurant".to_owned(), "cashier".to_owned())])
    );
    assert_eq!(me["is_admin"], json!(false));
    let (status, list) = get(
        &client,
        &server,
        "/api/v1/orders?store=demo-restaurant",
        Some(&cashier),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the new cashier lists the store's orders: {list}"
    );
    let ids: Vec<i64> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, vec![order["id"].as_i64().expect("id")]);
    let (status, _) = get(
        &client,
        &server,
        "/api/v1/orders?store=demo-shop",
        Some(&cashier),
    )
    .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "a cashier of one store cannot list another's orders, got {status}"
    );

    // The same email again is refused.
    let again = run(
        &[
            "user",
            "create",
            "--email",
            "NewCashier@demo.test",
            "--name",
            "Someone Else",
            "--password",
            "other-password",
        ],
        dir.path(),
    );
    assert!(
        !again.status.success(),
        "a taken email must be refused:\n{}",
        text(&again)
    );
    token(&client, &server, "newcashier@demo.test", "cashier-password").await;
}
