//! `Idempotency-Key` on every change other than placing an order (which
//! keeps its key on the order, `App::place_order`): a request claims its
//! key before it runs and records its response after; a retry with the
//! same key and the same request gets that response again and changes
//! nothing, another request under the key is refused. Keys belong to the
//! session that used them and are kept for [`KEY_RETENTION`].

use ordertrack_store::{IdempotencyClaim, IdempotencyOutcome};
use sha2::{Digest, Sha256};
use time::Duration;

use crate::orders::MAX_IDEMPOTENCY_KEY;
use crate::{App, AppError, ErrorCode};

/// How long a key is remembered: longer than any client keeps a change
/// waiting to be sent again (a kitchen tablet offline for a shift).
pub const KEY_RETENTION: Duration = Duration::hours(24);

/// Refuses a key that is empty or longer than 255 characters.
pub fn check_key(key: &str) -> Result<(), AppError> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(AppError::invalid(
            ErrorCode::InvalidIdempotencyKey,
            "Idempotency-Key must have 1 to 255 characters",
        ));
    }
    Ok(())
}

/// One keyed request: whose key, the key, and what the request was.
#[derive(Debug, Clone)]
pub struct KeyedRequest {
    scope: String,
    key: String,
    fingerprint: String,
}

impl KeyedRequest {
    /// A request presenting session token `token` and `key`; `parts` are
    /// what makes two requests the same (method, path and query, content
    /// type, body). Only hashes are kept: neither the token nor the body.
    pub fn new(token: &str, key: &str, parts: &[&[u8]]) -> Result<Self, AppError> {
        check_key(key)?;
        let mut request = Sha256::new();
        for part in parts {
            // Lengths first, so no two different splits hash alike.
            request.update((part.len() as u64).to_be_bytes());
            request.update(part);
        }
        Ok(KeyedRequest {
            scope: hex::encode(Sha256::digest(format!("session:{token}"))),
            key: key.to_owned(),
            fingerprint: hex::encode(request.finalize()),
        })
    }
}

/// What a keyed request should do.
pub enum KeyClaim {
    /// Run: it is the first with this key.
    Run,
    /// Answer this: the same request ran already.
    Replay(StoredResponse),
}

impl App {
    /// Claims the key of a request: run it, or replay the response of the
    /// same request. The first request still running is a 409
    /// (`idempotency_key_in_progress`), another request under the key a
    /// 422 (`idempotency_key_reused`).
    pub async fn claim_key(&self, request: &KeyedRequest) -> Result<KeyClaim, AppError> {
        let now = crate::now();
        let outcome = self
            .repo
            .claim_idempotency_key(IdempotencyClaim {
                scope: request.scope.clone(),
                key: request.key.clone(),
                fingerprint: request.fingerprint.clone(),
                at: now,
                forget_before: now - KEY_RETENTION,
            })
            .await?;
        match outcome {
            IdempotencyOutcome::Claimed => Ok(KeyClaim::Run),
            IdempotencyOutcome::Replay(response) => Ok(KeyClaim::Replay(response)),
            IdempotencyOutcome::InProgress => Err(AppError::conflict(
                ErrorCode::IdempotencyKeyInProgress,
                "a request with this Idempotency-Key is still running; try again shortly",
            )),
            IdempotencyOutcome::Mismatch => Err(AppError::IdempotencyMismatch),
        }
    }

    /// Records the response of a request that ran under its key.
    pub async fn complete_key(
        &self, request: KeyedRequest, response: StoredResponse,
    ) -> Result<(), AppError> {
        Ok(self
            .repo
            .complete_idempotency_key(request.scope, request.key, response)
            .await?)
    }

    /// Lets go of a key whose request left nothing to replay (a server
    /// error, no valid session): a retry runs it again.
    pub async fn release_key(&self, request: KeyedRequest) -> Result<(), AppError> {
        Ok(self
            .repo
            .release_idempotency_key(request.scope, request.key)
            .await?)
    }
}

pub use ordertrack_store::StoredResponse;
