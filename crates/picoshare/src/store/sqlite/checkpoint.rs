//! The background checkpointer: copies the WAL into the database file on its own
//! thread and connection, so that the writer keeps inserting while the disk
//! absorbs the copy and its fsyncs.
//!
//! SQLite can only restart the WAL from its beginning once every frame has been
//! copied, so a WAL that is appended to without pause would grow without limit.
//! The writer therefore calls [`Checkpointer::wait_complete`] when it has
//! committed `wal_limit` bytes since the last restart; by then most of the copy
//! has already happened in the background.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::stats::Counters;
use super::StoreError;

#[derive(Default)]
struct State {
    /// Incremented by each request.
    requested: u64,
    /// The request number the last finished checkpoint started after.
    finished: u64,
    /// Whether that checkpoint copied every frame.
    complete: bool,
    stop: bool,
}

/// How a wait for a complete checkpoint ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waited {
    /// A checkpoint copied the whole WAL.
    Complete,
    /// Checkpoints kept finishing short of the end: a reader holds an old
    /// snapshot (another process's, such as Litestream's or a backup's).
    Blocked,
    /// The checkpoint was still copying when the wait ended (a slow disk).
    Slow,
}

/// Handle on the checkpointer thread.
pub(super) struct Checkpointer {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own connection `conn`.
    pub(super) fn start(conn: Connection, counters: Arc<Counters>) -> Result<Self, StoreError> {
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(conn, &s, &counters))?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for a checkpoint soon, without waiting.
    pub(super) fn poke(&self) -> u64 {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        st.requested += 1;
        cv.notify_all();
        st.requested
    }

    /// Asks for a checkpoint and waits (up to `timeout`) until one that started
    /// after this call has copied the whole WAL.
    pub(super) fn wait_complete(&self, timeout: Duration) -> Waited {
        let deadline = Instant::now() + timeout;
        loop {
            let ticket = self.poke();
            let (lock, cv) = &*self.shared;
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            while st.finished < ticket {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Waited::Slow;
                }
                st = cv
                    .wait_timeout(st, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if st.complete {
                return Waited::Complete;
            }
            drop(st);
            // A reader still uses older frames; ours are short, try again
            // shortly. One that stays (another process's) blocks it.
            if Instant::now() >= deadline {
                return Waited::Blocked;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Whether the most recent checkpoint copied the whole WAL, once every
    /// requested checkpoint has run (`None` while one is still pending).
    pub(super) fn caught_up(&self) -> Option<bool> {
        let (lock, _) = &*self.shared;
        let st = lock.lock().unwrap_or_else(|e| e.into_inner());
        (st.finished >= st.requested).then_some(st.complete)
    }

    /// Stops the thread.
    pub(super) fn stop(mut self) {
        {
            let (lock, cv) = &*self.shared;
            lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: Connection, shared: &(Mutex<State>, Condvar), counters: &Counters) {
    let (lock, cv) = shared;
    let mut done = 0;
    loop {
        let ticket = {
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            while st.requested == done && !st.stop {
                st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.stop {
                return;
            }
            st.requested
        };
        let started = Instant::now();
        let result: rusqlite::Result<(i64, i64, i64)> =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            });
        Counters::add(&counters.checkpoints, 1);
        Counters::add(&counters.checkpoint_ns, started.elapsed().as_nanos() as u64);
        let complete = match result {
            Ok((_busy, log, copied)) => log >= 0 && copied == log,
            Err(e) => {
                tracing::warn!(error = %e, "background checkpoint failed");
                false
            }
        };
        done = ticket;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        st.finished = ticket;
        st.complete = complete;
        cv.notify_all();
    }
}
