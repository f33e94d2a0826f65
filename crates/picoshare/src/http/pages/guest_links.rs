//! The admin's guest-link pages: the list (`/guest-links`) and the creation
//! form (`/guest-links/new`). `assets/js/pages/guest-link*.js` send the form and the row
//! actions to the JSON API (`/api/guest-links…`).

use axum::extract::State;
use axum::response::Response;
use chrono::Duration;
use maud::html;

use super::files::{date, error_page, expiry, human_size};
use super::preview::qr_figure;
use super::{AdminPage, PageError};
use crate::http::{AppError, AppState};
use crate::store::model::GuestFileLifetime;
use crate::validate::{db_time, NEVER_EXPIRE};

const NANOS_PER_HOUR: i64 = 3_600 * 1_000_000_000;

/// A file lifetime in words: `Never`, `1 year`, `7 days`, `12 hours`.
fn friendly_lifetime(lifetime: GuestFileLifetime) -> String {
    if lifetime.is_infinite() {
        return "Never".to_owned();
    }
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    let nanos = lifetime.as_nanos();
    let hours = nanos / NANOS_PER_HOUR;
    if nanos % NANOS_PER_HOUR != 0 || hours == 0 {
        return format!("{:.1} hours", nanos as f64 / NANOS_PER_HOUR as f64);
    }
    if hours % 24 != 0 {
        return plural(hours, "hour");
    }
    let days = hours / 24;
    if days % 365 == 0 {
        plural(days / 365, "year")
    } else {
        plural(days, "day")
    }
}

/// `GET /guest-links`: every guest link, newest first.
pub(crate) async fn guest_links(
    AdminPage(page): AdminPage,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let links = state.store.guest_links().await.map_err(|e| {
        let err = AppError::store("failed to retrieve guest links", e);
        error_page(&page, &err, "The server could not read the guest links.")
    })?;
    let now = state.clock.now();
    Ok(page.render(
        "Guest Links",
        html! {
            section data-page="guest-links" {
                h1 { "Guest Links" }
                p.explainer {
                    "A guest link lets someone without the passphrase upload files to this server. "
                    "You choose how long the link works, how long the uploaded files live, and how "
                    "large and how many files it accepts."
                }
                p { a.button href="/guest-links/new" { "Create new" } }
                p.status #guest-links-status role="status" aria-live="polite" {}
                @if links.is_empty() {
                    p.empty { "No guest links yet." }
                } @else {
                    div.table-scroll {
                        table.data-table.guest-links-table {
                            thead {
                                tr {
                                    th scope="col" { "Label" }
                                    th scope="col" { "Created" }
                                    th scope="col" { "Link expires" }
                                    th scope="col" { "Files expire" }
                                    th scope="col" { "Max file size" }
                                    th scope="col" { "Uploads" }
                                    th scope="col" { span.visually-hidden { "Actions" } }
                                }
                            }
                            tbody {
                                @for l in &links {
                                    @let id = l.id.as_str();
                                    @let active = l.is_active(now);
                                    tr data-guest-link-id=(id) class=[(!active).then_some("inactive")] {
                                        td.label {
                                            @if l.label.is_empty() {
                                                @if active { a href=(format!("/g/{id}")) { em { "unnamed" } } }
                                                @else { em { "unnamed" } }
                                            } @else if active {
                                                a href=(format!("/g/{id}")) { (l.label) }
                                            } @else {
                                                (l.label)
                                            }
                                        }
                                        td { (date(l.creation_time)) }
                                        td { (expiry(l.url_expiration, now, true)) }
                                        td { (friendly_lifetime(l.file_lifetime)) }
                                        td.num { (l.max_file_bytes.map_or_else(|| "Unlimited".to_owned(), human_size)) }
                                        td.num {
                                            (l.files_uploaded) " / "
                                            (l.max_file_uploads.map_or_else(|| "Unlimited".to_owned(), |n| n.to_string()))
                                        }
                                        td.actions {
                                            button.button.secondary.copy type="button" data-action="copy-link" data-path=(format!("/g/{id}")) { "Copy" }
                                            @if l.is_disabled {
                                                button.button.secondary type="button" data-action="toggle-guest-link" data-disabled="true" { "Enable" }
                                            } @else {
                                                button.button.secondary type="button" data-action="toggle-guest-link" data-disabled="false" { "Disable" }
                                            }
                                            button.button.danger type="button" data-action="delete-guest-link" { "Delete" }
                                            details.qr-details {
                                                summary { "QR code" }
                                                (qr_figure(&format!("/g/{id}"), "Guest link"))
                                            }
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

/// `GET /guest-links/new`: the creation form. The link expirations are
/// absolute times computed now, as the original's form has them.
pub(crate) async fn new_guest_link(
    AdminPage(page): AdminPage,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let choices: [(&str, i64); 4] = [
        ("1 day", 1),
        ("7 days", 7),
        ("30 days", 30),
        ("1 year", 365),
    ];
    Ok(page.render(
        "New Guest Link",
        html! {
            section data-page="guest-link-new" {
                h1 { "New Guest Link" }
                form #guest-link-form.stack {
                    div.form-row {
                        label for="gl-label" { "Label" }
                        input #gl-label name="label" type="text" aria-describedby="gl-label-hint";
                        p.hint #gl-label-hint { "Optional, not visible to guests." }
                    }
                    div.form-row {
                        label for="gl-expires" { "Guest link expires" }
                        select #gl-expires name="urlExpirationTime" {
                            @for (label, days) in choices {
                                option value=(db_time(now + Duration::days(days))) { (label) }
                            }
                            option value=(NEVER_EXPIRE) selected { "Never" }
                        }
                    }
                    div.form-row {
                        label for="gl-file-lifetime" { "Guest files expire" }
                        select #gl-file-lifetime name="fileLifetime" {
                            @for (label, days) in choices {
                                option value=(format!("{}h0m0s", days * 24)) { (label) }
                            }
                            option value="876000h0m0s" selected { "Never" }
                        }
                    }
                    div.form-row {
                        label for="gl-max-size" { "Max file size (MB)" }
                        input #gl-max-size name="maxFileMegabytes" type="number" min="1" step="1" inputmode="numeric" placeholder="Unlimited";
                    }
                    div.form-row {
                        label for="gl-max-uploads" { "Upload limit" }
                        input #gl-max-uploads name="maxFileUploads" type="number" min="1" step="1" inputmode="numeric" placeholder="Unlimited";
                    }
                    p.error #guest-link-error role="alert" hidden {}
                    div.actions {
                        button.button type="submit" { "Create" }
                        a.button.secondary href="/guest-links" { "Cancel" }
                    }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_in_words() {
        let h = |n: i64| GuestFileLifetime::from_nanos(n * NANOS_PER_HOUR);
        assert_eq!(friendly_lifetime(GuestFileLifetime::INFINITE), "Never");
        assert_eq!(friendly_lifetime(h(24)), "1 day");
        assert_eq!(friendly_lifetime(h(168)), "7 days");
        assert_eq!(friendly_lifetime(h(8760)), "1 year");
        assert_eq!(friendly_lifetime(h(36)), "36 hours");
    }
}
