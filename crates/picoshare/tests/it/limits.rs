//! Download limits and one-shot links: what counts as a download (a complete
//! full-body GET), what does not (HEAD, 304, Range, aborted transfers), the
//! 410 once the limit is used up, and the race of concurrent downloads.

use std::time::Duration;

use reqwest::header::{IF_NONE_MATCH, RANGE};
use reqwest::Response;
use rusqlite::OptionalExtension;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// `(max_downloads, downloads_used, reserved)` of an entry, if it has a row.
pub fn limits_row(server: &TestServer, id: &str) -> Option<(Option<i64>, i64, i64)> {
    server
        .db()
        .query_row(
            "SELECT max_downloads, downloads_used, reserved FROM picoshare_entry_limits
             WHERE entry_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .unwrap()
}

/// Uploads `data` with extra form fields (before the file) and returns its ID.
pub async fn upload_with(
    server: &TestServer,
    fields: &[(&str, &str)],
    query: &str,
    data: &[u8],
) -> String {
    let c = server.admin_client().await;
    let mut form = Multipart::new();
    for (k, v) in fields {
        form = form.text(k, v);
    }
    form = form.file(
        "file",
        "limited.bin",
        Some("application/octet-stream"),
        data,
    );
    let q = format!("?expiration={FAR_FUTURE}{query}");
    upload_id(server.post_entry(&c, &q, form).await).await
}

/// GETs the download anonymously. A download that a client gave up on is
/// released just after the server notices, so a request right after one may
/// still see it in progress (409): this retries those until the state has
/// settled.
async fn get_settled(server: &TestServer, id: &str, headers: &[(&str, &str)]) -> Response {
    for _ in 0..400 {
        let mut req = plain_client().get(server.url(&format!("/-{id}")));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        if resp.status().as_u16() != 409 {
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the download of {id} stayed in progress");
}

async fn full_download(server: &TestServer, id: &str, data: &[u8]) {
    let resp = get_settled(server, id, &[]).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data);
}

async fn assert_used_up(resp: Response) {
    assert_error(
        resp,
        410,
        "This file has reached its download limit and is no longer available.",
    )
    .await;
}

/// Waits until the entry's download count reaches `used` with nothing reserved.
async fn settled_count(server: &TestServer, id: &str, used: i64) {
    for _ in 0..400 {
        if let Some((_, u, 0)) = limits_row(server, id) {
            if u == used {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "downloads_used of {id} never became {used}: {:?}",
        limits_row(server, id)
    );
}

#[tokio::test]
async fn a_limit_of_n_allows_exactly_n_full_downloads_then_410() {
    let server = TestServer::start().await;
    let data = random_bytes(700_000, 1);
    let id = upload_with(&server, &[("maxDownloads", "3")], "", &data).await;
    assert_eq!(limits_row(&server, &id), Some((Some(3), 0, 0)));
    for _ in 0..3 {
        full_download(&server, &id, &data).await;
    }
    assert_used_up(get_settled(&server, &id, &[]).await).await;
    settled_count(&server, &id, 3).await;
    // Once used up, ranges and HEAD are refused too.
    assert_used_up(get_settled(&server, &id, &[("range", "bytes=0-9")]).await).await;
    let head = plain_client()
        .head(server.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 410);
    // The owner still gets the file, and that does not count.
    let admin = server.admin_client().await;
    let resp = admin
        .get(server.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[..]);
    settled_count(&server, &id, 3).await;
    // The file list reports the limit and what was used of it.
    let listed: serde_json::Value = admin
        .get(server.url("/api/entries"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap();
    assert_eq!(row["maxDownloads"], 3, "{row}");
    assert_eq!(row["downloadsUsed"], 3, "{row}");
    assert_eq!(row["passwordProtected"], false, "{row}");
    // So does the file's information page.
    let info = admin
        .get(server.url(&format!("/files/{id}/info")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        info.contains("3 of 3 complete downloads used (used up)"),
        "{info}"
    );
    assert!(!info.contains("required to download"));
}

#[tokio::test]
async fn head_304_and_range_requests_do_not_count() {
    let server = TestServer::start().await;
    let data = random_bytes(1024 * 1024 + 5, 2);
    let id = upload_with(&server, &[], "&maxDownloads=1", &data).await;
    assert_eq!(limits_row(&server, &id), Some((Some(1), 0, 0)));
    let url = server.url(&format!("/-{id}"));
    for _ in 0..3 {
        let head = plain_client().head(&url).send().await.unwrap();
        assert_eq!(head.status().as_u16(), 200);
        let etag = header_str(head.headers(), "etag");
        let resp = plain_client()
            .get(&url)
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 304);
        let resp = plain_client()
            .get(&url)
            .header(RANGE, "bytes=100-199")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 206);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[100..200]);
        // A range that covers the whole file is still a 206, not a download.
        let resp = plain_client()
            .get(&url)
            .header(RANGE, "bytes=0-")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 206);
        assert_eq!(resp.bytes().await.unwrap().len(), data.len());
    }
    assert_eq!(limits_row(&server, &id), Some((Some(1), 0, 0)));
    full_download(&server, &id, &data).await;
    assert_used_up(get_settled(&server, &id, &[]).await).await;
    settled_count(&server, &id, 1).await;
}

#[tokio::test]
async fn an_aborted_download_does_not_count() {
    let server = TestServer::start().await;
    // Far more than the socket buffers hold, so the server cannot have sent it all.
    let data = random_bytes(32 << 20, 3);
    let id = upload_with(&server, &[("maxDownloads", "1")], "", &data).await;
    {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(format!("GET /-{id} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        while got < 256 * 1024 {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "server closed early");
            if got == 0 {
                assert!(
                    buf.starts_with(b"HTTP/1.1 200"),
                    "{:?}",
                    String::from_utf8_lossy(&buf[..40])
                );
            }
            got += n;
        }
        // Dropped here with unread data: the connection is reset.
    }
    // The reservation is released, nothing is counted, and a full download works.
    settled_count(&server, &id, 0).await;
    full_download(&server, &id, &data).await;
    settled_count(&server, &id, 1).await;
    assert_used_up(get_settled(&server, &id, &[]).await).await;
}

/// A limited download is counted, durably, before its last byte leaves:
/// the moment a client holds the whole file, the count is committed. Killed
/// right then (a crash, or a power cut: the commit is fsync'd first), the
/// restarted server refuses the file. Sizes: several pieces, one piece and a
/// part, a single byte.
#[tokio::test]
async fn a_download_is_counted_before_its_last_byte_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    for (round, size) in [1usize << 20, 300_000, 1].into_iter().enumerate() {
        let mut server = TestServer::start_on_db(&db).await;
        let data = random_bytes(size, 40 + round as u64);
        let id = upload_with(&server, &[("maxDownloads", "1")], "", &data).await;
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(format!("GET /-{id} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let body_start = loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "round {round}: the server closed early");
            got.extend_from_slice(&buf[..n]);
            if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
        };
        assert!(got.starts_with(b"HTTP/1.1 200"), "round {round}");
        while got.len() < body_start + size {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "round {round}: the server closed early");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(&got[body_start..], &data[..], "round {round}");
        // The whole file is here: kill the server at once.
        server.kill();
        drop(server);
        let server = TestServer::start_on_db(&db).await;
        assert_used_up(
            plain_client()
                .get(server.url(&format!("/-{id}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
    }
}

#[tokio::test]
async fn twenty_concurrent_downloads_of_a_one_shot_file_give_the_file_once() {
    let server = TestServer::start().await;
    let data = random_bytes(2 * 1024 * 1024, 4);
    let id = upload_with(&server, &[("maxDownloads", "1")], "", &data).await;
    let url = server.url(&format!("/-{id}"));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let url = url.clone();
        set.spawn(async move {
            let resp = plain_client().get(&url).send().await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap().to_vec();
            (status, body)
        });
    }
    let mut whole = 0;
    while let Some(r) = set.join_next().await {
        let (status, body) = r.unwrap();
        match status {
            200 => {
                assert_eq!(body, data, "a 200 carries the whole file");
                whole += 1;
            }
            409 | 410 => assert!(body.len() < 1000, "a refusal carries no file data"),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(whole, 1, "exactly one client gets the file");
    settled_count(&server, &id, 1).await;
    assert_used_up(get_settled(&server, &id, &[]).await).await;
}

#[tokio::test]
async fn limits_set_by_tus_metadata_and_by_edit() {
    use base64::Engine;
    let server = TestServer::start().await;
    let admin = server.admin_client().await;
    let data = random_bytes(50_000, 5);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let resp = admin
        .post(server.url("/api/tus"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", data.len().to_string())
        .header(
            "upload-metadata",
            format!(
                "filename {},maxDownloads {},expiration {}",
                b64("t.bin"),
                b64("2"),
                b64(FAR_FUTURE)
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let location = header_str(resp.headers(), "location");
    let resp = admin
        .patch(server.url(&location))
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let id = header_str(resp.headers(), "picoshare-entry-id");
    assert_eq!(limits_row(&server, &id), Some((Some(2), 0, 0)));
    full_download(&server, &id, &data).await;
    full_download(&server, &id, &data).await;
    assert_used_up(get_settled(&server, &id, &[]).await).await;

    // Editing: raise the limit, then remove it; a field left out is unchanged.
    let put = |body: serde_json::Value| {
        let admin = admin.clone();
        let url = server.url(&format!("/api/entry/{id}"));
        async move { admin.put(url).json(&body).send().await.unwrap() }
    };
    let r = put(serde_json::json!({"filename": "t.bin", "maxDownloads": 3})).await;
    assert_eq!(r.status().as_u16(), 200);
    full_download(&server, &id, &data).await;
    assert_used_up(get_settled(&server, &id, &[]).await).await;
    let r = put(serde_json::json!({"filename": "t2.bin"})).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(limits_row(&server, &id).map(|r| r.0), Some(Some(3)));
    let r = put(serde_json::json!({"filename": "t2.bin", "maxDownloads": 0})).await;
    assert_error_prefix(r, 400, "Bad request: maxDownloads must be").await;
    let r = put(serde_json::json!({"filename": "t2.bin", "maxDownloads": null})).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        limits_row(&server, &id),
        None,
        "a row that limits nothing is removed"
    );
    full_download(&server, &id, &data).await;

    // An unlimited file gets a one-shot limit by edit.
    let id2 = upload_with(&server, &[], "", &data).await;
    assert_eq!(limits_row(&server, &id2), None);
    let r = admin
        .put(server.url(&format!("/api/entry/{id2}")))
        .json(&serde_json::json!({"filename": "x.bin", "maxDownloads": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    full_download(&server, &id2, &data).await;
    assert_used_up(get_settled(&server, &id2, &[]).await).await;
}

/// Creates a guest link without limits and returns its ID.
async fn new_guest_link(server: &TestServer, admin: &reqwest::Client) -> String {
    let r = admin
        .post(server.url("/api/guest-links"))
        .json(&serde_json::json!({"label": "g", "urlExpirationTime": FAR_FUTURE, "fileLifetime": "168h0m0s", "maxFileBytes": null, "maxFileUploads": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let link: serde_json::Value = r.json().await.unwrap();
    link["id"].as_str().unwrap().to_owned()
}

/// Sends the head of a multipart upload to `path` that promises 64 MiB,
/// then the file part's head and its first 64 KiB, and returns what the
/// server answers without the rest being sent. Panics if no whole answer
/// comes within 20 s: the server is waiting for the body.
async fn reply_to_a_partial_upload(s: &TestServer, path: &str, cookie: Option<&str>) -> String {
    let boundary = "----picoshare-it-refused";
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\n\
         Host: {}\r\n\
         {cookie}\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"refused.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\
         \r\n",
        s.addr,
        64 << 20
    );
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before all of it is taken.
    let _ = stream.write_all(&vec![7u8; 64 << 10]).await;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    let answered = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if len.is_some_and(|n| body.len() >= n) {
                    return;
                }
            }
        }
    })
    .await;
    assert!(
        answered.is_ok(),
        "no answer to {path} within 20 s with 64 KiB of 64 MiB sent (got {:?}): the server waits for the body",
        String::from_utf8_lossy(&got)
    );
    String::from_utf8_lossy(&got).into_owned()
}

/// An upload that will be refused for what its URL asks (the owner's
/// password in the URL; a guest's download limit, password or note) is
/// refused before its body is read: the answer comes while the client has
/// sent 64 KiB of a promised 64 MiB, and not a byte was received or stored.
#[tokio::test]
async fn uploads_refused_by_their_url_are_refused_before_the_body_is_read() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_METRICS_PUBLIC", "1")).await;
    let admin = s.admin_client().await;
    let gid = new_guest_link(&s, &admin).await;
    let cookie = s.session_cookie().await;
    let guest_refusal = "invalid request: guest uploads cannot have download limits or passwords";
    for (path, cookie, refusal) in [
        (
            format!("/api/entry?expiration={FAR_FUTURE}&password=x"),
            Some(cookie.as_str()),
            "invalid request: send the password as a form field, not in the URL",
        ),
        (
            format!("/api/guest/{gid}?maxDownloads=1"),
            None,
            guest_refusal,
        ),
        (format!("/api/guest/{gid}?password=x"), None, guest_refusal),
        (
            format!("/api/guest/{gid}?note=hello"),
            None,
            "invalid request: guest uploads cannot have file notes",
        ),
        (
            format!("/api/guest/{gid}?note=null"),
            None,
            "invalid request: value of 'null' is not allowed",
        ),
    ] {
        let reply = reply_to_a_partial_upload(&s, &path, cookie).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{path}: {reply}");
        assert!(reply.contains(refusal), "{path}: {reply}");
    }
    assert_eq!(s.metric("picoshare_upload_bytes_total").await, Some(0.0));
    assert_eq!(s.metric("picoshare_uploads_total").await, Some(0.0));
    let list: serde_json::Value = admin
        .get(s.url("/api/entries"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

#[tokio::test]
async fn bad_limits_are_refused_and_guests_cannot_set_them() {
    let server = TestServer::start().await;
    let admin = server.admin_client().await;
    let form = Multipart::new().text("maxDownloads", "0").file(
        "file",
        "a.txt",
        Some("text/plain"),
        b"hello",
    );
    let r = server
        .post_entry(&admin, &format!("?expiration={FAR_FUTURE}"), form)
        .await;
    assert_error_prefix(r, 400, "invalid request: maxDownloads must be").await;
    let form = Multipart::new().file("file", "a.txt", Some("text/plain"), b"hello");
    let r = server
        .post_entry(
            &admin,
            &format!("?expiration={FAR_FUTURE}&password=x"),
            form,
        )
        .await;
    assert_error(
        r,
        400,
        "invalid request: send the password as a form field, not in the URL",
    )
    .await;

    let gid = new_guest_link(&server, &admin).await;
    let form = Multipart::new().text("maxDownloads", "1").file(
        "file",
        "a.txt",
        Some("text/plain"),
        b"hello",
    );
    let r = plain_client()
        .post(server.url(&format!("/api/guest/{gid}")))
        .header("content-type", form.content_type())
        .body(form.finish())
        .send()
        .await
        .unwrap();
    assert_error(
        r,
        400,
        "invalid request: guest uploads cannot have download limits or passwords",
    )
    .await;
}

#[tokio::test]
async fn deleting_an_entry_removes_its_limits_row() {
    let server = TestServer::start().await;
    let data = random_bytes(10_000, 6);
    let id = upload_with(
        &server,
        &[("maxDownloads", "5"), ("password", "pw")],
        "",
        &data,
    )
    .await;
    assert!(limits_row(&server, &id).is_some());
    let admin = server.admin_client().await;
    let r = admin
        .delete(server.url(&format!("/api/entry/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(limits_row(&server, &id), None);
    let n: i64 = server
        .db()
        .query_row("SELECT count(*) FROM picoshare_entry_limits", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 0);
}

/// `GET /v/{id}` without a session: status and page.
async fn view(server: &TestServer, id: &str) -> (u16, String) {
    let resp = plain_client()
        .get(server.url(&format!("/v/{id}")))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The public view page never embeds a file with a download limit or a
/// password (an embedded image is a full download, and a password must come
/// first); visitors get the download button, and nothing is used up.
#[tokio::test]
async fn the_view_page_does_not_preview_limited_or_protected_files() {
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    let png = b"\x89PNG\r\n\x1a\n not really an image".to_vec();
    let mut ids = Vec::new();
    for fields in [
        vec![("maxDownloads", "1")],
        vec![("password", "correct horse")],
        vec![],
    ] {
        let mut form = Multipart::new();
        for (k, v) in &fields {
            form = form.text(k, v);
        }
        form = form.file("file", "photo.png", Some("image/png"), &png);
        let q = format!("?expiration={FAR_FUTURE}");
        ids.push(upload_id(server.post_entry(&c, &q, form).await).await);
    }
    let (status, one_shot) = view(&server, &ids[0]).await;
    assert_eq!(status, 200);
    assert!(!one_shot.contains("<img"), "{one_shot}");
    assert!(one_shot.contains("limited number of times"), "{one_shot}");
    let (_, locked) = view(&server, &ids[1]).await;
    assert!(!locked.contains("<img"), "{locked}");
    assert!(locked.contains("protected by a password"), "{locked}");
    let (_, open) = view(&server, &ids[2]).await;
    assert!(
        open.contains("<img"),
        "an ordinary image is previewed: {open}"
    );
    // Nothing was used up: the one-shot file still downloads, once.
    assert_eq!(limits_row(&server, &ids[0]), Some((Some(1), 0, 0)));
    full_download(&server, &ids[0], &png).await;
    settled_count(&server, &ids[0], 1).await;
    let (status, _) = view(&server, &ids[0]).await;
    assert_eq!(status, 410);
}
