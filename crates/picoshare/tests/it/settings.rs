//! `GET` and `PUT /api/settings`: the default lifetime of new uploads, with
//! the original's rules and messages, stored in the original's settings row.

use reqwest::{Client, Response};
use serde_json::{json, Value};

use crate::helpers::*;

async fn put_raw(s: &TestServer, c: &Client, body: &str) -> Response {
    c.put(s.url("/api/settings"))
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn put(s: &TestServer, c: &Client, body: Value) -> Response {
    put_raw(s, c, &body.to_string()).await
}

async fn get(s: &TestServer, c: &Client) -> Value {
    let resp = c.get(s.url("/api/settings")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        header_str(resp.headers(), "content-type"),
        "application/json"
    );
    let body = resp.text().await.unwrap();
    assert!(body.ends_with('\n'), "JSON replies end with a newline");
    serde_json::from_str(&body).unwrap()
}

/// What the settings row holds (`None` if there is no row).
fn stored_days(s: &TestServer) -> Option<i64> {
    use rusqlite::OptionalExtension;
    s.db()
        .query_row(
            "SELECT default_expiration_in_days FROM settings WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
}

/// A new database has the original's default: 30 days.
#[tokio::test]
async fn fresh_database_defaults_to_30_days() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    assert_eq!(
        get(&s, &c).await,
        json!({ "defaultExpirationDays": 30, "defaultNeverExpire": false })
    );
    assert_eq!(stored_days(&s), Some(30));
}

/// The Go server's database keeps its setting (7 days).
#[tokio::test]
async fn go_database_setting_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (db, manifest) = copy_fixture(dir.path());
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let want = manifest["settings"]["default_expiration_in_days"].clone();
    assert_eq!(want, json!(7));
    assert_eq!(
        get(&s, &c).await,
        json!({ "defaultExpirationDays": want, "defaultNeverExpire": false })
    );
}

/// A PUT answers 200 with an empty body, GET reflects it, and the row holds
/// the days; "never" is stored as 36500 days, as the original stores it, and
/// wins over any number of days sent with it.
#[tokio::test]
async fn put_changes_what_get_returns() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;

    let resp = put(
        &s,
        &c,
        json!({ "defaultExpirationDays": 7, "defaultNeverExpire": false }),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), "");
    assert_eq!(
        get(&s, &c).await,
        json!({ "defaultExpirationDays": 7, "defaultNeverExpire": false })
    );
    assert_eq!(stored_days(&s), Some(7));

    for body in [
        json!({ "defaultNeverExpire": true }),
        json!({ "defaultExpirationDays": 0, "defaultNeverExpire": true }),
        json!({ "defaultExpirationDays": 9999, "defaultNeverExpire": true }),
    ] {
        let resp = put(&s, &c, body.clone()).await;
        assert_eq!(resp.status().as_u16(), 200, "{body}");
        assert_eq!(stored_days(&s), Some(36_500), "{body}");
        assert_eq!(
            get(&s, &c).await,
            json!({ "defaultExpirationDays": 30, "defaultNeverExpire": true }),
            "{body}"
        );
    }

    // The bounds themselves are accepted; `defaultNeverExpire` may be left out.
    for days in [1, 365, 3650] {
        let resp = put(&s, &c, json!({ "defaultExpirationDays": days })).await;
        assert_eq!(resp.status().as_u16(), 200, "{days}");
        assert_eq!(
            get(&s, &c).await,
            json!({ "defaultExpirationDays": days, "defaultNeverExpire": false })
        );
    }

    // What GET returns can be sent back as it is.
    let current = get(&s, &c).await;
    assert_eq!(put(&s, &c, current.clone()).await.status().as_u16(), 200);
    assert_eq!(get(&s, &c).await, current);

    // And it survives a restart.
    drop(c);
    let db = s.db_path.clone();
    let mut s = s;
    s.stop();
    let s2 = TestServer::start_on_db(&db).await;
    let c = s2.admin_client().await;
    assert_eq!(get(&s2, &c).await, current);
    drop(s);
}

/// Every refusal is 400 `Invalid request: …` with the original's text, and
/// leaves the setting unchanged.
#[tokio::test]
async fn invalid_settings_are_refused() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    assert_eq!(
        put(&s, &c, json!({ "defaultExpirationDays": 14 }))
            .await
            .status()
            .as_u16(),
        200
    );

    let exact = [
        (
            r#"{"defaultExpirationDays": 0, "defaultNeverExpire": false}"#,
            "Invalid request: file lifetime must be at least 1 days",
        ),
        // Missing days decode as 0, as in Go.
        (
            r#"{"defaultNeverExpire": false}"#,
            "Invalid request: file lifetime must be at least 1 days",
        ),
        (
            "{}",
            "Invalid request: file lifetime must be at least 1 days",
        ),
        (
            r#"{"defaultExpirationDays": null}"#,
            "Invalid request: file lifetime must be at least 1 days",
        ),
        (
            r#"{"defaultExpirationDays": 3651}"#,
            "Invalid request: file lifetime must be at most 10 years",
        ),
        (
            r#"{"defaultExpirationDays": 65535, "defaultNeverExpire": false}"#,
            "Invalid request: file lifetime must be at most 10 years",
        ),
        // `null` decodes to all zeroes in Go.
        (
            "null",
            "Invalid request: file lifetime must be at least 1 days",
        ),
        ("", "Invalid request: EOF"),
    ];
    for (body, message) in exact {
        assert_error(put_raw(&s, &c, body).await, 400, message).await;
    }

    // Decode errors: not a number, negative, fractional, beyond uint16, wrong
    // type for the flag, not JSON at all.
    for body in [
        r#"{"defaultExpirationDays": "7"}"#,
        r#"{"defaultExpirationDays": "abc"}"#,
        r#"{"defaultExpirationDays": -1}"#,
        r#"{"defaultExpirationDays": 7.5}"#,
        r#"{"defaultExpirationDays": 65536}"#,
        r#"{"defaultExpirationDays": 7, "defaultNeverExpire": "yes"}"#,
        "not json",
        "[7]",
    ] {
        let text = assert_error_prefix(put_raw(&s, &c, body).await, 400, "Invalid request: ").await;
        assert!(text.len() > "Invalid request: \n".len(), "{body}: {text:?}");
    }

    assert_eq!(
        get(&s, &c).await,
        json!({ "defaultExpirationDays": 14, "defaultNeverExpire": false })
    );
    assert_eq!(stored_days(&s), Some(14));
}

/// Where the original's `UPDATE` silently does nothing, a database without
/// a settings row reads as the default and gets the row on the first save.
#[tokio::test]
async fn missing_settings_row_is_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    {
        let mut s = TestServer::start_on_db(&db).await;
        s.stop();
    }
    store_execute(&db, "DELETE FROM settings", &[]);

    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    assert_eq!(stored_days(&s), None);
    assert_eq!(
        get(&s, &c).await,
        json!({ "defaultExpirationDays": 30, "defaultNeverExpire": false })
    );
    let resp = put(&s, &c, json!({ "defaultExpirationDays": 10 })).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(stored_days(&s), Some(10));
    assert_eq!(
        get(&s, &c).await,
        json!({ "defaultExpirationDays": 10, "defaultNeverExpire": false })
    );
}

/// Both routes need a session: 401 `Authentication required`, and a PUT
/// without one changes nothing.
#[tokio::test]
async fn settings_need_a_session() {
    let s = TestServer::start().await;
    let anon = plain_client();
    let resp = anon.get(s.url("/api/settings")).send().await.unwrap();
    assert_error(resp, 401, "Authentication required").await;
    let resp = put(&s, &anon, json!({ "defaultExpirationDays": 5 })).await;
    assert_error(resp, 401, "Authentication required").await;
    let resp = anon
        .put(s.url("/api/settings"))
        .header("Cookie", "ps_session=forged")
        .body(r#"{"defaultExpirationDays": 5}"#)
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "Authentication required").await;
    assert_eq!(stored_days(&s), Some(30));
}
