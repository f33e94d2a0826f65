//! The public pages: the landing page for visitors who are not logged in and
//! the login form.
//!
//! The form posts (`method="post"`), so the passphrase never travels in a URL
//! (where proxies' access logs and the browser's history would keep it). Its
//! script sends it to `POST /api/auth`; when the script does not run (blocked,
//! failed to load), the browser posts the form to `POST /login`, which logs in
//! just the same and sends the browser on.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::{Page, PageError};
use crate::http::api::login::{check_passphrase, limited};
use crate::http::auth::session::open_session;
use crate::http::client::ClientView;
use crate::http::params::form_value;
use crate::http::AppState;

/// Longest `next` path the login page passes on.
const MAX_NEXT_LEN: usize = 2048;

/// Where to go after logging in: `next` if it is a path on this server
/// (starts with one `/`, no scheme or host, no control characters), else `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= MAX_NEXT_LEN
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// `GET /login[?next=PATH]`: the passphrase form.
pub(crate) async fn login_page(
    Query(query): Query<HashMap<String, String>>,
    page: Page,
) -> Result<Response, PageError> {
    let next = safe_next(query.get("next").map(String::as_str));
    Ok(login_form(&page, StatusCode::OK, &next, None))
}

/// `POST /login`, form-encoded `passphrase` and `next`: the login form
/// posted without its script. The right passphrase sets the session cookie
/// and sends the browser to `next` (303); otherwise the form again, with the
/// reason (the same limits and messages as `POST /api/auth`).
pub(crate) async fn login_post(
    State(state): State<AppState>,
    client: ClientView,
    headers: HeaderMap,
    page: Page,
    body: Bytes,
) -> Response {
    let next = safe_next(form_value(&body, "next").as_deref());
    let passphrase = form_value(&body, "passphrase").unwrap_or_default();
    let result = limited(&state, &client, || async {
        check_passphrase(&state, &passphrase)?;
        let cookie = open_session(&state, &client, &headers).await?;
        let mut resp = StatusCode::SEE_OTHER.into_response();
        let h = resp.headers_mut();
        h.insert(header::SET_COOKIE, cookie);
        if let Ok(location) = HeaderValue::from_str(&next) {
            h.insert(header::LOCATION, location);
        }
        Ok(resp)
    })
    .await;
    match result {
        Ok(resp) => resp,
        Err(e) => {
            let mut resp = login_form(&page, e.status(), &next, Some(e.message()));
            if let Some(wait) = e.retry_after() {
                resp.headers_mut().insert(header::RETRY_AFTER, wait);
            }
            resp
        }
    }
}

/// The login page with `status`, going to `next` once logged in, showing
/// `error` if any.
fn login_form(page: &Page, status: StatusCode, next: &str, error: Option<&str>) -> Response {
    page.render_status(
        status,
        "Log in",
        html! {
            section.narrow data-page="login" {
                h1 { "Log in" }
                form.card.stack #login-form method="post" action="/login" data-next=(next) {
                    input type="hidden" name="next" value=(next);
                    div.field {
                        label for="passphrase" { "Passphrase" }
                        input #passphrase type="password" name="passphrase"
                            autocomplete="current-password" required autofocus;
                    }
                    p.alert.error #login-error role="alert" { (error.unwrap_or_default()) }
                    div { button.primary type="submit" { "Authenticate" } }
                }
                h2 { "Don't know the passphrase?" }
                p {
                    "PicoShare is a private file-sharing server. Only its owner can upload "
                    "files here. If someone shared a file with you, use the link they sent."
                }
            }
        },
    )
}

/// The landing page for visitors who are not logged in (`GET /`).
pub(crate) fn landing(page: &Page) -> Response {
    page.render("", landing_body())
}

fn landing_body() -> Markup {
    html! {
        section.narrow data-page="landing" {
            h1 { "PicoShare" }
            p.lead { "A minimalist, easy-to-host service for sharing images and other files." }
            p { a.button.primary href="/login" { "Log In" } " (for the owner of this server)" }
            h2 { "What is PicoShare?" }
            p {
                "PicoShare lets its owner upload a file and share it with a link. There are "
                "no accounts for the people you share with, no ads and no tracking: they "
                "open the link and get the file, exactly as it was uploaded."
            }
            p {
                "Files expire when their owner wants them to, and the owner can hand out "
                "guest links so that others can upload files, too."
            }
            p {
                "PicoShare is free and open source, under the "
                a href="https://www.gnu.org/licenses/agpl-3.0.en.html" { "GNU AGPLv3" }
                " licence. The original PicoShare is on "
                a href="https://github.com/mtlynch/picoshare" { "GitHub" } "."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(safe_next(Some("/files")), "/files");
        assert_eq!(
            safe_next(Some("/files/abc/downloads?unique=true")),
            "/files/abc/downloads?unique=true"
        );
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some("")), "/");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/a\nb")), "/");
    }
}
