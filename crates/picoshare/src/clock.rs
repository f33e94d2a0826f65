//! The source of "now", injectable so that expiry logic can be tested without sleeping.

use chrono::{DateTime, SubsecRound, Utc};

/// A source of the current time.
pub(crate) trait Clock: Send + Sync + 'static {
    /// The current time, truncated to whole seconds (the database's precision).
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(0)
    }
}

/// A clock read from a file holding an RFC 3339 time, for tests of expiry and
/// garbage collection against the real binary (`--clock-file`): the test
/// writes the time it wants the server to see. If the file is missing or
/// unreadable, the system clock is used.
#[derive(Debug, Clone)]
pub(crate) struct FileClock {
    path: std::path::PathBuf,
}

impl FileClock {
    /// A clock that reads `path`.
    pub(crate) fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
            .map_or_else(
                || SystemClock.now(),
                |t| t.with_timezone(&Utc).trunc_subsecs(0),
            )
    }
}
