//! `POST /api/entry`: what an upload stores, and every way it is refused.
//!
//! Every refused upload is followed by a look into the database: no entry,
//! and no chunk rows left behind by the part of the file that was streamed
//! before the error was found.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;

use crate::helpers::*;

/// What a refused upload's body must look like.
enum Expect {
    Exact(&'static str),
    Prefix(&'static str),
}

/// Sends an upload that must be refused with 400 and checks that nothing
/// (no entry, no chunks) stays behind.
async fn assert_upload_refused(s: &TestServer, query: &str, form: Multipart, expect: Expect) {
    let c = s.admin_client().await;
    let resp = s.post_entry(&c, query, form).await;
    match expect {
        Expect::Exact(msg) => assert_error(resp, 400, msg).await,
        Expect::Prefix(prefix) => {
            assert_error_prefix(resp, 400, prefix).await;
        }
    }
    assert_no_leftovers(s).await;
}

async fn assert_no_leftovers(s: &TestServer) {
    assert_eq!(s.entry_count(), 0, "a refused upload created an entry");
    let clean = eventually(Duration::from_secs(5), || s.orphan_chunks() == 0).await;
    assert!(
        clean,
        "{} orphan chunk rows left after a refused upload",
        s.orphan_chunks()
    );
    assert!(
        s.tmp_files().is_empty(),
        "temp files left: {:?}",
        s.tmp_files()
    );
}

/// A successful upload answers 200 `{"id": ...}` with a 10-character ID from
/// the look-alike-free alphabet, and the bytes download unchanged.
#[tokio::test]
async fn upload_returns_well_formed_id() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let data = random_bytes(5000, 1);
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = s
            .upload(
                &c,
                &format!("f{i}.bin"),
                &data,
                "application/x-test",
                None,
                None,
            )
            .await;
        assert_eq!(s.download(&id).await, data);
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "IDs must be unique");
}

/// A note sent before the file part is stored, with filename, content type
/// (verbatim), expiration and upload time in PicoShare's stored formats.
#[tokio::test]
async fn note_before_file_is_stored() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let form = Multipart::new().text("note", "for the team").file(
        "file",
        "notes.txt",
        Some("text/plain;charset=UTF-8"),
        b"hello notes",
    );
    let id = upload_id(
        s.post_entry(&c, "?expiration=2040-01-01T00:00:00Z", form)
            .await,
    )
    .await;
    let row = s.entry(&id).expect("entry row");
    assert_eq!(row.filename, "notes.txt");
    assert_eq!(
        row.content_type, "text/plain;charset=UTF-8",
        "content type must be stored verbatim"
    );
    assert_eq!(row.note.as_deref(), Some("for the team"));
    assert_eq!(row.expiration_time.as_deref(), Some("2040-01-01T00:00:00Z"));
    assert_eq!(row.guest_link_id, None);
    let uploaded = assert_stored_time(&row.upload_time);
    let age = chrono::Utc::now() - uploaded;
    assert!(
        age.num_seconds().abs() < 120,
        "upload_time {} is not now",
        row.upload_time
    );
}

/// A note sent after the file part (here after more than one chunk of data)
/// is stored too.
#[tokio::test]
async fn note_after_file_is_stored() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let data = random_bytes(mib(1) + 3, 2);
    let form = Multipart::new()
        .file("file", "after.bin", Some("application/x-after"), &data)
        .text("note", "note comes last");
    let id = upload_id(
        s.post_entry(&c, &format!("?expiration={FAR_FUTURE}"), form)
            .await,
    )
    .await;
    let row = s.entry(&id).expect("entry row");
    assert_eq!(row.note.as_deref(), Some("note comes last"));
    assert_eq!(row.filename, "after.bin");
    assert_eq!(sha256_hex(&s.download(&id).await), sha256_hex(&data));
}

/// Without a note the stored note is NULL (not an empty string).
#[tokio::test]
async fn upload_without_note_stores_null() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "plain.txt", b"x", "text/plain", None, None)
        .await;
    assert_eq!(s.entry(&id).unwrap().note, None);
    let id = s
        .upload(&c, "empty-note.txt", b"x", "text/plain", Some(""), None)
        .await;
    assert_eq!(
        s.entry(&id).unwrap().note,
        None,
        "an empty note means no note"
    );
}

/// An expiration with a UTC offset is stored normalised to UTC.
#[tokio::test]
async fn expiration_is_stored_in_utc() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let form = Multipart::new().file("file", "tz.txt", Some("text/plain"), b"tz");
    let id = upload_id(
        s.post_entry(&c, "?expiration=2040-06-01T12:00:00%2B02:00", form)
            .await,
    )
    .await;
    assert_eq!(
        s.entry(&id).unwrap().expiration_time.as_deref(),
        Some("2040-06-01T10:00:00Z")
    );
}

/// A 500-byte note and a 255-byte filename are exactly at the limits and are
/// accepted.
#[tokio::test]
async fn note_and_filename_at_the_limit_are_accepted() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let note = "n".repeat(500);
    let name = format!("{}.txt", "f".repeat(251));
    assert_eq!(name.len(), 255);
    let id = s
        .upload(&c, &name, b"limits", "text/plain", Some(&note), None)
        .await;
    let row = s.entry(&id).unwrap();
    assert_eq!(row.note.as_deref(), Some(note.as_str()));
    assert_eq!(row.filename, name);
}

/// An empty `expiration` is 400 `Invalid expiration URL parameter: ...`.
#[tokio::test]
async fn empty_expiration_is_refused() {
    let s = TestServer::start().await;
    let form = Multipart::new().file(
        "file",
        "a.bin",
        Some("application/octet-stream"),
        &random_bytes(mib(1), 3),
    );
    assert_upload_refused(
        &s,
        "?expiration=",
        form,
        Expect::Prefix("Invalid expiration URL parameter:"),
    )
    .await;
}

/// Without `expiration`, an upload gets the settings' default lifetime: 30
/// days on a new database, then whatever `PUT /api/settings` chose (never).
#[tokio::test]
async fn missing_expiration_takes_the_default_lifetime() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let before = chrono::Utc::now();
    let form = Multipart::new().file("file", "a.txt", Some("text/plain"), b"default");
    let id = upload_id(s.post_entry(&c, "", form).await).await;
    let row = s.entry(&id).expect("stored");
    let exp =
        chrono::DateTime::parse_from_rfc3339(row.expiration_time.as_deref().unwrap()).unwrap();
    let days = (exp.with_timezone(&chrono::Utc) - before).num_hours();
    assert!(
        (30 * 24 - 1..=30 * 24 + 1).contains(&days),
        "expires in {days} h, want 30 days"
    );

    let resp = c
        .put(s.url("/api/settings"))
        .json(&serde_json::json!({"defaultExpirationDays": 7, "defaultNeverExpire": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let form = Multipart::new().file("file", "b.txt", Some("text/plain"), b"forever");
    let id = upload_id(s.post_entry(&c, "", form).await).await;
    assert_eq!(
        s.entry(&id).unwrap().expiration_time.as_deref(),
        Some("2999-12-31T00:00:00Z")
    );
}

/// An expiration in the past is refused with the original's exact message.
#[tokio::test]
async fn past_expiration_is_refused() {
    let s = TestServer::start().await;
    let form = Multipart::new().file("file", "a.txt", Some("text/plain"), b"past");
    assert_upload_refused(
        &s,
        "?expiration=2001-01-01T00:00:00Z",
        form,
        Expect::Exact(
            "Invalid expiration URL parameter: expire time must be at least one hour in the future",
        ),
    )
    .await;
}

/// An expiration only 30 minutes away is refused: it must be at least an
/// hour in the future.
#[tokio::test]
async fn expiration_within_the_hour_is_refused() {
    let s = TestServer::start().await;
    let soon = rfc3339_from_now(chrono::Duration::minutes(30));
    let form = Multipart::new().file("file", "a.txt", Some("text/plain"), b"soon");
    assert_upload_refused(
        &s,
        &format!("?expiration={soon}"),
        form,
        Expect::Exact(
            "Invalid expiration URL parameter: expire time must be at least one hour in the future",
        ),
    )
    .await;
}

/// An expiration that is not RFC 3339 is refused, naming the format problem.
#[tokio::test]
async fn garbage_expiration_is_refused() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let form = Multipart::new().file("file", "a.txt", Some("text/plain"), b"garbage");
    let resp = s.post_entry(&c, "?expiration=next-tuesday", form).await;
    let body = assert_error_prefix(resp, 400, "Invalid expiration URL parameter: ").await;
    assert!(
        body.contains("unrecognized format for expiration time"),
        "body should explain the format problem: {body:?}"
    );
    assert_no_leftovers(&s).await;
}

/// An empty file is refused: `invalid request: file must be non-empty`.
#[tokio::test]
async fn empty_file_is_refused() {
    let s = TestServer::start().await;
    let form = Multipart::new().file("file", "empty.txt", Some("text/plain"), b"");
    assert_upload_refused(
        &s,
        &format!("?expiration={FAR_FUTURE}"),
        form,
        Expect::Exact("invalid request: file must be non-empty"),
    )
    .await;
}

/// A form without a `file` part is refused with `invalid request: ...`.
#[tokio::test]
async fn missing_file_part_is_refused() {
    let s = TestServer::start().await;
    let form = Multipart::new().text("note", "where is the file?");
    assert_upload_refused(
        &s,
        &format!("?expiration={FAR_FUTURE}"),
        form,
        Expect::Prefix("invalid request:"),
    )
    .await;
}

/// Filenames `.` and `..x` are refused: `filename cannot begin with dots`.
#[tokio::test]
async fn dot_filenames_are_refused() {
    let s = TestServer::start().await;
    for name in [".", "..x"] {
        let form = Multipart::new().file("file", name, Some("text/plain"), b"dots");
        assert_upload_refused(
            &s,
            &format!("?expiration={FAR_FUTURE}"),
            form,
            Expect::Exact("invalid request: filename cannot begin with dots"),
        )
        .await;
    }
}

/// A filename over 255 bytes (128 two-byte characters) is refused:
/// `filename too long`; the limit counts bytes, not characters.
#[tokio::test]
async fn long_filename_is_refused() {
    let s = TestServer::start().await;
    for name in ["f".repeat(256), "Ö".repeat(128)] {
        let form = Multipart::new().file("file", &name, Some("text/plain"), b"long name");
        assert_upload_refused(
            &s,
            &format!("?expiration={FAR_FUTURE}"),
            form,
            Expect::Exact("invalid request: filename too long"),
        )
        .await;
    }
}

/// A note over 500 bytes is refused (`note is too long`), also when it comes
/// after a multi-chunk file whose chunks must then be discarded.
#[tokio::test]
async fn long_note_is_refused() {
    let s = TestServer::start().await;
    let form = Multipart::new().text("note", &"n".repeat(501)).file(
        "file",
        "a.txt",
        Some("text/plain"),
        b"short",
    );
    assert_upload_refused(
        &s,
        &format!("?expiration={FAR_FUTURE}"),
        form,
        Expect::Exact("invalid request: note is too long"),
    )
    .await;
    let form = Multipart::new()
        .file(
            "file",
            "big.bin",
            Some("application/octet-stream"),
            &random_bytes(mib(1) + 1, 4),
        )
        .text("note", &"Ö".repeat(251));
    assert_upload_refused(
        &s,
        &format!("?expiration={FAR_FUTURE}"),
        form,
        Expect::Exact("invalid request: note is too long"),
    )
    .await;
}

/// A note with a script or iframe tag is refused: `note must not contain
/// HTML tags`.
#[tokio::test]
async fn html_note_is_refused() {
    let s = TestServer::start().await;
    for note in ["<script>alert(1)</script>", "see < iframe >", "x</script >"] {
        let form = Multipart::new()
            .file(
                "file",
                "a.bin",
                Some("application/octet-stream"),
                &random_bytes(400_000, 5),
            )
            .text("note", note);
        assert_upload_refused(
            &s,
            &format!("?expiration={FAR_FUTURE}"),
            form,
            Expect::Exact("invalid request: note must not contain HTML tags"),
        )
        .await;
    }
}

/// The literal note `null` is refused: `value of 'null' is not allowed`.
#[tokio::test]
async fn null_note_is_refused() {
    let s = TestServer::start().await;
    let form = Multipart::new().text("note", "null").file(
        "file",
        "a.txt",
        Some("text/plain"),
        b"null note",
    );
    assert_upload_refused(
        &s,
        &format!("?expiration={FAR_FUTURE}"),
        form,
        Expect::Exact("invalid request: value of 'null' is not allowed"),
    )
    .await;
}

/// A body that is not multipart/form-data is refused with 400.
#[tokio::test]
async fn non_multipart_body_is_refused() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let resp = c
        .post(s.url(&format!("/api/entry?expiration={FAR_FUTURE}")))
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"file": "not really"}"#)
        .send()
        .await
        .unwrap();
    assert_error_prefix(resp, 400, "invalid request:").await;
    assert_no_leftovers(&s).await;
}

/// A multipart body cut off before its closing boundary is refused with 400
/// and leaves nothing behind.
#[tokio::test]
async fn truncated_multipart_is_refused() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let form = Multipart::new().file(
        "file",
        "cut.bin",
        Some("application/octet-stream"),
        &random_bytes(mib(1), 6),
    );
    let content_type = form.content_type();
    let mut body = form.finish();
    body.truncate(body.len() - 100);
    let resp = c
        .post(s.url(&format!("/api/entry?expiration={FAR_FUTURE}")))
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_error_prefix(resp, 400, "invalid request:").await;
    assert_no_leftovers(&s).await;
}
