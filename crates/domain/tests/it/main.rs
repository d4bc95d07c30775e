//! The domain crate's integration tests, one binary.

mod workflow_properties;
