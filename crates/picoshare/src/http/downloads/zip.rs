//! `GET /s/{id}/zip`: the public ZIP of a share.
//!
//! The ZIP holds the share's files that are neither expired nor protected (a
//! password or a download limit): those are only served by their own links,
//! which enforce the protection, so the ZIP can never be used to get around
//! it. The ZIP is built while it streams ([`crate::http::proto::zipstream`]):
//! no temporary file, a few chunks in memory.

use std::collections::HashSet;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::pump::{self, Reading};
use crate::http::api::shares::{all_limits, is_protected, member_name, public_share};
use crate::http::client::ClientView;
use crate::http::error::Path;
use crate::http::proto::disposition::content_disposition;
use crate::http::proto::zipstream::{Member, ZipLayout, ZipStream, ZIP64_LIMIT};
use crate::http::{AppError, AppState};
use crate::store::model::{DownloadRecord, Entry, Share, ShareFile};
use crate::store::Store;

/// Makes names unique inside the archive: a repeated name gets ` (2)`, ` (3)`…
/// before its extension.
fn unique_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for name in names {
        let mut candidate = name.to_owned();
        let mut n = 2;
        while !seen.insert(candidate.clone()) {
            let (stem, ext) = match name.rfind('.') {
                Some(dot) if dot > 0 && !name[dot..].contains('/') => name.split_at(dot),
                _ => (name, ""),
            };
            candidate = format!("{stem} ({n}){ext}");
            n += 1;
        }
        out.push(candidate);
    }
    out
}

/// A member's name with any control character as `_`. Names are refused
/// with them since they can cut a name short where it is unpacked
/// (`invoice.pdf\0.exe` as `invoice.pdf`), but a database the original wrote
/// may hold some.
fn without_controls(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

/// The ZIP's file name: the title (or `share-{id}`), with `.zip`.
fn zip_filename(share: &Share) -> String {
    let base = share
        .title
        .as_deref()
        .map(|t| t.replace(['/', '\\'], "-"))
        .unwrap_or_else(|| format!("share-{}", share.id));
    format!("{base}.zip")
}

/// `GET /s/{id}/zip`: the share's files that are not expired and not
/// protected, as one STORED ZIP streamed with an exact `Content-Length`.
/// 409 if every remaining file is protected.
pub(crate) async fn download_zip(
    State(state): State<AppState>,
    client: ClientView,
    method: Method,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let mut share = public_share(&state, &raw_id).await?;
    // The sizes laid out below must be the bytes read: the files are
    // pinned to the versions they have now, even if one is replaced while
    // the archive streams (`store/sqlite/content.rs`).
    let current = state
        .store
        .pinned_entries(share.files.iter().map(|f| f.entry.clone()).collect())
        .await
        .map_err(|e| AppError::store("failed to read the share's files", e))?;
    let files = std::mem::take(&mut share.files);
    share.files = files
        .into_iter()
        .zip(current)
        .filter_map(|(f, entry)| Some(ShareFile { entry: entry?, ..f }))
        .collect();
    let limits = all_limits(&state).await?;
    let now = state.clock.now();
    let files: Vec<&ShareFile> = share
        .files
        .iter()
        .filter(|f| !f.entry.is_expired(now) && !is_protected(limits.get(f.entry.id.as_str())))
        .collect();
    if files.is_empty() {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "The files of this share are protected by a password or a download limit, \
             so they are not in the ZIP: download them one by one from the share page.",
        ));
    }
    let plain: Vec<String> = files
        .iter()
        .map(|f| without_controls(member_name(f)))
        .collect();
    let names = unique_names(plain.iter().map(String::as_str));
    let members: Vec<Member> = files
        .iter()
        .zip(names)
        .map(|(f, name)| Member {
            name,
            size: f.entry.size,
            modified: f.entry.upload_time,
        })
        .collect();
    let zip64_from = state
        .config
        .zip64_threshold
        .map_or(ZIP64_LIMIT, |t| t.min(ZIP64_LIMIT));
    let layout = ZipLayout::new(members, zip64_from);
    let length = layout.total_len();
    let agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let sources: Vec<Entry> = files.iter().map(|f| f.entry.clone()).collect();
    // HEAD: the headers only, no download recorded.
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        for Entry { id, .. } in &sources {
            state.store.record_download(DownloadRecord {
                entry_id: id.clone(),
                time: now,
                client_ip: client.ip.clone(),
                user_agent: agent.clone(),
            });
        }
        zip_body(state.store.clone(), ZipStream::new(layout), sources)
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    // Its files are public, but any may be deleted or protected later.
    h.insert(header::CACHE_CONTROL, super::file::cache_control(false));
    if let Ok(v) = HeaderValue::from_str(&length.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&zip_filename(&share))) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(resp)
}

/// The archive's body: a task reads each file's chunks in short read
/// transactions and hands headers and data to the response through the chunk
/// pump ([`super::pump`]), computing CRCs on the way.
fn zip_body(store: Store, mut zip: ZipStream, sources: Vec<Entry>) -> Body {
    Body::from_stream(pump::spawn(move |pump| async move {
        for entry in sources {
            let head = match zip.begin() {
                Ok(b) => b,
                Err(e) => return pump.fail(e).await,
            };
            if !pump.send(head).await {
                return;
            }
            if entry.size > 0 {
                let all = (0, entry.size - 1);
                let read = pump.range(&store, &entry, all, Reading::ZipMember, |d| zip.data(d));
                if !read.await {
                    return;
                }
            }
            // A file changed under the archive (deleted and replaced) is an
            // error: the connection is cut rather than a wrong archive sent.
            match zip.end() {
                Ok(desc) => {
                    if !pump.send(desc).await {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(entry = %crate::ids::log_ref(entry.id.as_str()), error = %e, "share ZIP failed");
                    return pump.fail(e).await;
                }
            }
        }
        match zip.finish() {
            Ok(tail) => {
                pump.send(tail).await;
            }
            Err(e) => pump.fail(e).await,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_lose_control_characters() {
        assert_eq!(without_controls("invoice.pdf\0.exe"), "invoice.pdf_.exe");
        assert_eq!(without_controls("a\x1b[2J\u{9b}b"), "a_[2J_b");
        assert_eq!(without_controls("photos/été.jpg"), "photos/été.jpg");
    }

    #[test]
    fn repeated_names_are_made_unique() {
        assert_eq!(
            unique_names(["a.txt", "b", "a.txt", "a.txt", "b", "d.x/c"]),
            ["a.txt", "b", "a (2).txt", "a (3).txt", "b (2)", "d.x/c"]
        );
        assert_eq!(unique_names([".env", ".env"]), [".env", ".env (2)"]);
    }
}
