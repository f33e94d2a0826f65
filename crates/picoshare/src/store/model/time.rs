//! The stored time format, the same in both backends and in the original:
//! UTC RFC 3339 text with whole seconds (`2030-01-02T03:04:05Z`). Every time
//! has this one form, so comparing the text orders the times (garbage
//! collection's `expiration_time < $1` relies on it), and the migration from
//! SQLite to PostgreSQL carries every value over unchanged.
//!
//! An entry that never expires stores the original's sentinel,
//! [`NEVER_EXPIRE`] (older rows may hold NULL).

use chrono::{DateTime, Utc};

use crate::validate::NEVER_EXPIRE;

/// A time as stored.
pub(crate) use crate::validate::db_time;

/// Reads a stored time; a value that is not one reads as the Unix epoch
/// rather than failing the whole row.
pub(crate) fn db_time_to_utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Reads a stored expiration: NULL and the sentinel mean never (`None`).
pub(crate) fn expiration_from_db(s: Option<String>) -> Option<DateTime<Utc>> {
    match s.as_deref() {
        None | Some(NEVER_EXPIRE) => None,
        Some(t) => Some(db_time_to_utc(t)),
    }
}

/// An expiration as stored: never (`None`) is the sentinel.
pub(crate) fn expiration_to_db(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| NEVER_EXPIRE.to_owned(), db_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_never_is_the_sentinel() {
        let t = crate::validate::rfc3339("2030-01-02T03:04:05Z").unwrap();
        assert_eq!(db_time(t), "2030-01-02T03:04:05Z");
        assert_eq!(db_time_to_utc("2030-01-02T03:04:05Z"), t);
        assert_eq!(db_time_to_utc("garbage"), DateTime::<Utc>::UNIX_EPOCH);
        assert_eq!(expiration_to_db(None), NEVER_EXPIRE);
        assert_eq!(expiration_from_db(Some(NEVER_EXPIRE.to_owned())), None);
        assert_eq!(expiration_from_db(None), None);
        assert_eq!(expiration_from_db(Some(expiration_to_db(Some(t)))), Some(t));
    }
}
