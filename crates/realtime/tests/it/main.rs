//! The realtime crate's integration tests, one binary.

mod hub;
