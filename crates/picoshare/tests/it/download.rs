//! Public downloads: routes, HEAD, errors, headers, content types,
//! Content-Disposition for hostile names, and the download history.

use std::time::Duration;

use reqwest::header::USER_AGENT;

use crate::helpers::*;

/// `/-{id}`, `/-{id}/anything`, `/!{id}` and `/!{id}/x` all serve the file.
#[tokio::test]
async fn all_download_routes_serve_the_file() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let data = random_bytes(70_000, 10);
    let id = s
        .upload(&c, "routes.bin", &data, "application/x-routes", None, None)
        .await;
    for path in [
        format!("/-{id}"),
        format!("/-{id}/anything"),
        format!("/-{id}/routes.bin"),
        format!("/!{id}"),
        format!("/!{id}/x"),
    ] {
        let resp = plain_client().get(s.url(&path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "GET {path}");
        assert_eq!(
            resp.bytes().await.unwrap().as_ref(),
            &data[..],
            "body of GET {path}"
        );
    }
}

/// HEAD answers with the same headers as GET (Content-Length included) and
/// sends no body bytes on the wire.
#[tokio::test]
async fn head_gives_headers_without_body() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let data = random_bytes(12_345, 11);
    let id = s
        .upload(&c, "head.txt", &data, "text/plain", None, None)
        .await;
    let get = plain_client()
        .get(s.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 200);

    let raw = raw_exchange(
        s.addr,
        format!(
            "HEAD /-{id} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            s.addr
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(raw.status, 200);
    assert!(
        raw.rest.is_empty(),
        "HEAD sent {} body bytes",
        raw.rest.len()
    );
    assert_eq!(raw.header("content-length"), Some("12345"));
    for name in [
        "content-type",
        "content-disposition",
        "etag",
        "last-modified",
        "accept-ranges",
    ] {
        assert_eq!(
            raw.header(name),
            Some(header_str(get.headers(), name).as_str()),
            "HEAD and GET differ in {name}"
        );
    }
}

/// A well-formed but unknown ID is 404 `entry not found`.
#[tokio::test]
async fn unknown_id_is_404() {
    let s = TestServer::start().await;
    for path in [
        format!("/-{UNKNOWN_ID}"),
        format!("/-{UNKNOWN_ID}/name.txt"),
        format!("/!{UNKNOWN_ID}"),
    ] {
        let resp = plain_client().get(s.url(&path)).send().await.unwrap();
        assert_error(resp, 404, "entry not found").await;
    }
}

/// A malformed ID (wrong length, or a character outside the alphabet) is
/// 400 `bad entry ID: ...`.
#[tokio::test]
async fn malformed_id_is_400() {
    let s = TestServer::start().await;
    for path in [
        "/-abc",
        "/-aaaaaaaaaaa",
        "/-aaaaaaaaa0",
        "/-aaaaaaaaaI/x.txt",
        "/!aaaaaaaaal",
        "/-aaaaaaaa%20a",
    ] {
        let resp = plain_client().get(s.url(path)).send().await.unwrap();
        assert_error_prefix(resp, 400, "bad entry ID:").await;
    }
}

/// Downloads carry `Content-Security-Policy: sandbox`, `Accept-Ranges:
/// bytes`, `Content-Length`, a `Last-Modified` near the upload time and a
/// stable `ETag` that differs between files.
#[tokio::test]
async fn download_headers() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let html: &[u8] = b"<script>alert(1)</script>";
    let id1 = s
        .upload(&c, "one.html", html, "text/html", None, None)
        .await;
    let id2 = s
        .upload(&c, "two.html", b"<p>two</p>", "text/html", None, None)
        .await;
    let get = |id: String| {
        let url = s.url(&format!("/-{id}"));
        async move { plain_client().get(url).send().await.unwrap() }
    };
    let r1 = get(id1.clone()).await;
    assert_eq!(r1.status().as_u16(), 200);
    let h = r1.headers();
    assert_eq!(header_str(h, "content-security-policy"), "sandbox");
    assert_eq!(header_str(h, "accept-ranges"), "bytes");
    assert_eq!(header_str(h, "content-length"), html.len().to_string());
    assert_eq!(header_str(h, "content-type"), "text/html");
    let last_modified = header_str(h, "last-modified");
    let when = chrono::DateTime::parse_from_rfc2822(&last_modified)
        .unwrap_or_else(|e| panic!("Last-Modified {last_modified:?} is not an HTTP date: {e}"));
    let age = chrono::Utc::now().signed_duration_since(when);
    assert!(
        age.num_seconds().abs() < 120,
        "Last-Modified {last_modified} is not the upload time"
    );
    let etag1 = header_str(h, "etag");
    assert!(
        etag1.trim_start_matches("W/").starts_with('"') && etag1.ends_with('"') && etag1.len() > 2,
        "ETag {etag1:?} is not a quoted entity tag"
    );
    assert_eq!(
        header_str(get(id1).await.headers(), "etag"),
        etag1,
        "ETag must be stable"
    );
    let etag2 = header_str(get(id2).await.headers(), "etag");
    assert_ne!(etag1, etag2, "two files share an ETag");
}

/// The stored content type is served as stored.
#[tokio::test]
async fn stored_content_type_is_served() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    for (name, ct) in [
        ("data.csv", "text/csv"),
        ("paste.txt", "text/plain;charset=UTF-8"),
        ("x.mp4", "application/x-custom"),
    ] {
        let id = s.upload(&c, name, b"1,2,3\n", ct, None, None).await;
        let resp = plain_client()
            .get(s.url(&format!("/-{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(header_str(resp.headers(), "content-type"), ct, "for {name}");
    }
}

/// A file stored as `application/octet-stream` is served with the type its
/// extension implies (`clip.mp4` → `video/mp4`); unknown extensions stay
/// `application/octet-stream`.
#[tokio::test]
async fn octet_stream_type_is_inferred_from_extension() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    for (name, served) in [
        ("clip.mp4", "video/mp4"),
        ("song.mp3", "audio/mpeg"),
        ("photo.PNG", "image/png"),
        ("mystery.qqqzzz", "application/octet-stream"),
    ] {
        let id = s
            .upload(
                &c,
                name,
                b"\x00\x00\x00\x18ftypmp42",
                "application/octet-stream",
                None,
                None,
            )
            .await;
        let resp = plain_client()
            .get(s.url(&format!("/-{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            header_str(resp.headers(), "content-type"),
            served,
            "for {name}"
        );
    }
}

/// A non-ASCII filename with spaces and parentheses comes back as one
/// well-formed Content-Disposition whose `filename*=UTF-8''...` decodes to it.
#[tokio::test]
async fn non_ascii_filename_disposition() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let name = "Résumé final (v2).pdf";
    let id = s
        .upload(&c, name, b"%PDF-1.4", "application/pdf", None, None)
        .await;
    assert_eq!(
        s.entry(&id).unwrap().filename,
        name,
        "raw UTF-8 filename must be stored as sent"
    );
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_disposition_names(resp.headers(), name);
}

/// Names with `;` and `"` cannot break Content-Disposition: an uploaded
/// `semi;colon.txt` and a quoted-string-escaped `a"b.txt` both come back as
/// one well-formed header naming them exactly.
#[tokio::test]
async fn hostile_filenames_cannot_break_disposition() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    for name in ["semi;colon.txt", "a\"b.txt", "x\"; filename=\"evil.exe"] {
        let id = s
            .upload(&c, name, b"hostile", "text/plain", None, None)
            .await;
        assert_eq!(
            s.entry(&id).unwrap().filename,
            name,
            "multipart quoted-string not decoded"
        );
        let resp = plain_client()
            .get(s.url(&format!("/-{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_disposition_names(resp.headers(), name);
    }
}

/// Renamed through the API to names with quotes, semicolons and non-ASCII,
/// a file still gets a single well-formed Content-Disposition naming it.
#[tokio::test]
async fn renamed_hostile_filenames_cannot_break_disposition() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "plain.txt", b"rename me", "text/plain", None, None)
        .await;
    for name in [
        "a\"b.txt",
        "semi;colon.txt",
        "Résumé final (v2).pdf",
        "日本語 \"quoted\"; x=y.txt",
        "tab%20pct%.txt",
    ] {
        let resp = c
            .put(s.url(&format!("/api/entry/{id}")))
            .json(&serde_json::json!({ "filename": name, "expiration": FAR_FUTURE, "note": null }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "rename to {name:?}");
        let resp = plain_client()
            .get(s.url(&format!("/-{id}")))
            .send()
            .await
            .unwrap();
        assert_disposition_names(resp.headers(), name);
    }
}

/// Each download adds one `downloads` row with the entry ID, the client IP
/// `127.0.0.1` and the User-Agent exactly as sent.
#[tokio::test]
async fn each_download_is_recorded() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "counted.txt", b"count me", "text/plain", None, None)
        .await;
    assert!(s.download_rows(&id).is_empty(), "no downloads yet");
    let agents = [
        "it-agent/1.0 (first)",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    ];
    for (i, agent) in agents.iter().enumerate() {
        let resp = plain_client()
            .get(s.url(&format!("/-{id}/counted.txt")))
            .header(USER_AGENT, *agent)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.bytes().await.unwrap();
        let recorded = eventually(Duration::from_secs(5), || s.download_rows(&id).len() > i).await;
        assert!(recorded, "download {} was not recorded", i + 1);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rows = s.download_rows(&id);
    assert_eq!(rows.len(), 2, "one row per download: {rows:?}");
    for (row, agent) in rows.iter().zip(agents) {
        assert_eq!(row.entry_id, id);
        assert_eq!(row.client_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(row.user_agent.as_deref(), Some(agent));
        let when = assert_stored_time(&row.download_timestamp);
        assert!((chrono::Utc::now() - when).num_seconds().abs() < 120);
    }
}

/// A file small enough to be read with its entry and sent from memory, but
/// stored in several chunks (4 KiB each here): whole, in one range across
/// chunks, in several ranges, and as HEAD, byte for byte as uploaded.
#[tokio::test]
async fn a_small_file_of_several_chunks_is_served_exactly() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_CHUNK_SIZE", "4096")).await;
    let c = s.admin_client().await;
    let data = random_bytes(10_001, 77);
    let id = s
        .upload(
            &c,
            "three.bin",
            &data,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    let url = s.url(&format!("/-{id}"));
    let client = plain_client();

    let whole = client.get(&url).send().await.unwrap();
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(whole.bytes().await.unwrap().as_ref(), &data[..]);

    let part = client
        .get(&url)
        .header("Range", "bytes=4000-8200")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(
        part.headers()["content-range"].to_str().unwrap(),
        "bytes 4000-8200/10001"
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &data[4000..=8200]);

    let tail = client
        .get(&url)
        .header("Range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status().as_u16(), 206);
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &data[9996..]);

    let multi = client
        .get(&url)
        .header("Range", "bytes=0-1,9000-9001")
        .send()
        .await
        .unwrap();
    assert_eq!(multi.status().as_u16(), 206);
    let body = multi.bytes().await.unwrap();
    let find = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(find(&data[0..=1]) && find(&data[9000..=9001]));

    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["content-length"].to_str().unwrap(), "10001");
    assert!(head.bytes().await.unwrap().is_empty());
}

/// Download records gather for a moment before they are written together:
/// records of the downloads made just before a graceful stop are written
/// with the final commit, none lost.
#[tokio::test]
async fn downloads_just_before_a_stop_are_recorded() {
    let mut s = TestServer::start_with(ServerOptions::new().sqlite()).await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "last.txt", b"last words", "text/plain", None, None)
        .await;
    let client = plain_client();
    for _ in 0..3 {
        let resp = client.get(s.url(&format!("/-{id}"))).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.bytes().await.unwrap();
    }
    let status = s.terminate(Duration::from_secs(20));
    assert!(status.is_some_and(|st| st.success()), "graceful stop");
    assert_eq!(s.download_rows(&id).len(), 3, "every download recorded");
}

/// A download record whose file is deleted before the records are written
/// is dropped alone: the records gathered with it are kept.
#[tokio::test]
async fn a_deleted_files_record_does_not_take_others_with_it() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let gone = s
        .upload(&c, "gone.txt", b"soon deleted", "text/plain", None, None)
        .await;
    let kept = s
        .upload(&c, "kept.txt", b"stays", "text/plain", None, None)
        .await;
    let client = plain_client();
    for id in [&gone, &kept] {
        let resp = client.get(s.url(&format!("/-{id}"))).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.bytes().await.unwrap();
    }
    let del = c
        .delete(s.url(&format!("/api/entry/{gone}")))
        .send()
        .await
        .unwrap();
    assert!(del.status().is_success(), "delete: {}", del.status());
    let recorded = eventually(Duration::from_secs(5), || s.download_rows(&kept).len() == 1).await;
    assert!(recorded, "the other file's download was not recorded");
}
