//! Login sessions belong to the passphrase: restarting with a new one ends
//! every session (as the original does, whose cookie is made from the
//! passphrase); the owner lists the sessions and ends any of them.

use reqwest::header::{CONTENT_TYPE, COOKIE, USER_AGENT};
use reqwest::StatusCode;

use crate::helpers::*;

/// Sends `GET path` with `cookie` alone; the status.
async fn status_with(s: &TestServer, path: &str, cookie: &str) -> StatusCode {
    plain_client()
        .get(s.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .status()
}

/// Restarted with a new passphrase, the server accepts none of the sessions
/// opened with the old one (not to read, not to make an API token), and
/// keeps none of them; restarted with the same passphrase, sessions go on.
#[tokio::test]
async fn a_new_passphrase_ends_every_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut s = TestServer::start_on_db(&db).await;
    let old = s.session_cookie().await;
    let kept = s.session_cookie().await;
    assert_eq!(status_with(&s, "/api/settings", &old).await, 200);
    s.stop();

    // The same passphrase: the sessions go on.
    let mut s = TestServer::start_on_db(&db).await;
    assert_eq!(status_with(&s, "/api/settings", &kept).await, 200);
    s.stop();

    let s = TestServer::start_with(
        ServerOptions::new()
            .db(&db)
            .secret("a new passphrase for a new start"),
    )
    .await;
    for cookie in [&old, &kept] {
        assert_eq!(status_with(&s, "/api/settings", cookie).await, 401);
        assert_eq!(status_with(&s, "/api/sessions", cookie).await, 401);
        let resp = plain_client()
            .post(s.url("/api/tokens"))
            .header(COOKIE, cookie.as_str())
            .json(&serde_json::json!({ "name": "stolen" }))
            .send()
            .await
            .unwrap();
        assert_error(resp, 401, "Authentication required").await;
        // Pages send it to the login page.
        let resp = plain_client()
            .get(s.url("/files"))
            .header(COOKIE, cookie.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303);
    }
    let fresh = s.session_cookie().await;
    let list: Vec<serde_json::Value> = plain_client()
        .get(s.url("/api/sessions"))
        .header(COOKIE, &fresh)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1, "only the new session is left: {list:?}");
    assert_eq!(list[0]["current"], true);
}

/// `GET /api/sessions` lists the sessions (when, from where, which browser,
/// which one is the caller's); `DELETE /api/sessions/{id}` ends one at once,
/// `DELETE /api/sessions` every other one; an API token can do neither.
#[tokio::test]
async fn sessions_are_listed_and_ended() {
    let s = TestServer::start().await;
    let login = |agent: &'static str| {
        let url = s.url("/api/auth");
        let secret = s.secret.clone();
        async move {
            let resp = plain_client()
                .post(url)
                .header(USER_AGENT, agent)
                .json(&serde_json::json!({ "sharedSecretKey": secret }))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            let c = session_set_cookie(resp.headers());
            format!("{}={}", c.name, c.value)
        }
    };
    let firefox =
        login("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0").await;
    let curl = login("curl/8.5.0").await;
    let third = login("curl/8.5.0").await;
    let list = |cookie: String| {
        let url = s.url("/api/sessions");
        async move {
            let resp = plain_client()
                .get(url)
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(header_str(resp.headers(), "cache-control"), "no-store");
            resp.json::<Vec<serde_json::Value>>().await.unwrap()
        }
    };
    let sessions = list(firefox.clone()).await;
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    let mine: Vec<&serde_json::Value> = sessions.iter().filter(|v| v["current"] == true).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["browser"], "Firefox");
    assert_eq!(mine[0]["platform"], "Linux");
    assert_eq!(mine[0]["clientIp"], "127.0.0.1");
    for v in &sessions {
        let text = v.to_string();
        for cookie in [&firefox, &curl, &third] {
            let token = cookie.split_once('=').unwrap().1;
            assert!(!text.contains(token), "a token is listed: {text}");
        }
    }

    // End the curl session from the Firefox one.
    let curl_id = list(curl.clone())
        .await
        .into_iter()
        .find(|v| v["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = plain_client()
        .delete(s.url(&format!("/api/sessions/{curl_id}")))
        .header(COOKIE, &firefox)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(status_with(&s, "/api/settings", &curl).await, 401);
    assert_eq!(status_with(&s, "/api/settings", &third).await, 200);
    let resp = plain_client()
        .delete(s.url(&format!("/api/sessions/{curl_id}")))
        .header(COOKIE, &firefox)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    // An API token cannot list or end sessions.
    let token: serde_json::Value = plain_client()
        .post(s.url("/api/tokens"))
        .header(COOKIE, &firefox)
        .json(&serde_json::json!({ "name": "script" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    for req in [
        plain_client().get(s.url("/api/sessions")),
        plain_client().delete(s.url("/api/sessions")),
    ] {
        let resp = req.header("authorization", &bearer).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 403);
    }
    assert_eq!(status_with(&s, "/api/settings", &third).await, 200);

    // Every other session ends; the caller's stays.
    let resp = plain_client()
        .delete(s.url("/api/sessions"))
        .header(COOKIE, &firefox)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ended: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(ended["ended"], 1);
    assert_eq!(status_with(&s, "/api/settings", &third).await, 401);
    assert_eq!(status_with(&s, "/api/settings", &firefox).await, 200);
    assert_eq!(list(firefox).await.len(), 1);
}

/// Uploads a small file on `client`'s kept-alive connection with `cookie`
/// alone; the status.
async fn upload_with(s: &TestServer, client: &reqwest::Client, cookie: &str) -> u16 {
    let form = Multipart::new().file("file", "small.txt", Some("text/plain"), b"a small file");
    client
        .post(s.url(&format!("/api/entry?expiration={FAR_FUTURE}")))
        .header(COOKIE, cookie)
        .header(CONTENT_TYPE, form.content_type())
        .body(form.finish())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The server remembers the sessions it has found valid (the SQLite store's
/// cache of look-ups): each way of ending a session — logout, ending it by
/// its ID, ending every other one — refuses the very next upload made with
/// its cookie, after uploads that found it valid (the path the cache
/// serves), while the sessions left keep working.
#[tokio::test]
async fn an_ended_session_is_refused_on_its_very_next_upload() {
    let s = TestServer::start().await;
    let c = plain_client();
    let out = s.session_cookie().await;
    let ended = s.session_cookie().await;
    let other = s.session_cookie().await;
    let owner = s.session_cookie().await;
    for cookie in [&out, &ended, &other, &owner] {
        for _ in 0..3 {
            assert_eq!(upload_with(&s, &c, cookie).await, 200);
        }
    }

    // Logout.
    let resp = c
        .delete(s.url("/api/auth"))
        .header(COOKIE, &out)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(upload_with(&s, &c, &out).await, 401);
    assert_eq!(upload_with(&s, &c, &ended).await, 200);

    // Ended by its ID from another session.
    let sessions: Vec<serde_json::Value> = c
        .get(s.url("/api/sessions"))
        .header(COOKIE, &ended)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sessions.iter().find(|v| v["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = c
        .delete(s.url(&format!("/api/sessions/{id}")))
        .header(COOKIE, &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(upload_with(&s, &c, &ended).await, 401);
    assert_eq!(upload_with(&s, &c, &other).await, 200);

    // Every other session.
    let resp = c
        .delete(s.url("/api/sessions"))
        .header(COOKIE, &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(upload_with(&s, &c, &other).await, 401);
    assert_eq!(upload_with(&s, &c, &owner).await, 200);
    for cookie in [&out, &ended, &other] {
        assert_eq!(status_with(&s, "/api/settings", cookie).await, 401);
    }
}

/// The sessions page lists them, marks this browser's, and offers to end
/// each and all the others; it is in the navigation.
#[tokio::test]
async fn the_sessions_page_lists_them() {
    let s = TestServer::start().await;
    let other = s.session_cookie().await;
    let admin = s.admin_client().await;
    let page = admin
        .get(s.url("/sessions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"href="/sessions""#), "in the navigation");
    assert_eq!(page.matches("data-session-id=").count(), 2, "{page}");
    assert_eq!(page.matches("this session").count(), 1, "{page}");
    assert!(page.contains(r#"data-action="end-session""#));
    assert!(page.contains(r#"data-action="end-other-sessions""#));
    let token = other.split_once('=').unwrap().1;
    assert!(!page.contains(token));
    let resp = plain_client().get(s.url("/sessions")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303, "to the login page");
}
