//! The web crate's integration tests, one binary: a real server on an
//! ephemeral port per test, driven over HTTP, live streams and a browser.
//! `cargo test -p ordertrack-web --test it -- api_` runs the API suites,
//! `-- streams::` the stream suite, `-- browser::` the browser suite.

mod support;

mod api_auth;
mod api_bad_input;
mod api_catalog;
mod api_concurrency;
mod api_corrections;
mod api_drivers;
mod api_eta;
mod api_hygiene;
mod api_idempotency;
mod api_kitchen;
mod api_orders;
mod api_payments;
mod api_reviews;
mod api_security;
mod api_store_workflows;
mod api_workflows;
mod authz_matrix;
mod browser;
mod email;
mod guest_view;
mod hardening;
mod invitations;
mod offline;
mod openapi;
mod operations;
mod printing;
mod push;
mod receipts;
mod reports;
mod stores_admin;
mod streams;
mod tls;
mod webhooks;
