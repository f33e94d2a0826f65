//! The store's domain, the same whichever backend is in use: the types the
//! HTTP layer gets and gives (entries, guest links, limits, shares, tokens,
//! settings, resumable uploads, reports), and every rule both backends
//! share: the stored time format (`time.rs`), how each type reads from a row
//! (a `decode` beside each type), the download-reservation decision and
//! limits changes (`limits.rs`), how a guest link's uploads are counted
//! (`guest_links.rs`), that a share goes with its last entry (`shares.rs`),
//! how an upload's bytes are cut into equal pieces (`upload.rs`),
//! and the SQL both backends run, written once beside the type it is about
//! (`sql.rs` explains how).
//!
//! Nothing here knows a database client: each backend implements `sql::Row`
//! for its rows and runs the shared statements with its own placeholders.
//! Each file is named as the files of the same area in `sqlite/` and
//! `remote/`.

pub(crate) mod entries;
pub(crate) mod gc;
pub(crate) mod guest_links;
pub(crate) mod history;
pub(crate) mod hooks;
pub(crate) mod limits;
pub(crate) mod sessions;
pub(crate) mod settings;
pub(crate) mod shares;
pub(crate) mod sql;
pub(crate) mod time;
pub(crate) mod tokens;
pub(crate) mod tus;
pub(crate) mod upload;

pub(crate) use entries::{DownloadRecord, Entry, NewEntry, Replacement};
pub(crate) use gc::GcOutcome;
pub(crate) use guest_links::{GuestFileLifetime, GuestLink, NewGuestLink};
pub(crate) use history::{
    DatabaseSpace, Download, DownloadPage, DownloadQuery, EntryPage, EntryQuery, EntrySort,
    EntrySummary, ReplacementRecord, StorageUsage,
};
pub(crate) use limits::{Change, EntryLimits, NewLimits, Reservation};
pub(crate) use settings::{DefaultLifetime, Settings, DEFAULT_LIFETIME_DAYS, MAX_LIFETIME_DAYS};
pub(crate) use shares::{CreateOutcome, NewShare, Share, ShareFile};
pub(crate) use tokens::{ApiToken, NewApiToken};
pub(crate) use tus::{NewTusUpload, TusUpload};
pub(crate) use upload::Pieces;
