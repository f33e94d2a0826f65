//! `GET /api/system`: disk usage and version, for the System information page.
//!
//! The original's page shows the filesystem's usage, the bytes of uploaded
//! files and of the database files, and the build's version and revision. We
//! add the database's free pages (`reclaimableBytes`): the space deleted files
//! left inside the database, which new uploads reuse before the file grows.

use axum::extract::State;
use axum::response::Response;

use crate::http::auth::session::Admin;
use crate::http::{json_reply, AppError};
use crate::store::Store;

/// The crate version, from Cargo.toml.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision the binary was built from (12 hex digits, set by build.rs),
/// or `unknown` when it was built outside a git checkout.
pub(crate) const REVISION: &str = env!("PICOSHARE_REVISION");
/// The commit time of [`REVISION`] (RFC 3339), or empty when unknown.
pub(crate) const REVISION_TIME: &str = env!("PICOSHARE_REVISION_TIME");

/// `GET /api/system`.
pub(crate) async fn system_info(
    _admin: Admin,
    State(store): State<Store>,
) -> Result<Response, AppError> {
    let u = store
        .usage()
        .await
        .map_err(|e| AppError::store("failed to check available space", e))?;
    Ok(json_reply(&serde_json::json!({
            "filesystem": {
                "totalBytes": u.fs_total,
                "usedBytes": u.fs_used,
                "freeBytes": u.fs_free,
            },
            "databaseBytes": u.database,
            "storedFileBytes": u.stored_files,
            "reclaimableBytes": u.reclaimable,
            "version": VERSION,
            "revision": REVISION,
            "revisionTime": (!REVISION_TIME.is_empty()).then_some(REVISION_TIME),
    })))
}
