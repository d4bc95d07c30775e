//! A shop starting on ordertrack without the demo: `serve` on an empty data
//! dir, a platform admin and an owner from `user create`, a store from
//! `store create`, another through the API under `--store-signup approval`,
//! staff added to the new store, a customer's order reaching the owner's
//! live stream; then the default signup (`closed`) after a restart.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const PASSWORD: &str = "a-long-shop-password";

fn run(args: &[&str], data_dir: &Path) -> Output {
    let mut command = ordertrack(args, data_dir);
    command.env("ORDERTRACK_NEW_PASSWORD", PASSWORD);
    command.output().expect("run ordertrack")
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a command that must succeed; what it printed.
fn succeed(args: &[&str], data_dir: &Path) -> String {
    let output = run(args, data_dir);
    assert!(
        output.status.success(),
        "{args:?} failed:\n{}",
        printed(&output)
    );
    printed(&output)
}

/// A request with a JSON body (or none), signed in with `token`: the
/// status and JSON body.
async fn send(
    client: &reqwest::Client, server: &Server, method: reqwest::Method, path: &str, token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method, server.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("a request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn register(client: &reqwest::Client, server: &Server, email: &str) -> String {
    let response = client
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Carla Customer"}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("a session");
    body["token"].as_str().expect("a token").to_owned()
}

async fn listed(client: &reqwest::Client, server: &Server) -> Vec<String> {
    let (status, stores) = get(client, server, "/api/v1/stores", None).await;
    assert_eq!(status, StatusCode::OK);
    stores
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["slug"].as_str().expect("a slug").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_starts_from_an_empty_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(
        serving("serve", dir.path())
            .arg("--store-signup")
            .arg("approval"),
    );
    let client = client();
    assert!(listed(&client, &server).await.is_empty(), "no demo stores");

    // Accounts and a store from the command line.
    succeed(
        &[
            "user",
            "create",
            "--email",
            "admin@shop.test",
            "--name",
            "Admin",
            "--admin",
        ],
        dir.path(),
    );
    succeed(
        &[
            "user",
            "create",
            "--email",
            "olga@shop.test",
            "--name",
            "Olga Owner",
        ],
        dir.path(),
    );
    let created = succeed(
        &[
            "store",
            "create",
            "--slug",
            "rosies-pizza",
            "--name",
            "Rosie's Pizza",
            "--currency",
            "EUR",
            "--workflow",
            "restaurant",
            "--timezone",
            "Europe/Berlin",
            "--owner",
            "olga@shop.test",
        ],
        dir.path(),
    );
    assert!(created.contains("rosies-pizza"), "{created}");
    // Staff of the new store.
    succeed(
        &[
            "user",
            "create",
            "--email",
            "cashier@shop.test",
            "--name",
            "Cas Cashier",
            "--store",
            "rosies-pizza",
            "--role",
            "cashier",
        ],
        dir.path(),
    );
    // Refused: a taken slug, an owner without an account, a bad zone.
    for (args, says) in [
        (
            ["rosies-pizza", "olga@shop.test", "Europe/Berlin"],
            "already exists",
        ),
        (
            ["other-pizza", "nobody@shop.test", "Europe/Berlin"],
            "not found",
        ),
        (
            ["other-pizza", "olga@shop.test", "Europe/Atlantis"],
            "time zone",
        ),
    ] {
        let output = run(
            &[
                "store",
                "create",
                "--slug",
                args[0],
                "--name",
                "Other",
                "--currency",
                "EUR",
                "--workflow",
                "restaurant",
                "--timezone",
                args[2],
                "--owner",
                args[1],
            ],
            dir.path(),
        );
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(
            printed(&output).contains(says),
            "{args:?}: {}",
            printed(&output)
        );
    }
    assert_eq!(listed(&client, &server).await, ["rosies-pizza"]);

    // The owner puts a menu up.
    let owner = token(&client, &server, "olga@shop.test", PASSWORD).await;
    let (status, product) = send(
        &client,
        &server,
        reqwest::Method::POST,
        "/api/v1/stores/rosies-pizza/products",
        &owner,
        Some(json!({"name": "Margherita", "price_minor": 850, "station": "oven"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{product}");

    // Another store through the API: waits for the admin.
    let customer = register(&client, &server, "carla@shop.test").await;
    let (status, store) = send(
        &client,
        &server,
        reqwest::Method::POST,
        "/api/v1/stores",
        &customer,
        Some(
            json!({"slug": "carlas-cafe", "name": "Carla's Cafe", "currency": "EUR",
                    "workflow": "kitchen", "timezone": "Europe/Berlin"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{store}");
    assert_eq!(store["status"], "pending_approval");
    assert_eq!(listed(&client, &server).await, ["rosies-pizza"]);
    let admin = token(&client, &server, "admin@shop.test", PASSWORD).await;
    let (status, approved) = send(
        &client,
        &server,
        reqwest::Method::POST,
        "/api/v1/stores/carlas-cafe/approve",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(
        listed(&client, &server).await,
        ["carlas-cafe", "rosies-pizza"]
    );

    // A customer orders from the new store; its owner sees it live.
    let (events, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let _stream = follow_url(
        client.clone(),
        server.url("/api/v1/stores/rosies-pizza/events"),
        owner.clone(),
        None,
        events,
    )
    .await;
    let (status, order) = send(
        &client,
        &server,
        reqwest::Method::POST,
        "/api/v1/orders",
        &customer,
        Some(
            json!({"store": "rosies-pizza", "items": [{"product": product["id"], "quantity": 2}],
                    "fulfilment": {"type": "pickup"}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let event = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the order reaches the owner's stream in time")
        .expect("an event");
    assert_eq!(Some(event.order), order["id"].as_i64());
    // The cashier added from the command line sees it too.
    let cashier = token(&client, &server, "cashier@shop.test", PASSWORD).await;
    let (status, list) = get(
        &client,
        &server,
        "/api/v1/orders?store=rosies-pizza",
        Some(&cashier),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["id"], order["id"]);

    // Restarted with the default signup (`closed`): only admins open stores.
    server.kill();
    let server = Server::start(&mut serving("serve", dir.path()));
    let open = |slug: &str| {
        json!({"slug": slug, "name": "Late Shop", "currency": "EUR",
                                   "workflow": "retail"})
    };
    let (status, _) = send(
        &client,
        &server,
        reqwest::Method::POST,
        "/api/v1/stores",
        &customer,
        Some(open("late-shop")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(
        &client,
        &server,
        reqwest::Method::POST,
        "/api/v1/stores",
        &admin,
        Some(open("late-shop")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        listed(&client, &server).await,
        ["carlas-cafe", "late-shop", "rosies-pizza"]
    );
}
