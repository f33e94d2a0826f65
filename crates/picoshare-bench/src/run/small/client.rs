//! The small-files load generator: N keep-alive HTTP/1.1 connections, each
//! sending one request after another for a fixed time, every latency kept.
//!
//! Built on hyper's low-level client connection (one task per connection,
//! no pool, no cookie jar, request bodies prepared once), so that the
//! client spends as little CPU per request as it can: on a shared 2-core
//! machine the client and the server share the CPUs, and a heavy client
//! would cap what it measures. The same run measures a trivial request's
//! rate at every connection count, which shows that ceiling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What one phase measured.
#[derive(Debug, Default)]
pub(crate) struct PhaseResult {
    /// Requests answered as expected.
    pub ok: u64,
    /// Requests that failed (transport errors, unexpected status or length).
    pub errors: u64,
    /// The first error, for the record.
    pub first_error: Option<String>,
    /// Latency of every successful request, microseconds.
    pub latencies_us: Vec<u32>,
    /// Wall-clock seconds of the phase.
    pub seconds: f64,
    /// Entry IDs from upload replies.
    pub ids: Vec<String>,
}

/// One kind of request, prepared once.
#[derive(Clone)]
pub(crate) enum Kind {
    /// `POST /api/entry?expiration=…` of a multipart body; the reply's `id`
    /// is kept.
    Upload {
        /// The multipart body.
        body: Bytes,
        /// Its `Content-Type` (with the boundary).
        content_type: String,
    },
    /// `GET /-{id}` of these IDs in turn, each `size` bytes long.
    Download {
        /// The IDs.
        ids: Arc<Vec<String>>,
        /// Their length.
        size: u64,
    },
    /// `GET path`, any status, any body.
    Trivial {
        /// The path.
        path: String,
    },
}

/// A multipart body with one `file` part of `content`, named `name`.
pub(crate) fn multipart(name: &str, content: &[u8]) -> (Bytes, String) {
    let boundary = "picoshare-bench-boundary-7d1f9c2a";
    let mut body = Vec::with_capacity(content.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        Bytes::from(body),
        format!("multipart/form-data; boundary={boundary}"),
    )
}

/// `host:port` of an `http://host:port` base URL.
fn authority(base: &str) -> anyhow::Result<String> {
    let rest = base
        .strip_prefix("http://")
        .with_context(|| format!("{base}: only http:// servers can be measured"))?;
    Ok(rest.trim_end_matches('/').to_owned())
}

async fn connect(addr: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Logs in with `passphrase` and returns the `Cookie` header to send.
///
/// # Errors
/// The server cannot be reached or refuses the passphrase.
pub(crate) async fn login(base: &str, passphrase: &str) -> anyhow::Result<String> {
    let addr = authority(base)?;
    let mut send = connect(&addr).await?;
    let body = serde_json::json!({ "sharedSecretKey": passphrase }).to_string();
    let req = Request::post("/api/auth")
        .header("host", &addr)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let resp = send.send_request(req).await?;
    if !resp.status().is_success() {
        bail!("login refused: {}", resp.status());
    }
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next().map(str::to_owned))
        .collect();
    Ok(cookies.join("; "))
}

/// Runs `kind` on `connections` keep-alive connections for `duration`.
/// Connections are opened before the clock starts; a request still in
/// flight at the end finishes and counts.
///
/// # Errors
/// Connections that cannot be opened at all.
pub(crate) async fn run(
    base: &str,
    cookie: &str,
    kind: Kind,
    connections: u32,
    duration: Duration,
) -> anyhow::Result<PhaseResult> {
    let addr = authority(base)?;
    let mut senders = Vec::new();
    for _ in 0..connections {
        senders.push(connect(&addr).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, send)| {
            let (addr, cookie, kind) = (addr.clone(), cookie.to_owned(), kind.clone());
            tokio::spawn(async move { connection(send, &addr, &cookie, &kind, i, deadline).await })
        })
        .collect();
    let mut out = PhaseResult::default();
    for t in tasks {
        let r = t.await.context("a client connection panicked")?;
        out.ok += r.ok;
        out.errors += r.errors;
        if out.first_error.is_none() {
            out.first_error = r.first_error;
        }
        out.latencies_us.extend(r.latencies_us);
        out.ids.extend(r.ids);
    }
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// One connection's loop.
async fn connection(
    mut send: SendRequest<Full<Bytes>>,
    addr: &str,
    cookie: &str,
    kind: &Kind,
    index: usize,
    deadline: Instant,
) -> PhaseResult {
    let mut out = PhaseResult::default();
    let mut n = index;
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let result = request(&mut send, addr, cookie, kind, n).await;
        n += 1;
        match result {
            Ok(id) => {
                out.ok += 1;
                out.latencies_us
                    .push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                if let Some(id) = id {
                    out.ids.push(id);
                }
            }
            Err(e) => {
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(format!("{e:#}"));
                }
                // A broken connection is replaced.
                if send.is_closed() || send.ready().await.is_err() {
                    match connect(addr).await {
                        Ok(s) => send = s,
                        Err(e) => {
                            out.first_error.get_or_insert(format!("{e:#}"));
                            break;
                        }
                    }
                }
            }
        }
    }
    out
}

/// One request; for uploads, the new entry's ID.
async fn request(
    send: &mut SendRequest<Full<Bytes>>,
    addr: &str,
    cookie: &str,
    kind: &Kind,
    n: usize,
) -> anyhow::Result<Option<String>> {
    send.ready().await?;
    let req = match kind {
        Kind::Upload { body, content_type } => Request::builder()
            .method(Method::POST)
            .uri("/api/entry?expiration=2999-12-31T00:00:00Z")
            .header("host", addr)
            .header("cookie", cookie)
            .header("accept", "application/json")
            .header("content-type", content_type)
            .body(Full::new(body.clone()))?,
        Kind::Download { ids, .. } => Request::get(format!("/-{}", ids[n % ids.len()]))
            .header("host", addr)
            .body(Full::new(Bytes::new()))?,
        Kind::Trivial { path } => Request::get(path.as_str())
            .header("host", addr)
            .body(Full::new(Bytes::new()))?,
    };
    let resp = send.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    match kind {
        Kind::Upload { .. } => {
            if status != StatusCode::OK {
                bail!(
                    "upload answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            let v: serde_json::Value = serde_json::from_slice(&body)
                .with_context(|| format!("upload reply is not JSON: {body:?}"))?;
            let id = v["id"].as_str().context("upload reply has no id")?;
            Ok(Some(id.to_owned()))
        }
        Kind::Download { size, .. } => {
            if status != StatusCode::OK || body.len() as u64 != *size {
                bail!(
                    "download answered {status} with {} bytes, not {size}",
                    body.len()
                );
            }
            Ok(None)
        }
        Kind::Trivial { .. } => Ok(None),
    }
}

/// The `q`-quantile (0..1) of sorted latencies, in milliseconds.
pub(crate) fn quantile_ms(sorted_us: &[u32], q: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let rank = (q * sorted_us.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted_us.len()) - 1;
    Some(f64::from(sorted_us[i]) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=1000).map(|x| x * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), Some(500.0));
        assert_eq!(quantile_ms(&v, 0.99), Some(990.0));
        assert_eq!(quantile_ms(&v, 0.999), Some(999.0));
        assert_eq!(quantile_ms(&[7000], 0.999), Some(7.0));
        assert_eq!(quantile_ms(&[], 0.5), None);
    }

    #[test]
    fn multipart_bodies_have_one_file_part() {
        let (body, ct) = multipart("a.bin", b"xyz");
        let text = String::from_utf8(body.to_vec()).unwrap();
        let boundary = ct.split("boundary=").nth(1).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"file\"; filename=\"a.bin\""));
        assert!(text.ends_with(&format!("\r\nxyz\r\n--{boundary}--\r\n")));
        assert_eq!(authority("http://127.0.0.1:80/").unwrap(), "127.0.0.1:80");
        assert!(authority("https://x").is_err());
    }
}
