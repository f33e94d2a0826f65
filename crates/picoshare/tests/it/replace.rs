//! `PUT /api/entry/{id}/content`: a file's content replaced behind the link
//! it already has, by multipart and by raw body; the name, type, size,
//! `ETag` and `Last-Modified` that follow; a download racing a replacement
//! gets one whole version.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Client;

use crate::helpers::*;

async fn put_content(
    server: &TestServer,
    c: &Client,
    id: &str,
    query: &str,
    body: reqwest::Body,
    content_type: &str,
) -> reqwest::Response {
    c.put(server.url(&format!("/api/entry/{id}/content{query}")))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("PUT content")
}

async fn put_multipart(
    server: &TestServer,
    c: &Client,
    id: &str,
    query: &str,
    name: &str,
    data: &[u8],
) -> reqwest::Response {
    let form = Multipart::new().file("file", name, Some("application/x-new"), data);
    let ct = form.content_type();
    put_content(server, c, id, query, form.finish().into(), &ct).await
}

async fn fetch(id: &str, server: &TestServer) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let resp = plain_client()
        .get(server.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let h = resp.headers().clone();
    (h, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn replacing_keeps_the_link_and_changes_name_type_size_and_validators() {
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    let old = random_bytes(700_000, 1);
    let id = server
        .upload(&c, "old.txt", &old, "text/plain", Some("kept note"), None)
        .await;
    let (h0, body) = fetch(&id, &server).await;
    assert_eq!(body, old);

    // Multipart: the new part's name and type follow.
    let new = random_bytes(1_000_003, 2);
    let resp = put_multipart(&server, &c, &id, "", "new.bin", &new).await;
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    let (h1, body) = fetch(&id, &server).await;
    assert_eq!(body, new, "the same link serves the new bytes");
    assert!(header_str(&h1, "content-disposition").contains("new.bin"));
    assert_eq!(header_str(&h1, "content-type"), "application/x-new");
    assert_ne!(header_str(&h0, "etag"), header_str(&h1, "etag"));
    assert_ne!(
        header_str(&h0, "last-modified"),
        header_str(&h1, "last-modified")
    );

    // Raw body of the same size, name kept: the validators still change.
    let same_size = random_bytes(new.len(), 3);
    let resp = put_content(
        &server,
        &c,
        &id,
        "?keepName=true",
        same_size.clone().into(),
        "image/png",
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    let (h2, body) = fetch(&id, &server).await;
    assert_eq!(body, same_size);
    assert!(header_str(&h2, "content-disposition").contains("new.bin"));
    assert_eq!(header_str(&h2, "content-type"), "image/png");
    assert_ne!(header_str(&h1, "etag"), header_str(&h2, "etag"));
    assert_ne!(
        header_str(&h1, "last-modified"),
        header_str(&h2, "last-modified")
    );
    // A cached copy is not confirmed any more.
    let resp = plain_client()
        .get(server.url(&format!("/-{id}")))
        .header("if-none-match", header_str(&h1, "etag"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // The raw body's `?filename=` renames it.
    let resp = put_content(
        &server,
        &c,
        &id,
        "?filename=renamed.dat",
        b"tiny".to_vec().into(),
        "application/octet-stream",
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    let json: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(json["filename"], "renamed.dat");
    assert_eq!(json["size"], 4);
    let (h3, body) = fetch(&id, &server).await;
    assert_eq!(body, b"tiny");
    assert!(header_str(&h3, "content-disposition").contains("renamed.dat"));
}

#[tokio::test]
async fn bad_replacements_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    let id = server
        .upload(&c, "a.txt", b"original", "text/plain", None, None)
        .await;
    let resp = put_content(&server, &c, &id, "", Vec::new().into(), "text/plain").await;
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().await.unwrap().contains("non-empty"));
    let resp = put_content(&server, &c, "AAAAAAAAAA", "", b"x".to_vec().into(), "a/b").await;
    assert_eq!(resp.status().as_u16(), 404);
    let resp = put_content(
        &server,
        &c,
        &id,
        "?keepName=maybe",
        b"x".to_vec().into(),
        "a/b",
    )
    .await;
    assert_eq!(resp.status().as_u16(), 400);
    // Without a session or token.
    let resp = put_content(
        &server,
        &plain_client(),
        &id,
        "",
        b"x".to_vec().into(),
        "a/b",
    )
    .await;
    assert_eq!(resp.status().as_u16(), 401);
    let (_, body) = fetch(&id, &server).await;
    assert_eq!(body, b"original");
}

#[tokio::test]
async fn a_download_racing_a_replacement_gets_the_old_version_whole() {
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    // Many chunks and batches: the download cannot be read ahead whole.
    let old = random_bytes(24 << 20, 10);
    let new = random_bytes((24 << 20) + 5, 11);
    let id = server
        .upload(&c, "v1.bin", &old, "application/octet-stream", None, None)
        .await;
    for range in [None, Some("bytes=1000-20000000")] {
        let mut req = plain_client().get(server.url(&format!("/-{id}")));
        if let Some(r) = range {
            req = req.header("range", r);
        }
        let resp = req.send().await.unwrap();
        let etag = header_str(resp.headers(), "etag");
        let mut stream = resp.bytes_stream();
        let mut got = Vec::new();
        // Read a little, then stop reading while the file is replaced.
        while got.len() < 64 * 1024 {
            got.extend_from_slice(&stream.next().await.unwrap().unwrap());
        }
        let current = fetch(&id, &server).await.1;
        let resp = put_multipart(&server, &c, &id, "", "v2.bin", &new).await;
        assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
        assert_eq!(
            fetch(&id, &server).await.1,
            new,
            "new downloads get the new version"
        );
        while let Some(piece) = stream.next().await {
            got.extend_from_slice(&piece.unwrap());
        }
        let expect = match range {
            None => &current[..],
            Some(_) => &current[1000..=20_000_000],
        };
        assert_eq!(
            got.len(),
            expect.len(),
            "one whole version ({range:?}, {etag})"
        );
        assert!(
            got == expect,
            "the racing download got the old bytes only ({range:?})"
        );
        // Back to the first version for the next round.
        let resp = put_multipart(&server, &c, &id, "", "v1.bin", &old).await;
        assert_eq!(resp.status().as_u16(), 200);
    }
}

/// A multi-range download (`multipart/byteranges`) racing a replacement:
/// read a little, stalled while the content is replaced, then read to the
/// end, every part holds the old version's bytes. The parts after the first
/// start 12 MB into the body, more than the loopback socket buffers and the
/// server's read-ahead hold, so they are read from the store after the
/// switch (as the single-range case above, whose body is also too big to
/// sit in the buffers).
#[tokio::test]
async fn a_multi_range_download_racing_a_replacement_gets_every_part_from_the_old_version() {
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    let old = random_bytes(24 << 20, 12);
    let new = random_bytes(24 << 20, 13);
    let id = server
        .upload(&c, "v1.bin", &old, "application/octet-stream", None, None)
        .await;
    let ranges = [
        (1000, 11_999_999),
        (16_000_000, 20_000_000),
        (24_000_000, old.len() - 1),
    ];
    let header = format!(
        "bytes={}",
        ranges
            .iter()
            .map(|(a, b)| format!("{a}-{b}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let resp = plain_client()
        .get(server.url(&format!("/-{id}")))
        .header("range", &header)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    let content_type = header_str(resp.headers(), "content-type");
    assert!(
        content_type.starts_with("multipart/byteranges"),
        "{content_type}"
    );
    let length: usize = header_str(resp.headers(), "content-length")
        .parse()
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut body = Vec::new();
    // Read a little, then stop reading while the file is replaced.
    while body.len() < 64 * 1024 {
        body.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    let resp = put_multipart(&server, &c, &id, "", "v2.bin", &new).await;
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    assert!(
        fetch(&id, &server).await.1 == new,
        "new downloads get the new version"
    );
    // A multi-range download started now gets the new version's parts.
    let now = plain_client()
        .get(server.url(&format!("/-{id}")))
        .header("range", &header)
        .send()
        .await
        .unwrap();
    let now_type = header_str(now.headers(), "content-type");
    let now_parts = parse_byteranges(&now_type, &now.bytes().await.unwrap()).unwrap();
    assert!(now_parts[1].data == new[16_000_000..=20_000_000]);
    // The stalled one goes on with the old version, every part of it.
    while let Some(piece) = stream.next().await {
        body.extend_from_slice(&piece.expect("the download is not cut"));
    }
    assert_eq!(body.len(), length, "the announced length");
    let parts = parse_byteranges(&content_type, &body)
        .unwrap_or_else(|e| panic!("multipart/byteranges: {e}"));
    assert_eq!(parts.len(), ranges.len());
    for (part, &(a, b)) in parts.iter().zip(&ranges) {
        assert_eq!(part.content_range, format!("bytes {a}-{b}/{}", old.len()));
        assert!(
            part.data == old[a..=b],
            "the part {a}-{b} holds the old version's bytes (new ones: {})",
            part.data == new[a..=b]
        );
    }
}

/// Chunk rows that belong to no entry (retired contents among them), and
/// how many replacements still name a retired content.
fn leftovers(server: &TestServer) -> (i64, i64) {
    let db = server.db();
    let retired = count(
        &db,
        "SELECT count(*) FROM picoshare_replacements WHERE old_content_id IS NOT NULL",
        [],
    );
    (server.orphan_chunks(), retired)
}

/// Old versions of replaced files still stored for downloads that may read
/// them: on SQLite, retired contents; on the scale-out store, old objects
/// queued for deletion once no instance streams them (`remote/replace.rs`).
fn old_versions_kept(server: &TestServer) -> i64 {
    let sql = if remote_storage().is_some() {
        "SELECT count(*) FROM picoshare_deleted_objects WHERE not_before IS NOT NULL"
    } else {
        "SELECT count(*) FROM picoshare_replacements WHERE old_content_id IS NOT NULL"
    };
    count(&server.db(), sql, [])
}

/// The scale-out store's instance lease in the tests that wait for an old
/// version to go (it is kept a lease after the last download that read it).
const LEASE_SECS: u64 = 3;

/// Starts a streamed download of `id` and reads its first bytes; returns
/// the rest to read and how many bytes were read.
async fn start_download(
    server: &TestServer,
    id: &str,
) -> (
    impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>>,
    usize,
) {
    let resp = plain_client()
        .get(server.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut stream = Box::pin(resp.bytes_stream());
    let mut got = 0;
    while got < 64 * 1024 {
        got += stream.next().await.unwrap().unwrap().len();
    }
    (stream, got)
}

#[tokio::test]
async fn retired_chunks_are_freed_when_no_download_needs_them() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("store.db");
    let server = TestServer::start_on_db(&db_path).await;
    let c = server.admin_client().await;
    let size = 12 << 20;
    let id = server
        .upload(
            &c,
            "v1.bin",
            &random_bytes(size, 20),
            "application/octet-stream",
            None,
            None,
        )
        .await;
    let chunks = server.chunk_rows(&id);
    assert!(chunks > 2, "several chunks: {chunks}");

    // Nobody downloads: the old content goes with the switch.
    let resp = put_multipart(&server, &c, &id, "", "v2.bin", &random_bytes(size, 21)).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        eventually(Duration::from_secs(10), || leftovers(&server) == (0, 0)).await,
        "freed at once: {:?}",
        leftovers(&server)
    );

    // A download that started before the switch keeps it until it ends,
    // whether it reads to the end or stops half-way.
    for read_to_the_end in [true, false] {
        let (mut stream, mut n) = start_download(&server, &id).await;
        let resp = put_multipart(&server, &c, &id, "", "v3.bin", &random_bytes(size, 22)).await;
        assert_eq!(resp.status().as_u16(), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            leftovers(&server),
            (chunks, 1),
            "kept while the download runs"
        );
        if read_to_the_end {
            while let Some(piece) = stream.next().await {
                n += piece.unwrap().len();
            }
            assert_eq!(n, size, "the whole old version");
        }
        drop(stream);
        assert!(
            eventually(Duration::from_secs(10), || leftovers(&server) == (0, 0)).await,
            "freed when the download ends (read to the end: {read_to_the_end}): {:?}",
            leftovers(&server)
        );
    }

    // A server stopped while a download holds one frees it at its next start.
    let _download = start_download(&server, &id).await;
    let resp = put_multipart(&server, &c, &id, "", "v4.bin", &random_bytes(size, 23)).await;
    assert_eq!(resp.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(leftovers(&server), (chunks, 1));
    let mut server = server;
    server.kill();
    let server = TestServer::start_on_db(&db_path).await;
    assert_eq!(leftovers(&server), (0, 0), "freed at start-up");
    assert_eq!(server.chunk_rows(&id), chunks);
}

/// A share's ZIP that is streaming while one of its files is replaced
/// finishes with the version it started with: a valid archive (Python's
/// `zipfile` checks every CRC) of the old bytes, with its announced length.
#[tokio::test]
async fn a_share_zip_racing_a_replacement_holds_one_version() {
    let server = TestServer::start_with(
        ServerOptions::new().env("PS_INSTANCE_LEASE_SECS", LEASE_SECS.to_string()),
    )
    .await;
    let c = server.admin_client().await;
    let first = random_bytes(24 << 20, 30);
    let old = random_bytes(16 << 20, 31);
    let first_id = server
        .upload(
            &c,
            "first.bin",
            &first,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    let id = server
        .upload(
            &c,
            "second.bin",
            &old,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    let share = crate::shares::create_ok(
        &server,
        &c,
        serde_json::json!({ "entries": [first_id, id] }),
    )
    .await;
    let share_id = share["id"].as_str().unwrap();
    let resp = plain_client()
        .get(server.url(&format!("/s/{share_id}/zip")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let length: usize = header_str(resp.headers(), "content-length")
        .parse()
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut zip = Vec::new();
    // Still in the first member: the replaced file is not read yet.
    while zip.len() < 64 * 1024 {
        zip.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    // A smaller file: an archive laid out for the old sizes cannot hold it.
    let resp = put_multipart(&server, &c, &id, "", "v2.bin", &random_bytes(5 << 20, 32)).await;
    assert_eq!(resp.status().as_u16(), 200);
    // The old version is kept for the archive. SQLite: freeing it is a
    // writer job committed within milliseconds, this would see it gone. The
    // scale-out store keeps it a lease after the switch anyway: waiting
    // longer shows that the archive's hold on it is renewed.
    let wait = if remote_storage().is_some() {
        Duration::from_millis(LEASE_SECS * 1000 * 3 / 2)
    } else {
        Duration::from_millis(300)
    };
    tokio::time::sleep(wait).await;
    assert_eq!(old_versions_kept(&server), 1, "kept while the ZIP streams");
    while let Some(piece) = stream.next().await {
        zip.extend_from_slice(&piece.expect("the ZIP is not cut"));
    }
    assert_eq!(zip.len(), length, "the announced length");
    let file = crate::shares::write_temp(&zip);
    let members = crate::shares::python_members(file.path());
    assert_eq!(
        members,
        vec![
            (
                "first.bin".to_owned(),
                first.len() as u64,
                sha256_hex(&first)
            ),
            ("second.bin".to_owned(), old.len() as u64, sha256_hex(&old)),
        ]
    );
    // A ZIP started now holds the new version.
    let resp = plain_client()
        .get(server.url(&format!("/s/{share_id}/zip")))
        .send()
        .await
        .unwrap();
    let zip = resp.bytes().await.unwrap();
    let members = crate::shares::python_members(crate::shares::write_temp(&zip).path());
    assert_eq!(members[1].0, "v2.bin");
    assert_eq!(members[1].1, 5 << 20);
    assert!(
        eventually(Duration::from_secs(10), || old_versions_kept(&server) == 0).await,
        "freed when the ZIP ends: {}",
        old_versions_kept(&server)
    );
    assert_eq!(server.orphan_chunks(), 0, "nothing else left");
}

/// A cache holding part of the old version revalidates it with the old
/// validators and a `Range` for the part it has; it must get the whole new
/// version, not a range of it to splice onto old bytes (Chromium did that
/// after a text preview's range request, `e2e/replace.test.mjs`).
#[tokio::test]
async fn a_stale_cached_range_is_answered_with_the_whole_new_version() {
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    let id = server
        .upload(&c, "a.txt", b"version one\n", "text/plain", None, None)
        .await;
    let resp = plain_client()
        .get(server.url(&format!("/-{id}")))
        .header("range", "bytes=0-65535")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    let (etag, modified) = (
        header_str(resp.headers(), "etag"),
        header_str(resp.headers(), "last-modified"),
    );
    let new = random_bytes(100_000, 40);
    let resp = put_multipart(&server, &c, &id, "", "b.bin", &new).await;
    assert_eq!(resp.status().as_u16(), 200);
    for (name, value) in [("if-none-match", &etag), ("if-modified-since", &modified)] {
        let resp = plain_client()
            .get(server.url(&format!("/-{id}")))
            .header("range", "bytes=0-11")
            .header(name, value.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{name}");
        assert_eq!(resp.bytes().await.unwrap().to_vec(), new, "{name}");
    }
    // Without a stale validator a range is still a range.
    let resp = plain_client()
        .get(server.url(&format!("/-{id}")))
        .header("range", "bytes=0-11")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), &new[..12]);
}

/// `Upload-Metadata` from pairs (values base64-encoded, as tus wants).
fn tus_metadata(pairs: &[(&str, &str)]) -> String {
    use base64::Engine;
    pairs
        .iter()
        .map(|(k, v)| {
            let v = base64::engine::general_purpose::STANDARD.encode(v.as_bytes());
            format!("{k} {v}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `POST`s a tus creation to `endpoint` for `length` bytes.
async fn tus_create(
    server: &TestServer,
    c: &Client,
    endpoint: &str,
    length: usize,
    meta: &[(&str, &str)],
) -> reqwest::Response {
    c.post(server.url(endpoint))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", length.to_string())
        .header("Upload-Metadata", tus_metadata(meta))
        .send()
        .await
        .unwrap()
}

/// `PATCH`es `data` at `offset` of the upload at `url`.
async fn tus_patch(
    server: &TestServer,
    c: &Client,
    url: &str,
    offset: usize,
    data: &[u8],
) -> reqwest::Response {
    c.patch(server.url(url))
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", offset.to_string())
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
}

/// A resumable upload created with `replaces` becomes the file's new
/// content when its last byte arrives: until then the old one is served;
/// then the same link serves the new bytes under the new name (or the old
/// one, without `filename` or with `keepName`), and no file is added.
#[tokio::test]
async fn a_resumable_upload_with_replaces_switches_the_content_when_it_completes() {
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    let old = random_bytes(700_000, 50);
    let id = server
        .upload(&c, "old.txt", &old, "text/plain", Some("kept note"), None)
        .await;
    let (h0, _) = fetch(&id, &server).await;
    // More than one 5 MiB part of the scale-out store's multipart upload.
    let new = random_bytes((7 << 20) + 3, 51);
    let resp = tus_create(
        &server,
        &c,
        "/api/tus",
        new.len(),
        &[
            ("replaces", id.as_str()),
            ("filename", "new.bin"),
            ("filetype", "application/x-new"),
        ],
    )
    .await;
    assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text().await);
    let url = header_str(resp.headers(), "location");
    let half = 3 << 20;
    let resp = tus_patch(&server, &c, &url, 0, &new[..half]).await;
    assert_eq!(resp.status().as_u16(), 204);
    let (h, body) = fetch(&id, &server).await;
    assert_eq!(
        body, old,
        "the old content is served until the upload completes"
    );
    assert_eq!(header_str(&h, "etag"), header_str(&h0, "etag"));
    let resp = tus_patch(&server, &c, &url, half, &new[half..]).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(header_str(resp.headers(), "picoshare-entry-id"), id);
    let (h1, body) = fetch(&id, &server).await;
    assert!(body == new, "the same link serves the new bytes");
    assert!(header_str(&h1, "content-disposition").contains("new.bin"));
    assert_eq!(header_str(&h1, "content-type"), "application/x-new");
    assert_ne!(header_str(&h0, "etag"), header_str(&h1, "etag"));
    assert_eq!(server.entry_count(), 1, "no file was added");
    let entries: serde_json::Value = c
        .get(server.url("/api/entries"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(entries[0]["note"], "kept note");
    // The completed upload names the file it replaced.
    let resp = c
        .head(server.url(&url))
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header_str(resp.headers(), "picoshare-entry-id"), id);

    // Without a filename (creation-with-upload, in one request) the name stays.
    for meta in [
        vec![("replaces", id.as_str())],
        vec![
            ("replaces", id.as_str()),
            ("filename", "ignored.bin"),
            ("keepName", "true"),
        ],
    ] {
        let data = random_bytes(1234, 52);
        let resp = c
            .post(server.url("/api/tus"))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", data.len().to_string())
            .header("Upload-Metadata", tus_metadata(&meta))
            .header("Content-Type", "application/offset+octet-stream")
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text().await);
        let (h, body) = fetch(&id, &server).await;
        assert_eq!(body, data);
        assert!(
            header_str(&h, "content-disposition").contains("new.bin"),
            "{meta:?}"
        );
    }
    assert_eq!(server.entry_count(), 1);
}

/// `replaces` is the owner's: a guest link's upload with it is 403, an
/// unknown file 404, limits or a note with it 400; a file deleted before
/// the upload completes makes the last request 404 and drops the upload.
#[tokio::test]
async fn resumable_replacements_are_refused_where_they_must_be() {
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    let id = server
        .upload(&c, "a.txt", b"original", "text/plain", None, None)
        .await;
    let link: serde_json::Value = c
        .post(server.url("/api/guest-links"))
        .json(&serde_json::json!({
            "label": "tus", "urlExpirationTime": FAR_FUTURE, "fileLifetime": "876000h0m0s",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let guest = format!("/api/guest/{}/tus", link["id"].as_str().unwrap());
    let meta = [("replaces", id.as_str()), ("filename", "b.txt")];
    let resp = tus_create(&server, &plain_client(), &guest, 10, &meta).await;
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.text().await.unwrap().contains("cannot replace a file"));
    let resp = tus_create(
        &server,
        &c,
        "/api/tus",
        10,
        &[("replaces", "AAAAAAAAAA"), ("filename", "b.txt")],
    )
    .await;
    assert_eq!(resp.status().as_u16(), 404);
    for extra in [("note", "x"), ("maxDownloads", "1")] {
        let resp = tus_create(
            &server,
            &c,
            "/api/tus",
            10,
            &[("replaces", id.as_str()), extra],
        )
        .await;
        assert_eq!(resp.status().as_u16(), 400, "{extra:?}");
    }
    let (_, body) = fetch(&id, &server).await;
    assert_eq!(body, b"original");

    // The file goes while its replacement is uploaded.
    let resp = tus_create(&server, &c, "/api/tus", 10, &[("replaces", id.as_str())]).await;
    assert_eq!(resp.status().as_u16(), 201);
    let url = header_str(resp.headers(), "location");
    let resp = tus_patch(&server, &c, &url, 0, b"01234").await;
    assert_eq!(resp.status().as_u16(), 204);
    let resp = c
        .delete(server.url(&format!("/api/entry/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = tus_patch(&server, &c, &url, 5, b"56789").await;
    assert_eq!(resp.status().as_u16(), 404);
    assert!(resp.text().await.unwrap().contains("has been deleted"));
    let resp = c
        .head(server.url(&url))
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404, "the upload was dropped");
    assert_eq!(server.entry_count(), 0);
    assert!(
        eventually(Duration::from_secs(10), || server.orphan_chunks() == 0).await,
        "its bytes were deleted: {}",
        server.orphan_chunks()
    );
}

/// Each replacement is in the file's history: `GET
/// /api/entry/{id}/replacements` (newest first) and its downloads page.
/// The download count, limit and downloads used stay as they were: the
/// link is the same.
#[tokio::test]
async fn the_history_notes_each_replacement_and_counts_stay() {
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    let id = crate::limits::upload_with(&server, &[("maxDownloads", "3")], "", b"8 bytes!").await;
    let (_, body) = fetch(&id, &server).await;
    assert_eq!(body, b"8 bytes!");
    let replacements = |c: Client| {
        let url = server.url(&format!("/api/entry/{id}/replacements"));
        async move { c.get(url).send().await.unwrap() }
    };
    let resp = replacements(c.clone()).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!([])
    );

    let resp = put_multipart(&server, &c, &id, "", "b.bin", &[7; 1000]).await;
    assert_eq!(resp.status().as_u16(), 200);
    let resp = put_content(
        &server,
        &c,
        &id,
        "?keepName=true",
        b"five!".to_vec().into(),
        "a/b",
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);

    let rows: serde_json::Value = replacements(c.clone()).await.json().await.unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let facts = |r: &serde_json::Value| {
        (
            r["oldFilename"].as_str().unwrap().to_owned(),
            r["oldSize"].as_u64().unwrap(),
            r["newFilename"].as_str().unwrap().to_owned(),
            r["newSize"].as_u64().unwrap(),
        )
    };
    assert_eq!(facts(&rows[0]), ("b.bin".into(), 1000, "b.bin".into(), 5));
    assert_eq!(
        facts(&rows[1]),
        ("limited.bin".into(), 8, "b.bin".into(), 1000)
    );
    for r in rows {
        let time = r["time"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "an RFC 3339 time: {time}"
        );
    }

    let html = c
        .get(server.url(&format!("/files/{id}/downloads")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Content replaced"), "{html}");
    assert!(
        html.contains("Content replaced: limited.bin, 8 B → b.bin, 1000 B"),
        "{html}"
    );
    assert!(html.contains("Content replaced: b.bin, 1000 B → b.bin, 5 B"));

    // The download made before is still counted, against the same limit
    // (download records are gathered for about a second before they are written).
    assert!(
        eventually(Duration::from_secs(10), || server.download_rows(&id).len()
            == 1)
        .await,
        "the download is recorded"
    );
    let downloads: serde_json::Value = c
        .get(server.url(&format!("/api/entry/{id}/downloads")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(downloads.as_array().unwrap().len(), 1);
    let entries: serde_json::Value = c
        .get(server.url("/api/entries"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(entries[0]["downloads"], 1);
    assert_eq!(entries[0]["maxDownloads"], 3);
    assert_eq!(entries[0]["downloadsUsed"], 1);

    // The owner's only; an unknown file is 404.
    assert_eq!(replacements(plain_client()).await.status().as_u16(), 401);
    let resp = c
        .get(server.url("/api/entry/AAAAAAAAAA/replacements"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

/// The `data-qr` paths of a page (the links its QR codes encode, made
/// absolute by the page's script with the page's origin).
fn qr_paths(html: &str) -> Vec<String> {
    html.split("data-qr=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// Reads the QR code of an SVG the server drew (`GET /qr.svg`): the
/// `qrcode` crate draws each run of dark modules as a `M{x} {y}h{w}v{h}H{x}V{y}`
/// rectangle, which is painted on a white bitmap here and decoded by the
/// `rqrr` crate, as a phone's camera would.
fn decode_qr(svg: &str) -> String {
    let num = |s: &str| -> usize { s.trim().parse().unwrap_or_else(|_| panic!("{s:?}")) };
    let view = svg.split("viewBox=\"0 0 ").nth(1).expect("a viewBox");
    let mut dims = view[..view.find('"').unwrap()].split(' ');
    let (width, height) = (num(dims.next().unwrap()), num(dims.next().unwrap()));
    let mut dark = vec![false; width * height];
    let d = svg.split(" d=\"").nth(1).expect("a path");
    for rect in d[..d.find('"').unwrap()].split('M').skip(1) {
        let (x, rest) = rect.split_once(' ').unwrap();
        let (y, rest) = rest.split_once('h').unwrap();
        let (w, rest) = rest.split_once('v').unwrap();
        let (h, _) = rest.split_once('H').unwrap();
        let (x, y, w, h) = (num(x), num(y), num(w), num(h));
        for row in y..y + h {
            for col in x..x + w {
                dark[row * width + col] = true;
            }
        }
    }
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        if dark[y * width + x] {
            0
        } else {
            255
        }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("a readable QR code").1
}

/// The link each QR code of `page` encodes (their images fetched from the
/// server and read back), as paths of `server`.
async fn qr_links(server: &TestServer, c: &Client, page: &str) -> Vec<String> {
    let html = c
        .get(server.url(page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let origin = server.url("");
    let mut links = Vec::new();
    for path in qr_paths(&html) {
        let absolute = server.url(&path);
        let resp = plain_client()
            .get(server.url("/qr.svg"))
            .query(&[("text", &absolute)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let read = decode_qr(&resp.text().await.unwrap());
        assert_eq!(read, absolute, "the QR code of {path} on {page}");
        links.push(
            read.strip_prefix(origin.trim_end_matches('/'))
                .unwrap()
                .to_owned(),
        );
    }
    assert!(!links.is_empty(), "no QR code on {page}: {html}");
    links
}

/// `GET url` as an anonymous visitor with `headers`: the status, the name
/// in `Content-Disposition` and the body.
async fn visit(url: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut req = plain_client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let disposition = header_str(resp.headers(), "content-disposition");
    (status, disposition, resp.bytes().await.unwrap().to_vec())
}

/// After a replacement every way to reach the file leads to the new
/// content: the full link (under the old name or the new one: the name in
/// it is only for people), the short link, the legacy `/!` links, the view
/// page, a share's page and ZIP, and the QR codes of the file's pages, which
/// still encode the same links. A password-protected file keeps its
/// password: refused without it, served with it (HTTP Basic, the form, or
/// the access cookie given before the replacement).
#[tokio::test]
async fn every_link_leads_to_the_new_content_after_a_replacement() {
    use base64::Engine;
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    let old = random_bytes(700_000, 60);
    let id = server
        .upload(&c, "old.txt", &old, "text/plain", None, None)
        .await;
    let password = "open sesame 42";
    let form = Multipart::new().text("password", password).file(
        "file",
        "secret-old.bin",
        Some("application/x-old"),
        b"old secret",
    );
    let locked = upload_id(
        server
            .post_entry(&c, &format!("?expiration={FAR_FUTURE}"), form)
            .await,
    )
    .await;
    let share = crate::shares::create_ok(
        &server,
        &c,
        serde_json::json!({ "entries": [id, locked], "title": "Both" }),
    )
    .await;
    let share_id = share["id"].as_str().unwrap().to_owned();
    // The links the pages give, and what their QR codes encode, before.
    let pages = [
        format!("/files/{id}/info"),
        format!("/files/{locked}/info"),
        format!("/v/{id}"),
        format!("/v/{locked}"),
        format!("/s/{share_id}"),
    ];
    let mut qr_before = Vec::new();
    for page in &pages {
        qr_before.push(qr_links(&server, &c, page).await);
    }
    assert_eq!(
        qr_before[0],
        vec![format!("/-{id}"), format!("/v/{id}")],
        "the file page's short link and view page"
    );
    // The form's cookie, given before the replacement.
    let body = format!(
        "password={}",
        percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
    );
    let unlock = || {
        plain_client()
            .post(server.url(&format!("/-{locked}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html")
            .body(body.clone())
            .send()
    };
    let resp = unlock().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = set_cookies(resp.headers())
        .into_iter()
        .find(|k| k.name == format!("ps_file_{locked}"))
        .expect("the file's access cookie");
    let old_cookie = format!("{}={}", cookie.name, cookie.value);

    let new = random_bytes(900_001, 61);
    let resp = put_multipart(&server, &c, &id, "", "new.bin", &new).await;
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    let new_secret = b"the new secret".to_vec();
    let resp = put_multipart(&server, &c, &locked, "", "secret-new.bin", &new_secret).await;
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);

    // Every download link of the open file.
    for path in [
        format!("/-{id}"),
        format!("/-{id}/old.txt"),
        format!("/-{id}/new.bin"),
        format!("/!{id}"),
        format!("/!{id}/old.txt"),
        format!("/!{id}/new.bin"),
    ] {
        let (status, disposition, body) = visit(&server.url(&path), &[]).await;
        assert_eq!(status, 200, "{path}");
        assert!(disposition.contains("new.bin"), "{path}: {disposition}");
        assert!(body == new, "{path} serves the new bytes");
    }
    // The view page and the share page show the new name and link to it.
    let view = visit(&server.url(&format!("/v/{id}")), &[]).await;
    assert_eq!(view.0, 200);
    let view = String::from_utf8(view.2).unwrap();
    assert!(view.contains(&format!("href=\"/-{id}/new.bin\"")), "{view}");
    assert!(!view.contains("old.txt"), "{view}");
    let page = visit(&server.url(&format!("/s/{share_id}")), &[]).await;
    assert_eq!(page.0, 200);
    let page = String::from_utf8(page.2).unwrap();
    assert!(page.contains(&format!("href=\"/-{id}/new.bin\"")), "{page}");
    assert!(
        page.contains(&format!("href=\"/-{locked}/secret-new.bin\"")),
        "{page}"
    );
    assert!(page.contains("protected"), "{page}");
    // The share's ZIP holds the open file's new version, and not the
    // protected one (only its own link serves it).
    let (status, _, zip) = visit(&server.url(&format!("/s/{share_id}/zip")), &[]).await;
    assert_eq!(status, 200);
    let members = crate::shares::python_members(crate::shares::write_temp(&zip).path());
    assert_eq!(
        members,
        vec![("new.bin".to_owned(), new.len() as u64, sha256_hex(&new))]
    );
    // Same QR codes on every page, and what they encode leads to the new file.
    for (page, before) in pages.iter().zip(&qr_before) {
        assert_eq!(&qr_links(&server, &c, page).await, before, "{page}");
    }
    let (status, _, body) = visit(&server.url(&qr_before[0][0]), &[]).await;
    assert_eq!(status, 200);
    assert!(
        body == new,
        "the file page's QR code leads to the new bytes"
    );

    // The protected file: refused without the password on every link...
    for path in [
        format!("/-{locked}"),
        format!("/-{locked}/secret-new.bin"),
        format!("/!{locked}"),
        format!("/!{locked}/secret-old.bin"),
    ] {
        let (status, _, body) = visit(&server.url(&path), &[]).await;
        assert_eq!(status, 401, "{path}");
        assert!(
            !body.windows(new_secret.len()).any(|w| w == new_secret),
            "{path}"
        );
    }
    let view = visit(&server.url(&format!("/v/{locked}")), &[]).await;
    assert_eq!(view.0, 200);
    let view = String::from_utf8(view.2).unwrap();
    assert!(view.contains("Protected file"), "{view}");
    assert!(!view.contains("secret-new.bin"), "{view}");
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("x:wrong password")
    );
    let (status, _, _) = visit(
        &server.url(&format!("/-{locked}")),
        &[("authorization", &wrong)],
    )
    .await;
    assert_eq!(status, 401, "a wrong password");
    // ... and served the new bytes with it, by each way of giving it.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x:{password}"))
    );
    let resp = unlock().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = set_cookies(resp.headers())
        .into_iter()
        .find(|k| k.name == format!("ps_file_{locked}"))
        .expect("the file's access cookie");
    let new_cookie = format!("{}={}", cookie.name, cookie.value);
    for (how, header) in [
        ("authorization", basic.as_str()),
        ("cookie", old_cookie.as_str()),
        ("cookie", new_cookie.as_str()),
    ] {
        for path in [format!("/-{locked}"), format!("/!{locked}/secret-old.bin")] {
            let (status, disposition, body) = visit(&server.url(&path), &[(how, header)]).await;
            assert_eq!(status, 200, "{path} with {how}");
            assert!(disposition.contains("secret-new.bin"), "{disposition}");
            assert_eq!(body, new_secret, "{path} with {how}");
        }
    }
}

/// A replacement whose client goes away halfway through the body (the
/// connection dropped after 5 MiB of a promised 20 MiB), as a raw body and
/// as a form: the old content is still served, with its validators, no
/// replacement is recorded, and the new bytes stored so far are deleted
/// (no chunk rows without a file on SQLite; on the scale-out store no
/// upload in progress nor object left).
#[tokio::test]
async fn a_replacement_cut_off_mid_body_leaves_the_old_content_and_nothing_behind() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    let old = random_bytes(3 << 20, 70);
    let id = server
        .upload(&c, "old.bin", &old, "application/octet-stream", None, None)
        .await;
    let (h0, _) = fetch(&id, &server).await;
    let chunks = server.chunk_rows(&id);
    let cookie = server.session_cookie().await;
    let boundary = "----picoshare-it-replace-cut";
    for multipart in [false, true] {
        let (content_type, part_head) = if multipart {
            (
                format!("multipart/form-data; boundary={boundary}"),
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                     filename=\"never.bin\"\r\nContent-Type: application/x-never\r\n\r\n"
                ),
            )
        } else {
            ("application/x-never".to_owned(), String::new())
        };
        let head = format!(
            "PUT /api/entry/{id}/content HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{part_head}",
            server.addr,
            20 << 20
        );
        let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        conn.write_all(head.as_bytes()).await.unwrap();
        let data = random_bytes(5 << 20, 71);
        tokio::time::timeout(Duration::from_secs(30), async {
            for piece in data.chunks(64 * 1024) {
                conn.write_all(piece)
                    .await
                    .expect("the server reads the body");
            }
            conn.flush().await.unwrap();
        })
        .await
        .expect("the server took 5 MiB within 30 s");
        // The new bytes are being stored: the clean-up below has work to do.
        assert!(
            eventually(Duration::from_secs(10), || server.orphan_chunks() > 0).await,
            "nothing of the new content was stored before the cut (multipart: {multipart})"
        );
        drop(conn);
        assert!(
            eventually(Duration::from_secs(10), || server.orphan_chunks() == 0).await,
            "10 s after the cut (multipart: {multipart}): {} chunk rows of no file",
            server.orphan_chunks()
        );
        let (h, body) = fetch(&id, &server).await;
        assert!(
            body == old,
            "the old content is served (multipart: {multipart})"
        );
        assert_eq!(header_str(&h, "etag"), header_str(&h0, "etag"));
        assert!(header_str(&h, "content-disposition").contains("old.bin"));
        assert_eq!(server.chunk_rows(&id), chunks);
        assert!(
            server.tmp_files().is_empty(),
            "temp files: {:?}",
            server.tmp_files()
        );
    }
    let replacements: serde_json::Value = c
        .get(server.url(&format!("/api/entry/{id}/replacements")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replacements, serde_json::json!([]), "nothing was replaced");
    // And the file can still be replaced.
    let resp = put_multipart(&server, &c, &id, "", "after.bin", b"after the cut").await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(fetch(&id, &server).await.1, b"after the cut");
}
