//! `GET /api/entries` and `GET /api/entry/{id}/downloads`: the file list and an
//! entry's download history, as JSON for the web UI.
//!
//! Times are RFC 3339 UTC with whole seconds, as stored. The User-Agent is
//! classified here, when the history is read, so that better rules also apply
//! to downloads recorded before them.

use axum::extract::{Query, State};

use crate::http::error::Path;
use axum::response::Response;
use serde::Serialize;

use crate::http::auth::session::Admin;
use crate::http::listing;
use crate::http::params::parse_entry_id;
use crate::http::{json_reply, AppError};
use crate::store::model::{Download, DownloadQuery, EntryLimits, EntrySummary};
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

/// One row of `GET /api/entry/{id}/replacements`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplacementJson {
    time: String,
    old_filename: String,
    old_size: u64,
    new_filename: String,
    new_size: u64,
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

fn to_json<T: Serialize>(value: &T) -> Result<Response, AppError> {
    serde_json::to_value(value)
        .map(|v| json_reply(&v))
        .map_err(|e| AppError::internal("failed to encode the reply", e))
}

/// A JSON list with the number of rows in all in `X-Total-Count`.
fn list_reply<T: Serialize>(rows: &[T], total: u64) -> Result<Response, AppError> {
    let mut resp = to_json(&rows)?;
    resp.headers_mut()
        .insert(listing::TOTAL_COUNT.clone(), listing::total_header(total));
    Ok(resp)
}

/// `GET /api/entry/{id}/downloads[?unique=true][&limit=N&offset=M]`: the
/// entry's downloads, newest first, with the browser and platform read from
/// each User-Agent; all of them, or the window asked for (see
/// [`listing`]), with the number in all in `X-Total-Count`.
pub(crate) async fn entry_downloads(
    _admin: Admin,
    State(store): State<Store>,
    Path(raw_id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let id = parse_entry_id(&raw_id)?;
    let (offset, limit) = listing::api_window(&query)?;
    let q = DownloadQuery {
        unique: listing::unique(&query),
        offset,
        limit,
    };
    let page = store
        .downloads_page(&id, q)
        .await
        .map_err(|e| AppError::store("failed to retrieve downloads", e))?
        .ok_or_else(|| AppError::not_found("entry not found"))?;
    let rows: Vec<DownloadJson> = page.rows.into_iter().map(DownloadJson::from).collect();
    list_reply(&rows, page.total)
}

/// `GET /api/entry/{id}/replacements`: the times the entry's content was
/// replaced, newest first, with the name and size before and after. A
/// sibling of the download history rather than rows in it: that reply is a
/// bare list shaped as the original's, counted and paged by downloads.
pub(crate) async fn entry_replacements(
    _admin: Admin,
    State(store): State<Store>,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_entry_id(&raw_id)?;
    let failed = |e| AppError::store("failed to retrieve the replacements", e);
    if store.entry(&id).await.map_err(failed)?.is_none() {
        return Err(AppError::not_found("entry not found"));
    }
    let rows: Vec<ReplacementJson> = store
        .replacements(&id)
        .await
        .map_err(failed)?
        .into_iter()
        .map(|r| ReplacementJson {
            time: db_time(r.time),
            old_filename: r.old_filename,
            old_size: r.old_size,
            new_filename: r.new_filename,
            new_size: r.new_size,
        })
        .collect();
    to_json(&rows)
}

/// `GET /api/entries[?sort=&order=&q=&limit=&offset=]`: the entries, newest
/// upload first unless sorted otherwise, with their size, number of
/// downloads, and download limit or password if they have one; all of
/// them, or the window asked for (see [`listing`]), with the number that
/// match in `X-Total-Count`.
pub(crate) async fn list_entries(
    _admin: Admin,
    State(store): State<Store>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let failed = |e| AppError::store("failed to retrieve file index", e);
    let mut q = listing::entry_query(&query)?;
    (q.offset, q.limit) = listing::api_window(&query)?;
    let page = store.entries_page(q).await.map_err(failed)?;
    let limits = store.all_limits().await.map_err(failed)?;
    let entries: Vec<EntryJson> = page
        .entries
        .into_iter()
        .map(|e| {
            let l = limits.get(&e.id);
            EntryJson::new(e, l)
        })
        .collect();
    list_reply(&entries, page.total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::history::unique_by_ip;

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
