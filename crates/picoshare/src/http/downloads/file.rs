//! Downloads: `GET`/`HEAD` on `/-{id}[/{name}]` and the legacy `/!{id}[/{name}]`.
//!
//! The body is streamed from the store: a producer task reads a few chunks at a
//! time, each in its own short read transaction, and hands them to the response
//! through a small bounded channel. A slow client therefore holds a little memory
//! and no database lock, and never delays uploads or other downloads.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::counted::{CountGuard, Counting};
use super::pump::{self, Reading};
use crate::http::auth::protect::{self, Access, Protected};
use crate::http::auth::session::is_admin;
use crate::http::client::ClientView;
use crate::http::layers::metrics::HttpMetrics;
use crate::http::params::parse_entry_id;
use crate::http::proto::conditional::{evaluate, http_date, if_range_allows, Precondition};
use crate::http::proto::disposition::content_disposition;
use crate::http::proto::mime::effective_content_type;
use crate::http::proto::multipart_ranges::MultipartLayout;
use crate::http::proto::ranges::{parse_range, ByteRange, RangeRequest};
use crate::http::{AppError, AppState};
use crate::store::model::{DownloadRecord, Entry, EntryLimits, Reservation};
use crate::store::{DownloadLookup, RangeReader, Store};

/// Serves a download request (or, with `POST`, a protected file's password form).
pub(crate) async fn serve(
    state: AppState,
    peer: SocketAddr,
    req: Request,
) -> Result<Response, AppError> {
    let (parts, body) = req.into_parts();
    serve_parts(&state, peer, &parts, body).await
}

/// The ID part of `/-{id}/anything`.
fn id_segment(path: &str) -> &str {
    let rest = &path[2..];
    rest.split('/').next().unwrap_or("")
}

/// Files up to this size are read with their entry, in the same read
/// transaction, and sent from memory (see `Store::download_lookup`); larger
/// ones stream from the store in batches. A batch of the stream holds as
/// much (`pump.rs`).
const PREFETCH_BYTES: u64 = 256 << 10;

/// Largest password form body read.
const FORM_LIMIT: usize = 4096;

/// Why an expired file is not served (also the public view page's words).
pub(crate) const EXPIRED: &str = "This file has expired and is no longer available.";

/// Why a file whose downloads are used up is not served (also the public
/// view page's words).
pub(crate) const USED_UP: &str =
    "This file has reached its download limit and is no longer available.";

fn used_up() -> AppError {
    AppError::new(StatusCode::GONE, USED_UP)
}

fn busy() -> AppError {
    AppError::new(
        StatusCode::CONFLICT,
        "The last allowed download of this file is in progress. If it does not complete, \
         the file becomes available again: try again later.",
    )
}

async fn serve_parts(
    state: &AppState,
    peer: SocketAddr,
    req: &Parts,
    body: Body,
) -> Result<Response, AppError> {
    let id = parse_entry_id(id_segment(req.uri.path()))?;
    let DownloadLookup {
        entry,
        limits,
        data,
    } = state
        .store
        .download_lookup(&id, PREFETCH_BYTES)
        .await
        .map_err(|e| AppError::store("failed to read the entry", e))?
        .ok_or_else(|| AppError::not_found("entry not found"))?;
    let now = state.clock.now();
    if entry.is_expired(now) {
        return Err(AppError::new(StatusCode::GONE, EXPIRED));
    }
    let headers = &req.headers;
    let is_get = req.method == Method::GET;
    let client = ClientView::new(state.config.proxy.as_ref(), headers, &req.uri, peer);
    let mut viewer = Viewer {
        state,
        headers,
        owner: None,
    };
    // The owner is never asked for a password, and owner downloads never count.
    let owner = match &limits {
        Some(_) => viewer.is_owner().await?,
        None => false,
    };
    let protected = Protected {
        client: &client,
        headers,
        id: &entry.id,
        path: req.uri.path(),
    };
    if req.method == Method::POST {
        let Some(hash) = limits.as_ref().and_then(|l| l.password_hash.as_deref()) else {
            return Ok(StatusCode::METHOD_NOT_ALLOWED.into_response());
        };
        let form = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| AppError::bad_request("the password form could not be read"))?;
        return protect::submit(state, &protected, hash, &form).await;
    }
    let plan = Plan::new(&entry, headers);
    let mut counter = None;
    if let (Some(l), false) = (&limits, owner) {
        if let Some(hash) = &l.password_hash {
            if let Access::Refused(resp) = protect::check(state, &protected, hash).await? {
                return Ok(resp);
            }
        }
        if l.used_up() {
            return Err(used_up());
        }
        if l.max_downloads.is_some() && is_get && plan.full_body() {
            let reserved = state
                .store
                .reserve_download(&entry.id)
                .await
                .map_err(|e| AppError::store("failed to count the download", e))?;
            match reserved {
                Reservation::Reserved => {
                    counter = Some(CountGuard {
                        store: state.store.clone(),
                        id: entry.id.clone(),
                        done: false,
                    });
                }
                Reservation::Unlimited => {}
                Reservation::UsedUp => return Err(used_up()),
                Reservation::Busy => return Err(busy()),
            }
        }
    }
    let mut response = build_response(
        &state.store,
        &state.metrics,
        &entry,
        plan,
        is_get,
        counter,
        data,
    )
    .await?;
    let restricted = limits.as_ref().is_some_and(EntryLimits::restricts);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, cache_control(restricted));
    if is_get && !owner_preview(&mut viewer).await {
        let record = DownloadRecord {
            entry_id: entry.id.clone(),
            time: now,
            client_ip: client.ip,
            user_agent: headers
                .get(header::USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default(),
        };
        // Notifications: told when the whole body was sent.
        response = crate::hooks::watch_download(&state.store, response, &record);
        state.store.record_download(record);
    }
    Ok(response)
}

/// The `Cache-Control` of a download. A file with a password or a download
/// limit is `private, no-store`: no cache may keep it, or it would hand the
/// file to the next visitor without the password, or past the limit (the
/// owner's own downloads of it too, since a shared cache cannot tell them
/// apart). Any other file is `no-cache`: a cache may keep it but must ask
/// the server before each use (a cheap `304` with the `ETag`), so that a file
/// deleted, expired, used up or given a password later is never served from
/// a cache.
pub(crate) fn cache_control(restricted: bool) -> HeaderValue {
    HeaderValue::from_static(if restricted {
        "private, no-store"
    } else {
        "no-cache"
    })
}

/// What a `GET` or `HEAD` asks of an entry, worked out once from its
/// headers: the entry's `ETag`, what the conditional headers say, and the
/// ranges to send.
struct Plan {
    etag: String,
    precondition: Precondition,
    range: RangeRequest,
}

impl Plan {
    fn new(entry: &Entry, headers: &HeaderMap) -> Self {
        let etag = etag(entry);
        let precondition = evaluate(headers, &etag, entry.upload_time);
        let range = requested_range(entry, &etag, headers);
        Plan {
            etag,
            precondition,
            range,
        }
    }

    /// Whether a GET would be answered with the whole file (200): no failed
    /// or 304 precondition, and no satisfiable range that If-Range allows.
    fn full_body(&self) -> bool {
        self.precondition == Precondition::Proceed && matches!(self.range, RangeRequest::Full)
    }
}

/// Who asks, as far as a download needs to know: whether the request
/// carries the owner's session, looked up at most once.
struct Viewer<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    owner: Option<bool>,
}

impl Viewer<'_> {
    async fn is_owner(&mut self) -> Result<bool, AppError> {
        if let Some(owner) = self.owner {
            return Ok(owner);
        }
        let owner = is_admin(self.state, self.headers).await?;
        self.owner = Some(owner);
        Ok(owner)
    }
}

/// The ranges asked for: those of `Range` if `If-Range` (when sent) still
/// matches `entry`, otherwise the whole file. Also the whole file when the
/// request revalidates a cached copy (`If-None-Match` or
/// `If-Modified-Since`) that is stale, as the request reached this far: a
/// browser cache that holds part of an older version asks for the part it
/// has with those headers, and would splice a range of the new version onto
/// the old one (Chromium returned the old length of the new bytes after a
/// replacement, `e2e/replace.test.mjs`). RFC 9110 lets a server ignore
/// `Range`.
fn requested_range(entry: &Entry, etag: &str, headers: &HeaderMap) -> RangeRequest {
    let revalidates = header_str(headers, header::IF_NONE_MATCH).is_some()
        || header_str(headers, header::IF_MODIFIED_SINCE).is_some();
    match header_str(headers, header::RANGE) {
        Some(r) if !revalidates && if_range_allows(headers, etag, entry.upload_time) => {
            parse_range(r, entry.size)
        }
        _ => RangeRequest::Full,
    }
}

/// Whether this is a load the owner's own pages made to show a preview (an
/// image, a media element, a frame, the text preview's fetch), which is not a
/// download by a recipient and stays out of the history. Browsers mark such
/// loads with `Sec-Fetch-Dest` and `Sec-Fetch-Site: same-origin`; only then is
/// the session looked up. Navigations (`document`), other sites' embeds,
/// visitors without a session and clients that send no such headers are
/// recorded as before.
async fn owner_preview(viewer: &mut Viewer<'_>) -> bool {
    let headers = viewer.headers;
    let embedded = matches!(
        header_str(headers, header::HeaderName::from_static("sec-fetch-dest")),
        Some("image" | "video" | "audio" | "track" | "iframe" | "empty")
    );
    let same_origin = header_str(headers, header::HeaderName::from_static("sec-fetch-site"))
        == Some("same-origin");
    embedded
        && same_origin
        && headers.contains_key(header::COOKIE)
        && viewer.is_owner().await.unwrap_or(false)
}

/// The entity tag: the entry, its size and its upload time, which a
/// replacement of its content always moves forward, so that the tag changes
/// even when the size does not.
fn etag(entry: &Entry) -> String {
    format!(
        "\"{}-{:x}-{:x}\"",
        entry.id,
        entry.size,
        entry.upload_time.timestamp()
    )
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Builds the reply. `data`, when the lookup read it, is all of the
/// entry's bytes: a full body or one range of them is then sent from memory,
/// in one piece (with its headers in one write), unless the download is
/// counted (a counted download's last byte waits for its count, which only
/// the streamed body does).
#[allow(clippy::too_many_arguments)]
async fn build_response(
    store: &Store,
    metrics: &Arc<HttpMetrics>,
    entry: &Entry,
    plan: Plan,
    with_body: bool,
    counter: Option<CountGuard>,
    data: Option<Bytes>,
) -> Result<Response, AppError> {
    let mut out = HeaderMap::new();
    let set = |out: &mut HeaderMap, name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    };
    set(&mut out, header::ETAG, &plan.etag);
    set(
        &mut out,
        header::LAST_MODIFIED,
        &http_date(entry.upload_time),
    );
    set(&mut out, header::CONTENT_SECURITY_POLICY, "sandbox");
    set(&mut out, header::ACCEPT_RANGES, "bytes");

    match plan.precondition {
        Precondition::Proceed => {}
        Precondition::NotModified => return Ok((StatusCode::NOT_MODIFIED, out).into_response()),
        Precondition::Failed => {
            return Ok((StatusCode::PRECONDITION_FAILED, out).into_response());
        }
    }

    let content_type = effective_content_type(&entry.content_type, &entry.filename);
    set(
        &mut out,
        header::CONTENT_DISPOSITION,
        &content_disposition(&entry.filename),
    );

    let (status, segments, length) = match plan.range {
        RangeRequest::Full => {
            set(&mut out, header::CONTENT_TYPE, &content_type);
            let all = ByteRange {
                start: 0,
                end: entry.size - 1,
            };
            (StatusCode::OK, vec![Segment::Data(all)], entry.size)
        }
        RangeRequest::Unsatisfiable => {
            set(
                &mut out,
                header::CONTENT_RANGE,
                &format!("bytes */{}", entry.size),
            );
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, out).into_response());
        }
        RangeRequest::Partial(ranges) if ranges.len() == 1 => {
            let r = ranges[0];
            set(&mut out, header::CONTENT_TYPE, &content_type);
            set(
                &mut out,
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{}", r.start, r.end, entry.size),
            );
            (StatusCode::PARTIAL_CONTENT, vec![Segment::Data(r)], r.len())
        }
        RangeRequest::Partial(ranges) => {
            let boundary = crate::ids::random_hex(12);
            let layout = MultipartLayout::new(&ranges, entry.size, &content_type, boundary);
            set(&mut out, header::CONTENT_TYPE, &layout.content_type());
            let length = layout.content_length();
            let mut segments = Vec::with_capacity(layout.parts.len() * 2 + 1);
            for (head, r) in layout.parts {
                segments.push(Segment::Literal(Bytes::from(head)));
                segments.push(Segment::Data(r));
            }
            segments.push(Segment::Literal(Bytes::from(layout.trailer)));
            (StatusCode::PARTIAL_CONTENT, segments, length)
        }
    };
    set(&mut out, header::CONTENT_LENGTH, &length.to_string());
    // Only a full body counts; anything else releases the reservation.
    let counter = counter.filter(|_| status == StatusCode::OK);
    let in_memory = match (&data, segments.as_slice(), &counter) {
        (Some(data), [Segment::Data(r)], None) => usize::try_from(r.start)
            .ok()
            .zip(usize::try_from(r.end).ok())
            .filter(|&(_, end)| end < data.len())
            .map(|(start, end)| data.slice(start..=end)),
        _ => None,
    };
    let body = if !with_body {
        Body::empty()
    } else if let Some(bytes) = in_memory {
        HttpMetrics::add(&metrics.downloads, 1);
        HttpMetrics::add(&metrics.download_bytes, bytes.len() as u64);
        Body::from(bytes)
    } else {
        // The first bytes must be readable before a reply promises them: a
        // storage service that is down or hangs gets a 503 that says so.
        let first = match segments.iter().find_map(|s| match s {
            Segment::Data(r) => Some(*r),
            Segment::Literal(_) => None,
        }) {
            Some(r) => {
                let mut reader = store.read_range(entry, r.start, r.end);
                reader
                    .open()
                    .await
                    .map_err(|e| AppError::store("failed to read the file", e))?;
                Some(reader)
            }
            None => None,
        };
        HttpMetrics::add(&metrics.downloads, 1);
        stream_body(
            store.clone(),
            metrics.clone(),
            entry.clone(),
            segments,
            first,
            counter.map(|c| (c, length)),
        )
    };
    let mut resp = (status, out, body).into_response();
    // The explicit Content-Length must survive for HEAD, where the body is empty.
    if !with_body {
        if let Ok(v) = HeaderValue::from_str(&length.to_string()) {
            resp.headers_mut().insert(header::CONTENT_LENGTH, v);
        }
    }
    Ok(resp)
}

/// A piece of a response body.
enum Segment {
    /// Fixed bytes (multipart headers).
    Literal(Bytes),
    /// A byte range of the entry's data.
    Data(ByteRange),
}

/// The body of a download: `segments` in order, the first range read by
/// `first` (opened already).
fn stream_body(
    store: Store,
    metrics: Arc<HttpMetrics>,
    entry: Entry,
    segments: Vec<Segment>,
    mut first: Option<RangeReader>,
    counter: Option<(CountGuard, u64)>,
) -> Body {
    let pieces = pump::spawn(move |pump| async move {
        let _streaming = Streaming::start(metrics.clone());
        for seg in segments {
            let ok = match seg {
                Segment::Literal(b) => pump.send(b).await,
                Segment::Data(r) => {
                    let reading = Reading::Download(&metrics);
                    let reader = first
                        .take()
                        .unwrap_or_else(|| store.read_range(&entry, r.start, r.end));
                    pump.read(reader, &entry, reading, |_| {}).await
                }
            };
            if !ok {
                return;
            }
        }
    });
    let (counter, total) = match counter {
        Some((c, total)) => (Some(c), total),
        None => (None, 0),
    };
    let state = Counting {
        pieces,
        counter,
        total,
        sent: 0,
        last: None,
    };
    Body::from_stream(futures_util::stream::unfold(state, Counting::next))
}

/// Counts a download body as streaming while it lives.
struct Streaming(Arc<HttpMetrics>);

impl Streaming {
    fn start(metrics: Arc<HttpMetrics>) -> Self {
        metrics.downloads_streaming.fetch_add(1, Ordering::Relaxed);
        Streaming(metrics)
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.0.downloads_streaming.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_segment_stops_at_the_first_slash() {
        assert_eq!(id_segment("/-abcdefghij"), "abcdefghij");
        assert_eq!(id_segment("/-abcdefghij/name.txt"), "abcdefghij");
        assert_eq!(id_segment("/!abcdefghij/a/b"), "abcdefghij");
        assert_eq!(id_segment("/-"), "");
    }
}
