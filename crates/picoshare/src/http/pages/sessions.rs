//! The sessions page (`/sessions`): where and when the owner is logged in,
//! with a button to end each session and one to end all the others.
//! `assets/js/pages/sessions.js` calls `DELETE /api/sessions…`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;

use super::files::{date_time, error_page};
use super::{AdminPage, PageError};
use crate::http::api::sessions::current_sessions;
use crate::http::auth::session::current_session;
use crate::http::AppState;

/// `GET /sessions`.
pub(crate) async fn sessions(
    AdminPage(page): AdminPage,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let read = async {
        let current = current_session(&state, &headers).await?;
        Ok::<_, crate::http::AppError>((current, current_sessions(&state).await?))
    };
    let (current, sessions) = read
        .await
        .map_err(|err| error_page(&page, &err, "The server could not read the sessions."))?;
    let others = sessions
        .iter()
        .filter(|s| Some(&s.id) != current.as_ref())
        .count();
    Ok(page.render(
        "Sessions",
        html! {
            section data-page="sessions" {
                h1 { "Sessions" }
                p.explainer {
                    "Each time someone logs in with the passphrase, a session starts, for 30 days "
                    "or until it logs out. End any session you do not recognise; changing the "
                    "passphrase (and restarting the server) ends them all."
                }
                p.status #sessions-status role="status" aria-live="polite" {}
                div.table-scroll {
                    table.data-table.sessions-table {
                        thead {
                            tr {
                                th scope="col" { "Logged in" }
                                th scope="col" { "From" }
                                th scope="col" { "Browser" }
                                th scope="col" { "Ends" }
                                th scope="col" { span.visually-hidden { "Actions" } }
                            }
                        }
                        tbody {
                            @for s in &sessions {
                                @let agent = crate::useragent::parse(&s.user_agent);
                                @let this = Some(&s.id) == current.as_ref();
                                tr data-session-id=(s.id.as_str()) {
                                    td {
                                        (date_time(s.created))
                                        @if this { " " strong.badge { "this session" } }
                                    }
                                    td { code { (s.client_ip) } }
                                    td title=(s.user_agent) { (agent.browser) " on " (agent.platform) }
                                    td { (date_time(s.expires)) }
                                    td.actions {
                                        button.button.danger type="button" data-action="end-session" {
                                            @if this { "Log out" } @else { "End" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                div.actions {
                    button.button.secondary type="button" data-action="end-other-sessions"
                        disabled[others == 0] { "End all other sessions" }
                }
            }
        },
    ))
}
