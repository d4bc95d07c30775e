//! What the tests of this crate share: a real server built like the
//! binary's ([`server`]), its HTTP API ([`api`]), its live streams from a
//! client's side ([`sse`]), load tooling ([`load`]), a real browser
//! ([`browser`]) and a network it can lose ([`netlink`]), a network
//! printer ([`printer`]), a webhook receiver ([`webhooks`]), an SMTP sink
//! ([`smtp`]) and a browser's Web Push subscription ([`push`]).

pub mod api;
pub mod browser;
pub mod load;
pub mod netlink;
pub mod printer;
pub mod push;
pub mod python;
pub mod server;
pub mod smtp;
pub mod sse;
pub mod webhooks;

pub use api::*;
pub use browser::*;
pub use load::*;
pub use netlink::*;
pub use printer::*;
pub use push::*;
pub use python::*;
pub use server::*;
pub use smtp::*;
pub use sse::*;
pub use webhooks::*;
