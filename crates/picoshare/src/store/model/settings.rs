//! Server settings: the default lifetime of new uploads.
//!
//! The original keeps them in a one-row table `settings(id = 1,
//! default_expiration_in_days)`, seeded with 30 days, and stores "never
//! expire" as 36500 days (100 years, its "infinite" lifetime). Both backends
//! read and write the same row, so every server agrees on the setting.

use chrono::{DateTime, Duration, Utc};

use super::sql::shared_sql;

/// Days in the original's "infinite" file lifetime (`876000h`); a stored
/// default of exactly this many days means "never expire".
const NEVER_EXPIRE_DAYS: u16 = 36_500;
/// The shortest default lifetime, in days.
const MIN_LIFETIME_DAYS: u16 = 1;
/// The longest finite default lifetime: ten years of 365 days.
pub(crate) const MAX_LIFETIME_DAYS: u16 = 3_650;
/// The default for a database without a settings row, as the original seeds it.
pub(crate) const DEFAULT_LIFETIME_DAYS: u16 = 30;

/// How long a new file lives by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefaultLifetime {
    /// This many days (1 to 3650 when set through the API).
    Days(u16),
    /// Files never expire.
    Never,
}

impl DefaultLifetime {
    /// A finite lifetime chosen by the admin, checked against the original's
    /// bounds.
    ///
    /// # Errors
    /// The original's messages: `file lifetime must be at least 1 days` (sic)
    /// and `file lifetime must be at most 10 years`.
    pub(crate) fn from_days(days: u16) -> Result<Self, String> {
        if days < MIN_LIFETIME_DAYS {
            return Err(format!(
                "file lifetime must be at least {MIN_LIFETIME_DAYS} days"
            ));
        }
        if days > MAX_LIFETIME_DAYS {
            return Err("file lifetime must be at most 10 years".into());
        }
        Ok(DefaultLifetime::Days(days))
    }

    /// The expiration of a file uploaded at `now` with this lifetime; `None`
    /// means never. Plain day arithmetic, no calendar rules, as the original.
    pub(crate) fn expiration_from(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            DefaultLifetime::Days(d) => Some(now + Duration::days(i64::from(d))),
            DefaultLifetime::Never => None,
        }
    }

    /// How the lifetime is stored in `settings.default_expiration_in_days`.
    pub(crate) fn to_db(self) -> i64 {
        match self {
            DefaultLifetime::Days(d) => i64::from(d),
            DefaultLifetime::Never => i64::from(NEVER_EXPIRE_DAYS),
        }
    }

    /// Reads the stored value. NULL, zero and out-of-range values cannot come
    /// from either server's API; rather than fail the upload page over them,
    /// they fall back to the default, like a missing row.
    pub(crate) fn from_db(days: Option<i64>) -> Self {
        match days {
            Some(d) if d == i64::from(NEVER_EXPIRE_DAYS) => DefaultLifetime::Never,
            Some(d) if d >= 1 => u16::try_from(d)
                .map(DefaultLifetime::Days)
                .unwrap_or(DefaultLifetime::Days(DEFAULT_LIFETIME_DAYS)),
            _ => DefaultLifetime::Days(DEFAULT_LIFETIME_DAYS),
        }
    }
}

/// The server's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Lifetime the upload page preselects for new files.
    pub(crate) default_lifetime: DefaultLifetime,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_lifetime: DefaultLifetime::Days(DEFAULT_LIFETIME_DAYS),
        }
    }
}

impl Settings {
    /// The settings from the `default_expiration_in_days` of the settings
    /// row, or the defaults when there is no row (`None`).
    pub(crate) fn from_db(row: Option<Option<i64>>) -> Self {
        match row {
            Some(days) => Settings {
                default_lifetime: DefaultLifetime::from_db(days),
            },
            None => Settings::default(),
        }
    }
}

shared_sql! {
    /// The settings row's `default_expiration_in_days`.
    pub(crate) const SETTINGS = "SELECT default_expiration_in_days FROM settings WHERE id = 1";
    /// Saves the settings. Unlike the original's plain `UPDATE`, which
    /// silently does nothing when the row is missing, this inserts the row then.
    pub(crate) const SAVE_SETTINGS =
        "INSERT INTO settings (id, default_expiration_in_days) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE
         SET default_expiration_in_days = excluded.default_expiration_in_days";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_bounds_and_messages() {
        assert_eq!(DefaultLifetime::from_days(1), Ok(DefaultLifetime::Days(1)));
        assert_eq!(
            DefaultLifetime::from_days(3650),
            Ok(DefaultLifetime::Days(3650))
        );
        assert_eq!(
            DefaultLifetime::from_days(0).unwrap_err(),
            "file lifetime must be at least 1 days"
        );
        assert_eq!(
            DefaultLifetime::from_days(3651).unwrap_err(),
            "file lifetime must be at most 10 years"
        );
    }

    #[test]
    fn stored_values() {
        assert_eq!(DefaultLifetime::Never.to_db(), 36_500);
        assert_eq!(DefaultLifetime::Days(7).to_db(), 7);
        assert_eq!(
            DefaultLifetime::from_db(Some(36_500)),
            DefaultLifetime::Never
        );
        assert_eq!(DefaultLifetime::from_db(Some(7)), DefaultLifetime::Days(7));
        for odd in [None, Some(0), Some(-3), Some(1 << 20)] {
            assert_eq!(
                DefaultLifetime::from_db(odd),
                DefaultLifetime::Days(30),
                "{odd:?}"
            );
        }
    }

    #[test]
    fn expiration_is_plain_day_arithmetic() {
        let now = DateTime::parse_from_rfc3339("2028-02-28T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            DefaultLifetime::Days(2)
                .expiration_from(now)
                .map(crate::validate::db_time),
            Some("2028-03-01T12:00:00Z".to_owned())
        );
        assert_eq!(DefaultLifetime::Never.expiration_from(now), None);
    }
}
