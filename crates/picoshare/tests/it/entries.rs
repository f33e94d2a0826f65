//! Editing (`PUT /api/entry/{id}`) and deleting (`DELETE /api/entry/{id}`)
//! entries.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Response};
use serde_json::json;

use crate::helpers::*;

async fn put(s: &TestServer, c: &Client, id: &str, body: serde_json::Value) -> Response {
    c.put(s.url(&format!("/api/entry/{id}")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Starts a server with one uploaded entry (with a note) and a logged-in
/// client.
async fn with_entry() -> (TestServer, Client, String) {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s
        .upload(
            &c,
            "original.txt",
            b"edit me",
            "text/plain",
            Some("old note"),
            None,
        )
        .await;
    (s, c, id)
}

/// A valid edit answers 200 and stores the new filename, note and
/// expiration (normalised to UTC); the download is unchanged.
#[tokio::test]
async fn edit_updates_metadata() {
    let (s, c, id) = with_entry().await;
    let resp = put(
        &s,
        &c,
        &id,
        json!({ "filename": "renamed.txt", "expiration": "2041-02-03T05:05:06+01:00", "note": "new note" }),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    let row = s.entry(&id).unwrap();
    assert_eq!(row.filename, "renamed.txt");
    assert_eq!(row.note.as_deref(), Some("new note"));
    assert_eq!(row.expiration_time.as_deref(), Some("2041-02-03T04:05:06Z"));
    assert_eq!(
        row.content_type, "text/plain",
        "an edit must not touch the content type"
    );
    assert_eq!(s.download(&id).await, b"edit me");
}

/// An edit without `expiration` makes the entry never expire (stored as
/// `2999-12-31T00:00:00Z`), and an empty expiration does the same.
#[tokio::test]
async fn edit_without_expiration_never_expires() {
    let (s, c, id) = with_entry().await;
    let resp = put(
        &s,
        &c,
        &id,
        json!({ "filename": "forever.txt", "note": "kept" }),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        s.entry(&id).unwrap().expiration_time.as_deref(),
        Some(NEVER_EXPIRES)
    );

    let resp = put(
        &s,
        &c,
        &id,
        json!({ "filename": "x.txt", "expiration": FAR_FUTURE, "note": "kept" }),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    let resp = put(
        &s,
        &c,
        &id,
        json!({ "filename": "x.txt", "expiration": "", "note": "kept" }),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        s.entry(&id).unwrap().expiration_time.as_deref(),
        Some(NEVER_EXPIRES)
    );
}

/// A null or empty note clears the note (stored as NULL).
#[tokio::test]
async fn edit_with_null_or_empty_note_clears_it() {
    let (s, c, id) = with_entry().await;
    for note in [json!(null), json!("")] {
        put(
            &s,
            &c,
            &id,
            json!({ "filename": "n.txt", "note": "temporary" }),
        )
        .await;
        assert_eq!(s.entry(&id).unwrap().note.as_deref(), Some("temporary"));
        let resp = put(
            &s,
            &c,
            &id,
            json!({ "filename": "n.txt", "expiration": FAR_FUTURE, "note": note }),
        )
        .await;
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            s.entry(&id).unwrap().note,
            None,
            "note {note} should clear it"
        );
    }
}

/// After a rename, the download's Content-Disposition shows the new name.
#[tokio::test]
async fn rename_changes_download_name() {
    let (s, c, id) = with_entry().await;
    let resp = put(
        &s,
        &c,
        &id,
        json!({ "filename": "new name.txt", "expiration": FAR_FUTURE, "note": null }),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_disposition_names(resp.headers(), "new name.txt");
}

/// An empty filename is 400 `Bad request: filename must be non-empty` and
/// changes nothing.
#[tokio::test]
async fn edit_with_empty_filename_is_400() {
    let (s, c, id) = with_entry().await;
    let resp = put(
        &s,
        &c,
        &id,
        json!({ "filename": "", "expiration": FAR_FUTURE, "note": null }),
    )
    .await;
    assert_error(resp, 400, "Bad request: filename must be non-empty").await;
    let row = s.entry(&id).unwrap();
    assert_eq!(row.filename, "original.txt");
    assert_eq!(row.note.as_deref(), Some("old note"));
}

/// A filename with a newline (or other forbidden character) is 400
/// `Bad request: illegal characters in filename`.
#[tokio::test]
async fn edit_with_illegal_filename_characters_is_400() {
    let (s, c, id) = with_entry().await;
    for name in [
        "evil\r\nSet-Cookie: x=y.txt",
        "line\nbreak.txt",
        "a/b.txt",
        "tab\t.txt",
        "back\\slash.txt",
    ] {
        let resp = put(
            &s,
            &c,
            &id,
            json!({ "filename": name, "expiration": FAR_FUTURE, "note": null }),
        )
        .await;
        assert_error(resp, 400, "Bad request: illegal characters in filename").await;
    }
    assert_eq!(s.entry(&id).unwrap().filename, "original.txt");
}

/// A note with a script tag is refused with `Bad request: ...`.
#[tokio::test]
async fn edit_with_html_note_is_400() {
    let (s, c, id) = with_entry().await;
    let resp = put(
        &s,
        &c,
        &id,
        json!({ "filename": "a.txt", "expiration": FAR_FUTURE, "note": "<script>" }),
    )
    .await;
    assert_error_prefix(resp, 400, "Bad request:").await;
    assert_eq!(s.entry(&id).unwrap().note.as_deref(), Some("old note"));
}

/// A past expiration is refused with `Bad request: ...`.
#[tokio::test]
async fn edit_with_past_expiration_is_400() {
    let (s, c, id) = with_entry().await;
    let resp = put(
        &s,
        &c,
        &id,
        json!({ "filename": "a.txt", "expiration": "2001-01-01T00:00:00Z", "note": null }),
    )
    .await;
    assert_error_prefix(resp, 400, "Bad request:").await;
    assert_eq!(
        s.entry(&id).unwrap().expiration_time.as_deref(),
        Some(FAR_FUTURE)
    );
}

/// Editing an unknown (well-formed) ID is 404 `Invalid entry ID`.
#[tokio::test]
async fn edit_unknown_id_is_404() {
    let (s, c, _) = with_entry().await;
    let resp = put(
        &s,
        &c,
        UNKNOWN_ID,
        json!({ "filename": "a.txt", "expiration": FAR_FUTURE, "note": null }),
    )
    .await;
    assert_error(resp, 404, "Invalid entry ID").await;
    assert!(
        s.entry(UNKNOWN_ID).is_none(),
        "an edit must not create an entry"
    );
}

/// Editing a malformed ID is 400 `bad entry ID: ...`.
#[tokio::test]
async fn edit_bad_id_is_400() {
    let (s, c, _) = with_entry().await;
    for bad in ["short", "aaaaaaaaa0"] {
        let resp = put(&s, &c, bad, json!({ "filename": "a.txt", "note": null })).await;
        assert_error_prefix(resp, 400, "bad entry ID:").await;
    }
}

/// A body that is not JSON is 400 `Bad request: ...`.
#[tokio::test]
async fn edit_with_malformed_json_is_400() {
    let (s, c, id) = with_entry().await;
    let resp = c
        .put(s.url(&format!("/api/entry/{id}")))
        .header(CONTENT_TYPE, "application/json")
        .body("{\"filename\": ")
        .send()
        .await
        .unwrap();
    assert_error_prefix(resp, 400, "Bad request:").await;
    let resp = c
        .put(s.url(&format!("/api/entry/{id}")))
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"filename": 42}"#)
        .send()
        .await
        .unwrap();
    assert_error_prefix(resp, 400, "Bad request:").await;
    assert_eq!(s.entry(&id).unwrap().filename, "original.txt");
}

/// Deleting answers 200; afterwards the download is 404 and no entry, chunk
/// or download-history rows remain for that ID. Other entries are untouched.
#[tokio::test]
async fn delete_removes_everything() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let data = random_bytes(mib(1), 20);
    let id = s
        .upload(
            &c,
            "doomed.bin",
            &data,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    let keep = s
        .upload(&c, "keep.txt", b"keep", "text/plain", None, None)
        .await;
    assert_eq!(s.download(&id).await, data);
    assert!(eventually(Duration::from_secs(5), || !s.download_rows(&id).is_empty()).await);
    assert!(s.chunk_rows(&id) > 0);

    let resp = c
        .delete(s.url(&format!("/api/entry/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "entry not found").await;
    assert!(s.entry(&id).is_none());
    assert_eq!(s.chunk_rows(&id), 0, "chunks remain");
    // Neither the old history nor the 404 above may leave a row.
    assert!(s.download_rows(&id).is_empty(), "download history remains");
    assert_eq!(s.download(&keep).await, b"keep");
}

/// Deleting an ID that does not exist is still 200.
#[tokio::test]
async fn delete_unknown_id_is_200() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let resp = c
        .delete(s.url(&format!("/api/entry/{UNKNOWN_ID}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// Deleting a malformed ID is 400 `bad entry ID: ...`.
#[tokio::test]
async fn delete_bad_id_is_400() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    for bad in ["abc", "aaaaaaaaaO"] {
        let resp = c
            .delete(s.url(&format!("/api/entry/{bad}")))
            .send()
            .await
            .unwrap();
        assert_error_prefix(resp, 400, "bad entry ID:").await;
    }
}

/// A JSON body over 64 KiB is refused with 413 and a message (our error
/// format), on the owner's routes and on login alike.
#[tokio::test]
async fn oversized_json_is_refused() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s.upload(&c, "a.txt", b"a", "text/plain", None, None).await;
    let huge = serde_json::json!({ "filename": "b.txt", "note": "x".repeat(100_000) });
    let resp = c
        .put(s.url(&format!("/api/entry/{id}")))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_error(
        resp,
        413,
        "Request body too large: JSON requests are limited to 64 KiB.",
    )
    .await;
    let resp = plain_client()
        .post(s.url("/api/auth"))
        .json(&serde_json::json!({ "sharedSecretKey": "y".repeat(100_000) }))
        .send()
        .await
        .unwrap();
    assert_error(
        resp,
        413,
        "Request body too large: JSON requests are limited to 64 KiB.",
    )
    .await;
    assert_eq!(s.entry(&id).unwrap().filename, "a.txt", "nothing changed");
}
