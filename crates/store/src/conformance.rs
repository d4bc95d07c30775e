//! The conformance suite every [`Store`](crate::Store) implementation must pass.
