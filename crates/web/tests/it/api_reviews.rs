//! Ratings (issue 14): the customer of a done order rates it once, 1 to 5
//! with a comment; staff see it on the order; owners and managers read a
//! store's reviews a page at a time with the average; the order page asks
//! for the rating once the order is done.

use serde_json::{Value, json};

use crate::api_corrections::completed_order;
use crate::support::*;

async fn review(app: &TestApp, token: &str, order: &Value, body: Value) -> Resp {
    app.post(&format!("/orders/{}/review", id(order)), token, &body)
        .await
}

fn reviews_path(query: &str) -> String {
    format!("/stores/{RESTAURANT}/reviews{query}")
}

#[tokio::test]
async fn only_the_customer_rates_a_done_order_and_only_once() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let cashier = app.login("cashier@demo.test").await;

    let pending = app.place_simple(&alice.token, RESTAURANT).await;
    review(&app, &alice.token, &pending, json!({"rating": 5}))
        .await
        .expect_problem(409, "order_not_done");

    let done = completed_order(&app, &alice.token).await;
    review(&app, &bob.token, &done, json!({"rating": 1}))
        .await
        .expect_problem(404, "not_found");
    review(&app, &cashier, &done, json!({"rating": 5}))
        .await
        .expect_problem(403, "forbidden");
    for rating in [0, 6, -1] {
        review(&app, &alice.token, &done, json!({"rating": rating}))
            .await
            .expect_problem(422, "invalid_rating");
    }
    let written = review(
        &app,
        &alice.token,
        &done,
        json!({"rating": 4, "comment": "  Hot and quick  "}),
    )
    .await
    .expect(201);
    assert_eq!(written["rating"], 4);
    assert_eq!(written["comment"], "Hot and quick");
    assert!(written["created_at"].is_string(), "{written}");
    review(&app, &alice.token, &done, json!({"rating": 1}))
        .await
        .expect_problem(409, "already_reviewed");

    // Staff see it on the order; so does the customer.
    for token in [&cashier, &alice.token] {
        let order = app.order(token, id(&done)).await;
        assert_eq!(order["review"]["rating"], 4, "{order}");
        assert_eq!(order["review"]["comment"], "Hot and quick");
    }
    assert!(
        app.order(&alice.token, id(&pending))
            .await
            .get("review")
            .is_none()
    );
}

#[tokio::test]
async fn owners_and_managers_read_the_reviews_a_page_at_a_time_with_the_average() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let owner = app.login("owner@demo.test").await;
    let manager = app.login("manager@demo.test").await;

    let empty = app.get(&reviews_path(""), &owner).await.expect(200);
    assert_eq!(empty["count"], 0);
    assert_eq!(empty["average"], Value::Null);

    for (rating, comment) in [(5, "Perfect"), (4, "Good"), (2, "Cold fries")] {
        let done = completed_order(&app, &alice.token).await;
        review(
            &app,
            &alice.token,
            &done,
            json!({"rating": rating, "comment": comment}),
        )
        .await
        .expect(201);
    }

    let all = app.get(&reviews_path(""), &manager).await.expect(200);
    assert_eq!(all["count"], 3);
    assert_eq!(all["average"], 3.67);
    let comments: Vec<&str> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["comment"].as_str())
        .collect();
    assert_eq!(comments, ["Cold fries", "Good", "Perfect"], "newest first");
    assert_eq!(all["items"][0]["customer_name"], alice.name);
    assert!(all["items"][0]["order_number"].is_string());

    let first = app.get(&reviews_path("?limit=2"), &owner).await.expect(200);
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["average"], 3.67, "the average is of all reviews");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = app
        .get(&reviews_path(&format!("?limit=2&cursor={cursor}")), &owner)
        .await
        .expect(200);
    assert_eq!(second["items"][0]["rating"], 5);
    assert_eq!(second["next_cursor"], Value::Null);
    app.get(&reviews_path("?cursor=x"), &owner)
        .await
        .expect_problem(422, "invalid_cursor");

    let cashier = app.login("cashier@demo.test").await;
    app.get(&reviews_path(""), &cashier)
        .await
        .expect_problem(403, "forbidden");
    for token in [alice.token.clone(), app.login("seller@demo.test").await] {
        app.get(&reviews_path(""), &token)
            .await
            .expect_problem(404, "not_found");
    }
    assert_eq!(app.get(&reviews_path(""), ANON).await.status, 401);
}

#[tokio::test]
async fn the_order_page_asks_for_a_rating_once_the_order_is_done() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let pending = app.place_simple(&alice.token, RESTAURANT).await;
    let (_, html) = page(&app, &alice.token, &format!("/orders/{}", id(&pending))).await;
    assert!(!html.contains("data-review-form"), "{html}");

    let done = completed_order(&app, &alice.token).await;
    let path = format!("/orders/{}", id(&done));
    let (code, html) = page(&app, &alice.token, &path).await;
    assert_eq!(code, 200);
    assert!(html.contains("data-review-form"), "{html}");
    // Staff looking at the customer's page get no form to fill in.
    let owner = app.login("owner@demo.test").await;
    let (_, staff_view) = page(&app, &owner, &path).await;
    assert!(!staff_view.contains("data-review-form"));

    let response = app
        .post_page_form(
            &alice.token,
            &format!("{path}/review"),
            &[("rating", "3"), ("comment", "Fine")],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let (_, html) = page(&app, &alice.token, &path).await;
    assert!(html.contains(r#"data-review="3""#), "{html}");
    assert!(!html.contains("data-review-form"));
    assert_eq!(app.order(&owner, id(&done)).await["review"]["rating"], 3);
}
