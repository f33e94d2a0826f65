//! The admin's file pages: the list (`/files`), one file's information, edit
//! form, delete confirmation and download history.
//!
//! Everything a page shows is rendered on the server, so the pages read well
//! without JavaScript; the page modules (`assets/js/pages/files.js`,
//! `file-info.js`, `file-edit.js`, `file-delete.js`, `file-downloads.js`)
//! add sorting, filtering, copying and the calls to the JSON API
//! (`PUT`/`DELETE /api/entry/{id}`, and the "Replace file" form's
//! `PUT /api/entry/{id}/content`, shown on the SQLite store only). Dates are
//! shown in UTC.

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::preview::{preview, qr_figure};
use super::{AdminPage, Page, PageError};
use crate::http::error::Path;
use crate::http::listing;
use crate::http::params::entry_named;
use crate::http::{AppError, AppState};
use crate::ids::{EntryId, GuestLinkId};
use crate::store::model::{DownloadQuery, Entry, EntryLimits, EntryQuery, EntrySort};
use crate::useragent;
use crate::validate::db_time;

/// What `encodeURIComponent` leaves alone.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// A size in the original's units: `N B` under 1 KiB, else two decimals of
/// 1024-based `kB`, `MB`, `GB`, …
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// `YYYY-MM-DD`.
pub(crate) fn date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn date_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `Never`, or `YYYY-MM-DD (N days)` with N the rounded number of days left
/// (`(N days ago)` once past, for guest links; files show a negative count
/// as the original does when `ago` is false).
pub(crate) fn expiry(t: Option<DateTime<Utc>>, now: DateTime<Utc>, ago: bool) -> String {
    let Some(t) = t else {
        return "Never".to_owned();
    };
    let secs = (t - now).num_seconds() as f64;
    let days = (secs / 86_400.0).round() as i64;
    let plural = |n: i64| if n == 1 { "day" } else { "days" };
    if ago && days < 0 {
        format!("{} ({} {} ago)", date(t), -days, plural(-days))
    } else {
        format!("{} ({days} {})", date(t), plural(days.abs()))
    }
}

/// The full download link of a file, `/-{id}/{encoded filename}`.
pub(crate) fn full_link(id: &str, filename: &str) -> String {
    format!("/-{id}/{}", utf8_percent_encode(filename, URI_COMPONENT))
}

/// A page for a request that cannot be served: a 400 for a malformed ID, a
/// 404 for an unknown one, the error's text otherwise.
pub(crate) fn error_page(page: &Page, err: &AppError, message: &str) -> PageError {
    let (title, heading) = match err.status() {
        StatusCode::NOT_FOUND => ("Not Found", "Not found"),
        StatusCode::BAD_REQUEST => ("Bad Request", "Bad request"),
        _ => ("Error", "Something went wrong"),
    };
    PageError::Shown(page.render_status(
        err.status(),
        title,
        html! {
            section data-page="error" {
                h1 { (heading) }
                p role="alert" { (message) }
                p { a href="/files" { "Back to the files" } }
            }
        },
    ))
}

/// What a visitor is told when the file a page is about cannot be shown,
/// by the status of the failed look-up (also the public view page's words).
pub(crate) fn lookup_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => {
            "There is no file with this ID. It may have expired or been deleted."
        }
        StatusCode::BAD_REQUEST => "This is not a valid file ID.",
        _ => "The server could not read this file's data.",
    }
}

/// Turns an [`AppError`] into its page.
fn fail(page: &Page, err: AppError) -> PageError {
    error_page(page, &err, lookup_message(err.status()))
}

/// The request of a `/files/{id}/…` page, as an extractor: the page context
/// and the file. A redirect to the login page without a session, an error
/// page for a bad or unknown ID.
pub(crate) struct EntryPage {
    page: Page,
    id: EntryId,
    entry: Entry,
}

impl FromRequestParts<AppState> for EntryPage {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let Path(raw_id) = Path::<String>::from_request_parts(parts, state).await?;
        let AdminPage(page) = AdminPage::from_request_parts(parts, state).await?;
        match entry_named(state, &raw_id).await {
            Ok((id, entry)) => Ok(EntryPage { page, id, entry }),
            Err(e) => Err(fail(&page, e)),
        }
    }
}

/// A `Copy` button that copies the absolute form of `path`.
fn copy_button(path: &str, label: Option<&str>) -> Markup {
    html! {
        button.button.secondary type="button" data-action="copy-link" data-path=(path)
            aria-label=[label] { "Copy" }
    }
}

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

/// `GET /files/{id}/info`.
pub(crate) async fn file_info(
    State(state): State<AppState>,
    EntryPage { page, id, entry }: EntryPage,
) -> Result<Response, PageError> {
    // Only the count: a window of no rows.
    let count = DownloadQuery {
        limit: Some(0),
        ..DownloadQuery::default()
    };
    let downloads = state
        .store
        .downloads_page(&id, count)
        .await
        .map_err(|e| fail(&page, AppError::store("failed to retrieve downloads", e)))?
        .map_or(0, |d| d.total);
    let guest = match entry.guest_link_id.as_deref().map(GuestLinkId::parse) {
        Some(Ok(gid)) => match state.store.guest_link(&gid).await {
            Ok(link) => Some((
                gid.as_str().to_owned(),
                link.map(|l| l.label)
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(|| gid.as_str().to_owned()),
            )),
            Err(e) => {
                return Err(fail(
                    &page,
                    AppError::store("failed to read the guest link", e),
                ))
            }
        },
        Some(Err(_)) => entry.guest_link_id.clone().map(|g| (g.clone(), g)),
        None => None,
    };
    let limits = state.store.entry_limits(&id).await.map_err(|e| {
        fail(
            &page,
            AppError::store("failed to read the file's limits", e),
        )
    })?;
    let id = id.as_str();
    let full = full_link(id, &entry.filename);
    let short = format!("/-{id}");
    let view = format!("/v/{id}");
    let now = state.clock.now();
    Ok(page.render(
        "File Information",
        html! {
            section data-page="file-info" {
                p.subtitle { "File Information" }
                h1.filename { (entry.filename) }
                p.subtitle {
                    span { (human_size(entry.size)) } " · expires: " span { (expiry(entry.expiration, now, false)) }
                }
                div.actions {
                    a.button.primary href=(full) download=(entry.filename) { "Download" }
                    a.button.secondary href=(format!("/files/{id}/edit")) { "Edit" }
                    a.button.danger href=(format!("/files/{id}/confirm-delete")) { "Delete" }
                    a.button.secondary href="/files" { "Close" }
                }
                (preview(&entry))
                div.fields {
                    p.field {
                        span.field-name { "Full link:" } " "
                        a.field-value href=(full) data-absolute { (full) } " "
                        (copy_button(&full, Some("Copy full link")))
                    }
                    p.field {
                        span.field-name { "Short link:" } " "
                        a.field-value href=(short) data-absolute { (short) } " "
                        (copy_button(&short, Some("Copy short link")))
                    }
                    p.field {
                        span.field-name { "Preview page:" } " "
                        a.field-value href=(view) data-absolute { (view) } " "
                        (copy_button(&view, Some("Copy preview page link")))
                    }
                    p.field {
                        span.field-name { "Downloads:" } " "
                        span.field-value { (downloads) " (" a href=(format!("/files/{id}/downloads")) { "History" } ")" }
                    }
                    @if let Some(l) = &limits {
                        @if let Some(max) = l.max_downloads {
                            p.field {
                                span.field-name { "Download limit:" } " "
                                span.field-value {
                                    (l.downloads_used) " of " (max) " complete downloads used"
                                    @if l.used_up() { " (used up)" }
                                }
                            }
                        }
                        @if l.password_hash.is_some() {
                            p.field {
                                span.field-name { "Password:" } " "
                                span.field-value { "required to download" }
                            }
                        }
                    }
                    p.field {
                        span.field-name { "Note:" } " "
                        span.field-value {
                            @match entry.note.as_deref().filter(|n| !n.is_empty()) {
                                Some(note) => (note),
                                None => em { "None" },
                            }
                        }
                    }
                    p.field {
                        span.field-name { "Uploaded by:" } " "
                        span.field-value {
                            @match &guest {
                                Some((gid, label)) => { "Guest link: " a href=(format!("/g/{gid}")) { (label) } },
                                None => "You",
                            }
                        }
                    }
                    p.field {
                        span.field-name { "Upload time:" } " "
                        time.field-value datetime=(db_time(entry.upload_time)) { (date_time(entry.upload_time)) }
                    }
                }
                details.qr-details {
                    summary { "Show QR codes" }
                    div.qr-codes {
                        (qr_figure(&short, "Short link"))
                        (qr_figure(&view, "Preview page"))
                    }
                }
                form #replace-form.stack data-entry-id=(id) aria-labelledby="replace-heading" {
                    h2 #replace-heading { "Replace file" }
                    p.hint {
                        "Upload a new version: every link, QR code and share keeps pointing at this file. "
                        "Downloads already running finish with the current version."
                    }
                    div.form-row {
                        label for="replace-file" { "New file" }
                        input #replace-file name="file" type="file" required;
                    }
                    div.form-row.check {
                        input #replace-keep-name type="checkbox" name="keepName";
                        label for="replace-keep-name" { "Keep the name “" (entry.filename) "”" }
                    }
                    progress #replace-progress max="100" value="0" aria-label="Replacement upload progress" hidden {}
                    p.error #replace-error role="alert" hidden {}
                    div.actions {
                        button.button.primary type="submit" { "Replace file" }
                    }
                }
            }
        },
    ))
}

/// `GET /files/{id}/edit`.
pub(crate) async fn file_edit(
    State(state): State<AppState>,
    EntryPage { page, id, entry }: EntryPage,
) -> Result<Response, PageError> {
    let limits = state
        .store
        .entry_limits(&id)
        .await
        .map_err(|e| fail(&page, AppError::store("failed to retrieve entry", e)))?
        .unwrap_or_default();
    let id = id.as_str();
    let never = entry.expiration.is_none();
    let tomorrow = date(state.clock.now() + chrono::Duration::days(1));
    Ok(page.render(
        "Edit",
        html! {
            section data-page="file-edit" data-entry-id=(id) {
                h1 { "Edit " (entry.filename) }
                form #edit-form.stack {
                    div.form-row {
                        label for="edit-filename" { "Filename" }
                        input #edit-filename name="filename" type="text" required maxlength="255" value=(entry.filename);
                    }
                    div.form-row.check {
                        input #edit-never type="checkbox" name="never" checked[never];
                        label for="edit-never" { "Never expire" }
                    }
                    div.form-row {
                        label for="edit-expiration" { "Expiration date" }
                        input #edit-expiration name="expiration" type="date" min=(tomorrow)
                            value=[entry.expiration.map(date)]
                            data-original=[entry.expiration.map(db_time)]
                            disabled[never];
                    }
                    div.form-row {
                        label for="edit-note" { "Note" }
                        textarea #edit-note name="note" rows="3" maxlength="500" { (entry.note.as_deref().unwrap_or("")) }
                        p.hint { "Only you can see the note." }
                    }
                    div.form-row {
                        label for="edit-max-downloads" { "Max downloads" }
                        input #edit-max-downloads name="maxDownloads" type="number" min="1"
                            max="1000000" step="1" inputmode="numeric"
                            value=[limits.max_downloads]
                            data-original=(limits.max_downloads.map_or(String::new(), |m| m.to_string()));
                        p.hint #edit-downloads-used {
                            "Empty: no limit. Complete downloads so far: " (limits.downloads_used) "."
                        }
                    }
                    div.form-row {
                        label for="edit-password" { "New password" }
                        input #edit-password name="password" type="password"
                            autocomplete="new-password" maxlength="1024";
                        p.hint {
                            @if limits.password_hash.is_some() {
                                "This file has a password. Leave empty to keep it."
                            } @else {
                                "This file has no password. Leave empty for none."
                            }
                        }
                    }
                    @if limits.password_hash.is_some() {
                        div.form-row.check {
                            input #edit-remove-password type="checkbox" name="removePassword";
                            label for="edit-remove-password" { "Remove the password" }
                        }
                    }
                    p.error #edit-error role="alert" hidden {}
                    div.actions {
                        button.button type="submit" { "Save" }
                        button.button.danger type="submit" form="delete-form" { "Delete" }
                        a.button.secondary href="/files" { "Cancel" }
                    }
                }
                form #delete-form method="get" action=(format!("/files/{id}/confirm-delete")) {}
            }
        },
    ))
}

/// `GET /files/{id}/confirm-delete`.
pub(crate) async fn file_confirm_delete(
    EntryPage { page, id, entry }: EntryPage,
) -> Result<Response, PageError> {
    let id = id.as_str();
    Ok(page.render(
        "Delete",
        html! {
            section data-page="file-delete" data-entry-id=(id) {
                h1 { "Delete file" }
                p { "Permanently delete " strong { (entry.filename) } "?" }
                p.error #delete-error role="alert" hidden {}
                div.actions {
                    button.button.danger type="button" data-action="delete-entry" { "Delete" }
                    a.button.secondary href=(format!("/files/{id}/edit")) { "Cancel" }
                }
            }
        },
    ))
}

/// Links to the previous and next pages of a download history.
fn history_pager(id: &str, unique: bool, page: u64, pages: u64) -> Markup {
    let url = |n: u64| {
        let mut u = format!("/files/{id}/downloads?page={n}");
        if unique {
            u.push_str("&unique=true");
        }
        u
    };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 {
                a.button.secondary rel="prev" href=(url(page - 1)) { "Previous" }
            }
            span.pager-position { "Page " (page) " of " (pages) }
            @if page < pages {
                a.button.secondary rel="next" href=(url(page + 1)) { "Next" }
            }
        }
    }
}

/// `GET /files/{id}/downloads[?unique=true][&page=N]`: the history, newest
/// first, [`listing::PAGE_SIZE`] downloads a page.
pub(crate) async fn file_downloads(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    EntryPage { page, id, entry }: EntryPage,
) -> Result<Response, PageError> {
    let number = listing::page_number(&query).map_err(|e| {
        let message = e.message().to_owned();
        error_page(&page, &e, &message)
    })?;
    let q = listing::history_page(&query, number);
    let found = state
        .store
        .downloads_page(&id, q)
        .await
        .map_err(|e| fail(&page, AppError::store("failed to retrieve downloads", e)))?
        .ok_or_else(|| fail(&page, AppError::not_found("entry not found")))?;
    let replacements = state
        .store
        .replacements(&id)
        .await
        .map_err(|e| fail(&page, AppError::store("failed to retrieve downloads", e)))?;
    // Whether there is any download at all (the unique view counts addresses).
    let any = found.total > 0;
    let total = found.total;
    let pages = listing::page_count(total);
    let id = id.as_str();
    Ok(page.render(
        "Downloads",
        html! {
            section data-page="file-downloads" {
                h1 { (entry.filename) }
                p.subtitle { "Download history" }
                @if any {
                    form.toolbar #unique-form method="get" action=(format!("/files/{id}/downloads")) {
                        div.form-row.check {
                            input #unique-ips type="checkbox" name="unique" value="true" checked[q.unique];
                            label for="unique-ips" { "Unique IPs only" }
                        }
                        noscript { button.button.secondary type="submit" { "Apply" } }
                    }
                    @if found.rows.is_empty() {
                        p.empty { "There is no page " (number) ". " a href=(format!("/files/{id}/downloads")) { "First page" } }
                    } @else {
                        div.table-scroll {
                            table.data-table {
                                thead {
                                    tr {
                                        th scope="col" { "Download #" }
                                        th scope="col" { "Time" }
                                        th scope="col" { "Downloader IP" }
                                        th scope="col" { "Browser" }
                                        th scope="col" { "Platform" }
                                    }
                                }
                                tbody {
                                    @for (i, d) in found.rows.iter().enumerate() {
                                        @let ua = useragent::parse(&d.user_agent);
                                        tr {
                                            td.num { (total - q.offset - i as u64) }
                                            td { time datetime=(db_time(d.time)) { (date_time(d.time)) } }
                                            td { (d.client_ip) }
                                            td title=(d.user_agent) { (ua.browser) }
                                            td { (ua.platform) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if pages > 1 {
                        (history_pager(id, q.unique, number, pages))
                    }
                } @else {
                    p.empty { "No downloads yet." }
                }
                @if !replacements.is_empty() {
                    h2 #replacements-heading { "Content replaced" }
                    ul.replacements aria-labelledby="replacements-heading" {
                        @for r in &replacements {
                            li {
                                "Content replaced: " (r.old_filename) ", " (human_size(r.old_size))
                                " → " (r.new_filename) ", " (human_size(r.new_size)) ", "
                                time datetime=(db_time(r.time)) { (date_time(r.time)) }
                            }
                        }
                    }
                }
                div.actions {
                    a.button.secondary href=(format!("/files/{id}/info")) { "Close" }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_the_originals_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.00 kB");
        assert_eq!(human_size(1536), "1.50 kB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.00 MB");
        assert_eq!(human_size(3 << 30), "3.00 GB");
    }

    #[test]
    fn expiry_shows_days_left() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(expiry(None, now, false), "Never");
        let t = now + chrono::Duration::days(7);
        assert_eq!(expiry(Some(t), now, false), "2026-01-08 (7 days)");
        let t = now + chrono::Duration::hours(20);
        assert_eq!(expiry(Some(t), now, false), "2026-01-02 (1 day)");
        let t = now - chrono::Duration::days(2);
        assert_eq!(expiry(Some(t), now, true), "2025-12-30 (2 days ago)");
        assert_eq!(expiry(Some(t), now, false), "2025-12-30 (-2 days)");
    }

    #[test]
    fn links_encode_the_filename() {
        assert_eq!(full_link("abc", "a b/c.txt"), "/-abc/a%20b%2Fc.txt");
    }
}
