//! Login sessions on SQLite (`picoshare_sessions`), and the cache of
//! session look-ups that answers most requests without a database read.
//!
//! # The cache, and why it is safe
//!
//! Every request of a logged-in browser checks its session, and every
//! upload did so on a blocking thread (a SQLite read) before handing its
//! data to the writer thread: two trips between threads that, on a busy
//! 2-core machine, cost more than the read (issue 21, docs/benchmarks.md).
//! So the store keeps the sessions it has found valid in memory, keyed by
//! the token's hash, with the passphrase tag and the expiry time read from
//! their row; a look-up that finds its token under the same tag, not yet
//! expired, answers on the caller's task. Only valid sessions are kept:
//! a token not found, or expired, is asked of the database every time, so a
//! new login is seen at once and nothing is kept for a guessed token.
//!
//! A cached answer may only outlive its row for as long as the request that
//! deleted the row has not been answered. This process is the only writer
//! of the database while it runs, and in it only the functions below delete
//! session rows; each of them runs its write through
//! [`SqliteStore::end_sessions`], which empties the cache once the write has
//! ended (committed or failed) and before the caller hears of it. That is done
//! by a spawned task, so it happens even if the request that asked for it
//! is cancelled (the client hangs up) while the writer works.
//!
//! The race: a look-up reads the row just before a revocation commits and
//! would then store what it read after the cache was emptied. To close it,
//! the cache has a generation: a look-up notes it before its database read,
//! and stores its answer only if the generation is still the same (compared
//! and stored under the cache's lock); emptying the cache raises it. Either
//! the look-up's read began after the revocation committed (and found
//! nothing), or the generation it noted is older than the emptying that
//! follows the commit, so its answer is dropped. The look-up itself still
//! answers its own request with what it read, as it did without a cache: a
//! request that runs at the same time as a revocation may pass.
//!
//! Sessions that expire need no emptying: the cache keeps the expiry time
//! and refuses an entry past it, as the query does. A passphrase change
//! takes a restart, which starts with an empty cache. What the cache cannot
//! see is another program deleting rows from the file while the server runs
//! (the `sqlite3` shell, a restored copy): those sessions go on until the
//! server restarts or ends a session itself (SECURITY.md). The scale-out
//! store keeps no such cache: another instance may revoke a session.
//!
//! The cache is bounded ([`SESSION_CACHE_MAX`] entries; when full it is
//! emptied, and look-ups refill it), and its lock is a plain mutex held for a
//! hash-map operation, never across an `await`. Written here rather than
//! with a caching crate because the generation check must share one lock
//! with the insertion, which general-purpose caches do not offer.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{query_all, SqliteStore};
use crate::ids::SessionId;
use crate::store::model::sessions::{
    valid_session_until, NewSession, Session, DELETE_EXPIRED_SESSIONS, DELETE_OTHER_SESSIONS,
    DELETE_SESSION, DELETE_SESSION_BY_ID, END_SESSIONS_OF_OTHER_SECRETS, INSERT_SESSION,
    LIST_SESSIONS, SESSION_BY_HASH,
};
use crate::store::model::time::db_time;
use crate::store::StoreError;

impl SqliteStore {
    /// Stores a new login session (and deletes the expired ones); returns
    /// its ID.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn create_session(&self, s: NewSession) -> Result<SessionId, StoreError> {
        let id = SessionId::generate();
        let row_id = id.clone();
        self.end_sessions(move |conn| {
            conn.execute(DELETE_EXPIRED_SESSIONS.sqlite(), [db_time(s.created)])?;
            conn.execute(
                INSERT_SESSION.sqlite(),
                params![
                    s.token_sha256,
                    db_time(s.created),
                    db_time(s.expires),
                    row_id.as_str(),
                    s.secret_tag,
                    s.client_ip,
                    s.user_agent
                ],
            )?;
            Ok(())
        })
        .await?;
        Ok(id)
    }

    /// The ID of the session with this token hash, if it was opened under
    /// the passphrase tagged `secret_tag` and has not expired.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn session_id(
        &self,
        token_sha256: String,
        secret_tag: String,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionId>, StoreError> {
        let generation = match self.inner.sessions.get(&token_sha256, &secret_tag, now) {
            CacheLookup::Hit(id) => return Ok(Some(id)),
            CacheLookup::Miss { generation } => generation,
        };
        let tag = secret_tag.clone();
        let hash = token_sha256.clone();
        let found = self
            .read(move |conn| {
                let found = conn
                    .query_row(SESSION_BY_HASH.sqlite(), params![hash, tag], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                valid_session_until(found, now)
            })
            .await?;
        Ok(found.map(|(id, expires)| {
            self.inner
                .sessions
                .insert(generation, token_sha256, secret_tag, id.clone(), expires);
            id
        }))
    }

    /// The sessions of the passphrase tagged `secret_tag` that have not
    /// expired, newest first.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn sessions(
        &self,
        secret_tag: String,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        self.read(move |conn| {
            query_all(
                conn,
                LIST_SESSIONS.sqlite(),
                params![secret_tag, db_time(now)],
                |r| Session::decode(r),
            )
        })
        .await
    }

    /// Revokes a session by its token hash (logout).
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn delete_session(&self, token_sha256: String) -> Result<(), StoreError> {
        self.end_sessions(move |conn| {
            conn.execute(DELETE_SESSION.sqlite(), [token_sha256])?;
            Ok(())
        })
        .await
    }

    /// Revokes a session by its ID; returns whether it existed.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn delete_session_by_id(&self, id: &SessionId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.end_sessions(move |conn| {
            Ok(conn.execute(DELETE_SESSION_BY_ID.sqlite(), [id.as_str()])? > 0)
        })
        .await
    }

    /// Revokes every session but `keep`; returns how many ended.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn delete_other_sessions(&self, keep: &SessionId) -> Result<u64, StoreError> {
        let keep = keep.clone();
        self.end_sessions(move |conn| {
            Ok(conn.execute(DELETE_OTHER_SESSIONS.sqlite(), [keep.as_str()])? as u64)
        })
        .await
    }

    /// Ends every session opened under another passphrase than the one
    /// tagged `secret_tag`; returns how many ended.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn end_sessions_of_other_secrets(
        &self,
        secret_tag: String,
    ) -> Result<u64, StoreError> {
        self.end_sessions(move |conn| {
            Ok(conn.execute(END_SESSIONS_OF_OTHER_SECRETS.sqlite(), [secret_tag])? as u64)
        })
        .await
    }

    /// Runs `f`, a write that deletes session rows, in the writer's
    /// transaction, and empties the cache of look-ups once it has ended,
    /// committed or not, before returning. Every deletion from
    /// `picoshare_sessions` goes through here (see the module's header).
    /// The write and the emptying run in a task of their own, so a caller
    /// that stops waiting (a request cancelled) cannot skip the emptying.
    ///
    /// # Errors
    /// What `f` or the commit returns; [`StoreError::Task`] if the task
    /// panicked.
    async fn end_sessions<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::spawn(async move {
            let result = store.write(f).await;
            store.inner.sessions.invalidate();
            result
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// The most sessions the cache holds; a full cache is emptied.
pub(super) const SESSION_CACHE_MAX: usize = 10_000;

/// Valid sessions found in the database, by token hash (see the module's
/// header).
#[derive(Default)]
pub(super) struct SessionCache {
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Raised by every emptying after a revocation.
    generation: u64,
    /// Token hash → the session found for it.
    found: HashMap<String, Cached>,
}

/// A session found valid: the passphrase tag it was found under, its ID,
/// and when it expires.
struct Cached {
    secret_tag: String,
    id: SessionId,
    expires: DateTime<Utc>,
}

/// What the cache knows of a token.
#[derive(Debug, PartialEq)]
pub(super) enum CacheLookup {
    /// A valid session: its ID.
    Hit(SessionId),
    /// Ask the database; store its answer with this generation.
    Miss {
        /// The generation noted before the database read.
        generation: u64,
    },
}

impl SessionCache {
    /// The session of this token hash and passphrase tag if the cache has
    /// it and it has not expired at `now`; otherwise the generation a look-up
    /// in the database must store its answer with.
    pub(super) fn get(
        &self,
        token_sha256: &str,
        secret_tag: &str,
        now: DateTime<Utc>,
    ) -> CacheLookup {
        let state = self.lock();
        match state.found.get(token_sha256) {
            Some(c) if c.secret_tag == secret_tag && c.expires > now => {
                CacheLookup::Hit(c.id.clone())
            }
            _ => CacheLookup::Miss {
                generation: state.generation,
            },
        }
    }

    /// Stores a session the database found valid, unless the cache has been
    /// emptied since the look-up noted `generation` (a revocation may have
    /// committed after the read).
    pub(super) fn insert(
        &self,
        generation: u64,
        token_sha256: String,
        secret_tag: String,
        id: SessionId,
        expires: DateTime<Utc>,
    ) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.found.len() >= SESSION_CACHE_MAX && !state.found.contains_key(&token_sha256) {
            state.found.clear();
        }
        state.found.insert(
            token_sha256,
            Cached {
                secret_tag,
                id,
                expires,
            },
        );
    }

    /// Empties the cache and raises the generation: called after every write
    /// that deletes sessions.
    pub(super) fn invalidate(&self) {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        state.found.clear();
    }

    /// How many sessions it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().found.len()
    }

    /// The state; a panic while it was held cannot leave it inconsistent
    /// (each operation is one map call), so a poisoned lock is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn later(now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::hours(1)
    }

    #[test]
    fn a_found_session_answers_until_it_expires_and_only_under_its_tag() {
        let cache = SessionCache::default();
        let now = Utc::now();
        let id = SessionId::generate();
        let CacheLookup::Miss { generation } = cache.get("h", "tag", now) else {
            panic!("an empty cache has nothing");
        };
        cache.insert(generation, "h".into(), "tag".into(), id.clone(), later(now));
        assert_eq!(cache.get("h", "tag", now), CacheLookup::Hit(id));
        assert!(matches!(
            cache.get("h", "other tag", now),
            CacheLookup::Miss { .. }
        ));
        assert!(matches!(
            cache.get("other", "tag", now),
            CacheLookup::Miss { .. }
        ));
        assert!(matches!(
            cache.get("h", "tag", later(now)),
            CacheLookup::Miss { .. }
        ));
    }

    /// A look-up that read the row before a revocation committed, and stores
    /// its answer after the cache was emptied, stores nothing.
    #[test]
    fn a_look_up_that_raced_a_revocation_stores_nothing() {
        let cache = SessionCache::default();
        let now = Utc::now();
        let id = SessionId::generate();
        // The look-up notes the generation, then reads the row (still there).
        let CacheLookup::Miss { generation } = cache.get("h", "tag", now) else {
            panic!("an empty cache has nothing");
        };
        // The revocation commits and empties the cache.
        cache.invalidate();
        // The look-up's answer arrives late.
        cache.insert(generation, "h".into(), "tag".into(), id.clone(), later(now));
        assert_eq!(cache.len(), 0);
        assert!(matches!(
            cache.get("h", "tag", now),
            CacheLookup::Miss { .. }
        ));
        // A look-up begun after the emptying stores its answer.
        let CacheLookup::Miss { generation } = cache.get("h", "tag", now) else {
            panic!("nothing stored");
        };
        cache.insert(generation, "h".into(), "tag".into(), id.clone(), later(now));
        assert_eq!(cache.get("h", "tag", now), CacheLookup::Hit(id));
        // And a revocation removes it.
        cache.invalidate();
        assert!(matches!(
            cache.get("h", "tag", now),
            CacheLookup::Miss { .. }
        ));
    }

    #[test]
    fn a_full_cache_is_emptied() {
        let cache = SessionCache::default();
        let now = Utc::now();
        for i in 0..=SESSION_CACHE_MAX {
            let CacheLookup::Miss { generation } = cache.get(&i.to_string(), "tag", now) else {
                panic!("not stored yet");
            };
            cache.insert(
                generation,
                i.to_string(),
                "tag".into(),
                SessionId::generate(),
                later(now),
            );
        }
        assert_eq!(cache.len(), 1, "emptied when full, then the newest stored");
        assert!(matches!(
            cache.get(&SESSION_CACHE_MAX.to_string(), "tag", now),
            CacheLookup::Hit(_)
        ));
    }
}
