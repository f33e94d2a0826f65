//! The real Litestream replicating the server's database to a file replica,
//! as a user runs it beside the server (`litestream replicate` with
//! Litestream's default settings): small uploads and a 200 MiB one, deletes,
//! the incremental vacuum they start, a restart of Litestream while the
//! server keeps running and one of the server while Litestream keeps
//! running, then `litestream restore` into a new file, which must pass
//! `PRAGMA integrity_check` and serve every file byte for byte (and none of
//! the deleted ones).
//!
//! Both ways the server can run beside Litestream: by default it checkpoints
//! the WAL itself in the background; with `LITESTREAM_BUCKET` set it leaves
//! checkpoints to Litestream, as the original does.
//!
//! SQLite only (listed in `sqlite_only.txt`); the image's entrypoint with an
//! S3 replica is tested in `entrypoint.rs`.

use std::time::{Duration, Instant};

use crate::helpers::*;

/// Without `LITESTREAM_BUCKET`: the server's own background checkpoints run
/// while Litestream holds its read transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_replica_restores_every_file_with_server_checkpoints() {
    replicate_and_restore(false).await;
}

/// With `LITESTREAM_BUCKET` set: only Litestream checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_replica_restores_every_file_with_litestream_checkpoints() {
    replicate_and_restore(true).await;
}

async fn replicate_and_restore(litestream_bucket: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("store.db");
    let config = dir.path().join("litestream.yml");
    std::fs::write(
        &config,
        format!(
            "dbs:\n  - path: {}\n    replica:\n      type: file\n      path: {}\n",
            db.display(),
            dir.path().join("replica").display()
        ),
    )
    .unwrap();
    let options = || {
        let o = ServerOptions::new().db(&db).sqlite();
        if litestream_bucket {
            o.env("LITESTREAM_BUCKET", "the-replica")
        } else {
            o
        }
    };

    let mut s = TestServer::start_with(options()).await;
    let mut ls = Litestream::replicate(&config, &db);
    let c = s.admin_client().await;
    let mut kept = Vec::new();
    let mut deleted = Vec::new();
    // Sizes around the 320 KiB chunk and the 64 KiB page.
    for (i, len) in [1, 1000, 65_536, 327_680, 327_681, mib(3) + 7]
        .into_iter()
        .enumerate()
    {
        let data = random_bytes(len, 700 + i as u64);
        kept.push(s.upload_file(&c, &format!("small-{i}.bin"), &data).await);
    }
    let doomed = s
        .upload_file(&c, "doomed.bin", &random_bytes(mib(40), 710))
        .await;
    let watch = WalWatch::start(&db);
    let large = random_bytes(mib(200), 711);
    kept.push(s.upload_file(&c, "large.bin", &large).await);
    drop(large);
    let wal_peak_upload = watch.peak();

    // Deleting 40 MiB leaves free pages, which the server returns in small
    // incremental-vacuum steps once it is idle; those steps are replicated too.
    let watch = WalWatch::start(&db);
    s.delete_file(&c, &doomed).await;
    deleted.push(doomed);
    let small = kept.remove(1);
    s.delete_file(&c, &small).await;
    deleted.push(small);
    let deadline = Instant::now() + Duration::from_secs(60);
    while reclaimable_bytes(&s, &c).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the free pages were not vacuumed within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wal_peak_vacuum = watch.peak();

    // Litestream restarted while the server keeps running: when it closes
    // its connection, SQLite must not take it for the last one (which
    // would checkpoint and reset the WAL under the server).
    let status = ls.stop(Duration::from_secs(60));
    assert!(
        status.is_some_and(|st| st.success()),
        "litestream exit status {status:?}:\n{}",
        ls.log()
    );
    let first_log = ls.log();
    drop(ls);
    let mut ls = Litestream::replicate(&config, &db);
    kept.push(
        s.upload_file(&c, "litestream-restarted.bin", &random_bytes(mib(5), 713))
            .await,
    );
    s.assert_files(&kept, &deleted).await;

    // A restart of the server while Litestream keeps running.
    let started = Instant::now();
    let status = s.terminate(Duration::from_secs(60));
    let shutdown = started.elapsed();
    assert!(
        status.is_some_and(|st| st.success()),
        "exit status {status:?}"
    );
    let shutdown_log = s.stderr_text();
    drop(s);
    let s = TestServer::start_with(options()).await;
    let c = s.admin_client().await;
    s.assert_files(&kept, &deleted).await;
    kept.push(
        s.upload_file(&c, "after-restart.bin", &random_bytes(mib(2), 712))
            .await,
    );
    let small = kept.remove(0);
    s.delete_file(&c, &small).await;
    deleted.push(small);

    // Stop the server, then Litestream, which copies the rest of the WAL.
    let mut s = s;
    let status = s.terminate(Duration::from_secs(60));
    assert!(
        status.is_some_and(|st| st.success()),
        "exit status {status:?}"
    );
    drop(s);
    let status = ls.stop(Duration::from_secs(60));
    assert!(
        status.is_some_and(|st| st.success()),
        "litestream exit status {status:?}:\n{}",
        ls.log()
    );
    let log = first_log + &ls.log();
    assert!(
        !log.contains("level=ERROR") && !log.contains("level=WARN"),
        "Litestream complained:\n{log}"
    );

    let restored = dir.path().join("restored").join("store.db");
    std::fs::create_dir_all(restored.parent().unwrap()).unwrap();
    litestream_restore(&config, &db, &restored);
    {
        let conn = open_db_read_write(&restored);
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        assert_eq!(
            count(&conn, "PRAGMA freelist_count", []),
            0,
            "the vacuum steps are in the replica"
        );
    }
    let r = TestServer::start_with(ServerOptions::new().db(&restored).sqlite()).await;
    r.assert_files(&kept, &deleted).await;

    eprintln!(
        "litestream (LITESTREAM_BUCKET {}): WAL peak {:.1} MiB during the 200 MiB upload, \
         {:.1} MiB during the vacuum; the server stopped in {:.2} s{}",
        if litestream_bucket { "set" } else { "unset" },
        wal_peak_upload as f64 / 1048576.0,
        wal_peak_vacuum as f64 / 1048576.0,
        shutdown.as_secs_f64(),
        shutdown_log
            .lines()
            .filter(|l| l.contains("checkpoint") || l.contains("WAL"))
            .map(|l| format!("\n  server: {l}"))
            .collect::<String>()
    );
}

/// The free space inside the database (its free pages), from `/api/system`.
async fn reclaimable_bytes(s: &TestServer, c: &reqwest::Client) -> u64 {
    let system: serde_json::Value = c
        .get(s.url("/api/system"))
        .send()
        .await
        .expect("GET /api/system")
        .json()
        .await
        .expect("system JSON");
    system["reclaimableBytes"]
        .as_u64()
        .expect("reclaimableBytes")
}
