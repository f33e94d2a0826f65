//! Download limits and passwords of entries (`picoshare_entry_limits`), and
//! the server's own keys (`picoshare_server_keys`): the types, the rules both
//! backends follow, and the statements they share.
//!
//! A limited entry counts its completed full downloads in `downloads_used`.
//! A full download first *reserves* one of the remaining downloads (atomically:
//! two requests can never both take the last one; [`EntryLimits::reservation`]
//! decides), and when it ends either turns the reservation into a used
//! download (the whole body was sent) or releases it (the transfer stopped
//! early). Where reservations are kept differs: a column the SQLite writer
//! updates, rows per server instance in the scale-out store.
//!
//! A limits row is written with its entry's row (or its resumable upload's)
//! and deleted with the entry; a row that ends up limiting nothing is deleted.

use super::sql::{shared_sql, unsigned, Row};
use crate::store::StoreError;

/// A new entry's download limit and password hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NewLimits {
    /// Full downloads allowed, `None` for no limit.
    pub(crate) max_downloads: Option<u64>,
    /// Argon2id PHC string of the password, `None` for no password.
    pub(crate) password_hash: Option<String>,
}

impl NewLimits {
    /// `Some(self)` unless it limits nothing.
    pub(crate) fn if_any(self) -> Option<Self> {
        (self.max_downloads.is_some() || self.password_hash.is_some()).then_some(self)
    }
}

/// An entry's limits and their state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EntryLimits {
    /// Full downloads allowed, `None` for no limit.
    pub(crate) max_downloads: Option<u64>,
    /// Full downloads completed.
    pub(crate) downloads_used: u64,
    /// Full downloads in progress (each holds one of the remaining ones).
    pub(crate) reserved: u64,
    /// Argon2id PHC string of the password, if the entry has one.
    pub(crate) password_hash: Option<String>,
}

impl EntryLimits {
    /// Whether it restricts downloads (a password, a download limit, or
    /// both): such a file is served by its own link only, with no preview
    /// for visitors and never inside a share's ZIP.
    pub(crate) fn restricts(&self) -> bool {
        self.password_hash.is_some() || self.max_downloads.is_some()
    }

    /// Whether every allowed download has been used.
    pub(crate) fn used_up(&self) -> bool {
        self.max_downloads.is_some_and(|m| self.downloads_used >= m)
    }

    /// Whether one more full download may start, given the downloads used
    /// and those in progress (`reserved`). The caller holds the lock that
    /// makes this decision and the reservation it leads to one step.
    pub(crate) fn reservation(&self) -> Reservation {
        let Some(max) = self.max_downloads else {
            return Reservation::Unlimited;
        };
        if self.downloads_used >= max {
            Reservation::UsedUp
        } else if self.downloads_used + self.reserved >= max {
            Reservation::Busy
        } else {
            Reservation::Reserved
        }
    }

    /// Reads `max_downloads, downloads_used, reserved, password_hash`.
    ///
    /// # Errors
    /// A column of the wrong type.
    pub(crate) fn decode(r: &impl Row) -> Result<EntryLimits, StoreError> {
        Ok(EntryLimits {
            max_downloads: r.opt_int(0)?.map(|m| unsigned(m.max(1))),
            downloads_used: unsigned(r.int(1)?),
            reserved: unsigned(r.int(2)?),
            password_hash: r.opt_text(3)?,
        })
    }
}

/// The outcome of asking to start a full download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reservation {
    /// The entry has no download limit: nothing to count.
    Unlimited,
    /// One remaining download is now held by this request.
    Reserved,
    /// Every allowed download has been used.
    UsedUp,
    /// The remaining downloads are all held by downloads in progress.
    Busy,
}

/// A change to one limit: keep it, clear it, or set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change<T> {
    /// Leave as it is.
    Keep,
    /// Remove.
    Clear,
    /// Set to this value.
    Set(T),
}

impl<T> Change<T> {
    /// The parameters of one column in [`CHANGE_LIMITS`]: whether to write
    /// it, and the value written (`None` clears it).
    pub(crate) fn assignment(self) -> (bool, Option<T>) {
        match self {
            Change::Keep => (false, None),
            Change::Clear => (true, None),
            Change::Set(v) => (true, Some(v)),
        }
    }
}

shared_sql! {
    /// Applies a change to entry `$1`'s limits row (which must exist):
    /// `$2, $3` are [`Change::assignment`] of the download limit, `$4, $5`
    /// that of the password hash.
    pub(crate) const CHANGE_LIMITS = "UPDATE picoshare_entry_limits
         SET max_downloads = CASE WHEN $2 THEN $3 ELSE max_downloads END,
             password_hash = CASE WHEN $4 THEN $5 ELSE password_hash END
         WHERE entry_id = $1";
    /// Deletes entry `$1`'s limits (part of deleting it).
    pub(crate) const DELETE_LIMITS = "DELETE FROM picoshare_entry_limits WHERE entry_id = $1";
    /// The server's key called `$1`.
    pub(crate) const SERVER_KEY = "SELECT value FROM picoshare_server_keys WHERE name = $1";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: Option<u64>, used: u64, reserved: u64) -> EntryLimits {
        EntryLimits {
            max_downloads: max,
            downloads_used: used,
            reserved,
            password_hash: None,
        }
    }

    #[test]
    fn the_reservation_decision() {
        assert_eq!(limits(None, 9, 9).reservation(), Reservation::Unlimited);
        assert_eq!(limits(Some(2), 2, 0).reservation(), Reservation::UsedUp);
        assert_eq!(limits(Some(2), 1, 1).reservation(), Reservation::Busy);
        assert_eq!(limits(Some(2), 1, 0).reservation(), Reservation::Reserved);
        assert_eq!(limits(Some(2), 0, 1).reservation(), Reservation::Reserved);
    }

    #[test]
    fn changes_as_assignments() {
        assert_eq!(Change::<u64>::Keep.assignment(), (false, None));
        assert_eq!(Change::<u64>::Clear.assignment(), (true, None));
        assert_eq!(Change::Set(3).assignment(), (true, Some(3)));
    }
}
