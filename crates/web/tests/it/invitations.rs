//! Staff invitations: an owner invites an e-mail address to a role; the
//! person signed in with that address accepts once, within 7 days, and is
//! staff from then on. Anyone else, a second use, or a late one is refused.

use ordertrack_app::invitations::token_hash;
use ordertrack_domain::Role;
use ordertrack_store::NewInvitation;
use serde_json::{Value, json};

use crate::support::*;

const INVITEE: &str = "new.cook@example.test";

fn invitations() -> String {
    format!("/stores/{RESTAURANT}/invitations")
}

fn accept(token: &str) -> String {
    format!("/invitations/{token}/accept")
}

/// The demo restaurant's owner invites `email` as a cashier; the answer.
async fn invite(app: &TestApp, email: &str) -> Value {
    let owner = app.login("owner@demo.test").await;
    app.post(
        &invitations(),
        &owner,
        &json!({"email": email, "role": "cashier"}),
    )
    .await
    .expect(201)
}

fn token(invitation: &Value) -> &str {
    invitation["token"].as_str().expect("a token")
}

#[tokio::test]
async fn the_invited_email_accepts_and_becomes_staff() {
    let app = spawn_app().await;
    let invitee = app.register(INVITEE, "New Cook").await;
    assert_eq!(
        app.get(&format!("/stores/{RESTAURANT}/orders"), &invitee.token)
            .await
            .status,
        404,
        "not staff yet"
    );

    let invitation = invite(&app, "New.Cook@Example.TEST ").await;
    let token = token(&invitation).to_owned();
    assert_eq!(token.len(), 32);
    assert_eq!(invitation["url"], format!("/invitations/{token}"));
    assert_eq!(invitation["email"], INVITEE, "normalised");
    assert_eq!(invitation["role"], "cashier");
    let expires = time::OffsetDateTime::parse(
        invitation["expires_at"].as_str().expect("a time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("an RFC 3339 time");
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::days(7) - time::Duration::minutes(5)
            && left <= time::Duration::days(7),
        "valid 7 days: {left}"
    );

    let joined = app
        .post_empty(&accept(&token), &invitee.token)
        .await
        .expect(200);
    assert_eq!(joined["store"]["slug"], RESTAURANT);
    assert_eq!(joined["role"], "cashier");

    // Staff now: the store's orders and the dashboard open.
    app.store_orders(&invitee.token, RESTAURANT).await;
    let (status, _) = page(&app, &invitee.token, &format!("/dashboard/{RESTAURANT}")).await;
    assert_eq!(status, 200);
    let me = app.get("/auth/me", &invitee.token).await.expect(200);
    assert_eq!(
        me["memberships"],
        json!([{"store": RESTAURANT, "store_id": me["memberships"][0]["store_id"], "role": "cashier"}]),
        "{me}"
    );
}

#[tokio::test]
async fn another_email_gets_403_and_the_invitation_stays_usable() {
    let app = spawn_app().await;
    let invitee = app.register(INVITEE, "New Cook").await;
    let invitation = invite(&app, INVITEE).await;
    let alice = app.login("alice@demo.test").await;
    app.post_empty(&accept(token(&invitation)), &alice)
        .await
        .expect_problem(403, "forbidden");
    app.post_empty(&accept(token(&invitation)), ANON)
        .await
        .expect_problem(401, "unauthenticated");
    app.post_empty(&accept(token(&invitation)), &invitee.token)
        .await
        .expect(200);
}

#[tokio::test]
async fn a_used_token_is_gone() {
    let app = spawn_app().await;
    let invitee = app.register(INVITEE, "New Cook").await;
    let invitation = invite(&app, INVITEE).await;
    app.post_empty(&accept(token(&invitation)), &invitee.token)
        .await
        .expect(200);
    app.post_empty(&accept(token(&invitation)), &invitee.token)
        .await
        .expect_problem(410, "invitation_used");
}

#[tokio::test]
async fn an_expired_or_unknown_token_is_refused() {
    let app = spawn_app().await;
    let invitee = app.register(INVITEE, "New Cook").await;
    let restaurant = app.store_record(RESTAURANT).await;
    let owner = app.user("owner@demo.test").await;
    // Made 7 days and a minute ago: expired a minute ago.
    let now = ordertrack_app::now();
    let token = ordertrack_app::random_token();
    app.store
        .create_invitation(NewInvitation {
            store_id: restaurant.id,
            email: INVITEE.into(),
            role: Role::Cashier,
            token_hash: token_hash(&token),
            invited_by: ordertrack_domain::UserId::new(owner.id),
            created_at: now - time::Duration::days(7) - time::Duration::minutes(1),
            expires_at: now - time::Duration::minutes(1),
        })
        .await
        .expect("an invitation");
    app.post_empty(&accept(&token), &invitee.token)
        .await
        .expect_problem(410, "invitation_expired");
    app.post_empty(&accept(&ordertrack_app::random_token()), &invitee.token)
        .await
        .expect_problem(404, "not_found");
    assert_eq!(
        app.get(&format!("/stores/{RESTAURANT}/orders"), &invitee.token)
            .await
            .status,
        404,
        "still not staff"
    );
}

#[tokio::test]
async fn only_owners_and_admins_invite() {
    let app = spawn_app().await;
    let body = json!({"email": INVITEE, "role": "cashier"});
    for (email, status) in [
        ("manager@demo.test", 403),
        ("cashier@demo.test", 403),
        ("kitchen@demo.test", 403),
        ("alice@demo.test", 403),
        ("seller@demo.test", 403),
        ("admin@demo.test", 201),
        ("owner@demo.test", 201),
    ] {
        let token = app.login(email).await;
        let response = app.post(&invitations(), &token, &body).await;
        assert_eq!(response.status, status, "{email}: {}", response.text);
    }
    app.post(&invitations(), ANON, &body)
        .await
        .expect_problem(401, "unauthenticated");
    let owner = app.login("owner@demo.test").await;
    app.post(
        &invitations(),
        &owner,
        &json!({"email": INVITEE, "role": "customer"}),
    )
    .await
    .expect_problem(422, "invalid_role");
    app.post(
        &invitations(),
        &owner,
        &json!({"email": "not an address", "role": "cashier"}),
    )
    .await
    .expect_problem(422, "invalid_email");
    app.post("/stores/no-such-store/invitations", &owner, &body)
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn two_acceptances_at_once_one_wins() {
    let app = spawn_app().await;
    let invitee = app.register(INVITEE, "New Cook").await;
    let invitation = invite(&app, INVITEE).await;
    let path = accept(token(&invitation));
    let (first, second) = tokio::join!(
        app.post_empty(&path, &invitee.token),
        app.post_empty(&path, &invitee.token)
    );
    let mut statuses = [first.status.as_u16(), second.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 410]);
}

#[tokio::test]
async fn the_pages_invite_and_join() {
    let app = spawn_app().await;
    let owner = app.login("owner@demo.test").await;
    let (status, manage) = page(&app, &owner, &format!("/manage/{RESTAURANT}")).await;
    assert_eq!(status, 200);
    assert!(manage.contains("Invite staff"), "{manage}");
    let (status, _) = post_form(
        &app,
        &owner,
        &format!("/manage/{RESTAURANT}/invitations"),
        &[("email", INVITEE), ("role", "kitchen")],
    )
    .await;
    assert_eq!(status, 200, "the page with the link");

    let invitee = app.register(INVITEE, "New Cook").await;
    let invitation = invite(&app, INVITEE).await;
    let path = format!("/invitations/{}", token(&invitation));
    let (signed_out, _) = signed_out_get(&app, &path).await;
    assert_eq!(signed_out, 303, "sign in first");
    let store_name = app.store_detail(RESTAURANT).await["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    let (status, html) = page(&app, &invitee.token, &path).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("Join {store_name} as cashier")),
        "{html}"
    );
    let (status, location) = post_form(&app, &invitee.token, &format!("{path}/accept"), &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("/dashboard/{RESTAURANT}").as_str())
    );
    let (status, _) = page(&app, &invitee.token, &path).await;
    assert_eq!(status, 410, "used");
}
