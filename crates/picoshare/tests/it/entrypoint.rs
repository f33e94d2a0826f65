//! The container image's entrypoint, `docker/entrypoint.sh`, run as the
//! image runs it (`-db PATH` and the `LITESTREAM_*` variables) but with the
//! server, Litestream and its configuration taken from the repository and
//! the build (`PICOSHARE_BIN`, `LITESTREAM_BIN`, `LITESTREAM_CONFIG`): the
//! real Litestream replicates to a real S3 server, the Garage that
//! `scripts/remote-services` starts.
//!
//! These tests need that S3 server, so they run in the suite's run against
//! the scale-out services (`PICOSHARE_TEST_STORAGE=remote`); `scripts/test`
//! leaves them out of the SQLite run with `--skip entrypoint::`, and they
//! fail, rather than pass unnoticed, without the services. The servers
//! themselves use SQLite, as in the image.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::*;

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The entrypoint with the server's arguments as the image's `CMD` gives
/// them (`-db PATH`), and nothing of the test's environment but `env`.
fn through_entrypoint(db: &Path) -> ServerOptions {
    ServerOptions::new()
        .program(repo_file("docker/entrypoint.sh"))
        .db(db)
        .db_flag("-db")
        .sqlite()
        .env("PICOSHARE_BIN", env!("CARGO_BIN_EXE_picoshare"))
        .env("LITESTREAM_BIN", litestream_bin().display().to_string())
        .env(
            "LITESTREAM_CONFIG",
            repo_file("docker/litestream.yml").display().to_string(),
        )
}

/// The same with replication to the scale-out services' S3 server, under
/// `path` in its bucket.
fn replicated(db: &Path, path: &str) -> ServerOptions {
    let s3 = remote_storage().expect(
        "the entrypoint tests need the S3 server of PICOSHARE_TEST_STORAGE=remote \
         (scripts/test starts it; see scripts/remote-services)",
    );
    through_entrypoint(db)
        .env("LITESTREAM_BUCKET", &s3.bucket)
        .env("LITESTREAM_ENDPOINT", &s3.endpoint)
        .env("LITESTREAM_REGION", &s3.region)
        .env("LITESTREAM_ACCESS_KEY_ID", &s3.access_key_id)
        .env("LITESTREAM_SECRET_ACCESS_KEY", &s3.secret_access_key)
        .env("LITESTREAM_PATH", path)
}

/// The program a process runs now, by `/proc/PID/exe`.
fn exe_of(pid: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).expect("/proc/PID/exe")
}

/// SIGTERM, as `docker stop` sends it to the entrypoint's process; asserts
/// that everything exits cleanly within a minute.
fn docker_stop(s: &mut TestServer) {
    let status = s.terminate(Duration::from_secs(60));
    assert!(
        status.is_some_and(|st| st.success()),
        "exit status {status:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        s.stdout_text(),
        s.stderr_text()
    );
}

/// Waits (up to 30 s) until Litestream, the process `s` runs, has opened
/// the database: only from then on does it replicate (see
/// [`wait_until_open`]). The README says so; the tests write only once
/// replication has begun.
fn wait_until_replicating(s: &TestServer, db: &Path) {
    assert!(
        wait_until_open(s.pid().expect("running"), db, Duration::from_secs(30)),
        "Litestream did not open the database within 30 s"
    );
}

/// Removes the database and its `-wal` and `-shm` files; with `volume`, the
/// whole folder, as a lost volume would (Litestream's own state beside the
/// database goes too).
fn lose_database(db: &Path, volume: bool) {
    if volume {
        std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
        return;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot remove {path:?}: {e}"),
        }
    }
}

/// With `LITESTREAM_BUCKET` set: a first start on no database starts an
/// empty one; uploads and a delete are replicated to S3; after a stop and
/// the loss of the database files, the next start restores them from the
/// bucket with every file byte for byte; replication goes on after the
/// restore (the loss of the whole volume and a second restore bring back the
/// file uploaded in between too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrypoint_replicates_to_s3_and_restores_a_lost_database() {
    let dir = tempfile::tempdir().unwrap();
    // A space and a quote in the path: the entrypoint passes it through
    // Litestream's -exec and its configuration.
    let db = dir.path().join("data dir's").join("store.db");
    let replica_path = format!(
        "entrypoint-test/{}",
        dir.path().file_name().unwrap().to_string_lossy()
    );

    let mut s = TestServer::start_with(replicated(&db, &replica_path)).await;
    let pid = s.pid().unwrap();
    assert!(
        exe_of(pid).ends_with("litestream"),
        "the entrypoint runs Litestream, which runs the server; pid {pid} is {:?}",
        exe_of(pid)
    );
    let output = format!("{}{}", s.stdout_text(), s.stderr_text());
    assert!(
        output.contains("is missing: restoring it") && output.contains("no matching backups"),
        "a first start looks for a replica and finds none:\n{output}"
    );
    wait_until_replicating(&s, &db);
    let c = s.admin_client().await;
    let mut kept = Vec::new();
    for (i, len) in [1, 70_000, 327_681, mib(24) + 5].into_iter().enumerate() {
        let data = random_bytes(len, 800 + i as u64);
        kept.push(s.upload_file(&c, &format!("file-{i}.bin"), &data).await);
    }
    let gone = kept.remove(1);
    s.delete_file(&c, &gone).await;
    let deleted = vec![gone];
    docker_stop(&mut s);
    let output = s.stdout_text();
    assert!(
        output.contains("litestream shut down"),
        "Litestream stopped after the server:\n{output}"
    );
    drop(s);

    lose_database(&db, false);
    let mut s = TestServer::start_with(replicated(&db, &replica_path)).await;
    s.assert_files(&kept, &deleted).await;
    wait_until_replicating(&s, &db);
    let c = s.admin_client().await;
    kept.push(
        s.upload_file(&c, "after-restore.bin", &random_bytes(mib(3), 810))
            .await,
    );
    docker_stop(&mut s);
    drop(s);

    lose_database(&db, true);
    let mut s = TestServer::start_with(replicated(&db, &replica_path)).await;
    s.assert_files(&kept, &deleted).await;
    let log = format!("{}{}", s.stdout_text(), s.stderr_text());
    docker_stop(&mut s);
    assert!(
        !log.contains("level=ERROR"),
        "Litestream reported an error:\n{log}"
    );
}

/// Without `LITESTREAM_BUCKET` the entrypoint runs the server itself (it
/// replaces the shell, so signals reach it), and no Litestream runs: the
/// server checkpoints its own WAL, and leaves no Litestream state behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrypoint_without_a_bucket_runs_the_server_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("store.db");
    let mut s = TestServer::start_with(through_entrypoint(&db)).await;
    let pid = s.pid().unwrap();
    assert_eq!(
        exe_of(pid),
        Path::new(env!("CARGO_BIN_EXE_picoshare"))
            .canonicalize()
            .unwrap(),
        "the entrypoint's process is the server"
    );
    let c = s.admin_client().await;
    let file = s
        .upload_file(&c, "plain.bin", &random_bytes(mib(5), 820))
        .await;
    s.assert_files(std::slice::from_ref(&file), &[]).await;
    docker_stop(&mut s);
    drop(s);
    assert_eq!(
        wal_len(&db),
        0,
        "the server checkpointed and truncated its own WAL"
    );
    let litestream_state = db.with_file_name(".store.db-litestream");
    assert!(
        !litestream_state.exists(),
        "no Litestream ran: {litestream_state:?} exists"
    );
}

/// With `LITESTREAM_BUCKET` set but no Litestream where the image keeps it,
/// the entrypoint refuses to start rather than run without replication.
#[test]
fn entrypoint_refuses_to_run_unreplicated_when_litestream_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let report = run_until_exit(
        replicated(&db, "never-written").env("LITESTREAM_BIN", "/nonexistent/litestream"),
        Duration::from_secs(30),
    );
    assert!(
        report.status.is_some_and(|st| !st.success()),
        "exit status {:?}",
        report.status
    );
    assert!(
        report
            .stderr
            .contains("LITESTREAM_BUCKET is set but Litestream is not at /nonexistent/litestream"),
        "stderr: {}",
        report.stderr
    );
    assert!(!db.exists(), "no database was created");
}
