//! What the server logs: the IDs of links (downloads, shares, guest links,
//! resumable uploads) are their only secret, so they never appear in the
//! log at the `info` level or above, whatever the request.

use base64::Engine;
use reqwest::header::AUTHORIZATION;
use serde_json::Value;

use crate::helpers::*;

/// Every kind of upload (multipart, raw `PUT` with a token, resumable, a
/// guest's), a share with its page and ZIP, downloads, view pages, a
/// password form, deletions: the log at `info` (every crate) holds none of
/// the IDs involved.
#[tokio::test]
async fn link_ids_are_not_logged_at_info() {
    let s = TestServer::start_with(ServerOptions::new().env("RUST_LOG", "info")).await;
    let admin = s.admin_client().await;
    let mut ids: Vec<String> = Vec::new();

    ids.push(
        s.upload(&admin, "a.txt", b"multipart", "text/plain", None, None)
            .await,
    );
    let token: Value = admin
        .post(s.url("/api/tokens"))
        .json(&serde_json::json!({ "name": "logs" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let raw: Value = plain_client()
        .put(s.url("/api/upload/b.txt"))
        .header(
            AUTHORIZATION,
            format!("Bearer {}", token["token"].as_str().unwrap()),
        )
        .header("accept", "application/json")
        .body("raw body")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ids.push(raw["id"].as_str().unwrap().to_owned());

    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode("c.txt")
    );
    let created = admin
        .post(s.url("/api/tus"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "9")
        .header("Upload-Metadata", meta)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let location = header_str(created.headers(), "location");
    ids.push(location.rsplit('/').next().unwrap().to_owned());
    let done = admin
        .patch(s.url(&location))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body("resumable")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status().as_u16(), 204);
    ids.push(header_str(done.headers(), "picoshare-entry-id"));

    let link: Value = admin
        .post(s.url("/api/guest-links"))
        .json(&serde_json::json!({
            "urlExpirationTime": FAR_FUTURE,
            "fileLifetime": "168h0m0s",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = link["id"].as_str().unwrap().to_owned();
    ids.push(link.clone());
    let form = Multipart::new().file("file", "d.txt", Some("text/plain"), b"guest");
    let guest = plain_client()
        .post(s.url(&format!("/api/guest/{link}")))
        .header("content-type", form.content_type())
        .header("accept", "application/json")
        .body(form.finish())
        .send()
        .await
        .unwrap();
    ids.push(upload_id(guest).await);

    let mut form = Multipart::new().text("password", "hunter2");
    form = form.file("file", "e.txt", Some("text/plain"), b"protected");
    let q = format!("?expiration={FAR_FUTURE}");
    let protected = upload_id(s.post_entry(&admin, &q, form).await).await;
    ids.push(protected.clone());

    let share: Value = admin
        .post(s.url("/api/shares"))
        .json(&serde_json::json!({ "title": "logs", "entries": &ids[..2] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let share = share["id"].as_str().unwrap().to_owned();
    ids.push(share.clone());

    for path in [
        format!("/s/{share}"),
        format!("/s/{share}/zip"),
        format!("/v/{}", ids[0]),
        format!("/-{}", ids[1]),
        format!("/-{}/name.txt", ids[3]),
        format!("/g/{link}"),
        format!("/-{protected}"),
    ] {
        let resp = plain_client().get(s.url(&path)).send().await.unwrap();
        assert!(resp.status().as_u16() < 500, "{path}");
        resp.bytes().await.unwrap();
    }
    let wrong = plain_client()
        .post(s.url(&format!("/-{protected}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("password=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    for path in [
        format!("/api/shares/{share}"),
        format!("/api/entry/{}", ids[0]),
    ] {
        let resp = admin.delete(s.url(&path)).send().await.unwrap();
        assert!(resp.status().is_success(), "{path}");
    }
    // Let the last lines reach the log.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = s.stderr_text();
    assert!(
        log.contains("stored"),
        "the log has the uploads' lines: {log}"
    );
    for id in &ids {
        assert!(!log.contains(id.as_str()), "{id} is in the log:\n{log}");
    }
}
