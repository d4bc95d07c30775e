//! Limits on password checking: how many failed sign-ins a client may have,
//! how many accounts it may create, and how many passwords are hashed at
//! once.
//!
//! Failures are counted per account *and client address* (so an attacker
//! cannot lock the owner out from elsewhere), per client address across
//! accounts (one password sprayed over many accounts) and across everyone
//! (a slow ceiling). An attempt is counted *before* its password is hashed
//! and given back when it succeeds, so concurrent wrong passwords cannot all
//! slip in while the first ones are still hashing.
//!
//! New accounts are counted per client address, like sign-in failures:
//! each one costs a password hash and a row.
//!
//! Each hash holds ~19 MiB for its duration, so hashing is bounded by a
//! semaphore; a request that cannot get a permit soon is turned away.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AppError;

/// How often sign-ins may fail and how much password hashing runs at once.
#[derive(Debug, Clone)]
pub struct SignInLimits {
    /// Failed sign-ins per account from one client address per window.
    pub per_account_and_ip: u32,
    /// Failed sign-ins from one client address, over all accounts, per window.
    pub per_ip: u32,
    /// Failed sign-ins from everyone per window.
    pub global: u32,
    /// The window the counts above are kept for.
    pub window: Duration,
    /// Password hashes computed at once (sign-ins and new accounts).
    pub concurrent_hashes: usize,
    /// How long a request waits for a hashing slot before it is turned away.
    pub hash_wait: Duration,
    /// New accounts from one client address per window.
    pub registrations_per_ip: u32,
}

impl Default for SignInLimits {
    fn default() -> Self {
        SignInLimits {
            per_account_and_ip: 10,
            per_ip: 20,
            global: 1_000,
            window: Duration::from_secs(60),
            concurrent_hashes: std::thread::available_parallelism().map_or(2, |n| n.get()),
            hash_wait: Duration::from_secs(2),
            registrations_per_ip: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    AccountAndIp(String, IpAddr),
    Ip(IpAddr),
    Global,
    Registration(IpAddr),
}

/// Counts per key in fixed windows: each key's window starts with its first
/// count and lasts `window`; a key at its limit is refused until its window
/// ends. Kept for the sign-in and registration limits here and for the
/// write rate per session in the web layer.
pub struct FixedWindows<K> {
    window: Duration,
    counts: Mutex<Counts<K>>,
}

struct Counts<K> {
    map: HashMap<K, Window>,
    /// When expired windows were last dropped.
    swept: Instant,
}

struct Window {
    count: u32,
    started: Instant,
}

impl<K: Clone + Eq + std::hash::Hash> FixedWindows<K> {
    /// Counts kept for `window` each.
    pub fn new(window: Duration) -> Self {
        FixedWindows {
            window,
            counts: Mutex::new(Counts {
                map: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// The window the counts are kept for.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Counts one for every key, unless one of them has reached its limit
    /// (paired with it); then counts nothing and returns how long until the
    /// fullest of those windows ends (whole seconds, at least one).
    pub fn count(&self, keys: &[(K, u32)]) -> Result<(), Duration> {
        let window = self.window;
        // A poisoned lock only means another counter panicked mid-update;
        // the counts are still counts.
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Expired windows go, at most once per window so a busy key does not
        // scan the map on every count; live ones are bounded by the limits.
        if now.duration_since(counts.swept) >= window {
            counts
                .map
                .retain(|_, w| now.duration_since(w.started) < window);
            counts.swept = now;
        }
        let mut retry_after = None;
        for (key, limit) in keys {
            if let Some(w) = counts.map.get(key)
                && now.duration_since(w.started) < window
                && w.count >= *limit
            {
                let left = seconds_until(window.saturating_sub(now.duration_since(w.started)));
                retry_after = retry_after.max(Some(left));
            }
        }
        if let Some(retry_after) = retry_after {
            return Err(retry_after);
        }
        for (key, _) in keys {
            let w = counts.map.entry(key.clone()).or_insert(Window {
                count: 0,
                started: now,
            });
            if now.duration_since(w.started) >= window {
                *w = Window {
                    count: 0,
                    started: now,
                };
            }
            w.count += 1;
        }
        Ok(())
    }

    /// Takes back one count from each key (an attempt that did not count).
    pub fn uncount(&self, keys: &[K]) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            if let Some(window) = counts.map.get_mut(key) {
                window.count = window.count.saturating_sub(1);
            }
        }
    }
}

/// Failure counts in fixed windows, plus the hashing semaphore.
pub(crate) struct Throttle {
    limits: SignInLimits,
    windows: FixedWindows<Key>,
    hashing: Arc<Semaphore>,
}

/// One counted attempt: it stays counted unless
/// [`refund`](Reservation::refund)ed.
pub(crate) struct Reservation<'a> {
    throttle: &'a Throttle,
    keys: Vec<Key>,
}

impl Reservation<'_> {
    /// The attempt did not count (it succeeded, or never ran): uncount it.
    pub(crate) fn refund(self) {
        self.throttle.windows.uncount(&self.keys);
    }
}

/// Whole seconds until `when`, at least one (for `Retry-After`).
fn seconds_until(left: Duration) -> Duration {
    Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0))
        .max(Duration::from_secs(1))
}

impl Throttle {
    pub(crate) fn new(limits: SignInLimits) -> Self {
        Throttle {
            hashing: Arc::new(Semaphore::new(limits.concurrent_hashes.max(1))),
            windows: FixedWindows::new(limits.window),
            limits,
        }
    }

    fn reserve_keys(&self, keys: Vec<(Key, u32)>) -> Result<Reservation<'_>, Duration> {
        self.windows.count(&keys)?;
        Ok(Reservation {
            throttle: self,
            keys: keys.into_iter().map(|(key, _)| key).collect(),
        })
    }

    /// Counts a sign-in attempt for `email` from `ip`, or refuses it with
    /// [`AppError::TooManyAttempts`] when any of its limits is used up.
    pub(crate) fn reserve(&self, email: &str, ip: IpAddr) -> Result<Reservation<'_>, AppError> {
        self.reserve_keys(vec![
            (
                Key::AccountAndIp(email.to_owned(), ip),
                self.limits.per_account_and_ip,
            ),
            (Key::Ip(ip), self.limits.per_ip),
            (Key::Global, self.limits.global),
        ])
        .map_err(|retry_after| AppError::TooManyAttempts { retry_after })
    }

    /// Counts a new account from `ip`, or refuses it with
    /// [`AppError::TooManyRegistrations`] when that address has made its
    /// share this window.
    pub(crate) fn reserve_registration(&self, ip: IpAddr) -> Result<Reservation<'_>, AppError> {
        self.reserve_keys(vec![(
            Key::Registration(ip),
            self.limits.registrations_per_ip,
        )])
        .map_err(|retry_after| AppError::TooManyRegistrations { retry_after })
    }

    /// A permit to hash one password, waiting at most the configured time;
    /// [`AppError::Busy`] when none came free.
    pub(crate) async fn hashing_permit(&self) -> Result<OwnedSemaphorePermit, AppError> {
        let wait = self.limits.hash_wait;
        match tokio::time::timeout(wait, self.hashing.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(AppError::Internal("hashing semaphore closed".into())),
            Err(_) => Err(AppError::Busy {
                retry_after: seconds_until(wait),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_per_account_and_address() {
        let throttle = Throttle::new(SignInLimits {
            per_account_and_ip: 2,
            ..SignInLimits::default()
        });
        let here: IpAddr = [127, 0, 0, 1].into();
        let there: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..2 {
            drop(throttle.reserve("a@x.test", here).unwrap());
        }
        assert!(throttle.reserve("a@x.test", here).is_err());
        assert!(throttle.reserve("a@x.test", there).is_ok());
        assert!(throttle.reserve("b@x.test", here).is_ok());
    }

    #[test]
    fn a_refunded_attempt_does_not_count() {
        let throttle = Throttle::new(SignInLimits {
            per_account_and_ip: 1,
            ..SignInLimits::default()
        });
        let here: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..3 {
            throttle.reserve("a@x.test", here).unwrap().refund();
        }
    }

    #[test]
    fn new_accounts_are_counted_per_address() {
        let throttle = Throttle::new(SignInLimits {
            registrations_per_ip: 2,
            ..SignInLimits::default()
        });
        let here: IpAddr = [127, 0, 0, 1].into();
        let there: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..2 {
            drop(throttle.reserve_registration(here).unwrap());
        }
        assert!(matches!(
            throttle.reserve_registration(here),
            Err(AppError::TooManyRegistrations { .. })
        ));
        assert!(throttle.reserve_registration(there).is_ok());
        // Sign-ins from the same address are counted apart.
        assert!(throttle.reserve("a@x.test", here).is_ok());
    }

    #[test]
    fn a_window_starts_afresh_once_it_is_over() {
        let windows = FixedWindows::new(Duration::from_millis(20));
        windows.count(&[("k", 1)]).unwrap();
        let retry_after = windows.count(&[("k", 1)]).unwrap_err();
        assert_eq!(retry_after, Duration::from_secs(1), "at least a second");
        std::thread::sleep(Duration::from_millis(30));
        windows.count(&[("k", 1)]).unwrap();
    }
}
