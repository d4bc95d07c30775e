//! Limits on password checking: how many failed sign-ins a client may have,
//! and how many passwords are hashed at once.
//!
//! Failures are counted per account *and client address* (so an attacker
//! cannot lock the owner out from elsewhere), per client address across
//! accounts (one password sprayed over many accounts) and across everyone
//! (a slow ceiling). An attempt is counted *before* its password is hashed
//! and given back when it succeeds, so concurrent wrong passwords cannot all
//! slip in while the first ones are still hashing.
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    AccountAndIp(String, IpAddr),
    Ip(IpAddr),
    Global,
}

struct Window {
    count: u32,
    started: Instant,
}

/// Failure counts in fixed windows, plus the hashing semaphore.
pub(crate) struct Throttle {
    limits: SignInLimits,
    windows: Mutex<HashMap<Key, Window>>,
    hashing: Arc<Semaphore>,
}

/// One counted sign-in attempt: it stays counted (as a failure) unless
/// [`refund`](Reservation::refund)ed.
pub(crate) struct Reservation<'a> {
    throttle: &'a Throttle,
    keys: [Key; 3],
}

impl Reservation<'_> {
    /// The attempt did not fail (it succeeded, or never ran): uncount it.
    pub(crate) fn refund(self) {
        let Ok(mut windows) = self.throttle.windows.lock() else {
            return;
        };
        for key in &self.keys {
            if let Some(window) = windows.get_mut(key) {
                window.count = window.count.saturating_sub(1);
            }
        }
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
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a sign-in attempt for `email` from `ip`, or refuses it with
    /// [`AppError::TooManyAttempts`] when any of its limits is used up.
    pub(crate) fn reserve(&self, email: &str, ip: IpAddr) -> Result<Reservation<'_>, AppError> {
        let keys = [
            Key::AccountAndIp(email.to_owned(), ip),
            Key::Ip(ip),
            Key::Global,
        ];
        let limits = [
            self.limits.per_account_and_ip,
            self.limits.per_ip,
            self.limits.global,
        ];
        let window = self.limits.window;
        let mut windows = self
            .windows
            .lock()
            .map_err(|_| AppError::Internal("sign-in limits poisoned".into()))?;
        let now = Instant::now();
        // Expired windows go; live ones are bounded by the global limit
        // (plus in-flight successes), so the map cannot grow without bound.
        windows.retain(|_, w| now.duration_since(w.started) < window);
        let mut retry_after = None;
        for (key, limit) in keys.iter().zip(limits) {
            if let Some(w) = windows.get(key)
                && w.count >= limit
            {
                let left = seconds_until(window.saturating_sub(now.duration_since(w.started)));
                retry_after = retry_after.max(Some(left));
            }
        }
        if let Some(retry_after) = retry_after {
            return Err(AppError::TooManyAttempts { retry_after });
        }
        for key in &keys {
            windows
                .entry(key.clone())
                .or_insert(Window {
                    count: 0,
                    started: now,
                })
                .count += 1;
        }
        Ok(Reservation {
            throttle: self,
            keys,
        })
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
}
