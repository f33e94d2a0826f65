//! The API tokens page (`/tokens`): the list, the creation form, and the
//! panel that shows a new token once (with ready-made commands and a ShareX
//! configuration, both built in the browser from the token it just received).
//! `assets/js/pages/tokens.js` talks to `/api/tokens…`.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::files::{date_time, error_page};
use super::{AdminPage, PageError};
use crate::http::{AppError, AppState};

/// `GET /tokens`.
pub(crate) async fn tokens(
    AdminPage(page): AdminPage,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let tokens = state.store.api_tokens().await.map_err(|e| {
        let err = AppError::store("failed to read the API tokens", e);
        error_page(&page, &err, "The server could not read the API tokens.")
    })?;
    Ok(page.render(
        "API Tokens",
        html! {
            section data-page="tokens" {
                h1 { "API Tokens" }
                p.explainer {
                    "An API token lets a script or a tool such as curl or ShareX upload files "
                    "without the passphrase. A token can only upload: it cannot list, change or "
                    "delete files, nor reach any other page. Revoke a token as soon as you no "
                    "longer need it."
                }
                form #token-form.stack {
                    div.form-row {
                        label for="token-name" { "Token name" }
                        input #token-name name="name" type="text" maxlength="100" required
                            placeholder="e.g. laptop, ShareX, backup script" autocomplete="off";
                    }
                    p.error #token-error role="alert" hidden {}
                    div.actions {
                        button.button type="submit" { "Create token" }
                    }
                }
                div #token-created.card.token-created hidden {
                    h2 { "New token: " span #token-created-name {} }
                    p {
                        strong { "Copy it now: it is shown only this once." }
                        " PicoShare keeps only a fingerprint of it and cannot show it again."
                    }
                    div.form-row {
                        label for="token-value" { "Token" }
                        input #token-value type="text" readonly spellcheck="false";
                    }
                    div.form-row {
                        label for="token-curl" { "Upload with curl" }
                        textarea #token-curl readonly rows="5" spellcheck="false" {}
                    }
                    div.actions {
                        button.button.secondary type="button" data-action="copy-token" { "Copy token" }
                        button.button.secondary type="button" data-action="download-sxcu" { "Download ShareX configuration" }
                        button.button type="button" data-action="token-done" { "Done" }
                    }
                }
                p.status #tokens-status role="status" aria-live="polite" {}
                p.empty #tokens-empty hidden[!tokens.is_empty()] { "No API tokens yet." }
                div.table-scroll hidden[tokens.is_empty()] {
                    table.data-table.tokens-table {
                        thead {
                            tr {
                                th scope="col" { "Name" }
                                th scope="col" { "Token" }
                                th scope="col" { "Created" }
                                th scope="col" { "Last used" }
                                th scope="col" { span.visually-hidden { "Actions" } }
                            }
                        }
                        tbody {
                            @for t in &tokens {
                                tr data-token-id=(t.id.as_str()) {
                                    td.name { (t.name) }
                                    td { code { (t.prefix) "…" } }
                                    td { (date_time(t.created)) }
                                    td { (t.last_used.map_or_else(|| "Never".to_owned(), date_time)) }
                                    td.actions {
                                        button.button.danger type="button" data-action="revoke-token" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}
