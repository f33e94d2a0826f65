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
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
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

/// A resumable upload that meets a full disk gets 507, keeps a consistent
/// offset (the bytes stored are exactly the file's first `offset` bytes), and
/// continues from there to a byte-identical file once space is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_during_a_resumable_upload_loses_nothing() {
    use base64::Engine;
    let disk = SmallDisk::mount(48);
    let db = disk.path().join("store.db");
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let filler = random_bytes(mib(18), 54);
    let filler_id = s
        .upload(
            &c,
            "filler.bin",
            &filler,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    let data = random_bytes(mib(34) + 12_345, 55);
    let name = base64::engine::general_purpose::STANDARD.encode("resumed.bin");
    let resp = c
        .post(s.url("/api/tus"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", data.len().to_string())
        .header("Upload-Metadata", format!("filename {name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let url = header_str(resp.headers(), "location");
    let patch = |offset: usize| {
        c.patch(s.url(&url))
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .body(data[offset..].to_vec())
            .send()
    };
    let resp = patch(0).await.unwrap();
    assert_eq!(resp.status().as_u16(), 507);
    let body = resp.text().await.unwrap();
    assert!(
        body.starts_with("The server's disk is full: the upload stopped"),
        "{body}"
    );
    let offset: usize = {
        let resp = c
            .head(s.url(&url))
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        header_str(resp.headers(), "upload-offset").parse().unwrap()
    };
    assert!(offset < data.len());
    // What is stored is exactly the file's beginning.
    let upload_id = url.rsplit('/').next().unwrap().to_owned();
    let stored = s.tus_stored_bytes(&upload_id);
    assert!(
        stored == data[..offset],
        "stored bytes are not the file's first {offset}"
    );
    assert_eq!(s.entry_count(), 1);

    // Free space, then continue from the server's offset.
    let resp = c
        .delete(s.url(&format!("/api/entry/{filler_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The deleted file's space comes back in the background: retry like a
    // client would, from the server's offset each time.
    let mut attempts = 0;
    let id = loop {
        attempts += 1;
        let resp = c
            .head(s.url(&url))
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        let now: usize = header_str(resp.headers(), "upload-offset").parse().unwrap();
        assert!(now >= offset, "the offset went back from {offset} to {now}");
        let resp = patch(now).await.unwrap();
        match resp.status().as_u16() {
            204 => break header_str(resp.headers(), "picoshare-entry-id"),
            507 if attempts < 40 => {
                let body = resp.text().await.unwrap();
                assert!(body.contains("resume"), "{body}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => panic!("resuming got {other}: {:?}", resp.text().await),
        }
    };
    assert_eq!(sha256_hex(&s.download(&id).await), sha256_hex(&data));
}

/// Fills `dir`'s disk with a file of its own, leaving about `spare` bytes.
fn fill_disk(dir: &Path, spare: u64) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0x5au8; 64 << 10];
    while f.write_all(&block).is_ok() {}
    drop(f);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len.saturating_sub(spare))
        .unwrap();
    path
}

/// Not only uploads meet a full disk: a delete that needs room in the WAL
/// gets 507 and a sentence saying nothing was changed (it was an opaque 500:
/// SQLite's "database or disk is full" passed on as any database error), the
/// file stays whole, and the same delete works once there is room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_on_a_full_disk_is_507_and_changes_nothing() {
    let disk = SmallDisk::mount(48);
    let db = disk.path().join("store.db");
    let mut s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let data = random_bytes(mib(4), 56);
    let id = s
        .upload(
            &c,
            "kept.bin",
            &data,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    // A clean stop leaves no WAL behind; the next start finds a disk with
    // room for the shared-memory file and little else.
    s.stop();
    let filler = fill_disk(&disk.path(), 96 << 10);
    let s = TestServer::start_on_db(&db).await;
    let resp = c
        .delete(s.url(&format!("/api/entry/{id}")))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 507, "{body}");
    assert!(body.contains("disk is full"), "{body}");
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(sha256_hex(&s.download(&id).await), sha256_hex(&data));
    let resp = c
        .delete(s.url(&format!("/api/entry/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}
