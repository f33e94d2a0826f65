//! The HTTP client side of a measurement: log in, upload, download, ranges.
//!
//! Only PicoShare's public HTTP API is used, so any server that speaks it can
//! be measured (the original Go server included). Times are taken on the
//! client around the whole transfer.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context};
use bytes::Bytes;
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};

/// Expiration sent with uploads: "never", which every PicoShare accepts.
const NEVER: &str = "2999-12-31T00:00:00Z";
/// Bytes per body piece read from the test file and handed to the HTTP client.
const SEND_CHUNK: usize = 1 << 20;

/// A logged-in client of one server.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// What an upload measured.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The new entry's ID.
    pub id: String,
    /// Seconds from the start of the request to the reply.
    pub seconds: f64,
    /// Seconds from the last body byte handed to the socket to the reply.
    pub reply_wait_s: f64,
}

impl Upload {
    /// The upload of `id` started at `started`, answered at `replied`, whose
    /// last body byte went to the socket at `last_sent` (the reply time if
    /// none was recorded).
    fn finished(
        id: String,
        started: Instant,
        replied: Instant,
        last_sent: &Mutex<Option<Instant>>,
    ) -> Upload {
        let last = last_sent
            .lock()
            .map(|g| g.unwrap_or(replied))
            .unwrap_or(replied);
        Upload {
            id,
            seconds: started.elapsed().as_secs_f64(),
            reply_wait_s: replied.saturating_duration_since(last).as_secs_f64(),
        }
    }
}

/// What a download measured.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    /// Payload bytes received.
    pub bytes: u64,
    /// Seconds from the request to the last byte.
    pub seconds: f64,
}

/// A failed request, with its HTTP status when there was one.
#[derive(Debug)]
pub struct RequestError {
    /// The status, if the server replied.
    pub status: Option<u16>,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "HTTP {s}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for RequestError {}

fn failed(status: Option<u16>, message: impl Into<String>) -> anyhow::Error {
    RequestError {
        status,
        message: message.into(),
    }
    .into()
}

impl Api {
    /// Logs in to the server at `base` with `passphrase`.
    ///
    /// # Errors
    /// If the server cannot be reached or refuses the passphrase.
    pub async fn login(base: &str, passphrase: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .pool_max_idle_per_host(16)
            .build()?;
        let resp = http
            .post(format!("{base}/api/auth"))
            .json(&serde_json::json!({ "sharedSecretKey": passphrase }))
            .send()
            .await
            .with_context(|| format!("cannot reach {base}"))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            bail!(failed(
                Some(status),
                format!("login refused: {}", text.trim())
            ));
        }
        Ok(Api {
            http,
            base: base.to_owned(),
        })
    }

    /// A client of a plain HTTP server at `base`, without logging in.
    ///
    /// # Errors
    /// If the HTTP client cannot be built.
    pub fn anonymous(base: &str) -> anyhow::Result<Api> {
        Ok(Api {
            http: reqwest::Client::builder().build()?,
            base: base.to_owned(),
        })
    }

    /// Uploads `file` (of `size` bytes) as a multipart `file` part.
    ///
    /// # Errors
    /// Transport errors and non-2xx replies.
    pub async fn upload(&self, file: &Path, size: u64) -> anyhow::Result<Upload> {
        self.upload_padded(file, size, 0).await
    }

    /// Uploads `file` (of `size` bytes) followed by `padding` more bytes (the
    /// file's first ones again), as one file part of `size + padding` bytes:
    /// the planted slowdown of the sensitivity self-check, whose bench
    /// counts only the nominal `size`.
    ///
    /// # Errors
    /// Transport errors and non-2xx replies.
    pub async fn upload_padded(
        &self,
        file: &Path,
        size: u64,
        padding: u64,
    ) -> anyhow::Result<Upload> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file.bin".into());
        let (head, tail) = form_framing(&name);
        let length = head.len() as u64 + size + padding + tail.len() as u64;
        let last_sent: Arc<Mutex<Option<Instant>>> = Arc::default();
        let body = file_body(file, (0, size), padding, head, tail, last_sent.clone()).await?;
        self.send_upload(body, length, last_sent).await
    }

    /// Uploads `data`, held in memory, as a file named `name`.
    ///
    /// # Errors
    /// Transport errors and non-2xx replies.
    pub async fn upload_bytes(&self, name: &str, data: Bytes) -> anyhow::Result<Upload> {
        let (head, tail) = form_framing(name);
        let length = (head.len() + data.len() + tail.len()) as u64;
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(
            [head, data, tail].map(Ok::<Bytes, std::io::Error>),
        ));
        self.send_upload(body, length, Arc::default()).await
    }

    async fn send_upload(
        &self,
        body: reqwest::Body,
        length: u64,
        last_sent: Arc<Mutex<Option<Instant>>>,
    ) -> anyhow::Result<Upload> {
        let started = Instant::now();
        let resp = self
            .http
            .post(format!("{}/api/entry?expiration={NEVER}", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .header("content-length", length)
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| failed(None, format!("upload failed: {e}")))?;
        let replied = Instant::now();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            bail!(failed(Some(status), text.trim().to_owned()));
        }
        let id = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
            .ok_or_else(|| failed(Some(status), format!("reply has no id: {text}")))?;
        Ok(Upload::finished(id, started, replied, &last_sent))
    }

    /// Uploads `file` (of `size` bytes) as a resumable (tus 1.0.0) upload: one
    /// creation request, then PATCH requests of at most `request_bytes` each
    /// (0: a single one). Times the whole sequence.
    ///
    /// # Errors
    /// Transport errors and unexpected replies.
    pub async fn upload_tus(
        &self,
        file: &Path,
        size: u64,
        request_bytes: u64,
    ) -> anyhow::Result<Upload> {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file.bin".into());
        let started = Instant::now();
        let resp = self
            .http
            .post(format!("{}/api/tus", self.base))
            .header("tus-resumable", "1.0.0")
            .header("upload-length", size)
            .header(
                "upload-metadata",
                format!("filename {},expiration {}", b64(&name), b64(NEVER)),
            )
            .send()
            .await
            .map_err(|e| failed(None, format!("upload creation failed: {e}")))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Some(location) = location.filter(|_| status == 201) else {
            let text = resp.text().await.unwrap_or_default();
            bail!(failed(
                Some(status),
                format!("upload creation: {}", text.trim())
            ));
        };
        let url = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let last_sent: Arc<Mutex<Option<Instant>>> = Arc::default();
        let mut offset = 0u64;
        let mut entry = None;
        while offset < size {
            let left = size - offset;
            let len = if request_bytes == 0 {
                left
            } else {
                left.min(request_bytes)
            };
            let body = file_body(
                file,
                (offset, len),
                0,
                Bytes::new(),
                Bytes::new(),
                last_sent.clone(),
            )
            .await?;
            let resp = self
                .http
                .patch(&url)
                .header("tus-resumable", "1.0.0")
                .header("upload-offset", offset)
                .header("content-type", "application/offset+octet-stream")
                .header("content-length", len)
                .body(body)
                .send()
                .await
                .map_err(|e| failed(None, format!("upload failed: {e}")))?;
            let status = resp.status().as_u16();
            let header = |n: &str| {
                resp.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let new_offset = header("upload-offset").and_then(|v| v.parse::<u64>().ok());
            entry = header("picoshare-entry-id");
            if status != 204 || new_offset != Some(offset + len) {
                let text = resp.text().await.unwrap_or_default();
                bail!(failed(
                    Some(status),
                    format!("PATCH at {offset}: {}", text.trim())
                ));
            }
            offset += len;
        }
        let replied = Instant::now();
        let id = entry.ok_or_else(|| failed(Some(204), "the last PATCH named no entry"))?;
        Ok(Upload::finished(id, started, replied, &last_sent))
    }

    /// Downloads entry `id` whole, checking that `expect` bytes arrive.
    ///
    /// # Errors
    /// Transport errors, non-2xx replies, wrong lengths.
    pub async fn download(&self, id: &str, expect: u64) -> anyhow::Result<Transfer> {
        let started = Instant::now();
        let bytes = self.get(&format!("/-{id}"), None).await?;
        if bytes != expect {
            bail!(failed(
                Some(200),
                format!("downloaded {bytes} bytes, expected {expect}")
            ));
        }
        Ok(Transfer {
            bytes,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Reads `count` ranges of `range_len` bytes at random offsets (from `seed`).
    ///
    /// # Errors
    /// Transport errors, non-206 replies, wrong lengths.
    pub async fn ranges(
        &self,
        id: &str,
        size: u64,
        count: u32,
        range_len: u64,
        seed: u64,
    ) -> anyhow::Result<Transfer> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let len = range_len.min(size);
        let started = Instant::now();
        let mut total = 0;
        for _ in 0..count {
            let start = rng.gen_range(0..=size - len);
            let got = self
                .get(&format!("/-{id}"), Some((start, start + len - 1)))
                .await?;
            if got != len {
                bail!(failed(
                    Some(206),
                    format!("range gave {got} bytes, expected {len}")
                ));
            }
            total += got;
        }
        Ok(Transfer {
            bytes: total,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Downloads entry `id` whole, handing every piece of the body to `check`
    /// as it arrives (to compare it with what was uploaded).
    ///
    /// # Errors
    /// Transport errors, non-200 replies, and the first error of `check`.
    pub async fn download_with(
        &self,
        id: &str,
        mut check: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<Transfer> {
        let started = Instant::now();
        let resp = self
            .http
            .get(format!("{}/-{id}", self.base))
            .send()
            .await
            .map_err(|e| failed(None, format!("download failed: {e}")))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let text = resp.text().await.unwrap_or_default();
            bail!(failed(Some(status), text.trim().to_owned()));
        }
        let mut stream = resp.bytes_stream();
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| failed(Some(status), format!("download cut off: {e}")))?;
            check(&chunk)?;
            bytes += chunk.len() as u64;
        }
        Ok(Transfer {
            bytes,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// GETs `path` (a range of it if given), reads the body to its end and
    /// returns its length.
    ///
    /// # Errors
    /// Transport errors and a status other than 200 (206 for a range).
    pub(crate) async fn get(&self, path: &str, range: Option<(u64, u64)>) -> anyhow::Result<u64> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some((a, b)) = range {
            req = req.header("range", format!("bytes={a}-{b}"));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| failed(None, format!("download failed: {e}")))?;
        let status = resp.status().as_u16();
        let wanted = if range.is_some() { 206 } else { 200 };
        if status != wanted {
            let text = resp.text().await.unwrap_or_default();
            bail!(failed(Some(status), text.trim().to_owned()));
        }
        let mut stream = resp.bytes_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            n += chunk
                .map_err(|e| failed(Some(status), format!("download cut off: {e}")))?
                .len() as u64;
        }
        Ok(n)
    }

    /// Deletes entry `id` (cleanup on servers the bench did not start).
    ///
    /// # Errors
    /// Transport errors and non-2xx replies.
    pub async fn delete(&self, id: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .delete(format!("{}/api/entry/{id}", self.base))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!(failed(Some(resp.status().as_u16()), "delete refused"));
        }
        Ok(())
    }

    /// The server's `/metrics` counters, if it has them (the original has none).
    pub async fn metrics(&self) -> Option<BTreeMap<String, f64>> {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        Some(parse_metrics(&resp.text().await.ok()?))
    }
}

/// Parses Prometheus text: `name value` lines, comments skipped.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The phase timings between two scrapes: every `*_seconds_total` counter
/// that moved, named without the suffix.
pub fn phase_deltas(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_suffix("_seconds_total")?;
            let d = v - before.get(k).copied().unwrap_or(0.0);
            let name = name.strip_prefix("picoshare_").unwrap_or(name);
            (d > 0.0).then(|| (name.to_owned(), d))
        })
        .collect()
}

/// The multipart boundary of every upload.
const BOUNDARY: &str = "picoshare-bench-boundary-7c1d2e";

/// What goes before and after a file's bytes in an upload body.
fn form_framing(name: &str) -> (Bytes, Bytes) {
    let head = Bytes::from(format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    ));
    let tail = Bytes::from(format!("\r\n--{BOUNDARY}--\r\n"));
    (head, tail)
}

/// A streaming request body: `head`, `len` bytes of the file from `offset`,
/// then `padding` bytes from the file's start, then `tail`. Records when the
/// tail was handed to the HTTP client, i.e. when the last byte went to the socket.
///
/// The file is read by a thread of its own in `SEND_CHUNK` pieces, a few
/// ahead of the socket (a bounded channel), so the client spends one
/// system call per MiB on it and no task hand-off per read.
async fn file_body(
    path: &Path,
    (offset, len): (u64, u64),
    padding: u64,
    head: Bytes,
    tail: Bytes,
    last_sent: Arc<Mutex<Option<Instant>>>,
) -> anyhow::Result<reqwest::Body> {
    use std::io::{Read, Seek};
    let open =
        || std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()));
    let mut file = open()?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut source = file.take(len).chain(open()?.take(padding));
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    std::thread::Builder::new()
        .name("bench-file-reader".into())
        .spawn(move || loop {
            let mut buf = vec![0u8; SEND_CHUNK];
            let mut filled = 0;
            // Fill whole pieces (a read may return less).
            let result = loop {
                match source.read(&mut buf[filled..]) {
                    Ok(0) => break Ok(filled),
                    Ok(n) => {
                        filled += n;
                        if filled == buf.len() {
                            break Ok(filled);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            match result {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return; // the request was dropped
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        })
        .context("cannot start the file reader thread")?;
    let pieces = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    let body = futures_util::stream::once(async move { Ok(head) })
        .chain(pieces)
        .chain(futures_util::stream::once(async move {
            if let Ok(mut g) = last_sent.lock() {
                *g = Some(Instant::now());
            }
            Ok(tail)
        }));
    Ok(reqwest::Body::wrap_stream(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_counter_differences() {
        let before =
            parse_metrics("# HELP x\npicoshare_a_seconds_total 1.5\npicoshare_b_total 3\n");
        let after = parse_metrics(
            "picoshare_a_seconds_total 2.0\npicoshare_c_seconds_total 0\npicoshare_b_total 9\n",
        );
        let d = phase_deltas(&before, &after);
        assert_eq!(d.len(), 1);
        assert!((d["a"] - 0.5).abs() < 1e-12);
    }
}
