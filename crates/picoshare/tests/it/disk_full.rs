//! A full disk: the server runs on a small tmpfs of the test's own. An upload
//! that does not fit gets 507 with a clear message, nothing half-stored
//! remains, downloads keep working, and uploads work again once space is freed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::helpers::*;

/// A tmpfs mounted for one test, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a {mib} MiB tmpfs failed (the test suite runs as root, as CI does)"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn used_by_db(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// On a 48 MiB disk, a 64 MiB upload fails with 507 and leaves no chunks; a
/// file stored before still downloads; after deleting it, a new upload fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_gives_507_and_recovers() {
    let disk = SmallDisk::mount(48);
    let db = disk.path().join("store.db");
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let kept = random_bytes(mib(2), 51);
    let kept_id = s
        .upload(
            &c,
            "kept.bin",
            &kept,
            "application/octet-stream",
            None,
            None,
        )
        .await;

    let form = Multipart::new().file(
        "file",
        "too-big.bin",
        Some("application/octet-stream"),
        &random_bytes(mib(64), 52),
    );
    let resp = s
        .post_entry(&c, &format!("?expiration={FAR_FUTURE}"), form)
        .await;
    assert_eq!(resp.status().as_u16(), 507, "{:?}", resp.text().await);
    let body = resp.text().await.unwrap();
    assert!(body.contains("disk is full"), "{body}");

    assert!(
        eventually(Duration::from_secs(10), || s.orphan_chunks() == 0).await,
        "{} chunks of the failed upload remain",
        s.orphan_chunks()
    );
    assert_eq!(s.entry_count(), 1);
    assert_eq!(sha256_hex(&s.download(&kept_id).await), sha256_hex(&kept));

    let resp = c
        .delete(s.url(&format!("/api/entry/{kept_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let again = random_bytes(mib(8), 53);
    let id = s
        .upload(
            &c,
            "fits.bin",
            &again,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    assert_eq!(sha256_hex(&s.download(&id).await), sha256_hex(&again));
    assert!(used_by_db(&disk.path()) <= mib(48) as u64);
}
