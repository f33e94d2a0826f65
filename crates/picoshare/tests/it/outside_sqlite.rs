//! Outside SQLite clients beside the running server: the `sqlite3` shell
//! (Debian's, which a user runs for a look, a `.backup` or a `VACUUM INTO`)
//! opening and closing the database during and after a large upload.
//!
//! SQLite keeps a shared POSIX lock on the database while a connection is
//! open in WAL mode, and a closing connection that finds no other lock
//! believes it is the last one: it checkpoints and deletes the `-wal` and
//! `-shm` files. If the server ever lost its lock (closing any descriptor of
//! the file drops all of the process's locks on it), such an outside client
//! would delete the live WAL under it, and whatever the server acknowledged
//! afterwards would be gone after a crash. So: the server's lock is still there
//! after a large upload (one that starts early writeback), the WAL is never
//! deleted by an outside client, and after `kill -9` every acknowledged upload
//! is back.
//!
//! SQLite only (`sqlite_only.txt`): the scale-out store has no file.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::helpers::*;

/// Large enough that the writer starts early writeback (after 128 MiB
/// awaiting a durable commit).
const LARGE: usize = 160;

/// The POSIX locks process `pid` holds on the inode of `path` (/proc/locks).
fn locks_held(pid: u32, path: &Path) -> usize {
    let ino = std::fs::metadata(path).expect("stat database").ino();
    let pid = pid.to_string();
    let inode = format!(":{ino}");
    std::fs::read_to_string("/proc/locks")
        .expect("/proc/locks")
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&"POSIX")
                && f.get(4) == Some(&pid.as_str())
                && f.get(5).is_some_and(|d| d.ends_with(&inode))
        })
        .count()
}

/// Runs the `sqlite3` shell on `db` with one statement; returns its output.
fn sqlite3(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("the sqlite3 shell must be installed (scripts/test installs Debian's sqlite3)");
    assert!(
        out.status.success(),
        "sqlite3 {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn wal_of(db: &Path) -> std::path::PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    s.into()
}

#[tokio::test]
async fn the_server_keeps_its_lock_through_a_large_upload() {
    let s = TestServer::start().await;
    let pid = s.pid().unwrap();
    assert!(
        locks_held(pid, &s.db_path) >= 1,
        "a freshly started server holds a lock on its database"
    );
    let client = s.admin_client().await;
    let data = random_bytes(mib(LARGE), 19);
    let id = s
        .upload(
            &client,
            "large.bin",
            &data,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    assert!(
        locks_held(pid, &s.db_path) >= 1,
        "the server lost its lock on the database after a {LARGE} MiB upload"
    );
    assert_eq!(sha256_hex(&s.download(&id).await), sha256_hex(&data));
    // Health checks open and close a connection of their own: SQLite keeps
    // the process's locks when one of its connections closes.
    for _ in 0..3 {
        let resp = plain_client().get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    assert!(locks_held(pid, &s.db_path) >= 1);
}

#[tokio::test]
async fn outside_sqlite_clients_never_delete_the_live_wal() {
    let mut s = TestServer::start().await;
    let db = s.db_path.clone();
    let client = s.admin_client().await;
    let mut acknowledged: Vec<(String, Vec<u8>)> = Vec::new();

    let small = random_bytes(10_000, 1);
    let id = s
        .upload(
            &client,
            "before.bin",
            &small,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    acknowledged.push((id, small));
    let wal_inode = std::fs::metadata(wal_of(&db))
        .expect("the WAL exists")
        .ino();

    // An outside client opens and closes the database over and over while a
    // large upload runs.
    let large = random_bytes(mib(LARGE), 2);
    let upload = {
        let (client, large) = (client.clone(), large.clone());
        let base = s.base.clone();
        tokio::spawn(async move {
            let form = Multipart::new().file("file", "large.bin", None, &large);
            let resp = client
                .post(format!("{base}/api/entry?expiration={FAR_FUTURE}"))
                .header(reqwest::header::CONTENT_TYPE, form.content_type())
                .body(form.finish())
                .send()
                .await
                .expect("large upload");
            upload_id(resp).await
        })
    };
    // The shell's two documented ways of copying a live database, taken while
    // the upload streams in: each copy is whole and holds what was
    // acknowledged before it began.
    let copies = tempfile::tempdir().unwrap();
    let dot_backup = copies.path().join("dot-backup.db");
    let vacuum_into = copies.path().join("vacuum-into.db");
    let mut looks = 0;
    while !upload.is_finished() {
        let db = db.clone();
        let sql = match looks {
            1 => format!(".backup '{}'", dot_backup.display()),
            2 => format!("VACUUM INTO '{}'", vacuum_into.display()),
            _ => "SELECT count(*) FROM entries".to_owned(),
        };
        tokio::task::spawn_blocking(move || sqlite3(&db, &sql))
            .await
            .unwrap();
        looks += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acknowledged.push((upload.await.unwrap(), large));
    assert!(
        looks >= 3,
        "the outside client only looked {looks} times during the upload"
    );
    for copy in [&dot_backup, &vacuum_into] {
        assert_eq!(sqlite3(copy, "PRAGMA integrity_check"), "ok", "{copy:?}");
        let id = &acknowledged[0].0;
        assert_eq!(
            sqlite3(
                copy,
                &format!("SELECT count(*) FROM entries WHERE id = '{id}'")
            ),
            "1",
            "{copy:?} misses a file acknowledged before it was taken"
        );
    }

    // After the upload, more outside clients, each followed by an upload.
    for round in 0..3u64 {
        let n = sqlite3(&db, "SELECT count(*) FROM entries");
        assert_eq!(n, acknowledged.len().to_string());
        let meta = std::fs::metadata(wal_of(&db)).unwrap_or_else(|e| {
            panic!("round {round}: the WAL was deleted by an outside client's close: {e}")
        });
        assert_eq!(
            meta.ino(),
            wal_inode,
            "round {round}: the WAL was replaced by an outside client"
        );
        let data = random_bytes(20_000 + round as usize, 10 + round);
        let id = s
            .upload(
                &client,
                "after.bin",
                &data,
                "application/octet-stream",
                None,
                None,
            )
            .await;
        acknowledged.push((id, data));
    }

    // A crash, then every acknowledged upload is there, byte for byte.
    s.kill();
    let s = TestServer::start_on_db(&db).await;
    for (id, data) in &acknowledged {
        assert_eq!(
            sha256_hex(&s.download(id).await),
            sha256_hex(data),
            "acknowledged upload {id} after kill -9"
        );
    }
    assert_eq!(sqlite3(&db, "PRAGMA integrity_check"), "ok");
}
