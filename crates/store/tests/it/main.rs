//! The store's integration tests, one binary: the shared conformance suite
//! and what only each backend has, on SQLite and on PostgreSQL.

mod support;

mod postgres_conformance;
mod sqlite_conformance;
