//! Share pages: the public page of a share (`/s/{id}`), which lists its
//! files with their links and offers the ZIP of them all, and the owner's
//! list of shares (`/shares`) with their links and delete buttons
//! (`assets/js/pages/shares.js`; the public page only copies links).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::files::{expiry, full_link, human_size};
use super::preview::qr_figure;
use super::{problem, AdminPage, Page, PageError};
use crate::http::api::shares::{is_protected, member_name, public_share};
use crate::http::error::Path;
use crate::http::{AppError, AppState};
use crate::store::model::Share;

/// The page of an error of a share's page.
fn message_page(page: &Page, err: &AppError) -> PageError {
    let title = match err.status() {
        StatusCode::NOT_FOUND => "Not Found",
        StatusCode::BAD_REQUEST => "Bad Request",
        StatusCode::GONE => "Expired",
        _ => "Error",
    };
    problem(page, err.status(), title, err.message())
}

fn title_of(share: &Share) -> String {
    share.title.clone().unwrap_or_else(|| {
        let n = share.files.len();
        if n == 1 {
            "1 shared file".to_owned()
        } else {
            format!("{n} shared files")
        }
    })
}

/// `GET /s/{id}`: the share's files that have not expired, each with its
/// size and links, and "Download all (.zip)" for those not protected.
pub(crate) async fn share_page(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    page: Page,
) -> Result<Response, PageError> {
    let share = public_share(&state, &raw_id)
        .await
        .map_err(|e| message_page(&page, &e))?;
    let limits = state
        .store
        .all_limits()
        .await
        .map_err(|e| message_page(&page, &AppError::store("failed to read limits", e)))?;
    let now = state.clock.now();
    let files: Vec<_> = share
        .files
        .iter()
        .filter(|f| !f.entry.is_expired(now))
        .collect();
    let protected = files
        .iter()
        .filter(|f| is_protected(limits.get(f.entry.id.as_str())))
        .count();
    let zipped: u64 = files
        .iter()
        .filter(|f| !is_protected(limits.get(f.entry.id.as_str())))
        .map(|f| f.entry.size)
        .sum();
    let link = format!("/s/{}", share.id);
    let title = title_of(&share);
    Ok(page.render(
        &title,
        html! {
            section data-page="share" data-share-id=(share.id.as_str()) {
                h1 { (title) }
                p.subtitle { (files.len()) " files · " (human_size(files.iter().map(|f| f.entry.size).sum())) }
                div.actions {
                    @if protected < files.len() {
                        a.button.primary #download-zip href=(format!("/s/{}/zip", share.id)) download {
                            "Download all (.zip, " (human_size(zipped)) ")"
                        }
                    }
                    button.button.secondary type="button" data-action="copy-link" data-path=(link) { "Copy link" }
                }
                @if protected > 0 {
                    p.hint #protected-hint {
                        @if protected == 1 { "1 file is" } @else { (protected) " files are" }
                        " protected by a password or a download limit and not in the ZIP: download "
                        @if protected == 1 { "it" } @else { "them" } " from " @if protected == 1 { "its" } @else { "their" } " own link."
                    }
                }
                p.status role="status" aria-live="polite" {}
                div.table-scroll {
                    table.data-table.share-table {
                        thead {
                            tr {
                                th scope="col" { "Name" }
                                th scope="col" { "Size" }
                                th scope="col" { "Expires" }
                                th scope="col" { span.visually-hidden { "Links" } }
                            }
                        }
                        tbody {
                            @for f in &files {
                                tr data-entry-id=(f.entry.id.as_str()) {
                                    td.filename {
                                        a href=(full_link(f.entry.id.as_str(), &f.entry.filename)) { (member_name(f)) }
                                        @if is_protected(limits.get(f.entry.id.as_str())) {
                                            " " span.badge.badge-locked title="Protected: not in the ZIP" { "protected" }
                                        }
                                    }
                                    td.num { (human_size(f.entry.size)) }
                                    td { (expiry(f.entry.expiration, now, false)) }
                                    td.actions {
                                        a.button.secondary href=(format!("/v/{}", f.entry.id)) { "View" }
                                    }
                                }
                            }
                        }
                    }
                }
                (qr_figure(&link, "This share"))
            }
        },
    ))
}

/// `GET /shares`: the owner's shares, newest first.
pub(crate) async fn shares_page(
    AdminPage(page): AdminPage,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let shares = state
        .store
        .shares()
        .await
        .map_err(|e| message_page(&page, &AppError::store("failed to read the shares", e)))?;
    Ok(page.render(
        "Shares",
        html! {
            section data-page="shares" {
                h1 { "Shares" }
                p.hint { "A share is one link to several files, made when you upload several files at once. "
                    "Deleting a share keeps its files unless you choose to delete them too." }
                p.alert.error #shares-error role="alert" hidden {}
                p.status role="status" aria-live="polite" {}
                @if shares.is_empty() {
                    p.empty { "No shares yet. " a href="/" { "Upload several files" } " to make one." }
                } @else {
                    div.table-scroll {
                        table.data-table.shares-table {
                            thead {
                                tr {
                                    th scope="col" { "Share" }
                                    th scope="col" { "Files" }
                                    th scope="col" { "Size" }
                                    th scope="col" { "Created" }
                                    th scope="col" { span.visually-hidden { "Actions" } }
                                }
                            }
                            tbody {
                                @for s in &shares {
                                    tr data-share-id=(s.id.as_str()) {
                                        td { a href=(format!("/s/{}", s.id)) { (title_of(s)) } }
                                        td.num { (s.files.len()) }
                                        td.num { (human_size(s.files.iter().map(|f| f.entry.size).sum())) }
                                        td { (super::files::date_time(s.created)) }
                                        td.actions {
                                            button.button.secondary type="button" data-action="copy-link" data-path=(format!("/s/{}", s.id)) { "Copy" }
                                            button.button.secondary type="button" data-action="delete-share" { "Delete share" }
                                            button.button.danger type="button" data-action="delete-share-files" { "Delete share and files" }
                                        }
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
