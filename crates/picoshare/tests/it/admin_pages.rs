//! The admin's HTML pages: `/files`, a file's info, edit, delete and history
//! pages, `/guest-links[/new]`, `/settings` and `/information`. Each shows the
//! stored data to a logged-in admin, sends anyone else to the login page, and
//! answers unknown or malformed file IDs with an error page.

use reqwest::Client;
use serde_json::json;

use crate::helpers::*;

/// GETs a page with `c`; asserts 200 and HTML with a CSP, returns the body.
async fn page(s: &TestServer, c: &Client, path: &str) -> String {
    let resp = c.get(s.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = header_str(resp.headers(), "content-type");
    let csp = header_str(resp.headers(), "content-security-policy");
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    assert_eq!(content_type, "text/html; charset=utf-8", "GET {path}");
    assert!(
        csp.contains("script-src 'self' 'nonce-"),
        "GET {path}: {csp}"
    );
    body
}

/// GETs a page and returns its status and body.
async fn status_of(s: &TestServer, c: &Client, path: &str) -> (u16, String) {
    let resp = c.get(s.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

fn assert_contains(body: &str, needle: &str, what: &str) {
    assert!(
        body.contains(needle),
        "{what}: {needle:?} not found in:\n{body}"
    );
}

/// The number of `<tr` in the page's table body.
fn body_rows(body: &str) -> usize {
    body.split_once("<tbody>").map_or(0, |(_, rest)| {
        rest.split("</tbody>")
            .next()
            .unwrap()
            .matches("<tr")
            .count()
    })
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_login() {
    let s = TestServer::start().await;
    let c = plain_client();
    let cases = [
        ("/files", "/login?next=/files"),
        (
            "/files/aaaaaaaaaa/info",
            "/login?next=/files/aaaaaaaaaa/info",
        ),
        (
            "/files/aaaaaaaaaa/edit",
            "/login?next=/files/aaaaaaaaaa/edit",
        ),
        (
            "/files/aaaaaaaaaa/confirm-delete",
            "/login?next=/files/aaaaaaaaaa/confirm-delete",
        ),
        (
            "/files/aaaaaaaaaa/downloads?unique=true",
            "/login?next=/files/aaaaaaaaaa/downloads%3Funique%3Dtrue",
        ),
        ("/guest-links", "/login?next=/guest-links"),
        ("/guest-links/new", "/login?next=/guest-links/new"),
        ("/settings", "/login?next=/settings"),
        ("/information", "/login?next=/information"),
    ];
    for (path, location) in cases {
        let resp = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 303, "GET {path}");
        assert_eq!(
            header_str(resp.headers(), "location"),
            location,
            "GET {path}"
        );
    }
    // A stale cookie is no session either.
    let resp = c
        .get(s.url("/files"))
        .header("Cookie", "ps_session=0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
}

#[tokio::test]
async fn files_page_lists_uploads() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let empty = page(&s, &c, "/files").await;
    assert_contains(&empty, "data-page=\"files\"", "files page");
    assert_contains(&empty, "No files yet.", "empty list");

    let id = s
        .upload(
            &c,
            "report 1.pdf",
            &[7u8; 2048],
            "application/pdf",
            Some("quarterly <numbers>"),
            None,
        )
        .await;
    let forever = s
        .upload(
            &c,
            "big.bin",
            &[1u8; 3 * 1024 * 1024 / 2],
            "application/octet-stream",
            None,
            Some(NEVER_EXPIRES),
        )
        .await;
    let body = page(&s, &c, "/files").await;
    assert_contains(&body, "<title>PicoShare - Files</title>", "title");
    assert_contains(&body, "Filter by name", "filter label");
    for header in ["Filename", "Size", "Uploaded", "Expires"] {
        assert_contains(&body, &format!("\">{header}</a>"), "sort link");
    }
    assert_contains(&body, "data-filename=\"report 1.pdf\"", "row attribute");
    assert_contains(
        &body,
        &format!("href=\"/-{id}/report%201.pdf\""),
        "file link",
    );
    assert_contains(&body, "2.00 kB", "human size");
    assert_contains(&body, "1.50 MB", "human size");
    assert_contains(
        &body,
        "title=\"quarterly &lt;numbers&gt;\"",
        "note indicator",
    );
    assert_contains(
        &body,
        &chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "upload date",
    );
    assert_contains(&body, "2040-01-01 (", "expiry with days left");
    assert_contains(&body, ">Never<", "never expires");
    assert_contains(
        &body,
        &format!("href=\"/files/{id}/info\">Information</a>"),
        "info link",
    );
    assert_contains(
        &body,
        &format!("href=\"/files/{forever}/edit\">Edit</a>"),
        "edit link",
    );
    assert_contains(
        &body,
        &format!("data-path=\"/-{id}\">Copy</button>"),
        "copy button",
    );
    assert_eq!(body_rows(&body), 2);
    // Newest first.
    assert!(body.find("big.bin").unwrap() < body.find("report 1.pdf").unwrap());
}

#[tokio::test]
async fn file_info_edit_and_delete_pages() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "notes.txt", b"hello world", "text/plain", None, None)
        .await;
    s.download(&id).await;
    assert!(
        eventually(std::time::Duration::from_secs(5), || !s
            .download_rows(&id)
            .is_empty())
        .await
    );

    let info = page(&s, &c, &format!("/files/{id}/info")).await;
    assert_contains(
        &info,
        "<title>PicoShare - File Information</title>",
        "title",
    );
    assert_contains(&info, "notes.txt", "filename");
    assert_contains(&info, "11 B", "size");
    assert_contains(&info, "2040-01-01 (", "expiry");
    assert_contains(
        &info,
        &format!("1 (<a href=\"/files/{id}/downloads\">History</a>)"),
        "downloads",
    );
    assert_contains(&info, "<em>None</em>", "no note");
    assert_contains(&info, "You", "uploader");
    assert_contains(&info, &format!("href=\"/-{id}/notes.txt\""), "full link");

    let edit = page(&s, &c, &format!("/files/{id}/edit")).await;
    assert_contains(&edit, "<title>PicoShare - Edit</title>", "title");
    assert_contains(&edit, "value=\"notes.txt\"", "filename input");
    assert_contains(&edit, ">Never expire</label>", "never checkbox");
    assert_contains(&edit, ">Expiration date</label>", "date label");
    assert_contains(&edit, "value=\"2040-01-01\"", "date value");
    assert_contains(&edit, ">Save</button>", "save");
    assert_contains(&edit, ">Delete</button>", "delete");
    assert_contains(&edit, ">Cancel</a>", "cancel");
    assert_contains(
        &edit,
        &format!("action=\"/files/{id}/confirm-delete\""),
        "delete target",
    );

    let del = page(&s, &c, &format!("/files/{id}/confirm-delete")).await;
    assert_contains(&del, "<title>PicoShare - Delete</title>", "title");
    assert_contains(
        &del,
        "Permanently delete <strong>notes.txt</strong>?",
        "question",
    );

    // A never-expiring file with a note.
    let never = s
        .upload(
            &c,
            "keep.txt",
            b"x",
            "text/plain",
            Some("keep me"),
            Some(NEVER_EXPIRES),
        )
        .await;
    let info = page(&s, &c, &format!("/files/{never}/info")).await;
    assert_contains(&info, "keep me", "note");
    assert_contains(&info, ">Never<", "never");
    assert_contains(&info, "0 (<a", "no downloads");
    let edit = page(&s, &c, &format!("/files/{never}/edit")).await;
    assert_contains(
        &edit,
        "type=\"checkbox\" name=\"never\" checked",
        "never ticked",
    );
}

#[tokio::test]
async fn unknown_and_malformed_ids_get_error_pages() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    for suffix in ["info", "edit", "confirm-delete", "downloads"] {
        let (status, body) = status_of(&s, &c, &format!("/files/{UNKNOWN_ID}/{suffix}")).await;
        assert_eq!(status, 404, "{suffix}");
        assert_contains(&body, "<title>PicoShare - Not Found</title>", suffix);
        let (status, body) = status_of(&s, &c, &format!("/files/short/{suffix}")).await;
        assert_eq!(status, 400, "{suffix}");
        assert_contains(&body, "<title>PicoShare - Bad Request</title>", suffix);
    }
}

/// The Go server's history is listed with browsers and platforms; the
/// unique-IP filter keeps one row.
#[tokio::test]
async fn downloads_page_shows_the_fixture_history() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _manifest) = copy_fixture(dir.path());
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;

    let body = page(&s, &c, "/files/UBeh8TYUGk/downloads").await;
    assert_contains(&body, "<title>PicoShare - Downloads</title>", "title");
    assert_contains(&body, "<h1>meeting-notes.txt</h1>", "heading");
    assert_contains(&body, ">Unique IPs only</label>", "checkbox");
    for text in ["Chrome", "Firefox", "Windows", "Linux", "127.0.0.1"] {
        assert_contains(&body, text, "history");
    }
    assert_eq!(body_rows(&body), 3);
    assert!(!body.contains("name=\"unique\" value=\"true\" checked"));

    let unique = page(&s, &c, "/files/UBeh8TYUGk/downloads?unique=true").await;
    assert_eq!(body_rows(&unique), 1);
    assert_contains(
        &unique,
        "name=\"unique\" value=\"true\" checked",
        "checked box",
    );

    let none = page(&s, &c, "/files/z9bcASFHGn/downloads").await;
    assert_contains(&none, "No downloads yet.", "empty history");
    assert!(!none.contains("Unique IPs only"));

    // The list and info pages of the Go database.
    let files = page(&s, &c, "/files").await;
    assert_contains(
        &files,
        "data-filename=\"meeting-notes.txt\"",
        "fixture file",
    );
    assert_contains(&files, "612 B", "fixture size");
    assert_contains(&files, "320.00 kB", "fixture size");
    let info = page(&s, &c, "/files/UBeh8TYUGk/info").await;
    assert_contains(&info, "3 (<a", "download count");
    let info = page(&s, &c, "/files/WhhprreMxo/info").await;
    assert_contains(
        &info,
        "Guest link: <a href=\"/g/NGNqHW3bVZpuLHpJ\">Vendor invoices</a>",
        "guest uploader",
    );
}

#[tokio::test]
async fn guest_link_pages() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let empty = page(&s, &c, "/guest-links").await;
    assert_contains(&empty, "<title>PicoShare - Guest Links</title>", "title");
    assert_contains(
        &empty,
        "href=\"/guest-links/new\">Create new</a>",
        "create link",
    );
    assert_contains(&empty, "No guest links yet.", "empty");

    let create = |body: serde_json::Value| {
        let c = c.clone();
        let url = s.url("/api/guest-links");
        async move {
            let resp = c.post(url).json(&body).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            let v: serde_json::Value = resp.json().await.unwrap();
            v["id"].as_str().unwrap().to_owned()
        }
    };
    let labelled = create(json!({
        "label": "Team uploads",
        "urlExpirationTime": NEVER_EXPIRES,
        "fileLifetime": "168h0m0s",
        "maxFileBytes": 5 * 1024 * 1024,
        "maxFileUploads": 3,
    }))
    .await;
    let unnamed = create(json!({
        "urlExpirationTime": FAR_FUTURE,
        "fileLifetime": "876000h0m0s",
    }))
    .await;
    let resp = c
        .put(s.url(&format!("/api/guest-links/{unnamed}/disable")))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());

    let body = page(&s, &c, "/guest-links").await;
    assert_eq!(body_rows(&body), 2);
    assert_contains(&body, &format!("data-guest-link-id=\"{labelled}\""), "row");
    assert_contains(
        &body,
        &format!("href=\"/g/{labelled}\">Team uploads</a>"),
        "label",
    );
    assert_contains(&body, "7 days", "file lifetime");
    assert_contains(&body, "5.00 MB", "max size");
    assert_contains(&body, "0 / 3", "uploads");
    assert_contains(&body, "0 / Unlimited", "unlimited uploads");
    assert_contains(&body, "<em>unnamed</em>", "unnamed");
    assert_contains(&body, "2040-01-01 (", "url expiry");
    assert_contains(&body, ">Disable</button>", "disable");
    assert_contains(&body, ">Enable</button>", "enable");
    assert_contains(&body, ">Delete</button>", "delete");
    assert_contains(
        &body,
        &format!("data-guest-link-id=\"{unnamed}\" class=\"inactive\""),
        "inactive row",
    );

    let new = page(&s, &c, "/guest-links/new").await;
    assert_contains(&new, "<title>PicoShare - New Guest Link</title>", "title");
    for label in [
        "Label",
        "Guest link expires",
        "Guest files expire",
        "Max file size (MB)",
        "Upload limit",
    ] {
        assert_contains(&new, &format!(">{label}</label>"), "form label");
    }
    assert_contains(&new, "value=\"876000h0m0s\" selected", "never by default");
    assert_contains(&new, ">Create</button>", "create");
}

#[tokio::test]
async fn settings_page_shows_the_default_lifetime() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let body = page(&s, &c, "/settings").await;
    assert_contains(&body, "<title>PicoShare - Settings</title>", "title");
    assert_contains(&body, ">Store files forever</label>", "checkbox");
    assert_contains(&body, ">Default file expiration</label>", "number");
    assert_contains(&body, ">Unit</label>", "unit");
    assert_contains(&body, "value=\"30\"", "default 30 days");
    assert_contains(&body, "value=\"days\" selected", "days");

    let put = |v: serde_json::Value| {
        let c = c.clone();
        let url = s.url("/api/settings");
        async move {
            let resp = c.put(url).json(&v).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200);
        }
    };
    put(json!({"defaultExpirationDays": 730})).await;
    let body = page(&s, &c, "/settings").await;
    assert_contains(&body, "value=\"2\"", "two years");
    assert_contains(&body, "value=\"years\" selected", "years");

    put(json!({"defaultNeverExpire": true})).await;
    let body = page(&s, &c, "/settings").await;
    assert_contains(&body, "name=\"never\" checked", "forever");
    assert_contains(&body, "value=\"30\" disabled", "disabled days");
}

#[tokio::test]
async fn information_page_shows_usage_and_version() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    s.upload(
        &c,
        "a.bin",
        &[0u8; 4096],
        "application/octet-stream",
        None,
        None,
    )
    .await;
    let body = page(&s, &c, "/information").await;
    assert_contains(
        &body,
        "<title>PicoShare - System Information</title>",
        "title",
    );
    if remote_storage().is_some() {
        assert_contains(&body, "S3-compatible object storage", "storage");
        assert_contains(&body, "PostgreSQL database:", "database");
    } else {
        assert_contains(&body, ">Disk usage</label>", "progress label");
        assert_contains(&body, "<progress id=\"disk-usage\"", "progress");
        assert_contains(&body, "Database files:", "database");
        assert_contains(&body, "Reclaimable space:", "reclaimable");
    }
    assert_contains(&body, "Upload data:", "upload data");
    assert_contains(&body, "4.00 kB", "upload data size");
    assert_contains(
        &body,
        &format!(
            "Version:</span> <span class=\"field-value\">{}",
            env!("CARGO_PKG_VERSION")
        ),
        "version",
    );
}
