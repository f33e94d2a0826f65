//! The admin's list of files (`/files`): a page of them at a time, sorted,
//! filtered by name, each with its badges and links. The pages of one file
//! are [`super::files`], whose helpers this page shares.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{html, Markup};
use percent_encoding::utf8_percent_encode;

use super::files::{
    copy_button, date, error_page, expiry, fail, full_link, human_size, URI_COMPONENT,
};
use super::{AdminPage, PageError};
use crate::http::listing;
use crate::http::{AppError, AppState};
use crate::store::model::{EntryLimits, EntryQuery, EntrySort};

/// The badges of a file with limits: locked, one-shot, downloads used.
fn limit_badges(l: &EntryLimits) -> Markup {
    html! {
        @if l.password_hash.is_some() {
            " " span.badge.badge-locked title="Protected by a password" { "🔒 locked" }
        }
        @match l.max_downloads {
            Some(1) if l.downloads_used == 0 => { " " span.badge.badge-limit title="One download allowed" { "one-shot" } }
            Some(m) => {
                " " span.badge.badge-limit.used-up[l.downloads_used >= m]
                    title="Complete downloads used of those allowed" {
                    (l.downloads_used) "/" (m) " downloads"
                }
            }
            None => {}
        }
    }
}

/// A link to the file list with `q`'s sort, order and filter, on `page`.
fn list_url(q: &EntryQuery, page: u64) -> String {
    let mut url = format!(
        "/files?sort={}&order={}",
        q.sort.as_str(),
        if q.descending { "desc" } else { "asc" }
    );
    if !q.filter.is_empty() {
        url.push_str("&q=");
        url.push_str(&utf8_percent_encode(&q.filter, URI_COMPONENT).to_string());
    }
    if page > 1 {
        url.push_str(&format!("&page={page}"));
    }
    url
}

/// A column heading that sorts by `sort`: a link to the first page in that
/// order (the other direction when it is the current order), with
/// `aria-sort` on the current one.
fn sort_heading(q: &EntryQuery, sort: EntrySort, label: &str) -> Markup {
    let current = q.sort == sort;
    let mut next = q.clone();
    next.sort = sort;
    next.descending = if current {
        !q.descending
    } else {
        matches!(sort, EntrySort::Uploaded)
    };
    let aria = current.then_some(if q.descending {
        "descending"
    } else {
        "ascending"
    });
    html! {
        th scope="col" aria-sort=[aria] {
            a.sort href=(list_url(&next, 1)) data-sort=(sort.as_str()) { (label) }
        }
    }
}

/// Links to the previous and next pages, and where this one is.
fn pager(q: &EntryQuery, page: u64, pages: u64) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 {
                a.button.secondary rel="prev" href=(list_url(q, page - 1)) { "Previous" }
            }
            span.pager-position { "Page " (page) " of " (pages) }
            @if page < pages {
                a.button.secondary rel="next" href=(list_url(q, page + 1)) { "Next" }
            }
        }
    }
}

/// `GET /files[?sort=&order=&q=&page=]`: the files, a page of
/// [`listing::PAGE_SIZE`] at a time, newest first unless sorted otherwise,
/// filtered by name (see [`listing`]). Sorting, filtering and paging are
/// links and a form, so the page works without its script, which only
/// swaps the results in place (`assets/js/pages/files.js`).
pub(crate) async fn files(
    AdminPage(page): AdminPage,
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let bad = |e: AppError| {
        let message = e.message().to_owned();
        error_page(&page, &e, &message)
    };
    let q = listing::entry_query(&query).map_err(bad)?;
    let number = listing::page_number(&query).map_err(bad)?;
    let index_failed = |e| fail(&page, AppError::store("failed to retrieve file index", e));
    let found = state
        .store
        .entries_page(listing::page_window(q.clone(), number))
        .await
        .map_err(index_failed)?;
    let limits = state.store.all_limits().await.map_err(index_failed)?;
    let now = state.clock.now();
    let pages = listing::page_count(found.total);
    let first = (number - 1) * listing::PAGE_SIZE + 1;
    let summary = if found.entries.is_empty() {
        String::new()
    } else {
        let last = first + found.entries.len() as u64 - 1;
        let what = if q.filter.is_empty() {
            "files"
        } else {
            "matching files"
        };
        format!("Showing {first}–{last} of {} {what}", found.total)
    };
    Ok(page.render(
        "Files",
        html! {
            section data-page="files" {
                h1 { "Files" }
                form.toolbar #files-filter-form method="get" action="/files" role="search" {
                    label for="files-filter" { "Filter by name" }
                    input #files-filter type="search" name="q" autocomplete="off" value=(q.filter);
                    input type="hidden" name="sort" value=(q.sort.as_str());
                    input type="hidden" name="order" value=(if q.descending { "desc" } else { "asc" });
                    button.button.secondary type="submit" { "Filter" }
                    p.status #files-status role="status" aria-live="polite" { (summary) }
                }
                div #files-results data-total=(found.total) data-summary=(summary) {
                    @if found.entries.is_empty() {
                        @if q.filter.is_empty() && number == 1 {
                            p.empty { "No files yet. " a href="/" { "Upload one" } "." }
                        } @else if q.filter.is_empty() {
                            p.empty { "There is no page " (number) ". " a href="/files" { "First page" } }
                        } @else {
                            p.empty { "No file name contains “" (q.filter) "”." }
                        }
                    } @else {
                        div.table-scroll {
                            table.data-table.files-table {
                                thead {
                                    tr {
                                        (sort_heading(&q, EntrySort::Filename, "Filename"))
                                        th scope="col" { span.visually-hidden { "Note" } }
                                        (sort_heading(&q, EntrySort::Size, "Size"))
                                        (sort_heading(&q, EntrySort::Uploaded, "Uploaded"))
                                        (sort_heading(&q, EntrySort::Expires, "Expires"))
                                        th scope="col" { span.visually-hidden { "Actions" } }
                                    }
                                }
                                tbody {
                                    @for e in &found.entries {
                                        tr data-filename=(e.filename) {
                                            td.filename {
                                                a href=(full_link(&e.id, &e.filename)) { (e.filename) }
                                                @if let Some(l) = limits.get(&e.id) {
                                                    (limit_badges(l))
                                                }
                                            }
                                            td.note {
                                                @if let Some(note) = e.note.as_deref().filter(|n| !n.is_empty()) {
                                                    span.note-indicator role="img" title=(note) aria-label=(format!("Note: {note}")) { "✎" }
                                                }
                                            }
                                            td.num { (human_size(e.size)) }
                                            td { (date(e.upload_time)) }
                                            td { (expiry(e.expiration, now, false)) }
                                            td.actions {
                                                a.button.secondary href=(format!("/files/{}/info", e.id)) { "Information" }
                                                a.button.secondary href=(format!("/files/{}/edit", e.id)) { "Edit" }
                                                (copy_button(&format!("/-{}", e.id), None))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @if pages > 1 {
                            (pager(&q, number, pages))
                        }
                    }
                }
            }
        },
    ))
}
