//! `picoshare rollback-check`: before going back to the original, the files
//! it would serve to anyone and the data it ignores, read from the SQLite
//! file (while the server runs, or after it stopped).

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::json;

use crate::helpers::*;

fn rollback_check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picoshare"))
        .args(args)
        .env_clear()
        .output()
        .expect("run picoshare rollback-check")
}

fn report(db: &Path) -> String {
    let out = rollback_check(&["rollback-check", "--db", db.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "rollback-check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[track_caller]
fn assert_has(text: &str, want: &str) {
    assert!(text.contains(want), "{want:?} missing in:\n{text}");
}

/// Every kind of finding, with the server running and after it stopped: the
/// protected files (a password, a limit, a used-up one-shot link), an
/// expired file, the API tokens by name, the shares, an unfinished resumable
/// upload, the sessions; an unprotected file is not listed.
#[tokio::test]
async fn rollback_check_lists_what_would_become_public_and_what_would_be_lost() {
    let mut s = TestServer::start().await;
    let c = s.admin_client().await;
    let upload = |name: &'static str, fields: Vec<(&'static str, &'static str)>| {
        let (s, c) = (&s, &c);
        async move {
            let mut form = Multipart::new();
            for (k, v) in fields {
                form = form.text(k, v);
            }
            form = form.file("file", name, Some("text/plain"), b"some bytes");
            upload_id(
                s.post_entry(c, &format!("?expiration={FAR_FUTURE}"), form)
                    .await,
            )
            .await
        }
    };
    let open = upload("open.txt", vec![]).await;
    let secret = upload("secret.txt", vec![("password", "hunter22")]).await;
    let limited = upload("limited.txt", vec![("maxDownloads", "3")]).await;
    let once = upload("once.txt", vec![("maxDownloads", "1")]).await;
    let old = upload("old.txt", vec![]).await;
    // The one-shot link is used up: 410 here.
    let resp = plain_client()
        .get(s.url(&format!("/-{once}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"some bytes");
    let gone = eventually(std::time::Duration::from_secs(10), || {
        let conn = s.db();
        count(
            &conn,
            "SELECT count(*) FROM picoshare_entry_limits WHERE entry_id = ?1 AND downloads_used = 1",
            [&once],
        ) == 1
    })
    .await;
    assert!(gone, "the one-shot download was not counted");

    let resp = c
        .post(s.url("/api/tokens"))
        .json(&json!({ "name": "laptop" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = c
        .post(s.url("/api/shares"))
        .json(&json!({ "title": "Holiday", "entries": [open, limited] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let share = resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A resumable upload of 3 MiB with 1 MiB received.
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let resp = c
        .post(s.url("/api/tus"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", (3u64 << 20).to_string())
        .header("Upload-Metadata", format!("filename {}", b64("big.iso")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let location = header_str(resp.headers(), "location");
    let resp = c
        .patch(s.url(&location))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(vec![7u8; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);

    // A file replaced twice (its name kept).
    let notes = upload("notes.txt", vec![]).await;
    for body in ["second", "third"] {
        let resp = c
            .put(s.url(&format!("/api/entry/{notes}/content?keepName=true")))
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    // The old contents are freed by a writer job right after the switch.
    let freed = eventually(std::time::Duration::from_secs(10), || {
        let sql = "SELECT count(*) FROM picoshare_replacements WHERE old_content_id IS NOT NULL";
        count(&s.db(), sql, []) == 0
    })
    .await;
    assert!(freed, "the old contents were not freed");

    // While the server runs.
    let text = report(&s.db_path);
    assert_has(
        &text,
        "Content replacements: 2 (1 file): their history is lost (each file keeps its current content at its link, and cannot go back to an earlier one)\n",
    );
    assert_has(
        &text,
        &format!("/-{notes}  notes.txt  (replaced 2 times)\n"),
    );
    assert!(!text.contains("never opened"), "{text}");
    assert_has(
        &text,
        "Files that would become public, without their password or download limit: 3\n",
    );
    assert_has(&text, &format!("/-{secret}  secret.txt  (password)\n"));
    assert_has(
        &text,
        &format!("/-{limited}  limited.txt  (download limit 3, 0 used)\n"),
    );
    assert_has(
        &text,
        &format!(
            "/-{once}  once.txt  (download limit 1, used up (unavailable here, downloadable again there))\n"
        ),
    );
    assert!(!text.contains(&format!("/-{open}")), "{text}");
    assert_has(&text, "API tokens: 1 (\"laptop\")");
    assert_has(&text, "Shares: 1: their /s/ links answer 404");
    assert_has(&text, &format!("/s/{share}  Holiday  (2 files)\n"));
    assert_has(&text, "Unfinished resumable uploads: 1: lost");
    assert_has(&text, "big.iso  1.0 MiB of 3.0 MiB received\n");
    assert_has(&text, "Login sessions: 1: ");
    assert_has(&text, "refused here and served there until its garbage collection (which first runs 7 hours after it starts): 0\n");

    // After it stopped, with one file past its expiry (no request can
    // make one: expirations are at least an hour ahead).
    s.stop();
    open_db_read_write(&s.db_path)
        .execute(
            "UPDATE entries SET expiration_time = '2026-01-01T00:00:00Z' WHERE id = ?1",
            [&old],
        )
        .unwrap();
    let text = report(&s.db_path);
    assert_has(&text, "after it starts): 1\n");
    assert_has(
        &text,
        &format!("/-{old}  old.txt  (expired 2026-01-01T00:00:00Z)\n"),
    );
    // It only reads: the server opens the database again, protections intact.
    let s = TestServer::start_on_db(&s.db_path).await;
    let resp = plain_client()
        .get(s.url(&format!("/-{secret}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "still protected here");
}

/// On a database only the original wrote, nothing of this server's can be
/// lost; `-db` may come before or after the command; a missing file or one
/// that is not PicoShare's is an error with a reason, and nothing is created.
#[test]
fn rollback_check_of_an_original_database_and_of_bad_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = copy_fixture(dir.path());
    let text = report(&db);
    assert_has(&text, "This server has never opened this database");
    assert_has(&text, "without their password or download limit: 0\n");
    let before = report(&db);
    let out = rollback_check(&["-db", db.to_str().unwrap(), "rollback-check"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), before);

    let missing = dir.path().join("none").join("store.db");
    let out = rollback_check(&["rollback-check", "-db", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("there is no database file at"), "{err}");
    assert!(!missing.parent().unwrap().exists(), "a folder was created");

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER);")
        .unwrap();
    let out = rollback_check(&["rollback-check", "--db", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a PicoShare database"), "{err}");
}

/// Going back to the original and returning: the original's garbage
/// collection deleted an unfinished resumable upload's bytes (chunks with no
/// entry). At the next start the upload starts over from 0, its client is
/// told so, and the file it then completes is whole.
#[tokio::test]
async fn an_unfinished_upload_whose_bytes_the_original_deleted_starts_over() {
    let mut s = TestServer::start().await;
    let c = s.admin_client().await;
    let data = random_bytes(3 << 20, 20);
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let resp = c
        .post(s.url("/api/tus"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", data.len().to_string())
        .header("Upload-Metadata", format!("filename {}", b64("big.bin")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let location = header_str(resp.headers(), "location");
    let first = (1 << 20) + 1000;
    let resp = c
        .patch(s.url(&location))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(data[..first].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    s.stop();
    // What the original's garbage collection does to chunks without an entry.
    let deleted = open_db_read_write(&s.db_path)
        .execute(
            "DELETE FROM entries_data WHERE id NOT IN (SELECT id FROM entries)",
            [],
        )
        .unwrap();
    assert!(deleted > 0);

    let s = TestServer::start_on_db(&s.db_path).await;
    let c = s.admin_client().await;
    let head = |c: reqwest::Client, url: String| async move {
        let resp = c
            .head(url)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        header_str(resp.headers(), "upload-offset")
    };
    assert_eq!(head(c.clone(), s.url(&location)).await, "0");
    // A client that did not ask first is refused, and told where to start.
    let resp = c
        .patch(s.url(&location))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", first.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(data[first..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    let resp = c
        .patch(s.url(&location))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let id = header_str(resp.headers(), "picoshare-entry-id");
    assert_eq!(s.download(&id).await, data);
}

/// Notification destinations and their undelivered events (the outbox) are
/// named with what going back would do to them, read from the file while
/// the server runs. (The outbox's bound itself is tested on both stores,
/// `webhooks::a_full_outbox_drops_the_oldest_events`.)
#[tokio::test]
async fn rollback_check_names_notification_destinations_and_waiting_events() {
    use crate::webhooks::{closed_port, create_destination, send_test, SECRET};
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let text = report(&s.db_path);
    assert_has(&text, "Notification destinations: 0\n");
    // Nothing listens there: the events wait.
    let down = closed_port();
    let d = create_destination(
        &s,
        &c,
        json!({"name": "down", "url": format!("http://{down}/hook"), "secret": SECRET}),
    )
    .await;
    let id = d["id"].as_str().unwrap();
    for _ in 0..3 {
        send_test(&s, &c, id).await;
    }
    let text = report(&s.db_path);
    assert_has(
        &text,
        "Notification destinations: 1 (\"down\"): the original sends no notifications; \
         3 events waiting are sent if you come back",
    );
}
