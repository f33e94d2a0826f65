//! The upload page: the owner's at `/` and a guest's at `/g/{guestLinkID}`.
//!
//! The page has no submit button: choosing, dropping or pasting files (or
//! sending typed text) starts their uploads at once
//! (`assets/js/pages/upload.js`). The picker comes first, the list of uploads
//! right under it (the script brings each row and its result into view),
//! then the options, folded in a `<details>` whose summary says what the next
//! upload gets. The
//! expiration options carry lifetimes, not times; the script turns them into
//! times when a file is sent, from the server's clock (sent in the page data)
//! so that a wrong clock in the browser cannot push a guest past the link's
//! limit.

use axum::extract::State;

use crate::http::error::Path;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::files::human_size;
use super::{json_data, login, Page, PageError};
use crate::http::{AppError, AppState};
use crate::ids::GuestLinkId;
use crate::store::model::{DefaultLifetime, GuestFileLifetime, GuestLink};
use crate::validate;

const NANOS_PER_HOUR: i64 = 3_600_000_000_000;
const NANOS_PER_DAY: i64 = 24 * NANOS_PER_HOUR;

/// The lifetimes every upload page offers, in days, with their labels.
const BUILT_IN_DAYS: [(i64, &str); 4] = [
    (1, "1 day"),
    (7, "7 days"),
    (30, "30 days"),
    (365, "1 year"),
];

/// One `<option>` of the Expiration select.
#[derive(Debug, PartialEq, Eq)]
struct ExpirationOption {
    /// `days:N`, `never`, `max` (the guest link's own limit: sent without an
    /// expiration) or `custom`.
    value: String,
    label: String,
    selected: bool,
}

impl ExpirationOption {
    fn new(value: impl Into<String>, label: impl Into<String>, selected: bool) -> Self {
        ExpirationOption {
            value: value.into(),
            label: label.into(),
            selected,
        }
    }
}

/// "1 day", "14 days", "1 year", "2 years".
fn days_label(days: i64) -> String {
    match days {
        1 => "1 day".to_owned(),
        d if d % 365 == 0 && d / 365 == 1 => "1 year".to_owned(),
        d if d % 365 == 0 => format!("{} years", d / 365),
        d => format!("{d} days"),
    }
}

/// The owner's options: the built-ins, the default lifetime from the settings
/// (added if it is not a built-in) preselected, Never and Custom.
fn admin_options(default: DefaultLifetime) -> Vec<ExpirationOption> {
    let default_days = match default {
        DefaultLifetime::Days(d) => Some(i64::from(d)),
        DefaultLifetime::Never => None,
    };
    let mut days: Vec<i64> = BUILT_IN_DAYS.iter().map(|(d, _)| *d).collect();
    if let Some(d) = default_days {
        if !days.contains(&d) {
            days.push(d);
            days.sort_unstable();
        }
    }
    let mut opts: Vec<ExpirationOption> = days
        .into_iter()
        .map(|d| ExpirationOption::new(format!("days:{d}"), days_label(d), Some(d) == default_days))
        .collect();
    opts.push(ExpirationOption::new(
        "never",
        "Never",
        default_days.is_none(),
    ));
    opts.push(ExpirationOption::new("custom", "Custom", false));
    opts
}

/// A guest link's file lifetime in words.
fn lifetime_label(lifetime: GuestFileLifetime) -> String {
    let nanos = lifetime.as_nanos();
    if lifetime.is_infinite() {
        "Never".to_owned()
    } else if nanos % NANOS_PER_DAY == 0 {
        days_label(nanos / NANOS_PER_DAY)
    } else if nanos / NANOS_PER_HOUR == 1 {
        "1 hour".to_owned()
    } else {
        format!("{} hours", nanos / NANOS_PER_HOUR)
    }
}

/// A guest's options: the built-ins shorter than the link's lifetime, then the
/// link's lifetime itself, preselected.
fn guest_options(lifetime: GuestFileLifetime) -> Vec<ExpirationOption> {
    let nanos = lifetime.as_nanos();
    let mut opts: Vec<ExpirationOption> = BUILT_IN_DAYS
        .iter()
        .filter(|(d, _)| lifetime.is_infinite() || d * NANOS_PER_DAY < nanos)
        .map(|(d, label)| ExpirationOption::new(format!("days:{d}"), *label, false))
        .collect();
    opts.push(ExpirationOption::new("max", lifetime_label(lifetime), true));
    opts
}

/// What the upload form offers.
struct UploadForm {
    options: Vec<ExpirationOption>,
    /// The owner's form has a note field and the Custom date.
    admin: bool,
    data: serde_json::Value,
    /// A line about the link's limits, on guest pages.
    limits: Option<String>,
}

fn now_millis(state: &AppState) -> i64 {
    state.clock.now().timestamp_millis()
}

/// Files from this size on are sent as resumable (tus) uploads; smaller ones
/// in one multipart request, which has nothing worth resuming.
const RESUMABLE_FROM: u64 = 4 << 20;

/// `GET /`: the upload page for the owner, the landing page for anyone else.
pub(crate) async fn index(
    State(state): State<AppState>,
    page: Page,
) -> Result<Response, PageError> {
    if !page.admin {
        return Ok(login::landing(&page));
    }
    let settings = state
        .store
        .settings()
        .await
        .map_err(|e| AppError::store("failed to read settings", e))?;
    let form = UploadForm {
        options: admin_options(settings.default_lifetime),
        admin: true,
        data: serde_json::json!({
            "endpoint": "/api/entry",
            "tusEndpoint": "/api/tus",
            "resumableFrom": RESUMABLE_FROM,
            "tusRequestBytes": state.config.tus_request_bytes,
            "maxFileBytes": null,
            "serverNow": now_millis(&state),
            "neverExpire": validate::NEVER_EXPIRE,
        }),
        limits: None,
    };
    Ok(page.render("Upload", upload_body(&form)))
}

/// `GET /g/{guestLinkID}/{*rest}`: the guest's upload page whatever follows
/// the ID, as the original serves it.
pub(crate) async fn guest_page_with_suffix(
    state: State<AppState>,
    Path((raw_id, _rest)): Path<(String, String)>,
    page: Page,
) -> Result<Response, PageError> {
    guest_page(state, Path(raw_id), page).await
}

/// `GET /g/{guestLinkID}` (and `/g/{guestLinkID}/`): a guest's upload page,
/// or "Guest Link Inactive".
pub(crate) async fn guest_page(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    page: Page,
) -> Result<Response, PageError> {
    let Ok(id) = GuestLinkId::parse(&raw_id) else {
        return Err(PageError::Shown(message_page(
            &page,
            StatusCode::BAD_REQUEST,
            "Invalid Guest Link",
            "This is not a valid guest link. Check that you copied the whole link.",
        )));
    };
    let link = state
        .store
        .guest_link(&id)
        .await
        .map_err(|e| AppError::store("Failed to retrieve guest link", e))?;
    let Some(link) = link else {
        return Err(PageError::Shown(message_page(
            &page,
            StatusCode::NOT_FOUND,
            "Guest Link Not Found",
            "This PicoShare upload link does not exist. Contact the PicoShare server owner to get a new link.",
        )));
    };
    if !link.is_active(state.clock.now()) {
        return Ok(message_page(
            &page,
            StatusCode::OK,
            "Guest Link Inactive",
            "This PicoShare upload link is no longer active. Contact the PicoShare server owner to get a new link.",
        ));
    }
    let form = guest_form(&state, &link);
    Ok(page.render("Upload", upload_body(&form)))
}

fn guest_form(state: &AppState, link: &GuestLink) -> UploadForm {
    let mut limits = Vec::new();
    if let Some(max) = link.max_file_bytes {
        limits.push(format!("Maximum file size: {}.", human_size(max)));
    }
    if let Some(max) = link.max_file_uploads {
        let left = max.saturating_sub(link.files_uploaded);
        limits.push(if left == 1 {
            "You can upload 1 more file.".to_owned()
        } else {
            format!("You can upload {left} more files.")
        });
    }
    UploadForm {
        options: guest_options(link.file_lifetime),
        admin: false,
        data: serde_json::json!({
            "endpoint": format!("/api/guest/{}", link.id.as_str()),
            "tusEndpoint": format!("/api/guest/{}/tus", link.id.as_str()),
            "resumableFrom": RESUMABLE_FROM,
            "tusRequestBytes": state.config.tus_request_bytes,
            "maxFileBytes": link.max_file_bytes,
            "maxFileSize": link.max_file_bytes.map(human_size),
            "uploadsLeft": link.max_file_uploads.map(|max| max.saturating_sub(link.files_uploaded)),
            "serverNow": now_millis(state),
            "neverExpire": validate::NEVER_EXPIRE,
        }),
        limits: (!limits.is_empty()).then(|| limits.join(" ")),
    }
}

/// A page with a heading and one paragraph.
fn message_page(page: &Page, status: StatusCode, title: &str, text: &str) -> Response {
    page.render_status(
        status,
        title,
        html! {
            section.narrow.card.message data-page="message" {
                h1 { (title) }
                p { (text) }
            }
        },
    )
}

fn upload_body(form: &UploadForm) -> Markup {
    html! {
        section.upload data-page="upload" {
            (json_data("page-data", &form.data))
            h1 { "Upload" }
            @if let Some(limits) = &form.limits {
                p.hint #guest-limits aria-live="polite" { (limits) }
            }
            // The picker first; the uploads, their progress and results right
            // under it (brought into view by the script); the options folded
            // away below, with a summary of what applies.
            div.drop-zone #drop-zone {
                input.file-input #file-input type="file" multiple;
                label.button.primary.big for="file-input" { "Choose files" }
                @if form.admin {
                    input.file-input #folder-input type="file" webkitdirectory multiple;
                    label.button.secondary for="folder-input" { "Choose a folder" }
                }
                p.hint { "or drop files anywhere on this page" }
            }
            ul.uploads #uploads aria-label="Uploads" {}
            form #upload-form {
                details.card.options-box #upload-options {
                    summary {
                        span.summary-title { "Options" }
                        " "
                        span.hint #options-summary {}
                    }
                    div.options {
                        div.field {
                            label for="expiration" { "Expiration" }
                            select #expiration name="expiration" {
                                @for o in &form.options {
                                    option value=(o.value) selected[o.selected] { (o.label) }
                                }
                            }
                        }
                        @if form.admin {
                            div.field #custom-date-field hidden {
                                label for="expiration-date" { "Expiration date" }
                                input #expiration-date type="date" name="expiration-date";
                            }
                            div.field.grow {
                                label for="note" { "Note (optional)" }
                                input #note type="text" name="note" maxlength="500"
                                    aria-describedby="note-hint";
                                small.hint #note-hint { "Only visible to you." }
                            }
                            div.field {
                                label for="max-downloads" { "Max downloads (optional)" }
                                input #max-downloads type="number" name="maxDownloads" min="1"
                                    max="1000000" step="1" inputmode="numeric"
                                    aria-describedby="max-downloads-hint";
                                small.hint #max-downloads-hint { "Complete downloads allowed." }
                            }
                            div.field {
                                label for="file-password" { "Password (optional)" }
                                input #file-password type="password" name="password"
                                    autocomplete="new-password" maxlength="1024";
                            }
                            div.check-row {
                                input #one-shot type="checkbox" name="oneShot";
                                label for="one-shot" { "One-shot (1 download)" }
                            }
                            div.check-row {
                                input #one-share type="checkbox" name="oneShare" checked;
                                label for="one-share" { "One share for all files (when several are sent together)" }
                            }
                            p.hint.full { "The note, the limits and the password apply to the next files chosen, then are cleared." }
                        }
                    }
                }
            }
            div.field.paste-field {
                label for="pastebox" { "Paste or type text" }
                textarea #pastebox rows="2" spellcheck="false"
                    placeholder="Paste text, an image or a file (Ctrl+V), or type text" {}
                div.actions {
                    button.button.secondary #upload-text type="button" { "Upload text" }
                }
            }
            div.drop-overlay #drop-overlay hidden aria-hidden="true" { p { "Drop files to upload" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(opts: &[ExpirationOption]) -> Vec<(&str, bool)> {
        opts.iter()
            .map(|o| (o.label.as_str(), o.selected))
            .collect()
    }

    #[test]
    fn admin_options_preselect_the_default() {
        assert_eq!(
            labels(&admin_options(DefaultLifetime::Days(30))),
            [
                ("1 day", false),
                ("7 days", false),
                ("30 days", true),
                ("1 year", false),
                ("Never", false),
                ("Custom", false)
            ]
        );
        assert_eq!(
            labels(&admin_options(DefaultLifetime::Days(14))),
            [
                ("1 day", false),
                ("7 days", false),
                ("14 days", true),
                ("30 days", false),
                ("1 year", false),
                ("Never", false),
                ("Custom", false)
            ]
        );
        assert_eq!(
            labels(&admin_options(DefaultLifetime::Never))[4],
            ("Never", true)
        );
        assert_eq!(
            admin_options(DefaultLifetime::Days(730))[4].label,
            "2 years"
        );
    }

    #[test]
    fn guest_options_stop_at_the_link_lifetime() {
        assert_eq!(
            labels(&guest_options(GuestFileLifetime::from_nanos(
                7 * NANOS_PER_DAY
            ))),
            [("1 day", false), ("7 days", true)]
        );
        assert_eq!(
            labels(&guest_options(GuestFileLifetime::from_nanos(
                36 * NANOS_PER_HOUR
            ))),
            [("1 day", false), ("36 hours", true)]
        );
        assert_eq!(
            labels(&guest_options(GuestFileLifetime::INFINITE)),
            [
                ("1 day", false),
                ("7 days", false),
                ("30 days", false),
                ("1 year", false),
                ("Never", true)
            ]
        );
        assert!(guest_options(GuestFileLifetime::ONE_DAY)
            .iter()
            .all(|o| o.value != "custom"));
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024 * 1024), "1.00 MB");
    }
}
