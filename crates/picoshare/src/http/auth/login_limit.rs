//! Rate limits on guessing: at most [`MAX_FAILURES`] wrong passphrases (or
//! wrong passwords of a protected file) per client within [`WINDOW`]; after
//! that, the client's attempts are refused with 429 and `Retry-After` until
//! the window ends. A correct login clears the client's count.
//!
//! # Keys
//!
//! A [`Limiter`] counts per key of a small fixed size, never per text a client
//! chose: a client is its [`ClientKey`], an IPv4 address or the /64 network of
//! an IPv6 address (one host usually holds a whole /64, and could otherwise
//! take a new address for every guess); a protected file is its entry ID.
//!
//! # Counted before the work
//!
//! [`Limiter::begin`] checks the limit and holds a place for the attempt in
//! one step, before the (possibly slow) check of what was sent; the check's
//! outcome then settles it: a wrong answer becomes a counted failure
//! ([`Limiter::wrong`]), a right one or a request that was no guess gives
//! its place back ([`Limiter::succeeded`], [`Limiter::refund`]). Failures
//! and attempts in flight together never pass [`MAX_FAILURES`], so however
//! many attempts arrive at once, no more than that many per key and window
//! are ever checked. An attempt that finds every place taken by attempts
//! still in flight waits for one of them to settle (at most
//! [`BUSY_WAIT`]), rather than being refused: a client that logs in on many
//! connections at once with the right passphrase is not told it guessed
//! wrong.

//! # Bounded memory
//!
//! At most a set number of keys are held ([`DEFAULT_CAPACITY`], a few
//! hundred KiB). When a new key finds the table full, keys whose window has
//! ended go first; then keys that are not blocked (they lose at most 9
//! counted failures); and only when every held key is blocked, the half of
//! them whose windows started first. An attacker with that many addresses
//! already has more guesses than the limit is about.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Wrong attempts allowed per key and window.
pub(crate) const MAX_FAILURES: u32 = 10;
/// Length of the window.
pub(crate) const WINDOW: Duration = Duration::from_secs(300);
/// Keys held at most by default.
pub(crate) const DEFAULT_CAPACITY: usize = 10_000;
/// How long an attempt waits for attempts in flight to settle before it is
/// refused (checks take milliseconds; this bounds a pile-up).
pub(crate) const BUSY_WAIT: Duration = Duration::from_secs(10);

/// Who a rate limit counts: an IPv4 address, or an IPv6 /64 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    /// An IPv4 address (IPv4-mapped IPv6 addresses included).
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6Net(u64),
}

impl ClientKey {
    /// The key of a client at `ip`.
    pub(crate) fn of(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => ClientKey::V6Net((u128::from(v6) >> 64) as u64),
        }
    }
}

/// One key's current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
    /// Attempts begun and not settled yet.
    pending: u32,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            start: now,
            failures: 0,
            pending: 0,
        }
    }

    fn ended(&self, now: Instant) -> bool {
        now >= self.start + WINDOW
    }

    fn blocked(&self, now: Instant) -> Option<Duration> {
        let end = self.start + WINDOW;
        (self.failures >= MAX_FAILURES && now < end).then(|| end - now)
    }
}

/// Why [`Limiter::try_begin`] did not begin an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The key has used its failures: wait this long.
    Blocked(Duration),
    /// Every place is held by an attempt in flight: wait for one to settle.
    Busy,
}

/// Wrong attempts per key (see the module docs).
#[derive(Debug)]
pub(crate) struct Limiter<K> {
    windows: Mutex<HashMap<K, Window>>,
    capacity: usize,
    /// Woken whenever an attempt settles.
    settled: Notify,
}

impl<K> Default for Limiter<K> {
    fn default() -> Self {
        Limiter::with_capacity(DEFAULT_CAPACITY)
    }
}

impl<K> Limiter<K> {
    /// A limiter that holds at most `capacity` keys (at least 2).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Limiter {
            windows: Mutex::new(HashMap::new()),
            capacity: capacity.max(2),
            settled: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys held now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// A future that completes at the next settlement of an attempt; enable
    /// it before the check that found a key busy, so that a settlement in
    /// between is not missed.
    pub(crate) fn settling(&self) -> tokio::sync::futures::Notified<'_> {
        self.settled.notified()
    }
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    /// `Some(wait)` if `key` must wait before trying again.
    pub(crate) fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        self.lock().get(key)?.blocked(now)
    }

    /// Begins an attempt by `key`, holding its place until it is settled
    /// ([`Limiter::wrong`], [`Limiter::refund`], [`Limiter::succeeded`]);
    /// nothing is held when it is refused.
    ///
    /// # Errors
    /// [`Refused::Blocked`] with how long `key` must wait, or
    /// [`Refused::Busy`] when attempts in flight hold every place left.
    pub(crate) fn try_begin(&self, key: &K, now: Instant) -> Result<(), Refused> {
        let mut map = self.lock();
        if let Some(w) = map.get(key) {
            if let Some(wait) = w.blocked(now) {
                return Err(Refused::Blocked(wait));
            }
            if !w.ended(now) && w.failures + w.pending >= MAX_FAILURES {
                return Err(Refused::Busy);
            }
        }
        window(&mut map, self.capacity, key, now).pending += 1;
        Ok(())
    }

    /// [`Limiter::try_begin`], waiting (up to [`BUSY_WAIT`]) while the key
    /// is busy.
    ///
    /// # Errors
    /// How long `key` must wait before trying again.
    pub(crate) async fn begin(&self, key: &K) -> Result<(), Duration> {
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        loop {
            let settling = self.settling();
            tokio::pin!(settling);
            settling.as_mut().enable();
            match self.try_begin(key, Instant::now()) {
                Ok(()) => return Ok(()),
                Err(Refused::Blocked(wait)) => return Err(wait),
                Err(Refused::Busy) => {
                    if tokio::time::timeout_at(deadline, settling).await.is_err() {
                        return Err(Duration::from_secs(1));
                    }
                }
            }
        }
    }

    /// Settles an attempt of `key` as wrong: it counts as a failure.
    pub(crate) fn wrong(&self, key: &K, now: Instant) {
        {
            let mut map = self.lock();
            let w = window(&mut map, self.capacity, key, now);
            w.pending = w.pending.saturating_sub(1);
            w.failures += 1;
        }
        self.settled.notify_waiters();
    }

    /// Settles an attempt of `key` that was no guess (or was right): its
    /// place is given back and nothing is counted.
    pub(crate) fn refund(&self, key: &K) {
        if let Some(w) = self.lock().get_mut(key) {
            w.pending = w.pending.saturating_sub(1);
        }
        self.settled.notify_waiters();
    }

    /// Settles a correct login of `key`: its failures are cleared.
    pub(crate) fn succeeded(&self, key: &K) {
        {
            let mut map = self.lock();
            if let Some(w) = map.get_mut(key) {
                w.pending = w.pending.saturating_sub(1);
                w.failures = 0;
                if w.pending == 0 {
                    map.remove(key);
                }
            }
        }
        self.settled.notify_waiters();
    }

    /// A wrong attempt begun and settled at once (tests of the counting).
    #[cfg(test)]
    pub(crate) fn failed(&self, key: &K, now: Instant) {
        window(&mut self.lock(), self.capacity, key, now).pending += 1;
        self.wrong(key, now);
    }
}

/// `key`'s current window in `map` (a new one if it had none or its window
/// ended), making room first if `key` is new and `map` holds `capacity`
/// keys (see the module docs).
fn window<'m, K: Eq + Hash + Clone>(
    map: &'m mut HashMap<K, Window>,
    capacity: usize,
    key: &K,
    now: Instant,
) -> &'m mut Window {
    if !map.contains_key(key) && map.len() >= capacity {
        map.retain(|_, w| !w.ended(now));
        if map.len() >= capacity {
            map.retain(|_, w| w.blocked(now).is_some() || w.pending > 0);
        }
        if map.len() >= capacity {
            let mut starts: Vec<Instant> = map.values().map(|w| w.start).collect();
            let (_, median, _) = starts.select_nth_unstable(map.len() / 2);
            let median = *median;
            map.retain(|_, w| w.start > median);
        }
    }
    let w = map.entry(key.clone()).or_insert(Window::new(now));
    if w.ended(now) {
        // A new window; attempts still in flight keep their places.
        *w = Window {
            pending: w.pending,
            ..Window::new(now)
        };
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> ClientKey {
        ClientKey::of(ip.parse().unwrap())
    }

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let l = Limiter::default();
        let t = Instant::now();
        let (a, b) = (key("192.0.2.1"), key("192.0.2.2"));
        for _ in 0..MAX_FAILURES {
            assert_eq!(l.blocked(&a, t), None);
            l.failed(&a, t);
        }
        assert!(l.blocked(&a, t).is_some_and(|w| w == WINDOW));
        assert_eq!(l.blocked(&b, t), None, "other addresses are not affected");
        assert_eq!(l.blocked(&a, t + WINDOW), None, "the window ends");
        l.failed(&a, t + WINDOW);
        assert_eq!(l.blocked(&a, t + WINDOW), None, "a new window starts");
    }

    #[test]
    fn success_clears_the_count() {
        let l = Limiter::default();
        let t = Instant::now();
        let a = key("192.0.2.1");
        for _ in 0..MAX_FAILURES - 1 {
            l.failed(&a, t);
        }
        l.succeeded(&a);
        l.failed(&a, t);
        assert_eq!(l.blocked(&a, t), None);
    }

    #[test]
    fn attempts_are_counted_before_they_are_checked() {
        let l = Limiter::default();
        let t = Instant::now();
        let a = key("192.0.2.1");
        // However many arrive at once, only MAX_FAILURES begin; the others
        // find the key busy, not blocked.
        let begun = (0..150).filter(|_| l.try_begin(&a, t).is_ok()).count();
        assert_eq!(begun, MAX_FAILURES as usize);
        assert_eq!(l.try_begin(&a, t), Err(Refused::Busy));
        // A right one gives its place back, so one more may begin.
        l.refund(&a);
        assert!(l.try_begin(&a, t).is_ok());
        assert_eq!(l.try_begin(&a, t), Err(Refused::Busy));
        // Once they are all wrong, the key is blocked.
        for _ in 0..MAX_FAILURES {
            l.wrong(&a, t);
        }
        assert!(matches!(l.try_begin(&a, t), Err(Refused::Blocked(_))));
    }

    #[tokio::test]
    async fn an_attempt_waits_for_attempts_in_flight_and_a_right_one_lets_it_in() {
        let l = std::sync::Arc::new(Limiter::default());
        let a = key("192.0.2.1");
        for _ in 0..MAX_FAILURES {
            l.try_begin(&a, Instant::now()).unwrap();
        }
        let waiting = tokio::spawn({
            let l = l.clone();
            async move { l.begin(&a).await }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "it waits while every place is in flight"
        );
        // One of them was right: the waiting attempt begins.
        l.succeeded(&a);
        assert_eq!(waiting.await.unwrap(), Ok(()));
        // The other nine turn out wrong, and so does the last one: blocked.
        for _ in 0..MAX_FAILURES {
            l.wrong(&a, Instant::now());
        }
        assert!(l.begin(&a).await.is_err());
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:abcd:1234:5678")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        let l = Limiter::default();
        let t = Instant::now();
        for i in 0..MAX_FAILURES {
            l.failed(&key(&format!("2001:db8:1:2::{i:x}")), t);
        }
        assert!(l.blocked(&key("2001:db8:1:2:dead::beef"), t).is_some());
        assert!(l.blocked(&key("2001:db8:1:3::1"), t).is_none());
    }

    #[test]
    fn memory_is_bounded_and_blocked_clients_are_kept_longest() {
        let l = Limiter::with_capacity(1000);
        let t = Instant::now();
        // A blocked client, then a flood of new keys.
        let blocked = key("198.51.100.1");
        for _ in 0..MAX_FAILURES {
            l.failed(&blocked, t);
        }
        for i in 0..200_000u32 {
            l.failed(&ClientKey::V4(i), t + Duration::from_millis(1));
            assert!(l.len() <= 1000);
        }
        assert!(
            l.blocked(&blocked, t).is_some(),
            "the blocked client is kept"
        );
        // When every held key is blocked, the older half goes.
        let full = Limiter::with_capacity(100);
        for i in 0..150u32 {
            for _ in 0..MAX_FAILURES {
                full.failed(&ClientKey::V4(i), t + Duration::from_secs(u64::from(i)));
            }
            assert!(full.len() <= 100);
        }
        assert!(full.blocked(&ClientKey::V4(149), t + WINDOW / 2).is_some());
        // Ended windows go first.
        let old = Limiter::with_capacity(10);
        for i in 0..10u32 {
            old.failed(&ClientKey::V4(i), t);
        }
        old.failed(&ClientKey::V4(99), t + WINDOW);
        assert_eq!(old.len(), 1);
    }
}
