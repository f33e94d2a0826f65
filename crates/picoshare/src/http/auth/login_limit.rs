//! Login rate limiting: at most [`MAX_FAILURES`] wrong passphrases per client
//! address within [`WINDOW`]; after that, logins from that address are refused
//! with 429 and `Retry-After` until the window ends. A correct login clears
//! the address's count. Guessing the passphrase online is thereby limited to a
//! few attempts a minute per address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong passphrases allowed per address and window.
const MAX_FAILURES: u32 = 10;
/// Length of the window.
const WINDOW: Duration = Duration::from_secs(300);
/// Addresses remembered at most (the oldest windows are dropped first).
const MAX_ADDRESSES: usize = 10_000;

/// Failed-login counts per client address.
#[derive(Debug, Default)]
pub(crate) struct LoginLimiter {
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LoginLimiter {
    /// `Some(wait)` if `addr` must wait before trying again.
    pub(crate) fn blocked(&self, addr: &str, now: Instant) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (start, n) = *map.get(addr)?;
        let end = start + WINDOW;
        (n >= MAX_FAILURES && now < end).then(|| end - now)
    }

    /// Records a wrong passphrase from `addr`.
    pub(crate) fn failed(&self, addr: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ADDRESSES {
            map.retain(|_, (start, _)| now < *start + WINDOW);
        }
        let slot = map.entry(addr.to_owned()).or_insert((now, 0));
        if now >= slot.0 + WINDOW {
            *slot = (now, 0);
        }
        slot.1 += 1;
    }

    /// Clears `addr`'s failures after a correct login.
    pub(crate) fn succeeded(&self, addr: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let l = LoginLimiter::default();
        let t = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert_eq!(l.blocked("a", t), None);
            l.failed("a", t);
        }
        assert!(l.blocked("a", t).is_some_and(|w| w == WINDOW));
        assert_eq!(l.blocked("b", t), None, "other addresses are not affected");
        assert_eq!(l.blocked("a", t + WINDOW), None, "the window ends");
        l.failed("a", t + WINDOW);
        assert_eq!(l.blocked("a", t + WINDOW), None, "a new window starts");
    }

    #[test]
    fn success_clears_the_count() {
        let l = LoginLimiter::default();
        let t = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            l.failed("a", t);
        }
        l.succeeded("a");
        l.failed("a", t);
        assert_eq!(l.blocked("a", t), None);
    }
}
