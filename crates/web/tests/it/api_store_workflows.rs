//! Workflows as a store's own data: the built-ins listed with their
//! definitions; a store uploading its own (every problem listed when it is
//! refused); orders keeping the version they were placed under.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn the_builtins_are_listed_with_their_definitions() {
    let app = spawn_app().await;
    let body = app.get("/workflows", ANON).await.expect(200);
    let list = body.as_array().expect("a list");
    let names: Vec<&str> = list.iter().filter_map(|w| w["name"].as_str()).collect();
    assert_eq!(names, ["restaurant", "kitchen", "retail"]);
    for builtin in list {
        assert!(builtin["label"].is_string());
        let workflow: &Value = &builtin["workflow"];
        assert_eq!(workflow["name"], builtin["name"]);
        assert!(workflow["states"].as_array().is_some_and(|s| !s.is_empty()));
        assert!(workflow["transitions"].is_array());
    }
}

/// The built-in `name`'s definition, from `GET /workflows`.
async fn builtin(app: &TestApp, name: &str) -> Value {
    let list = app.get("/workflows", ANON).await.expect(200);
    list.as_array()
        .and_then(|all| all.iter().find(|w| w["name"] == name))
        .map(|found| found["workflow"].clone())
        .unwrap_or_else(|| panic!("no built-in {name} in {list}"))
}

/// The `(path, message)` of every error of a refused upload (asserts 422
/// `invalid_workflow`).
fn problems(response: Resp) -> Vec<(String, String)> {
    let body = response.expect(422);
    assert_eq!(body["code"], "invalid_workflow", "{body}");
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"))
        .iter()
        .map(|e| {
            (
                e["path"].as_str().expect("path").to_owned(),
                e["message"].as_str().expect("message").to_owned(),
            )
        })
        .collect()
}

fn workflow_path(slug: &str) -> String {
    format!("/stores/{slug}/workflow")
}

/// "Express": orders go from placed straight to collected, by the cashier.
pub fn express() -> Value {
    json!({
        "name": "express",
        "label": "Express",
        "cancelled": ["cancelled"],
        "done": ["collected"],
        "states": [
            {"key": "pending", "label": "Placed", "icon": "🕐", "progress": 10,
             "customer_message": "We have your order.", "expected_minutes": 2, "initial": true},
            {"key": "collected", "label": "Collected", "progress": 100, "terminal": true},
            {"key": "cancelled", "label": "Cancelled", "progress": 0, "terminal": true}
        ],
        "transitions": [
            {"from": "pending", "to": "collected", "roles": ["cashier", "owner"]},
            {"from": "pending", "to": "cancelled", "roles": ["cashier", "customer"]}
        ]
    })
}

#[tokio::test]
async fn an_invalid_upload_lists_every_problem_with_where_it_is() {
    let app = spawn_app().await;
    let owner = app.user("owner@demo.test").await;
    let path = workflow_path(RESTAURANT);

    // No initial state, a terminal state with an exit, an unknown role.
    let mut broken = builtin(&app, "kitchen").await;
    for state in broken["states"].as_array_mut().expect("states") {
        state["initial"] = json!(false);
    }
    broken["transitions"][0]["roles"] = json!(["chef"]);
    broken["transitions"]
        .as_array_mut()
        .expect("transitions")
        .push(json!({"from": "completed", "to": "pending", "roles": ["owner"]}));
    let first = problems(
        app.send(
            app.request(reqwest::Method::PUT, &path, &owner.token)
                .json(&broken),
        )
        .await,
    );
    let has = |found: &[(String, String)], path: &str, words: &str| {
        assert!(
            found
                .iter()
                .any(|(p, m)| p.starts_with(path) && m.contains(words)),
            "no `{words}` at `{path}` in {found:?}"
        );
    };
    has(&first, "states", "initial");
    has(&first, "transitions[0].roles", "chef");
    has(&first, "transitions[", "terminal");
    assert!(first.len() >= 3, "{first:?}");

    // An unreachable state (the initial one is back, so reachability is checked).
    let mut lost = builtin(&app, "kitchen").await;
    lost["states"]
        .as_array_mut()
        .expect("states")
        .push(json!({"key": "limbo", "label": "Limbo", "progress": 50}));
    lost["transitions"]
        .as_array_mut()
        .expect("transitions")
        .push(json!({"from": "limbo", "to": "completed", "roles": ["chef"]}));
    let second = problems(
        app.send(
            app.request(reqwest::Method::PUT, &path, &owner.token)
                .json(&lost),
        )
        .await,
    );
    has(&second, "states[", "can't be reached");
    has(&second, "transitions[", "chef");

    // Not JSON of the right shape, an unknown built-in: refused too.
    let shape = problems(
        app.send(
            app.request(reqwest::Method::PUT, &path, &owner.token)
                .json(&json!({"name": "x"})),
        )
        .await,
    );
    assert_eq!(shape.len(), 1, "{shape:?}");
    app.send(
        app.request(reqwest::Method::PUT, &path, &owner.token)
            .json(&json!({"builtin": "bakery"})),
    )
    .await
    .expect_problem(422, "unknown_workflow");

    // Nothing changed: the store still runs its built-in.
    let current = app.get(&path, &owner.token).await.expect(200);
    assert_eq!(current["version"], 0);
    assert_eq!(current["name"], "restaurant");
}

#[tokio::test]
async fn new_orders_take_the_new_version_and_older_ones_finish_on_theirs() {
    let app = spawn_app().await;
    let owner = app.user("owner@demo.test").await;
    let cashier = app.user("cashier@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let alice = app.alice().await;
    let path = workflow_path(RESTAURANT);

    let before = app.place_simple(&alice.token, RESTAURANT).await;

    let put = |body: Value| {
        let token = owner.token.clone();
        let path = path.clone();
        let app = &app;
        async move {
            app.send(app.request(reqwest::Method::PUT, &path, &token).json(&body))
                .await
        }
    };
    let set = put(express()).await.expect(200);
    assert_eq!(set["version"], 1);
    assert_eq!(set["name"], "express");
    assert_eq!(set["states"][1]["key"], "collected");
    // Staff read it; the store page lists its states.
    let seen = app.get(&path, &kitchen.token).await.expect(200);
    assert_eq!(seen["version"], 1);
    assert_eq!(seen["transitions"], set["transitions"]);
    let page = app
        .get(&format!("/stores/{RESTAURANT}"), ANON)
        .await
        .expect(200);
    let keys: Vec<&str> = page["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .filter_map(|s| s["key"].as_str())
        .collect();
    assert_eq!(keys, ["pending", "collected", "cancelled"]);

    // A new order runs the new version: straight to collected.
    let after = app.place_simple(&alice.token, RESTAURANT).await;
    assert_eq!(after["next_statuses"], json!(["cancelled"]));
    let after = app.advance(&cashier.token, &after, "collected").await;
    assert_eq!(status(&after), "collected");

    // The order placed before runs the restaurant workflow to its end.
    app.transition(&cashier.token, id(&before), "collected", version(&before))
        .await
        .expect_problem(422, "unknown_status");
    let order = app.advance(&cashier.token, &before, "confirmed").await;
    let order = app.advance(&kitchen.token, &order, "preparing").await;
    let order = app.all_items_ready(&kitchen.token, order).await;
    assert_eq!(status(&order), "ready");
    let order = app.advance(&cashier.token, &order, "completed").await;
    assert_eq!(status(&order), "completed");
    let history = app
        .get(&format!("/orders/{}/history", id(&order)), &cashier.token)
        .await
        .expect(200);
    let statuses: Vec<&str> = history
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["to"].as_str())
        .collect();
    assert_eq!(
        statuses,
        ["pending", "confirmed", "preparing", "ready", "completed"]
    );

    // Back to a built-in: a new version again; orders of version 1 keep it.
    let mid = app.place_simple(&alice.token, RESTAURANT).await;
    let back = put(json!({"builtin": "kitchen"})).await.expect(200);
    assert_eq!(back["version"], 2);
    assert_eq!(back["name"], "kitchen");
    let mid = app.advance(&cashier.token, &mid, "collected").await;
    assert_eq!(status(&mid), "collected");
    let newest = app.place_simple(&alice.token, RESTAURANT).await;
    app.advance(&kitchen.token, &newest, "confirmed").await;
}

#[tokio::test]
async fn only_owners_set_a_workflow_and_only_staff_read_it() {
    let app = spawn_app().await;
    let path = workflow_path(RESTAURANT);
    for (email, code) in [
        ("cashier@demo.test", 403),
        ("manager@demo.test", 403),
        ("alice@demo.test", 403),
    ] {
        let user = app.user(email).await;
        let response = app
            .send(
                app.request(reqwest::Method::PUT, &path, &user.token)
                    .json(&json!({"builtin": "kitchen"})),
            )
            .await;
        assert_eq!(response.status.as_u16(), code, "{email}: {}", response.text);
    }
    let alice = app.alice().await;
    app.get(&path, &alice.token)
        .await
        .expect_problem(404, "not_found");
    app.get(&path, ANON)
        .await
        .expect_problem(401, "unauthenticated");
    let owner = app.user("owner@demo.test").await;
    assert_eq!(app.get(&path, &owner.token).await.expect(200)["version"], 0);
}

/// Posts the workflow page's form as the holder of `token`: status and body.
async fn post_workflow_page(app: &TestApp, token: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let response = app
        .post_page_form(token, &format!("/manage/{RESTAURANT}/workflow"), fields)
        .await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("the page"))
}

#[tokio::test]
async fn the_workflow_page_lists_the_problems_next_to_the_editor() {
    let app = spawn_app().await;
    let owner = app.user("owner@demo.test").await;
    let page = app
        .client
        .get(app.page_url(&format!("/manage/{RESTAURANT}/workflow")))
        .header(
            reqwest::header::COOKIE,
            format!("ordertrack_session={}", owner.token),
        )
        .send()
        .await
        .expect("the page");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("<textarea"), "{html}");
    assert!(html.contains("&quot;restaurant&quot;") || html.contains("\"restaurant\""));

    let mut broken = builtin(&app, "kitchen").await;
    broken["transitions"][0]["roles"] = json!(["chef"]);
    broken["states"][0]["initial"] = json!(false);
    let text = broken.to_string();
    let (status, html) = post_workflow_page(&app, &owner.token, &[("definition", &text)]).await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("transitions[0].roles"), "{html}");
    assert!(html.contains("chef"), "{html}");
    assert!(html.contains("initial"), "{html}");

    let (status, _) = post_workflow_page(
        &app,
        &owner.token,
        &[("definition", &express().to_string())],
    )
    .await;
    assert_eq!(status, 303);
    let current = app
        .get(&workflow_path(RESTAURANT), &owner.token)
        .await
        .expect(200);
    assert_eq!(current["version"], 1);
    assert_eq!(current["name"], "express");
}
