//! Previews: the public view page `/v/{id}` and the preview on the file
//! information page embed each kind of file from its download URL, escape
//! what the uploader chose, and refuse unknown and expired files.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Client;

use crate::helpers::*;

/// GETs `path`; returns status, CSP and body.
async fn get(s: &TestServer, c: &Client, path: &str) -> (u16, String, String) {
    let resp = c.get(s.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let csp = header_str(resp.headers(), "content-security-policy");
    (status, csp, resp.text().await.unwrap())
}

/// Each kind of file gets its own embed element, pointing at the download URL;
/// other types get no preview. Anyone with the ID may open the page.
#[tokio::test]
async fn view_page_embeds_each_kind() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let cases: [(&str, &str, &[u8], Option<&str>); 8] = [
        (
            "photo.png",
            "application/octet-stream",
            b"\x89PNG....",
            Some("<img src=\"/-{id}\" alt=\"Preview of photo.png\">"),
        ),
        (
            "clip.mp4",
            "video/mp4",
            b"not really a video",
            Some("<video controls preload=\"metadata\" src=\"/-{id}\""),
        ),
        (
            "tone.wav",
            "application/octet-stream",
            b"RIFF....WAVE",
            Some("<audio controls preload=\"metadata\" src=\"/-{id}\""),
        ),
        (
            "doc.pdf",
            "application/pdf",
            b"%PDF-1.4\n",
            Some("<iframe src=\"/-{id}\" title=\"Preview of doc.pdf\">"),
        ),
        (
            "notes.txt",
            "text/plain",
            b"plain words",
            Some("data-preview-text=\"/-{id}\""),
        ),
        (
            "page.html",
            "text/html",
            b"<b>bold</b>",
            Some("data-preview-text=\"/-{id}\""),
        ),
        (
            "data.json",
            "application/json",
            b"{}",
            Some("data-preview-text=\"/-{id}\""),
        ),
        ("archive.zip", "application/zip", b"PK\x03\x04", None),
    ];
    let visitor = plain_client();
    for (name, content_type, data, expected) in cases {
        let id = s.upload(&admin, name, data, content_type, None, None).await;
        let (status, csp, body) = get(&s, &visitor, &format!("/v/{id}")).await;
        assert_eq!(status, 200, "{name}: {body}");
        for directive in [
            "media-src 'self'",
            "frame-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{name}: {csp}");
        }
        assert!(body.contains("data-page=\"view\""), "{name}");
        assert!(
            body.contains(&format!("href=\"/-{id}/{name}\" download=\"{name}\"")),
            "{name}: {body}"
        );
        assert!(body.contains(&format!("data-qr=\"/v/{id}\"")), "{name}");
        match expected {
            Some(element) => {
                let element = element.replace("{id}", &id);
                assert!(
                    body.contains(&element),
                    "{name}: expected {element} in {body}"
                );
                assert_eq!(body.matches("data-preview=").count(), 1, "{name}");
            }
            None => assert!(!body.contains("data-preview"), "{name}: {body}"),
        }
        // The HTML file's bytes are never part of the page.
        assert!(!body.contains("<b>bold</b>"), "{name}");
        // The download itself is unchanged: raw bytes, sandboxed.
        let resp = visitor.get(s.url(&format!("/-{id}"))).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            header_str(resp.headers(), "content-security-policy"),
            "sandbox"
        );
        assert!(resp.headers().get("x-frame-options").is_none());
        assert_eq!(resp.bytes().await.unwrap().as_ref(), data);
    }
}

/// A text preview says when it shows only the start of a long file.
#[tokio::test]
async fn long_text_previews_say_they_are_partial() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let long = "line\n".repeat(20_000);
    let id = s
        .upload(
            &admin,
            "long.log",
            long.as_bytes(),
            "text/plain",
            None,
            None,
        )
        .await;
    let (status, _, body) = get(&s, &plain_client(), &format!("/v/{id}")).await;
    assert_eq!(status, 200);
    assert!(body.contains("data-limit=\"65536\""), "{body}");
    assert!(body.contains("The first 64.00 kB of 97.66 kB."), "{body}");
}

/// Names chosen by the uploader are escaped in the page, its title and attributes.
#[tokio::test]
async fn view_page_escapes_the_filename() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let name = "<img src=x onerror=alert(1)>\"'&.png";
    let id = s
        .upload(&admin, name, b"\x89PNG", "image/png", None, None)
        .await;
    let (status, _, body) = get(&s, &plain_client(), &format!("/v/{id}")).await;
    assert_eq!(status, 200);
    assert!(!body.contains("<img src=x"), "{body}");
    assert!(!body.contains("onerror=alert(1)>\""), "{body}");
    assert!(
        body.contains("&lt;img src=x onerror=alert(1)&gt;&quot;'&amp;.png"),
        "{body}"
    );
    assert!(body.contains("<title>PicoShare - &lt;img src=x"), "{body}");
    let (status, _, info) = get(&s, &admin, &format!("/files/{id}/info")).await;
    assert_eq!(status, 200);
    assert!(!info.contains("<img src=x"), "{info}");
}

/// Unknown IDs are a 404 page, malformed ones a 400, and both are still
/// pages with the strict CSP.
#[tokio::test]
async fn view_page_refuses_unknown_ids() {
    let s = TestServer::start().await;
    let c = plain_client();
    let (status, csp, body) = get(&s, &c, &format!("/v/{UNKNOWN_ID}")).await;
    assert_eq!(status, 404, "{body}");
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(body.contains("There is no file with this ID"), "{body}");
    assert!(!body.contains("data-preview"));
    let (status, _, _) = get(&s, &c, "/v/short").await;
    assert_eq!(status, 400);
}

fn set_clock(file: &Path, t: DateTime<Utc>) {
    std::fs::write(file, t.to_rfc3339()).unwrap();
}

/// An expired file's view page is a 410 without a preview, like its download.
#[tokio::test]
async fn view_page_of_an_expired_file_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    let now = Utc::now();
    set_clock(&clock, now);
    let s = TestServer::start_with(
        ServerOptions::new()
            .db(dir.path().join("store.db"))
            .arg("--clock-file")
            .arg(clock.to_str().unwrap()),
    )
    .await;
    let admin = s.admin_client().await;
    let expires =
        (now + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id = s
        .upload(
            &admin,
            "soon.png",
            b"\x89PNG",
            "image/png",
            None,
            Some(&expires),
        )
        .await;
    let (status, _, _) = get(&s, &plain_client(), &format!("/v/{id}")).await;
    assert_eq!(status, 200);

    set_clock(&clock, now + chrono::Duration::hours(2));
    let (status, _, body) = get(&s, &plain_client(), &format!("/v/{id}")).await;
    assert_eq!(status, 410, "{body}");
    assert!(body.contains("This file has expired"), "{body}");
    assert!(!body.contains("data-preview"), "{body}");
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
}

/// The file information page shows the preview page link, QR codes of the
/// short link and of the preview page, and the preview.
#[tokio::test]
async fn file_info_shows_preview_and_qr_codes() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let id = s
        .upload(&admin, "pic.gif", b"GIF89a", "image/gif", None, None)
        .await;
    let (status, _, body) = get(&s, &admin, &format!("/files/{id}/info")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!(
            "<a class=\"field-value\" href=\"/v/{id}\" data-absolute>/v/{id}</a>"
        )),
        "{body}"
    );
    assert!(body.contains(&format!("data-qr=\"/-{id}\"")), "{body}");
    assert!(body.contains(&format!("data-qr=\"/v/{id}\"")), "{body}");
    assert!(
        body.contains(&format!("<img src=\"/-{id}\" alt=\"Preview of pic.gif\">")),
        "{body}"
    );
}

/// Each guest link in the list has a QR code of its upload page.
#[tokio::test]
async fn guest_links_list_has_qr_codes() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let resp = admin
        .post(s.url("/api/guest-links"))
        .json(&serde_json::json!({
            "label": "qr",
            "urlExpirationTime": NEVER_EXPIRES,
            "fileLifetime": "876000h0m0s",
            "maxFileBytes": null,
            "maxFileUploads": null,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let gid = resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = get(&s, &admin, "/guest-links").await;
    assert_eq!(status, 200);
    assert!(body.contains(&format!("data-qr=\"/g/{gid}\"")), "{body}");
}

/// The owner's own previews (embedded, same-origin loads with the session) stay
/// out of the download history; the same loads by a visitor, and the owner's
/// navigations and API downloads, are recorded as before.
#[tokio::test]
async fn owner_previews_are_not_downloads() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let id = s
        .upload(&admin, "p.png", b"\x89PNG", "image/png", None, None)
        .await;
    let fetch = |c: &Client, dest: &str, site: &str| {
        c.get(s.url(&format!("/-{id}")))
            .header("sec-fetch-dest", dest)
            .header("sec-fetch-site", site)
            .send()
    };
    for dest in ["image", "video", "audio", "iframe", "empty"] {
        let resp = fetch(&admin, dest, "same-origin").await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"\x89PNG");
    }
    // Recording is fire-and-forget but in order: once the visitor's download
    // below shows up, anything recorded before it would have too.
    let visitor = plain_client();
    fetch(&visitor, "image", "same-origin").await.unwrap();
    assert!(eventually(Duration::from_secs(10), || !s.download_rows(&id).is_empty()).await);
    assert_eq!(s.download_rows(&id).len(), 1, "only the visitor's load");

    fetch(&admin, "document", "same-origin").await.unwrap();
    fetch(&admin, "image", "cross-site").await.unwrap();
    admin.get(s.url(&format!("/-{id}"))).send().await.unwrap();
    assert!(eventually(Duration::from_secs(10), || s.download_rows(&id).len() >= 4).await);
    assert_eq!(s.download_rows(&id).len(), 4);
}

/// The view page of a password-protected file shows nothing of it before
/// the password, no more than its download link does: not its name (in the
/// title, the heading or the link), nor its size, nor a preview; only a
/// Download button that asks for the password. The owner sees it all.
#[tokio::test]
async fn view_page_of_a_protected_file_shows_nothing_of_it() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let name = "quarterly-results-draft.pdf";
    let mut form = Multipart::new().text("password", "hunter2");
    form = form.file("file", name, Some("application/pdf"), &[b'%'; 123_457]);
    let q = format!("?expiration={FAR_FUTURE}");
    let id = upload_id(s.post_entry(&c, &q, form).await).await;
    let (status, _, page) = get(&s, &plain_client(), &format!("/v/{id}")).await;
    assert_eq!(status, 200);
    for hidden in [
        name,
        "quarterly",
        "120.56",
        "123457",
        "123,457",
        "<iframe",
        "<embed",
    ] {
        assert!(!page.contains(hidden), "{hidden:?} shown: {page}");
    }
    assert!(page.contains("protected by a password"), "{page}");
    assert!(page.contains(&format!(r#"href="/-{id}""#)), "{page}");
    let (_, _, owner) = get(&s, &c, &format!("/v/{id}")).await;
    assert!(owner.contains(name), "the owner sees the name: {owner}");
}
