//! The domain crate's integration tests, one binary.

mod kitchen_plans;
mod workflow_properties;
