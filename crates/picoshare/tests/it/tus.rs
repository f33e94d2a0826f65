//! Resumable uploads (tus 1.0.0): the protocol's rules, the metadata an entry
//! gets, checksums, termination, expiry and collection, guest limits, restarts,
//! graceful shutdown during a request, and one request taking over from a
//! stalled one. (Third-party clients are tested in e2e/ and tests/clients/.)

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use reqwest::{Client, Response};
use serde_json::Value;
use sha1::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const V: &str = "1.0.0";
const OCTETS: &str = "application/offset+octet-stream";

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `Upload-Metadata` from pairs.
fn metadata(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k} {}", b64(v.as_bytes())))
        .collect::<Vec<_>>()
        .join(",")
}

/// A tus client bound to one endpoint (`/api/tus` or a guest link's).
struct Tus<'a> {
    s: &'a TestServer,
    c: Client,
    endpoint: String,
}

impl<'a> Tus<'a> {
    async fn admin(s: &'a TestServer) -> Tus<'a> {
        Tus {
            s,
            c: s.admin_client().await,
            endpoint: "/api/tus".into(),
        }
    }

    fn guest(s: &'a TestServer, link: &str) -> Tus<'a> {
        Tus {
            s,
            c: plain_client(),
            endpoint: format!("/api/guest/{link}/tus"),
        }
    }

    async fn create_raw(&self, length: Option<u64>, meta: &str) -> Response {
        let mut req = self
            .c
            .post(self.s.url(&self.endpoint))
            .header("Tus-Resumable", V)
            .header("Upload-Metadata", meta);
        if let Some(n) = length {
            req = req.header("Upload-Length", n.to_string());
        }
        req.send().await.unwrap()
    }

    /// Creates an upload and returns its URL path.
    async fn create(&self, length: u64, meta: &str) -> String {
        let resp = self.create_raw(Some(length), meta).await;
        let status = resp.status().as_u16();
        let location = header_str(resp.headers(), "location");
        let body = resp.text().await.unwrap();
        assert_eq!(status, 201, "creation failed: {body}");
        assert!(
            location.starts_with(&format!("{}/", self.endpoint)),
            "Location {location:?}"
        );
        location
    }

    async fn patch_with(
        &self,
        url: &str,
        offset: u64,
        data: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Response {
        let mut req = self
            .c
            .patch(self.s.url(url))
            .header("Tus-Resumable", V)
            .header("Content-Type", OCTETS)
            .header("Upload-Offset", offset.to_string());
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.body(data).send().await.unwrap()
    }

    /// PATCHes and asserts 204 with the new offset; returns the reply.
    async fn patch(&self, url: &str, offset: u64, data: &[u8]) -> Response {
        let resp = self.patch_with(url, offset, data.to_vec(), &[]).await;
        let status = resp.status().as_u16();
        let got = header_str(resp.headers(), "upload-offset");
        assert_eq!(status, 204, "PATCH at {offset} failed");
        assert_eq!(got, (offset + data.len() as u64).to_string());
        resp
    }

    async fn head(&self, url: &str) -> Response {
        self.c
            .head(self.s.url(url))
            .header("Tus-Resumable", V)
            .send()
            .await
            .unwrap()
    }

    /// The server's offset for `url` (asserts 200).
    async fn offset(&self, url: &str) -> u64 {
        let resp = self.head(url).await;
        assert_eq!(resp.status().as_u16(), 200, "HEAD {url}");
        header_str(resp.headers(), "upload-offset").parse().unwrap()
    }

    async fn delete(&self, url: &str) -> Response {
        self.c
            .delete(self.s.url(url))
            .header("Tus-Resumable", V)
            .send()
            .await
            .unwrap()
    }
}

/// The entry an upload will become, from the database.
fn entry_of(s: &TestServer, url: &str) -> String {
    let id = url.rsplit('/').next().unwrap();
    s.db()
        .query_row(
            "SELECT entry_id FROM picoshare_tus_uploads WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
}

fn set_clock(file: &Path, t: DateTime<Utc>) {
    std::fs::write(file, t.to_rfc3339()).unwrap();
}

#[tokio::test]
async fn discovery_and_version_are_checked() {
    let s = TestServer::start().await;
    let c = plain_client();
    let resp = c
        .request(reqwest::Method::OPTIONS, s.url("/api/tus"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let h = resp.headers();
    assert_eq!(header_str(h, "tus-resumable"), V);
    assert_eq!(header_str(h, "tus-version"), V);
    let ext = header_str(h, "tus-extension");
    for e in [
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    ] {
        assert!(ext.split(',').any(|x| x == e), "{e} missing from {ext}");
    }
    assert!(header_str(h, "tus-checksum-algorithm").contains("sha1"));

    let admin = s.admin_client().await;
    let resp = admin
        .post(s.url("/api/tus"))
        .header("Upload-Length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(header_str(resp.headers(), "tus-version"), V);
    assert_error_prefix(resp, 412, "This is a tus endpoint").await;
    let resp = admin
        .post(s.url("/api/tus"))
        .header("Tus-Resumable", "0.2.2")
        .header("Upload-Length", "10")
        .send()
        .await
        .unwrap();
    assert_error_prefix(resp, 412, "Tus-Resumable \"0.2.2\" is not supported").await;
}

#[tokio::test]
async fn an_upload_in_several_requests_becomes_an_entry_with_its_metadata() {
    let s = TestServer::start().await;
    let t = Tus::admin(&s).await;
    // Not a multiple of the chunk size, with requests that end mid-chunk.
    let data = random_bytes(3 * 1024 * 1024 + 12_345, 7);
    let meta = metadata(&[
        ("filename", "report 2026.pdf"),
        ("filetype", "application/pdf"),
        ("note", "for the auditors"),
        ("expiration", FAR_FUTURE),
    ]);
    let url = t.create(data.len() as u64, &meta).await;
    let resp = t.head(&url).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header_str(resp.headers(), "upload-offset"), "0");
    assert_eq!(
        header_str(resp.headers(), "upload-length"),
        data.len().to_string()
    );
    assert_eq!(header_str(resp.headers(), "upload-metadata"), meta);
    assert_eq!(header_str(resp.headers(), "cache-control"), "no-store");
    assert!(!header_str(resp.headers(), "upload-expires").is_empty());

    let cuts = [0usize, 100_000, 1_100_000, 1_100_001, data.len()];
    for w in cuts.windows(2) {
        assert_eq!(s.entry_count(), 0, "visible before the last byte");
        let resp = t.patch(&url, w[0] as u64, &data[w[0]..w[1]]).await;
        if w[1] == data.len() {
            let id = header_str(resp.headers(), "picoshare-entry-id");
            assert_entry_id_shape(&id);
        } else {
            assert!(resp.headers().get("picoshare-entry-id").is_none());
            assert_eq!(t.offset(&url).await, w[1] as u64);
        }
    }
    let entry_id = entry_of(&s, &url);
    let row = s.entry(&entry_id).expect("entry row");
    assert_eq!(row.filename, "report 2026.pdf");
    assert_eq!(row.content_type, "application/pdf");
    assert_eq!(row.note.as_deref(), Some("for the auditors"));
    assert_eq!(row.expiration_time.as_deref(), Some(FAR_FUTURE));
    assert_eq!(s.download(&entry_id).await, data);

    // The finished upload still answers HEAD, naming its entry; repeating the
    // last request's end is harmless, anything else conflicts.
    let resp = t.head(&url).await;
    assert_eq!(
        header_str(resp.headers(), "upload-offset"),
        data.len().to_string()
    );
    assert_eq!(header_str(resp.headers(), "picoshare-entry-id"), entry_id);
    let resp = t.patch_with(&url, data.len() as u64, Vec::new(), &[]).await;
    assert_eq!(resp.status().as_u16(), 204);
    let resp = t.patch_with(&url, 0, b"x".to_vec(), &[]).await;
    assert_eq!(resp.status().as_u16(), 409);
    assert_eq!(s.entry_count(), 1);
}

#[tokio::test]
async fn without_expiration_the_default_lifetime_applies() {
    let s = TestServer::start().await;
    let t = Tus::admin(&s).await;
    let url = t.create(5, &metadata(&[("filename", "a.txt")])).await;
    t.patch(&url, 0, b"hello").await;
    let row = s.entry(&entry_of(&s, &url)).unwrap();
    let exp = assert_stored_time(row.expiration_time.as_deref().unwrap());
    let days = (exp - Utc::now()).num_hours() as f64 / 24.0;
    assert!((29.0..=30.1).contains(&days), "{days} days");
    assert_eq!(row.content_type, "");
}

#[tokio::test]
async fn creation_requests_are_checked() {
    let s = TestServer::start().await;
    let t = Tus::admin(&s).await;
    let name = metadata(&[("filename", "a.bin")]);
    assert_error(
        t.create_raw(None, &name).await,
        400,
        "invalid request: Upload-Length is required",
    )
    .await;
    assert_error(
        t.create_raw(Some(0), &name).await,
        400,
        "invalid request: file must be non-empty",
    )
    .await;
    let resp =
        t.c.post(s.url("/api/tus"))
            .header("Tus-Resumable", V)
            .header("Upload-Length", "-5")
            .header("Upload-Metadata", &name)
            .send()
            .await
            .unwrap();
    assert_error_prefix(resp, 400, "invalid request: Upload-Length must be").await;
    let resp =
        t.c.post(s.url("/api/tus"))
            .header("Tus-Resumable", V)
            .header("Upload-Defer-Length", "1")
            .send()
            .await
            .unwrap();
    assert_error_prefix(resp, 400, "invalid request: Upload-Defer-Length").await;
    for (meta, why) in [
        ("", "invalid request: Upload-Metadata needs a filename"),
        (
            "filename !!notbase64",
            "invalid request: Upload-Metadata value",
        ),
        (
            "filename YQ==,filename YQ==",
            "invalid request: Upload-Metadata has the key",
        ),
    ] {
        assert_error_prefix(t.create_raw(Some(10), meta).await, 400, why).await;
    }
    let long_note = "n".repeat(501);
    for (meta, why) in [
        (
            metadata(&[("filename", "a"), ("note", &long_note)]),
            "invalid request: note",
        ),
        (
            metadata(&[("filename", "a"), ("expiration", "tomorrow")]),
            "Invalid expiration",
        ),
        (
            metadata(&[("filename", "a"), ("expiration", "2001-01-01T00:00:00Z")]),
            "Invalid expiration",
        ),
    ] {
        assert_error_prefix(t.create_raw(Some(10), &meta).await, 400, why).await;
    }
    // Path separators are dropped from names, as for multipart uploads.
    let url = t
        .create(3, &metadata(&[("filename", "../../etc/passwd")]))
        .await;
    t.patch(&url, 0, b"abc").await;
    assert_eq!(s.entry(&entry_of(&s, &url)).unwrap().filename, "passwd");

    // The owner's endpoints need a session.
    let anon = plain_client();
    let resp = anon
        .post(s.url("/api/tus"))
        .header("Tus-Resumable", V)
        .header("Upload-Length", "10")
        .header("Upload-Metadata", &name)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = anon
        .head(s.url(&url))
        .header("Tus-Resumable", V)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        count(&s.db(), "SELECT count(*) FROM picoshare_tus_uploads", []),
        1
    );
}

#[tokio::test]
async fn patch_requests_are_checked() {
    let s = TestServer::start().await;
    let t = Tus::admin(&s).await;
    let url = t.create(1000, &metadata(&[("filename", "a.bin")])).await;
    let resp =
        t.c.patch(s.url(&url))
            .header("Tus-Resumable", V)
            .header("Upload-Offset", "0")
            .header("Content-Type", "application/octet-stream")
            .body("abc")
            .send()
            .await
            .unwrap();
    assert_error_prefix(resp, 415, "PATCH bodies must have Content-Type").await;
    let resp =
        t.c.patch(s.url(&url))
            .header("Tus-Resumable", V)
            .header("Content-Type", OCTETS)
            .body("abc")
            .send()
            .await
            .unwrap();
    assert_error(resp, 400, "Upload-Offset is required").await;
    let resp = t.patch_with(&url, 5, b"abc".to_vec(), &[]).await;
    assert_error_prefix(resp, 409, "Upload-Offset is 5 but the upload has 0 bytes").await;
    let resp = t.patch_with(&url, 0, vec![1u8; 1001], &[]).await;
    assert_error_prefix(
        resp,
        413,
        "The request carries more bytes than the upload has left",
    )
    .await;
    assert_eq!(t.offset(&url).await, 0);
    for bad in ["/api/tus/nope", "/api/tus/aaaaaaaaaaaaaaaaaaaaaaaa"] {
        let resp = t.patch_with(bad, 0, b"abc".to_vec(), &[]).await;
        assert_error_prefix(resp, 404, "No such upload").await;
        assert_eq!(t.head(bad).await.status().as_u16(), 404);
    }
    let resp = t.patch_with(&url, 0, b"abc".to_vec(), &[]).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(s.entry_count(), 0);
}

#[tokio::test]
async fn creation_with_upload_stores_the_first_bytes() {
    let s = TestServer::start().await;
    let t = Tus::admin(&s).await;
    let data = random_bytes(700_000, 3);
    let resp =
        t.c.post(s.url("/api/tus"))
            .header("Tus-Resumable", V)
            .header("Upload-Length", data.len().to_string())
            .header("Upload-Metadata", metadata(&[("filename", "x.bin")]))
            .header("Content-Type", OCTETS)
            .body(data[..400_000].to_vec())
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(header_str(resp.headers(), "upload-offset"), "400000");
    let url = header_str(resp.headers(), "location");
    t.patch(&url, 400_000, &data[400_000..]).await;
    assert_eq!(s.download(&entry_of(&s, &url)).await, data);

    // A body with the whole file completes it in one request.
    let resp =
        t.c.post(s.url("/api/tus"))
            .header("Tus-Resumable", V)
            .header("Upload-Length", "5")
            .header("Upload-Metadata", metadata(&[("filename", "y.txt")]))
            .header("Content-Type", OCTETS)
            .body("whole")
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let id = header_str(resp.headers(), "picoshare-entry-id");
    assert_eq!(s.download(&id).await, b"whole");
}

fn checksum(alg: &str, data: &[u8]) -> String {
    let digest = match alg {
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        _ => sha2::Sha256::digest(data).to_vec(),
    };
    format!("{alg} {}", b64(&digest))
}

#[tokio::test]
async fn checksums_are_verified_and_a_mismatch_stores_nothing() {
    let s = TestServer::start().await;
    let t = Tus::admin(&s).await;
    let data = random_bytes(3 * 1024 * 1024, 11);
    let url = t
        .create(data.len() as u64, &metadata(&[("filename", "c.bin")]))
        .await;
    let first = &data[..500_000];
    let resp = t
        .patch_with(
            &url,
            0,
            first.to_vec(),
            &[("Upload-Checksum", &checksum("sha1", first))],
        )
        .await;
    assert_eq!(resp.status().as_u16(), 204);
    // A wrong checksum over several chunks: nothing of the request is kept.
    let second = &data[500_000..2_000_000];
    let resp = t
        .patch_with(
            &url,
            500_000,
            second.to_vec(),
            &[("Upload-Checksum", &checksum("sha1", b"something else"))],
        )
        .await;
    assert_eq!(resp.status().as_u16(), 460);
    assert_eq!(t.offset(&url).await, 500_000);
    let entry = entry_of(&s, &url);
    let chunk = GO_CHUNK_SIZE as i64;
    assert!(
        eventually(Duration::from_secs(5), || s.chunk_rows(&entry)
            <= 500_000 / chunk)
        .await,
        "chunks past the offset were kept: {}",
        s.chunk_rows(&entry)
    );
    let resp = t
        .patch_with(
            &url,
            500_000,
            b"x".to_vec(),
            &[("Upload-Checksum", "md5 AAAA")],
        )
        .await;
    assert_error_prefix(resp, 400, "checksum algorithm \"md5\" is not supported").await;
    let resp = t
        .patch_with(
            &url,
            500_000,
            b"x".to_vec(),
            &[("Upload-Checksum", "sha1 AAAA")],
        )
        .await;
    assert_error_prefix(resp, 400, "Upload-Checksum digest has 3 bytes").await;
    let rest = &data[500_000..];
    let resp = t
        .patch_with(
            &url,
            500_000,
            rest.to_vec(),
            &[("Upload-Checksum", &checksum("sha256", rest))],
        )
        .await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(s.download(&entry).await, data);
}

#[tokio::test]
async fn termination_deletes_the_upload_and_its_bytes() {
    let s = TestServer::start().await;
    let t = Tus::admin(&s).await;
    let data = random_bytes(1_000_000, 5);
    let url = t
        .create(2_000_000, &metadata(&[("filename", "t.bin")]))
        .await;
    t.patch(&url, 0, &data).await;
    let entry = entry_of(&s, &url);
    assert!(s.chunk_rows(&entry) > 0);
    let resp = t.delete(&url).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(header_str(resp.headers(), "tus-resumable"), V);
    assert_eq!(t.head(&url).await.status().as_u16(), 404);
    assert_eq!(s.chunk_rows(&entry), 0);
    assert_error_prefix(t.delete(&url).await, 404, "No such upload").await;

    // Terminating a finished upload forgets the upload, not the file.
    let url = t.create(3, &metadata(&[("filename", "keep.txt")])).await;
    let resp = t.patch(&url, 0, b"abc").await;
    let id = header_str(resp.headers(), "picoshare-entry-id");
    assert_eq!(t.delete(&url).await.status().as_u16(), 204);
    assert_eq!(s.download(&id).await, b"abc");
}

#[tokio::test]
async fn unfinished_uploads_expire_and_their_space_is_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let (db, clock) = (dir.path().join("store.db"), dir.path().join("clock"));
    let now = Utc::now();
    set_clock(&clock, now);
    let s = TestServer::start_with(
        ServerOptions::new()
            .db(&db)
            .arg("--clock-file")
            .arg(clock.to_str().unwrap())
            .arg("--tus-expiry-hours")
            .arg("1"),
    )
    .await;
    let t = Tus::admin(&s).await;
    // A finished upload: collecting its row later must leave its file alone.
    let done = t.create(3, &metadata(&[("filename", "done.txt")])).await;
    let resp = t.patch(&done, 0, b"abc").await;
    let done_entry = header_str(resp.headers(), "picoshare-entry-id");
    let stale = t
        .create(4_000_000, &metadata(&[("filename", "old.bin")]))
        .await;
    let resp = t.patch(&stale, 0, &random_bytes(2_000_000, 1)).await;
    let expires = header_str(resp.headers(), "upload-expires");
    let expires = DateTime::parse_from_rfc2822(&expires.replace("GMT", "+0000")).unwrap();
    assert_eq!((expires.timestamp() - now.timestamp()) / 60, 60);
    let stale_entry = entry_of(&s, &stale);

    // Half an hour later another upload starts; an hour after that, only the
    // first has seen no bytes for its expiry time.
    set_clock(&clock, now + chrono::Duration::minutes(30));
    let fresh = t
        .create(4_000_000, &metadata(&[("filename", "new.bin")]))
        .await;
    t.patch(&fresh, 0, &random_bytes(1_000_000, 2)).await;
    let fresh_entry = entry_of(&s, &fresh);
    let fresh_chunks = s.chunk_rows(&fresh_entry);

    set_clock(&clock, now + chrono::Duration::minutes(75));
    assert_eq!(t.head(&stale).await.status().as_u16(), 410);
    let resp = t.patch_with(&stale, 2_000_000, b"more".to_vec(), &[]).await;
    assert_error_prefix(resp, 410, "This upload expired").await;
    assert_eq!(t.offset(&fresh).await, 1_000_000);

    let resp = t.c.post(s.url("/api/admin/gc")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let outcome: Value = resp.json().await.unwrap();
    assert_eq!(outcome["expiredUploads"], 2, "{outcome}");
    assert_eq!(t.head(&done).await.status().as_u16(), 404);
    assert_eq!(s.download(&done_entry).await, b"abc");
    assert_eq!(outcome["orphanChunks"], 0, "{outcome}");
    assert_eq!(t.head(&stale).await.status().as_u16(), 404);
    assert_eq!(s.chunk_rows(&stale_entry), 0);
    assert_eq!(s.chunk_rows(&fresh_entry), fresh_chunks);
    // The fresh one continues and completes.
    let resp = t
        .patch_with(&fresh, 1_000_000, vec![9u8; 3_000_000], &[])
        .await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(s.entry_count(), 2);
}

async fn guest_link(s: &TestServer, c: &Client, body: Value) -> String {
    let resp = c
        .post(s.url("/api/guest-links"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn guest_link_limits_hold_through_tus() {
    let s = TestServer::start().await;
    let admin = Tus::admin(&s).await;
    let link = guest_link(
        &s,
        &admin.c,
        serde_json::json!({
            "label": "tus", "urlExpirationTime": FAR_FUTURE, "fileLifetime": "876000h0m0s",
            "maxFileBytes": 1_048_576, "maxFileUploads": 2
        }),
    )
    .await;
    let g = Tus::guest(&s, &link);
    let name = metadata(&[("filename", "g.bin")]);
    assert_error(
        g.create_raw(Some(1_048_577), &name).await,
        413,
        "File is too large: this guest link accepts files up to 1.00 MB (1048576 bytes).",
    )
    .await;
    let resp = plain_client()
        .request(
            reqwest::Method::OPTIONS,
            s.url(&format!("/api/guest/{link}/tus")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(header_str(resp.headers(), "tus-max-size"), "1048576");
    assert_error(
        g.create_raw(
            Some(10),
            &metadata(&[("filename", "g.bin"), ("note", "hi")]),
        )
        .await,
        400,
        "invalid request: guest uploads cannot have file notes",
    )
    .await;

    // Two uploads take both slots from their creation on.
    let a = g.create(1_048_576, &name).await;
    let b = g.create(10, &name).await;
    assert_error(
        g.create_raw(Some(10), &name).await,
        401,
        "Guest link is no longer active",
    )
    .await;
    let data = random_bytes(1_048_576, 4);
    g.patch(&a, 0, &data[..600_000]).await;
    g.patch(&a, 600_000, &data[600_000..]).await;
    let entry = entry_of(&s, &a);
    assert_eq!(s.download(&entry).await, data);
    assert_eq!(
        s.entry(&entry).unwrap().guest_link_id.as_deref(),
        Some(link.as_str())
    );
    assert_eq!(
        g.create_raw(Some(10), &name).await.status().as_u16(),
        401,
        "a finished upload still holds its slot (it is a file now)"
    );
    // Cancelling the other frees its slot.
    assert_eq!(g.delete(&b).await.status().as_u16(), 204);
    let c = g.create(10, &name).await;

    // Upload URLs work only under the route they were made on.
    assert_eq!(
        admin
            .head(&c.replace(&format!("/api/guest/{link}/tus"), "/api/tus"))
            .await
            .status()
            .as_u16(),
        404
    );
    let other = guest_link(
        &s,
        &admin.c,
        serde_json::json!({"label": "other", "urlExpirationTime": FAR_FUTURE, "fileLifetime": "876000h0m0s"}),
    )
    .await;
    let wrong = c.replace(&link, &other);
    assert_eq!(g.head(&wrong).await.status().as_u16(), 404);

    // A disabled link stops its uploads.
    let resp = admin
        .c
        .put(s.url(&format!("/api/guest-links/{link}/disable")))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let resp = g.patch_with(&c, 0, b"0123456789".to_vec(), &[]).await;
    assert_error(resp, 401, "Guest link is no longer active").await;
    assert_eq!(s.entry_count(), 1);
}

#[tokio::test]
async fn an_acknowledged_offset_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let data = random_bytes(2_000_000, 8);
    let (url, cookie_less_offset) = {
        let mut s = TestServer::start_on_db(&db).await;
        let t = Tus::admin(&s).await;
        let url = t
            .create(data.len() as u64, &metadata(&[("filename", "r.bin")]))
            .await;
        // Ends mid-chunk: the tail must survive too.
        t.patch(&url, 0, &data[..777_777]).await;
        s.stop();
        (url, 777_777u64)
    };
    let s = TestServer::start_on_db(&db).await;
    let t = Tus::admin(&s).await;
    assert_eq!(t.offset(&url).await, cookie_less_offset);
    t.patch(&url, 777_777, &data[777_777..]).await;
    assert_eq!(s.download(&entry_of(&s, &url)).await, data);
}

/// Sends a PATCH by hand: headers for `total` bytes, then `first` bytes of
/// `data`; the connection stays open (the rest never comes).
async fn stalled_patch(
    s: &TestServer,
    cookie: &str,
    url: &str,
    offset: u64,
    total: usize,
    first: &[u8],
) -> TcpStream {
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "PATCH {url} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: {OCTETS}\r\nUpload-Offset: {offset}\r\nContent-Length: {total}\r\n\r\n",
        s.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Bytes the server has read from upload bodies, from `/metrics`.
async fn upload_bytes_received(s: &TestServer, c: &Client) -> u64 {
    let text = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("picoshare_upload_bytes_total "))
        .map(|v| v.trim().parse::<f64>().unwrap() as u64)
        .unwrap_or(0)
}

#[tokio::test]
async fn shutdown_during_a_request_saves_what_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let data = random_bytes(4_000_000, 9);
    let sent = 1_500_000usize;
    let url = {
        // A long grace period: only the upload saving and stopping by itself
        // lets the server exit before it ends.
        let mut s =
            TestServer::start_with(ServerOptions::new().db(&db).env("PS_SHUTDOWN_GRACE", "600"))
                .await;
        let t = Tus::admin(&s).await;
        let url = t
            .create(data.len() as u64, &metadata(&[("filename", "s.bin")]))
            .await;
        let cookie = s.session_cookie().await;
        let mut conn = stalled_patch(&s, &cookie, &url, 0, data.len(), &data[..sent]).await;
        assert!(
            received_at_least(&s, &t.c, sent as u64).await,
            "the server did not read the bytes sent"
        );
        let status = s.terminate(Duration::from_secs(60));
        assert!(status.is_some_and(|st| st.success()), "exit: {status:?}");
        let mut reply = Vec::new();
        let _ = conn.read_to_end(&mut reply).await;
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 503"), "reply: {reply}");
        assert!(reply.contains("what arrived is saved"), "reply: {reply}");
        url
    };
    let s = TestServer::start_on_db(&db).await;
    let t = Tus::admin(&s).await;
    assert_eq!(t.offset(&url).await, sent as u64);
    t.patch(&url, sent as u64, &data[sent..]).await;
    assert_eq!(s.download(&entry_of(&s, &url)).await, data);
}

/// Waits up to 20 s until the server has read `n` upload bytes.
async fn received_at_least(s: &TestServer, c: &Client, n: u64) -> bool {
    for _ in 0..400 {
        if upload_bytes_received(s, c).await >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_new_request_takes_over_from_a_stalled_one() {
    let s = TestServer::start().await;
    let t = Tus::admin(&s).await;
    let data = random_bytes(2_500_000, 10);
    let url = t
        .create(data.len() as u64, &metadata(&[("filename", "k.bin")]))
        .await;
    let cookie = s.session_cookie().await;
    let sent = 1_000_000usize;
    let mut old = stalled_patch(&s, &cookie, &url, 0, data.len(), &data[..sent]).await;
    assert!(received_at_least(&s, &t.c, sent as u64).await);
    // The client reconnects and, not knowing better, starts from 0: the stalled
    // request stops and saves its bytes, and the new one learns the offset.
    // (A small body: a large one would still be on its way when the 409 comes,
    // and the server closes the connection rather than read it all.)
    let resp = t.patch_with(&url, 0, data[..1000].to_vec(), &[]).await;
    assert_error_prefix(
        resp,
        409,
        "Upload-Offset is 0 but the upload has 1000000 bytes",
    )
    .await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), old.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("HTTP/1.1 409"),
        "stalled request got: {reply}"
    );
    let offset = t.offset(&url).await;
    assert_eq!(offset, sent as u64);
    t.patch(&url, offset, &data[sent..]).await;
    assert_eq!(s.download(&entry_of(&s, &url)).await, data);
}
