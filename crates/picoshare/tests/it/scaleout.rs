//! Two server processes on different ports sharing one PostgreSQL schema and
//! one bucket prefix behave as one server: files, sessions, guest-link slots,
//! one-shot links, resumable uploads and garbage collection across both.
//!
//! These tests need the scale-out store (`PICOSHARE_TEST_STORAGE=remote`);
//! the SQLite run of the suite leaves them out with `--skip scaleout::`, and
//! they fail rather than pass unnoticed if run without it.

use std::path::Path;

use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_TYPE, COOKIE};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::limits::upload_with;

// Pauses, kills and outages, on services of their own.
mod faults;

/// Two servers on the same database path, hence the same schema and prefix.
async fn pair(db: &Path, extra: &[(&str, &str)]) -> (TestServer, TestServer) {
    assert!(
        remote_storage().is_some(),
        "scaleout tests need PICOSHARE_TEST_STORAGE=remote (see scripts/remote-services)"
    );
    let opts = |_: u8| {
        let mut o = ServerOptions::new().db(db);
        for (k, v) in extra {
            o = o.arg(k).arg(v);
        }
        o
    };
    let a = TestServer::start_with(opts(0)).await;
    let b = TestServer::start_with(opts(1)).await;
    assert_ne!(a.addr, b.addr);
    (a, b)
}

/// GETs `url` with `c` and parses the JSON reply.
async fn get_json(c: &reqwest::Client, url: String) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

fn set_clock(file: &Path, t: DateTime<Utc>) {
    std::fs::write(file, t.to_rfc3339()).unwrap();
}

#[tokio::test]
async fn a_file_uploaded_through_one_downloads_through_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(&dir.path().join("store.db"), &[]).await;
    let ca = a.admin_client().await;
    let cb = b.admin_client().await;
    // Three parts of 5 MiB and a bit: a real multipart upload.
    let data = random_bytes(mib(12) + 12_345, 91);
    let id = a
        .upload(
            &ca,
            "big.bin",
            &data,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    assert_eq!(sha256_hex(&b.download(&id).await), sha256_hex(&data));

    // A range across a part boundary, through the other server.
    let resp = plain_client()
        .get(b.url(&format!("/-{id}")))
        .header("Range", "bytes=5242000-5243999")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    assert_eq!(resp.bytes().await.unwrap(), &data[5_242_000..5_244_000]);

    // Both list it; deleting through B removes it for A.
    for (s, c) in [(&a, &ca), (&b, &cb)] {
        let list: Value = get_json(c, s.url("/api/entries")).await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    }
    let resp = cb
        .delete(b.url(&format!("/api/entry/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = plain_client()
        .get(a.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert!(
        eventually(std::time::Duration::from_secs(10), || a.orphan_chunks()
            == 0)
        .await,
        "the object was not deleted"
    );
}

/// Old objects of replaced files still waiting for their deletion.
fn old_versions_queued(server: &TestServer) -> i64 {
    count(
        &server.db(),
        "SELECT count(*) FROM picoshare_deleted_objects WHERE not_before IS NOT NULL",
        [],
    )
}

/// A download streaming from one instance keeps the version it started
/// with when the file is replaced through the other, for longer than a
/// lease (its instance renews its hold on the old object); the old object
/// is deleted a lease after the download ends.
#[tokio::test]
async fn a_replaced_version_is_kept_while_another_instance_streams_it() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(
        &dir.path().join("store.db"),
        &[("--instance-lease-secs", "3")],
    )
    .await;
    let ca = a.admin_client().await;
    let old = random_bytes(mib(12), 95);
    let id = a
        .upload(&ca, "v1.bin", &old, "application/octet-stream", None, None)
        .await;
    let resp = plain_client()
        .get(b.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut stream = Box::pin(resp.bytes_stream());
    let mut got = Vec::new();
    while got.len() < 64 * 1024 {
        got.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    let new = random_bytes(mib(6), 96);
    let form = Multipart::new().file("file", "v2.bin", Some("application/x-new"), &new);
    let ct = form.content_type();
    let resp = ca
        .put(a.url(&format!("/api/entry/{id}/content")))
        .header(CONTENT_TYPE, ct)
        .body(form.finish())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    for server in [&a, &b] {
        let body = plain_client()
            .get(server.url(&format!("/-{id}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(body[..] == new[..], "new downloads get the new version");
    }
    // Two leases: only b's renewed hold keeps the old object.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(old_versions_queued(&a), 1, "kept while b streams it");
    while let Some(piece) = stream.next().await {
        got.extend_from_slice(&piece.expect("the download is not cut"));
    }
    assert!(got == old, "the old version, whole ({} bytes)", got.len());
    drop(stream);
    assert!(
        eventually(std::time::Duration::from_secs(15), || {
            old_versions_queued(&a) == 0
        })
        .await,
        "deleted once the download ended"
    );
    assert_eq!(a.orphan_chunks(), 0);
}

#[tokio::test]
async fn a_session_is_valid_on_both_and_logout_ends_it_on_both() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(&dir.path().join("store.db"), &[]).await;
    let cookie = a.session_cookie().await;
    let probe = |s: &TestServer| {
        plain_client()
            .get(s.url("/api/entries"))
            .header(COOKIE, cookie.clone())
            .send()
    };
    assert_eq!(probe(&a).await.unwrap().status().as_u16(), 200);
    assert_eq!(probe(&b).await.unwrap().status().as_u16(), 200);
    let resp = plain_client()
        .delete(b.url("/api/auth"))
        .header(COOKIE, cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(probe(&a).await.unwrap().status().as_u16(), 401);
    assert_eq!(probe(&b).await.unwrap().status().as_u16(), 401);
}

#[tokio::test]
async fn guest_link_slots_are_never_exceeded_across_both() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(&dir.path().join("store.db"), &[]).await;
    let c = a.admin_client().await;
    let resp = c
        .post(a.url("/api/guest-links"))
        .header(CONTENT_TYPE, "application/json")
        .body(
            json!({
                "label": "shared",
                "urlExpirationTime": FAR_FUTURE,
                "fileLifetime": "168h0m0s",
                "maxFileBytes": null,
                "maxFileUploads": 3,
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let link = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut set = tokio::task::JoinSet::new();
    for i in 0..10u64 {
        let url = if i % 2 == 0 { a.url("") } else { b.url("") };
        let link = link.clone();
        set.spawn(async move {
            let form = Multipart::new().file(
                "file",
                &format!("g{i}.bin"),
                Some("application/octet-stream"),
                &random_bytes(300_000, i),
            );
            plain_client()
                .post(format!("{url}/api/guest/{link}"))
                .header(CONTENT_TYPE, form.content_type())
                .header("Accept", "application/json")
                .body(form.finish())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = set.join_next().await {
        statuses.push(s.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 401, 401, 401, 401, 401, 401, 401]);
    let listed: Value = get_json(&c, b.url("/api/entries")).await;
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
}

#[tokio::test]
async fn a_one_shot_file_is_downloaded_once_across_both() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(&dir.path().join("store.db"), &[]).await;
    let data = random_bytes(mib(2), 4);
    let id = upload_with(&a, &[("maxDownloads", "1")], "", &data).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let url = if i % 2 == 0 {
            a.url(&format!("/-{id}"))
        } else {
            b.url(&format!("/-{id}"))
        };
        set.spawn(async move {
            let resp = plain_client().get(&url).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.bytes().await.unwrap().to_vec())
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
}

#[tokio::test]
async fn a_resumable_upload_continues_on_the_other_server() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(&dir.path().join("store.db"), &[]).await;
    let ca = a.admin_client().await;
    let cb = b.admin_client().await;
    let data = random_bytes(mib(12), 77);
    let resp = ca
        .post(a.url("/api/tus"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", data.len().to_string())
        .header("Upload-Metadata", "filename dHVzLmJpbg==")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let location = header_str(resp.headers(), "location");
    let patch = |c: &reqwest::Client, url: String, offset: usize, end: usize| {
        c.patch(url)
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .body(data[offset..end].to_vec())
            .send()
    };
    // Past the first 5 MiB part, ending inside the second.
    let half = mib(6) + 1_000;
    let resp = patch(&ca, a.url(&location), 0, half).await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let head = cb
        .head(b.url(&location))
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header_str(head.headers(), "upload-offset"),
        half.to_string()
    );
    let resp = patch(&cb, b.url(&location), half, data.len())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        header_str(resp.headers(), "upload-offset"),
        data.len().to_string()
    );
    let list: Value = get_json(&ca, a.url("/api/entries")).await;
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(sha256_hex(&a.download(&id).await), sha256_hex(&data));
}

#[tokio::test]
async fn garbage_collection_on_both_at_once_deletes_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    let now = Utc::now();
    set_clock(&clock, now);
    let (a, b) = pair(
        &dir.path().join("store.db"),
        &[("--clock-file", clock.to_str().unwrap())],
    )
    .await;
    let ca = a.admin_client().await;
    let cb = b.admin_client().await;
    let soon =
        (now + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut ids = Vec::new();
    for i in 0..8u64 {
        let (s, c) = if i % 2 == 0 { (&a, &ca) } else { (&b, &cb) };
        ids.push(
            s.upload(
                c,
                &format!("e{i}.bin"),
                &random_bytes(100_000 + i as usize, i),
                "application/octet-stream",
                None,
                Some(&soon),
            )
            .await,
        );
    }
    let keep = a
        .upload(&ca, "keep.txt", b"keep", "text/plain", None, None)
        .await;
    set_clock(&clock, now + chrono::Duration::hours(2));
    let (ra, rb) = tokio::join!(
        ca.post(a.url("/api/admin/gc")).send(),
        cb.post(b.url("/api/admin/gc")).send()
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!((ra.status().as_u16(), rb.status().as_u16()), (200, 200));
    let (oa, ob): (Value, Value) = (ra.json().await.unwrap(), rb.json().await.unwrap());
    let deleted = oa["expiredEntries"].as_u64().unwrap() + ob["expiredEntries"].as_u64().unwrap();
    assert_eq!(deleted, 8, "{oa} {ob}");
    for id in &ids {
        for s in [&a, &b] {
            let resp = plain_client()
                .get(s.url(&format!("/-{id}")))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 404);
        }
    }
    assert_eq!(b.download(&keep).await, b"keep");
    assert!(
        eventually(std::time::Duration::from_secs(10), || a.orphan_chunks()
            == 0)
        .await,
        "objects of collected files remain queued: {}",
        a.orphan_chunks()
    );
    assert_eq!(a.entry_count(), 1);
}

/// `--copy-to-remote` moves a database written by the original Go server
/// into PostgreSQL and the bucket: every file byte-identical (checked against
/// the fixture's manifest), guest links, settings and download history
/// carried over; a second run copies nothing again; the source is unchanged.
#[tokio::test]
async fn copy_to_remote_moves_an_original_database() {
    assert!(
        remote_storage().is_some(),
        "scaleout tests need PICOSHARE_TEST_STORAGE=remote (see scripts/remote-services)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (db, manifest) = copy_fixture(dir.path());
    let before = std::fs::read(&db).unwrap();
    let copy = || {
        run_until_exit(
            ServerOptions::new().db(&db).arg("--copy-to-remote"),
            std::time::Duration::from_secs(60),
        )
    };
    let first = copy();
    assert!(
        first.status.is_some_and(|s| s.success()),
        "copy failed: {}",
        first.stderr
    );
    let entries = manifest["entries"].as_array().unwrap();
    assert!(
        first
            .stderr
            .contains(&format!("{} files copied", entries.len())),
        "{}",
        first.stderr
    );
    assert_eq!(first.stderr.matches("verified").count(), entries.len());
    let again = copy();
    assert!(
        again.status.is_some_and(|s| s.success()),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains(&format!(
            "0 files copied (0 B), {} already there",
            entries.len()
        )),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read(&db).unwrap(), before, "the source changed");

    // A server on the copy (the same path: the same schema and prefix).
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    for e in entries {
        let id = e["id"].as_str().unwrap();
        let body = s.download(id).await;
        assert_eq!(body.len() as u64, e["size"].as_u64().unwrap(), "{id}");
        assert_eq!(sha256_hex(&body), e["sha256"].as_str().unwrap(), "{id}");
    }
    let settings: Value = get_json(&c, s.url("/api/settings")).await;
    assert_eq!(
        settings["defaultExpirationDays"], manifest["settings"]["default_expiration_in_days"],
        "{settings}"
    );
    // Guest links have no list API; the owner's page lists them.
    let page = c
        .get(s.url("/guest-links"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for l in manifest["guest_links"].as_array().unwrap() {
        let id = l["id"].as_str().unwrap();
        assert!(page.contains(id), "guest link {id} missing from the page");
    }
    // Download history: the fixture's counts, plus the downloads above
    // (recorded in the background once each download starts, so the last
    // ones may take a moment on a busy machine).
    let started = std::time::Instant::now();
    loop {
        let listed: Value = get_json(&c, s.url("/api/entries")).await;
        let mut behind = None;
        for e in entries {
            let row = listed
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == e["id"])
                .unwrap_or_else(|| panic!("{} not listed", e["id"]));
            let (got, want) = (
                row["downloads"].as_u64().unwrap(),
                e["downloads"].as_u64().unwrap() + 1,
            );
            assert!(got <= want, "{row}: {got} downloads, {want} expected");
            if got < want {
                behind = Some(row.clone());
            }
        }
        let Some(row) = behind else { break };
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "a download is still not in the history after 10 s: {row}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// With `sslmode=require` the server talks to PostgreSQL over TLS and checks
/// its certificate: it starts with the CA that signed it, and refuses to
/// start, saying why, without it.
#[tokio::test]
async fn postgres_over_tls_checks_the_certificate() {
    let remote = remote_storage()
        .expect("scaleout tests need PICOSHARE_TEST_STORAGE=remote (see scripts/remote-services)");
    let ca = std::env::var("PICOSHARE_TEST_POSTGRES_CA_FILE")
        .expect("PICOSHARE_TEST_POSTGRES_CA_FILE (from scripts/remote-services)");
    let url = format!("{}?sslmode=require", remote.postgres_url);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");

    let refused = run_until_exit(
        ServerOptions::new().db(&db).env("PS_POSTGRES_URL", &url),
        std::time::Duration::from_secs(30),
    );
    assert!(
        refused.status.is_some_and(|s| !s.success()),
        "started without a trusted certificate: {}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("TLS") && refused.stderr.contains("certificate"),
        "{}",
        refused.stderr
    );

    let s = TestServer::start_with(
        ServerOptions::new()
            .db(&db)
            .env("PS_POSTGRES_URL", &url)
            .env("PS_POSTGRES_CA_FILE", &ca),
    )
    .await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "tls.txt", b"over TLS", "text/plain", None, None)
        .await;
    assert_eq!(s.download(&id).await, b"over TLS");
}

/// `--copy-to-remote` also carries this server's own additions over: a
/// file's download limit with the downloads used, its password, API tokens,
/// shares and the history of a replaced file.
#[tokio::test]
async fn copy_to_remote_keeps_limits_passwords_tokens_and_shares() {
    use base64::Engine;
    assert!(
        remote_storage().is_some(),
        "scaleout tests need PICOSHARE_TEST_STORAGE=remote (see scripts/remote-services)"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let limited = random_bytes(700_000, 5);
    let (limited_id, locked_id, share_id, token) = {
        let s = TestServer::start_with(ServerOptions::new().db(&db).sqlite()).await;
        let c = s.admin_client().await;
        let limited_id = upload_with(&s, &[("maxDownloads", "3")], "", &limited).await;
        assert_eq!(s.download(&limited_id).await, limited);
        let locked_id = upload_with(&s, &[("password", "open sesame")], "", b"first").await;
        // Its content replaced: the replacement history is copied too.
        let resp = c
            .put(s.url(&format!("/api/entry/{locked_id}/content?keepName=true")))
            .body("behind a password")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let token: Value = c
            .post(s.url("/api/tokens"))
            .json(&json!({ "name": "laptop" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let share: Value = c
            .post(s.url("/api/shares"))
            .json(&json!({ "title": "both", "entries": [limited_id, locked_id] }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            limited_id,
            locked_id,
            share["id"].as_str().unwrap().to_owned(),
            token["token"].as_str().unwrap().to_owned(),
        )
    };
    // The SQLite server is stopped (dropped); copy its database.
    let report = run_until_exit(
        ServerOptions::new().db(&db).arg("--copy-to-remote"),
        std::time::Duration::from_secs(60),
    );
    assert!(
        report.status.is_some_and(|s| s.success()),
        "copy failed: {}",
        report.stderr
    );
    assert!(
        report.stderr.contains("2 files copied"),
        "{}",
        report.stderr
    );

    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let listed: Value = get_json(&c, s.url("/api/entries")).await;
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == limited_id.as_str())
        .unwrap();
    assert_eq!(row["maxDownloads"], 3, "{row}");
    assert_eq!(row["downloadsUsed"], 1, "{row}");
    // The password still guards the file, and still opens it.
    let resp = plain_client()
        .get(s.url(&format!("/-{locked_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let basic = base64::engine::general_purpose::STANDARD.encode("anyone:open sesame");
    let resp = plain_client()
        .get(s.url(&format!("/-{locked_id}")))
        .header("Authorization", format!("Basic {basic}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.bytes().await.unwrap(), &b"behind a password"[..]);
    // The token still uploads.
    let resp = plain_client()
        .put(s.url("/api/upload/after.txt"))
        .header("Authorization", format!("Bearer {token}"))
        .body("after the move")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // The share lists both files.
    let share: Value = get_json(&c, s.url(&format!("/api/shares/{share_id}"))).await;
    assert_eq!(share["files"].as_array().unwrap().len(), 2, "{share}");
    // The replacement is in the file's history.
    let replaced: Value =
        get_json(&c, s.url(&format!("/api/entry/{locked_id}/replacements"))).await;
    let replaced = replaced.as_array().unwrap();
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_eq!(replaced[0]["oldSize"], 5);
    assert_eq!(replaced[0]["newSize"], 17);
}

/// D4: running `--copy-to-remote` again (the README's way to catch up
/// before the move) makes the destination equal to the source once more:
/// a file deleted since is deleted, an edit carries over, a replaced
/// content is copied again, and so do a used
/// download with its history, a new file, a revoked token, a logout and a
/// disabled guest link. Once a server has used the destination, the copy
/// refuses to run, saying why, and changes nothing.
#[tokio::test]
async fn copy_to_remote_again_carries_every_change_then_refuses_once_served() {
    assert!(
        remote_storage().is_some(),
        "scaleout tests need PICOSHARE_TEST_STORAGE=remote (see scripts/remote-services)"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let sqlite = || TestServer::start_with(ServerOptions::new().db(&db).sqlite());
    let copy = || {
        run_until_exit(
            ServerOptions::new().db(&db).arg("--copy-to-remote"),
            std::time::Duration::from_secs(60),
        )
    };
    let limited = random_bytes(300_000, 61);
    // The SQLite server as it was at the first copy.
    let (gone, kept, swapped, token_id, token, cookie, link) = {
        let s = sqlite().await;
        let c = s.admin_client().await;
        let gone = s
            .upload(&c, "gone.txt", b"deleted later", "text/plain", None, None)
            .await;
        let swapped = s
            .upload(
                &c,
                "swapped.txt",
                b"first version",
                "text/plain",
                None,
                None,
            )
            .await;
        let kept = upload_with(&s, &[("maxDownloads", "2")], "", &limited).await;
        let token: Value = c
            .post(s.url("/api/tokens"))
            .json(&json!({ "name": "laptop" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let link: Value = c
            .post(s.url("/api/guest-links"))
            .json(&json!({
                "label": "inbox",
                "urlExpirationTime": FAR_FUTURE,
                "fileLifetime": "168h0m0s",
                "maxFileBytes": null,
                "maxFileUploads": null,
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            gone,
            kept,
            swapped,
            token["id"].as_str().unwrap().to_owned(),
            token["token"].as_str().unwrap().to_owned(),
            s.session_cookie().await,
            link["id"].as_str().unwrap().to_owned(),
        )
    };
    let first = copy();
    assert!(
        first.status.is_some_and(|s| s.success()),
        "{}",
        first.stderr
    );
    // What changes on the SQLite server before the last copy.
    let added = {
        let mut s = sqlite().await;
        let c = s.admin_client().await;
        let ok = |r: reqwest::Response| assert!(r.status().is_success(), "{}", r.status());
        ok(c.delete(s.url(&format!("/api/entry/{gone}")))
            .send()
            .await
            .unwrap());
        ok(c.put(s.url(&format!("/api/entry/{kept}")))
            .json(&json!({ "filename": "renamed.bin", "note": "edited", "expiration": FAR_FUTURE }))
            .send()
            .await
            .unwrap());
        assert_eq!(s.download(&kept).await, limited);
        // A content replaced after the first copy is copied again.
        ok(c.put(s.url(&format!("/api/entry/{swapped}/content")))
            .body("swapped v2!")
            .send()
            .await
            .unwrap());
        ok(c.delete(s.url(&format!("/api/tokens/{token_id}")))
            .send()
            .await
            .unwrap());
        ok(plain_client()
            .delete(s.url("/api/auth"))
            .header(COOKIE, cookie.clone())
            .send()
            .await
            .unwrap());
        ok(c.put(s.url(&format!("/api/guest-links/{link}/disable")))
            .send()
            .await
            .unwrap());
        let added = s
            .upload(&c, "new.txt", b"added later", "text/plain", None, None)
            .await;
        // A graceful stop, as before any copy: download records gather for
        // a moment before they are written, and the stop writes them.
        s.stop();
        added
    };
    let again = copy();
    assert!(
        again.status.is_some_and(|s| s.success()),
        "{}",
        again.stderr
    );

    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let status = |r: reqwest::Response| r.status().as_u16();
    let get = |id: &str| plain_client().get(s.url(&format!("/-{id}"))).send();
    assert_eq!(
        status(get(&gone).await.unwrap()),
        404,
        "a deleted file came back"
    );
    assert_eq!(s.download(&added).await, b"added later");
    assert_eq!(
        s.download(&swapped).await,
        b"swapped v2!",
        "the replaced content"
    );
    let listed: Value = get_json(&c, s.url("/api/entries")).await;
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == kept.as_str())
        .unwrap_or_else(|| panic!("{kept} not listed: {listed}"));
    assert_eq!(row["filename"], "renamed.bin", "{row}");
    assert_eq!(row["note"], "edited", "{row}");
    assert_eq!(row["downloadsUsed"], 1, "{row}");
    assert_eq!(row["downloads"], 1, "{row}");
    let resp = plain_client()
        .put(s.url("/api/upload/after.txt"))
        .header("Authorization", format!("Bearer {token}"))
        .body("a revoked token")
        .send()
        .await
        .unwrap();
    assert_eq!(status(resp), 401, "a revoked token uploads");
    let resp = plain_client()
        .get(s.url("/api/entries"))
        .header(COOKIE, cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(status(resp), 401, "a logged-out session works");
    let form = Multipart::new().file("file", "g.bin", None, b"guest");
    let resp = plain_client()
        .post(s.url(&format!("/api/guest/{link}")))
        .header(CONTENT_TYPE, form.content_type())
        .body(form.finish())
        .send()
        .await
        .unwrap();
    assert_ne!(status(resp), 200, "a disabled guest link takes uploads");
    assert!(
        again
            .stderr
            .contains("2 files copied (22 B), 1 already there (1 updated), 1 removed"),
        "{}",
        again.stderr
    );
    // The server just used the destination: a third copy is refused.
    drop(s);
    let third = copy();
    assert!(
        third.status.is_some_and(|s| !s.success()),
        "{}",
        third.stderr
    );
    assert!(
        third
            .stderr
            .contains("has been used by a PicoShare server since"),
        "{}",
        third.stderr
    );
}

#[tokio::test]
async fn notifications_are_sent_once_by_either_instance() {
    use crate::webhooks::{create_destination, send_test, Receiver, SECRET};
    assert!(
        remote_storage().is_some(),
        "needs PICOSHARE_TEST_STORAGE=remote"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let opts = || {
        ServerOptions::new()
            .db(&db)
            .env("PS_HOOKS_RETRY_INITIAL_MS", "300")
    };
    let a = TestServer::start_with(opts()).await;
    let b = TestServer::start_with(opts()).await;
    let ca = a.admin_client().await;
    let cb = b.admin_client().await;
    // The first answer is a 500: its event is retried, by whichever
    // instance comes to it first.
    let rx = Receiver::start(1).await;
    let d = create_destination(
        &a,
        &ca,
        json!({"name": "hook", "url": rx.url("/hook"), "secret": SECRET}),
    )
    .await;
    let id = d["id"].as_str().unwrap().to_owned();
    // Events written through both instances at once: both delivery tasks
    // run, claiming rows with SKIP LOCKED.
    let (ids_a, ids_b) = tokio::join!(
        async {
            let mut v = Vec::new();
            for _ in 0..15 {
                v.push(send_test(&a, &ca, &id).await);
            }
            v
        },
        async {
            let mut v = Vec::new();
            for _ in 0..15 {
                v.push(send_test(&b, &cb, &id).await);
            }
            v
        }
    );
    let got = rx.wait_for("/hook", "test", 31).await;
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    let mut seen: Vec<String> = rx
        .all()
        .iter()
        .map(|r| r.header("x-picoshare-event-id"))
        .collect();
    assert_eq!(got.len(), 31);
    assert_eq!(seen.len(), 31, "30 events, one of them twice (the 500)");
    seen.sort();
    seen.dedup();
    let mut want: Vec<String> = ids_a.into_iter().chain(ids_b).collect();
    want.sort();
    assert_eq!(seen, want, "every event, and each delivered once");
}
