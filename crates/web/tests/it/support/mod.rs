//! What the tests of this crate share: a real server built like the
//! binary's ([`server`]), its HTTP API ([`api`]), its live streams from a
//! client's side ([`sse`]), load tooling ([`load`]), a real browser
//! ([`browser`]), a network printer ([`printer`]), a webhook receiver
//! ([`webhooks`]) and a browser's Web Push subscription ([`push`]).

pub mod api;
pub mod browser;
pub mod load;
pub mod printer;
pub mod push;
pub mod server;
pub mod sse;
pub mod webhooks;

pub use api::*;
pub use browser::*;
pub use load::*;
pub use printer::*;
pub use push::*;
pub use server::*;
pub use sse::*;
pub use webhooks::*;
