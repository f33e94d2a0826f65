//! What both backends share of SQL: statements written once, and the reading
//! of result rows.
//!
//! Both databases number their placeholders: PostgreSQL writes `$1`, `$2`…,
//! SQLite `?1`, `?2`… with the same meaning. (SQLite would read `$1` as a
//! *named* parameter, bound in order of first appearance, so PostgreSQL's
//! text cannot simply be reused.) A statement both run is written once in
//! PostgreSQL's style with [`shared_sql!`], which derives SQLite's text at
//! compile time: both are `&'static str` constants, nothing is computed at
//! run time.
//!
//! [`Row`] lets one function decode a row of either database, so that a
//! domain type is read from its columns in one place.

use super::super::StoreError;

/// One statement in both dialects (see the module's header).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sql {
    pg: &'static str,
    sqlite: &'static str,
}

impl Sql {
    /// Pairs the two texts; [`shared_sql!`] makes them.
    pub(crate) const fn new(pg: &'static str, sqlite: &'static str) -> Self {
        Sql { pg, sqlite }
    }

    /// PostgreSQL's text (`$1`, `$2`…).
    pub(crate) const fn pg(self) -> &'static str {
        self.pg
    }

    /// SQLite's text (`?1`, `?2`…).
    pub(crate) const fn sqlite(self) -> &'static str {
        self.sqlite
    }
}

/// `pg` with each `$` that starts a placeholder (a `$` followed by a digit)
/// turned into `?`; `N` must be `pg.len()`. For [`shared_sql!`].
pub(crate) const fn sqlite_placeholders<const N: usize>(pg: &str) -> [u8; N] {
    let b = pg.as_bytes();
    assert!(b.len() == N, "the length given is not the statement's");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        assert!(b[i] != b'?', "a shared statement uses $N placeholders only");
        out[i] = if b[i] == b'$' && i + 1 < N && b[i + 1].is_ascii_digit() {
            b'?'
        } else {
            b[i]
        };
        i += 1;
    }
    out
}

/// `bytes` as text (they were text before [`sqlite_placeholders`] replaced
/// ASCII with ASCII). For [`shared_sql!`].
pub(crate) const fn utf8(bytes: &'static [u8]) -> &'static str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("a shared statement is not UTF-8"),
    }
}

/// Declares statements both backends run, each a [`Sql`] constant written
/// in PostgreSQL's placeholder style:
///
/// ```text
/// shared_sql! {
///     /// Renames an entry.
///     pub(crate) const RENAME = "UPDATE entries SET filename = $2 WHERE id = $1";
/// }
/// ```
macro_rules! shared_sql {
    ($($(#[$doc:meta])* $vis:vis const $name:ident = $text:expr;)*) => {$(
        $(#[$doc])*
        $vis const $name: $crate::store::model::sql::Sql = {
            const PG: &str = $text;
            const SQLITE: [u8; PG.len()] = $crate::store::model::sql::sqlite_placeholders(PG);
            $crate::store::model::sql::Sql::new(PG, $crate::store::model::sql::utf8(&SQLITE))
        };
    )*};
}
pub(crate) use shared_sql;

/// The columns of one result row, whichever database it came from. Each
/// backend implements it for its own row type; the decoders of the domain
/// types read through it.
pub(crate) trait Row {
    /// A `TEXT NOT NULL` column.
    fn text(&self, i: usize) -> Result<String, StoreError>;
    /// A `TEXT` column.
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    /// An integer column that is never NULL.
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    /// An integer column.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// A blob (`BLOB`, `BYTEA`) column.
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError>;
}

/// A stored count or size as unsigned: negative values (which no query
/// produces) read as 0.
pub(crate) fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A count or size as the databases' signed 64-bit integers; values beyond
/// `i64::MAX` (no file or limit reaches them) are stored as the largest.
pub(crate) fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    shared_sql! {
        const PLAIN = "SELECT 1 FROM entries WHERE id = $1 AND note = $12 AND x = '$'";
        const CONCAT = concat!("SELECT $1", ", $2");
    }

    #[test]
    fn placeholders_are_translated_at_compile_time() {
        assert_eq!(
            PLAIN.sqlite(),
            "SELECT 1 FROM entries WHERE id = ?1 AND note = ?12 AND x = '$'"
        );
        assert_eq!(
            PLAIN.pg(),
            "SELECT 1 FROM entries WHERE id = $1 AND note = $12 AND x = '$'"
        );
        assert_eq!(CONCAT.sqlite(), "SELECT ?1, ?2");
    }
}
