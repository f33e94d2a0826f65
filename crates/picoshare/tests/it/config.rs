//! Startup configuration: where the secret comes from and how the database
//! path is given.

use std::time::Duration;

use crate::helpers::*;

/// Without `PS_SHARED_SECRET` (or its `_FILE` variant) the server refuses to
/// start: non-zero exit and a message naming the variable.
#[tokio::test]
async fn missing_secret_is_fatal() {
    let report = run_until_exit(
        ServerOptions::new().without_secret(),
        Duration::from_secs(30),
    );
    let status = report.status.expect("server kept running without a secret");
    assert!(
        !status.success(),
        "exit status {status:?} should be a failure"
    );
    assert!(
        report.stderr.contains("PS_SHARED_SECRET"),
        "stderr should mention PS_SHARED_SECRET: {:?}",
        report.stderr
    );
    assert!(
        !report.stdout.contains("listening"),
        "it must not start listening: {:?}",
        report.stdout
    );
}

/// An empty `PS_SHARED_SECRET` is as fatal as a missing one.
#[tokio::test]
async fn empty_secret_is_fatal() {
    let report = run_until_exit(ServerOptions::new().secret(""), Duration::from_secs(30));
    let status = report
        .status
        .expect("server kept running with an empty secret");
    assert!(
        !status.success(),
        "exit status {status:?} should be a failure"
    );
    assert!(
        !report.stdout.contains("listening"),
        "it must not start listening: {:?}",
        report.stdout
    );
}

/// `PS_SHARED_SECRET_FILE` is read and its trailing newline trimmed: the
/// file `secret\n` makes `secret` the passphrase.
#[tokio::test]
async fn secret_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.txt");
    std::fs::write(&path, "secret\n").unwrap();
    let s = TestServer::start_with(
        ServerOptions::new()
            .without_secret()
            .env("PS_SHARED_SECRET_FILE", path.to_str().unwrap()),
    )
    .await;
    let login = |key: &'static str| {
        let url = s.url("/api/auth");
        async move {
            plain_client()
                .post(url)
                .json(&serde_json::json!({ "sharedSecretKey": key }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(login("secret").await, 200);
    assert_eq!(
        login("secret\n").await,
        401,
        "the newline is not part of the secret"
    );
}

/// `--db` inside folders that do not exist yet creates them, and the server
/// then stores uploads there.
#[tokio::test]
async fn db_in_missing_nested_folders_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a").join("b").join("c").join("store.db");
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "x.txt", b"nested", "text/plain", None, None)
        .await;
    assert!(db.is_file(), "{} was not created", db.display());
    assert!(
        s.entry(&id).is_some(),
        "the upload is not in {}",
        db.display()
    );
}

/// The original's single-dash `-db PATH` flag is accepted too.
#[tokio::test]
async fn single_dash_db_flag_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("single-dash.db");
    let s = TestServer::start_with(ServerOptions::new().db(&db).db_flag("-db")).await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "x.txt", b"dash", "text/plain", None, None)
        .await;
    if remote_storage().is_none() {
        assert!(db.is_file(), "{} was not created", db.display());
    }
    // On the scale-out store the path names no file: the upload is in the
    // store all the same.
    assert!(s.entry(&id).is_some(), "the upload is not in the store");
    assert_eq!(s.download(&id).await, b"dash");
}

/// Stdout carries exactly one line, the ready line; requests log to stderr.
#[tokio::test]
async fn stdout_carries_only_the_ready_line() {
    let s = TestServer::start().await;
    let c = s.client();
    s.login(&c).await;
    let id = s
        .upload(&c, "x.txt", b"quiet", "text/plain", None, None)
        .await;
    assert_eq!(s.download(&id).await, b"quiet");
    let _ = plain_client()
        .get(s.url("/-aaaaaaaaaa"))
        .send()
        .await
        .unwrap();
    let stdout = s.stdout_text();
    assert_eq!(
        stdout,
        format!("picoshare listening on {}\n", s.base),
        "stdout: {stdout:?}"
    );
}

/// New databases get 32 KiB pages (small uploads write one page per B-tree
/// they touch; docs/benchmarks.md, issue 21); a database created with
/// another page size (64 KiB, the default before) keeps it and works.
#[tokio::test]
async fn new_databases_get_32_kib_pages_and_older_ones_keep_theirs() {
    let page_size = |db: &std::path::Path| -> i64 {
        open_db_read_write(db)
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let new_db = dir.path().join("new.db");
    let s = TestServer::start_on_db(&new_db).await;
    let c = s.admin_client().await;
    s.upload(&c, "x.txt", b"new", "text/plain", None, None)
        .await;
    assert_eq!(page_size(&new_db), 32_768);
    drop(s);
    let old_db = dir.path().join("old.db");
    let mut s = TestServer::start_with(
        ServerOptions::new()
            .db(&old_db)
            .arg("--page-size")
            .arg("65536"),
    )
    .await;
    let c = s.admin_client().await;
    let first = s
        .upload(&c, "a.txt", b"older", "text/plain", None, None)
        .await;
    s.stop();
    drop(s);
    assert_eq!(page_size(&old_db), 65_536);
    let s = TestServer::start_on_db(&old_db).await;
    let c = s.admin_client().await;
    let second = s
        .upload(&c, "b.txt", b"newer", "text/plain", None, None)
        .await;
    for (id, want) in [(first, &b"older"[..]), (second, &b"newer"[..])] {
        let got = c.get(s.url(&format!("/-{id}"))).send().await.unwrap();
        assert_eq!(got.bytes().await.unwrap(), want);
    }
    assert_eq!(page_size(&old_db), 65_536);
}
