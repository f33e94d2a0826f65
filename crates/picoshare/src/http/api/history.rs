//! `GET /api/entries` and `GET /api/entry/{id}/downloads`: the file list and an
//! entry's download history, as JSON for the web UI.
//!
//! Times are RFC 3339 UTC with whole seconds, as stored. The User-Agent is
//! classified here, when the history is read, so that better rules also apply
//! to downloads recorded before them.

use std::collections::HashSet;

use axum::extract::{Query, State};

use crate::http::error::Path;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::http::auth::session::Admin;
use crate::http::params::parse_entry_id;
use crate::http::{json_reply, AppError};
use crate::store::model::{Download, EntryLimits, EntrySummary};
use crate::store::Store;
use crate::useragent;
use crate::validate::db_time;

/// One row of `GET /api/entry/{id}/downloads`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DownloadJson {
    time: String,
    client_ip: String,
    user_agent: String,
    browser: String,
    platform: String,
}

impl From<Download> for DownloadJson {
    fn from(d: Download) -> Self {
        let ua = useragent::parse(&d.user_agent);
        DownloadJson {
            time: db_time(d.time),
            client_ip: d.client_ip,
            user_agent: d.user_agent,
            browser: ua.browser,
            platform: ua.platform,
        }
    }
}

/// One element of `GET /api/entries`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryJson {
    id: String,
    filename: String,
    content_type: String,
    size: u64,
    upload_time: String,
    /// `null` when the file never expires.
    expiration: Option<String>,
    note: Option<String>,
    guest_link_id: Option<String>,
    downloads: u64,
    /// The download limit, `null` for none.
    max_downloads: Option<u64>,
    /// Complete downloads counted against the limit.
    downloads_used: u64,
    /// Whether downloading needs a password.
    password_protected: bool,
}

impl EntryJson {
    fn new(e: EntrySummary, limits: Option<&EntryLimits>) -> Self {
        EntryJson {
            id: e.id,
            filename: e.filename,
            content_type: e.content_type,
            size: e.size,
            upload_time: db_time(e.upload_time),
            expiration: e.expiration.map(db_time),
            note: e.note,
            guest_link_id: e.guest_link_id,
            downloads: e.downloads,
            max_downloads: limits.and_then(|l| l.max_downloads),
            downloads_used: limits.map_or(0, |l| l.downloads_used),
            password_protected: limits.is_some_and(|l| l.password_hash.is_some()),
        }
    }
}

/// The query of the history route.
#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    /// `true` keeps only the most recent download per client IP.
    unique: Option<String>,
}

fn to_json<T: Serialize>(value: &T) -> Result<Response, AppError> {
    serde_json::to_value(value)
        .map(|v| json_reply(&v))
        .map_err(|e| AppError::internal("failed to encode the reply", e))
}

/// Keeps the first row of each client IP. The rows come newest first, so that
/// is each IP's most recent download, as the original's "Unique IPs only".
pub(crate) fn unique_by_ip(rows: Vec<Download>) -> Vec<Download> {
    let mut seen = HashSet::new();
    rows.into_iter()
        .filter(|d| seen.insert(d.client_ip.clone()))
        .collect()
}

/// `GET /api/entry/{id}/downloads[?unique=true]`: the entry's downloads, newest
/// first, with the browser and platform read from each User-Agent.
pub(crate) async fn entry_downloads(
    _admin: Admin,
    State(store): State<Store>,
    Path(raw_id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, AppError> {
    let id = parse_entry_id(&raw_id)?;
    let rows = store
        .downloads(&id)
        .await
        .map_err(|e| AppError::store("failed to retrieve downloads", e))?
        .ok_or_else(|| AppError::not_found("entry not found"))?;
    // Only the exact value `true` filters, as the original's page checks it.
    let rows = if query.unique.as_deref() == Some("true") {
        unique_by_ip(rows)
    } else {
        rows
    };
    let rows: Vec<DownloadJson> = rows.into_iter().map(DownloadJson::from).collect();
    to_json(&rows)
}

/// `GET /api/entries`: every entry, newest upload first, with its size,
/// number of downloads, and download limit or password if it has one.
pub(crate) async fn list_entries(
    _admin: Admin,
    State(store): State<Store>,
) -> Result<Response, AppError> {
    let failed = |e| AppError::store("failed to retrieve file index", e);
    let entries = store.entries().await.map_err(failed)?;
    let limits = store.all_limits().await.map_err(failed)?;
    let entries: Vec<EntryJson> = entries
        .into_iter()
        .map(|e| {
            let l = limits.get(&e.id);
            EntryJson::new(e, l)
        })
        .collect();
    to_json(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(secs: i64, ip: &str) -> Download {
        Download {
            time: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
            client_ip: ip.to_owned(),
            user_agent: String::new(),
        }
    }

    #[test]
    fn unique_keeps_each_ips_first_row() {
        let rows = vec![
            row(5, "10.0.0.1"),
            row(4, "10.0.0.2"),
            row(3, "10.0.0.1"),
            row(2, ""),
            row(1, ""),
        ];
        assert_eq!(
            unique_by_ip(rows),
            vec![row(5, "10.0.0.1"), row(4, "10.0.0.2"), row(2, "")]
        );
    }
}
