//! Web Push from a test's side: a browser's subscription (a P-256 key pair
//! and an auth secret made here, as a browser makes them), a push service
//! (the webhook [`Receiver`]: a real HTTP server on loopback recording each
//! request's headers and raw body and answering as the test scripts), and
//! the check of each request by `verify_push.py` — the `py_vapid` and
//! `http_ece` packages, implementations independent of the server's.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ordertrack_app::push::VapidKey;
use serde_json::{Value, json};

use super::{PUSH_SUBJECT, Received};

/// A browser's push subscription to the test push service.
pub struct BrowserSubscription {
    pub endpoint: String,
    /// The subscription's key pair (a P-256 key, like the VAPID key).
    key: VapidKey,
    /// Its auth secret, base64url.
    pub auth: String,
}

impl BrowserSubscription {
    /// A new subscription at `endpoint`, with fresh keys.
    pub fn new(endpoint: &str) -> Self {
        BrowserSubscription {
            endpoint: endpoint.to_owned(),
            key: VapidKey::generate(),
            auth: URL_SAFE_NO_PAD.encode(ordertrack_app::token::random_bytes::<16>()),
        }
    }

    /// What `PushSubscription.toJSON()` gives, as the API takes it.
    pub fn body(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "keys": {"p256dh": self.key.public_key(), "auth": self.auth},
        })
    }
}

/// Whether the push verifier runs here (Python 3 with `http_ece` and
/// `py_vapid`); when it does not, the caller skips (and under `CI=true`
/// fails).
pub fn push_verifier_available() -> bool {
    super::python_has(
        "http_ece, py_vapid",
        "python3 with the http_ece and py_vapid packages (pip install http_ece py_vapid)",
    )
}

/// Each push request checked and decrypted for `browser` by the verifier,
/// against the server's VAPID public key: the payload, else why not.
pub fn verify_pushes(
    browser: &BrowserSubscription, vapid_public_key: &str, received: &[Received],
) -> Vec<Result<Value, String>> {
    let lines: Vec<Value> = received
        .iter()
        .map(|request| {
            let header = |name: &str| request.headers.get(name).cloned().unwrap_or_default();
            json!({
                "authorization": header("authorization"),
                "content_encoding": header("content-encoding"),
                "ttl": header("ttl"),
                "body": STANDARD.encode(&request.raw),
                "endpoint": browser.endpoint,
                "subject": PUSH_SUBJECT,
                "vapid_public_key": vapid_public_key,
                "browser_key": browser.key.to_pem(),
                "auth": browser.auth,
            })
        })
        .collect();
    super::run_verifier("verify_push.py", &lines)
        .into_iter()
        .map(|answer| {
            let payload = answer?;
            payload
                .as_str()
                .and_then(|text| serde_json::from_str(text).ok())
                .ok_or_else(|| format!("the payload is not JSON: {payload}"))
        })
        .collect()
}
