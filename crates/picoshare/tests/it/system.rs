//! `GET /api/system`: disk usage, the store's own usage, version and revision.

use reqwest::Client;
use serde_json::Value;

use crate::helpers::*;

async fn system(s: &TestServer, c: &Client) -> Value {
    let resp = c.get(s.url("/api/system")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        header_str(resp.headers(), "content-type"),
        "application/json"
    );
    resp.json().await.unwrap()
}

fn num(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for key in path {
        cur = &cur[*key];
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("{} is not a non-negative integer in {v}", path.join(".")))
}

/// The numbers agree with each other and with what was uploaded, and the
/// version and revision are those of the build.
#[tokio::test]
async fn system_numbers_are_consistent() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let sizes = [1_000usize, 400_000, 1_048_579];
    let mut ids = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let data = random_bytes(*size, 100 + i as u64);
        ids.push(
            s.upload(
                &c,
                &format!("f{i}.bin"),
                &data,
                "application/octet-stream",
                None,
                None,
            )
            .await,
        );
    }

    let info = system(&s, &c).await;
    let total = num(&info, &["filesystem", "totalBytes"]);
    let used = num(&info, &["filesystem", "usedBytes"]);
    let free = num(&info, &["filesystem", "freeBytes"]);
    if remote_storage().is_some() {
        // Object storage has no filesystem of the server's to report.
        assert_eq!((total, used, free), (0, 0, 0), "{info}");
    } else {
        assert!(total > 0, "{info}");
    }
    assert!(used <= total, "{info}");
    assert!(free <= total, "{info}");
    assert!(used + free <= total, "{info}");
    let stored = num(&info, &["storedFileBytes"]);
    assert_eq!(stored, sizes.iter().sum::<usize>() as u64, "{info}");
    let database = num(&info, &["databaseBytes"]);
    assert!(database >= stored, "{info}");
    num(&info, &["reclaimableBytes"]);

    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let revision = info["revision"].as_str().expect("revision is a string");
    assert!(
        revision == "unknown"
            || (revision.len() == 12 && revision.chars().all(|c| c.is_ascii_hexdigit())),
        "revision {revision:?}"
    );
    match &info["revisionTime"] {
        Value::Null => {}
        Value::String(t) => {
            chrono::DateTime::parse_from_rfc3339(t).expect("revisionTime is RFC 3339");
        }
        other => panic!("revisionTime {other}"),
    }

    // Deleting a file takes it out of the stored bytes at once.
    let resp = c
        .delete(s.url(&format!("/api/entry/{}", ids[2])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let info = system(&s, &c).await;
    assert_eq!(
        num(&info, &["storedFileBytes"]),
        (sizes[0] + sizes[1]) as u64,
        "{info}"
    );
}

/// On the Go server's database, the stored bytes are the sum of its files.
#[tokio::test]
async fn go_database_usage() {
    let dir = tempfile::tempdir().unwrap();
    let (db, manifest) = copy_fixture(dir.path());
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let info = system(&s, &c).await;
    let want: u64 = manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["size"].as_u64().unwrap())
        .sum();
    assert_eq!(num(&info, &["storedFileBytes"]), want, "{info}");
    assert!(num(&info, &["databaseBytes"]) >= want, "{info}");
    // Whole pages of the fixture's 4 KiB page size.
    assert_eq!(num(&info, &["reclaimableBytes"]) % 4096, 0, "{info}");
}

/// The route needs a session.
#[tokio::test]
async fn system_needs_a_session() {
    let s = TestServer::start().await;
    let resp = plain_client()
        .get(s.url("/api/system"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "Authentication required").await;
}
