//! The binary's integration tests, one binary: `ordertrack` processes as
//! their users run them — the demo and its logins, `serve`, `migrate`,
//! `user create` and `store create` (a shop starting without the demo),
//! durability under SIGKILL, and several instances on PostgreSQL and NATS.

mod support;

mod crash;
mod demo;
mod multi_instance;
mod operations;
mod shop;
