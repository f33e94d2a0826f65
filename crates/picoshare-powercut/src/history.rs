//! The history the workload leaves (`workload.rs`) and the checks read
//! (`check.rs`): every change the server acknowledged, with the journal's
//! sequence numbers when its request was sent and when its reply arrived.

use std::time::Duration;

use crate::content::Content;

/// How an upload was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadKind {
    /// `POST /api/entry`, multipart, with the session.
    Multipart,
    /// `PUT /api/upload/{name}`, the raw body, with an API token.
    RawWithToken,
    /// tus: creation, then PATCHes.
    Resumable,
    /// tus creation-with-upload: the whole file in the POST.
    ResumableInCreation,
    /// `POST /api/guest/{id}`, multipart, through a guest link.
    Guest,
}

/// A change the server acknowledged.
#[derive(Clone, Debug)]
pub enum Op {
    /// A file stored; `resumable` is its tus upload's ID.
    Upload {
        id: String,
        kind: UploadKind,
        content: Content,
        filename: String,
        note: Option<String>,
        resumable: Option<String>,
    },
    /// A file's name and note changed.
    Edit {
        id: String,
        filename: String,
        note: Option<String>,
    },
    /// A file deleted.
    Delete { id: String },
    /// The default lifetime set to `days`.
    Settings { days: u32 },
    /// A guest link created.
    GuestLink { id: String },
    /// An API token created (its 12-character ID).
    Token { id: String },
    /// A share created.
    Share { id: String },
    /// A resumable upload created, to hold `content`.
    ResumableCreated { upload: String, content: Content },
    /// A resumable upload's bytes up to `offset` acknowledged.
    ResumableProgress { upload: String, offset: u64 },
    /// File `id` (uploaded just before) may be downloaded once.
    OneShot { id: String },
    /// A full download of the one-shot file `id` was received to its last
    /// byte: the download is used up, durably (the server commits the count
    /// before it sends the last byte).
    Downloaded { id: String },
}

/// One acknowledged change and when it happened, in journal sequence
/// numbers: `sent` when the request left, `acked` once its reply was read.
#[derive(Clone, Debug)]
pub struct Step {
    pub op: Op,
    pub sent: u64,
    pub acked: u64,
}

/// What the workload did.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The acknowledged changes, in the order they were acknowledged.
    pub steps: Vec<Step>,
    /// The large upload's entry ID.
    pub big: Option<String>,
    /// Runs of the outside reader that succeeded, in all and after the
    /// large upload was acknowledged.
    pub reader_runs: usize,
    pub reader_runs_after_big: usize,
    /// Runs that failed (their messages, the first few).
    pub reader_failures: Vec<String>,
    /// The journal's sequence number when the server was killed.
    pub end: u64,
    /// How long it took.
    pub elapsed: Duration,
}
