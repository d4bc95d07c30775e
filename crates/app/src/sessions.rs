//! Sessions resolved once and kept in memory, per instance, for as long as
//! nothing they depend on changed.
//!
//! A resolved session (its user and memberships) is kept with the access
//! mark ([`CacheMarks::access`]) read *before* it: every logout and every
//! staff role given, changed or taken away moves that mark in its own
//! transaction, on whichever instance makes it. Each request reads the
//! current marks (one primary-key row) and uses the kept identity only if
//! the access mark is still the one it was kept at; otherwise it reads the
//! session afresh. So a revocation acknowledged by any instance is seen by
//! the next request on every instance, however late the event bus
//! delivers it — the bus only ends open streams. Expiry needs no mark: a
//! kept session is used only before its `session_expires_at`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ordertrack_store::{CacheMarks, Identity};
use time::OffsetDateTime;

/// At most this many sessions are kept; past it, the expired and stale go,
/// and if that frees nothing, all of them (they are read again on use).
const CAPACITY: usize = 65_536;

/// How often this instance's requests found their session kept, and how
/// often they read it from the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCacheStats {
    /// Requests whose session was kept at the current access mark.
    pub hits: u64,
    /// Requests that read their session (and memberships) from the store.
    pub reads: u64,
}

/// Resolved sessions by id, each with the access mark it was read at.
#[derive(Default)]
pub(crate) struct SessionCache {
    kept: Mutex<HashMap<String, (i64, Identity)>>,
    hits: AtomicU64,
    reads: AtomicU64,
}

impl SessionCache {
    /// The kept identity of `session_id`, if it was read at `marks.access`
    /// and the session has not expired by `now`.
    pub(crate) fn current(
        &self, session_id: &str, marks: CacheMarks, now: OffsetDateTime,
    ) -> Option<Identity> {
        let kept = self.lock();
        let found = kept
            .get(session_id)
            .filter(|(mark, identity)| *mark == marks.access && identity.session_expires_at > now)
            .map(|(_, identity)| identity.clone());
        drop(kept);
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Keeps `identity`, read after the access mark stood at `marks.access`.
    pub(crate) fn keep(&self, marks: CacheMarks, identity: Identity, now: OffsetDateTime) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let mut kept = self.lock();
        if kept.len() >= CAPACITY && !kept.contains_key(&identity.session_id) {
            kept.retain(|_, (mark, identity)| {
                *mark == marks.access && identity.session_expires_at > now
            });
            if kept.len() >= CAPACITY {
                kept.clear();
            }
        }
        kept.insert(identity.session_id.clone(), (marks.access, identity));
    }

    /// Forgets a session that no longer resolves (ended or expired).
    pub(crate) fn forget(&self, session_id: &str) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.lock().remove(session_id);
    }

    pub(crate) fn stats(&self) -> SessionCacheStats {
        SessionCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, Identity)>> {
        // The map holds no invariant a panic could break halfway.
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
