//! The system information page (`/information`): disk usage, the space the
//! store takes and could give back, and the build's version.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::files::{error_page, human_size};
use super::{AdminPage, PageError};
use crate::http::api::system::{REVISION, REVISION_TIME, VERSION};
use crate::http::{AppError, AppState};

/// `GET /information`.
pub(crate) async fn information(
    AdminPage(page): AdminPage,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let u = state.store.usage().await.map_err(|e| {
        let err = AppError::store("failed to check available space", e);
        error_page(&page, &err, "The server could not check its disk usage.")
    })?;
    let percent = if u.fs_total == 0 {
        0.0
    } else {
        u.fs_used as f64 * 100.0 / u.fs_total as f64
    };
    Ok(page.render(
        "System Information",
        html! {
            section data-page="information" {
                h1 { "System Information" }
                @if !u.local_disk {
                    h2 { "Storage" }
                    p #disk-usage-text {
                        "File data is in S3-compatible object storage and metadata in PostgreSQL; "
                        "their capacity is the storage services' own."
                    }
                    h2 { "PicoShare usage" }
                    div.fields {
                        p.field { span.field-name { "Upload data:" } " " span.field-value { (human_size(u.stored_files)) } }
                        p.field { span.field-name { "PostgreSQL database:" } " " span.field-value { (human_size(u.database)) } }
                    }
                } @else {
                    h2 { "Disk usage" }
                    div.usage {
                        label for="disk-usage" { "Disk usage" }
                        progress #disk-usage value=(u.fs_used) max=(u.fs_total.max(1)) {
                            (format!("{percent:.0}%"))
                        }
                        p #disk-usage-text {
                            "Server disk usage: " (human_size(u.fs_used)) " (" (format!("{percent:.0}%")) ") used of "
                            (human_size(u.fs_total)) " total; " (human_size(u.fs_free)) " free."
                        }
                    }
                    h2 { "PicoShare usage" }
                    div.fields {
                        p.field { span.field-name { "Upload data:" } " " span.field-value { (human_size(u.stored_files)) } }
                        p.field { span.field-name { "Database files:" } " " span.field-value { (human_size(u.database)) } }
                        p.field { span.field-name { "Reclaimable space:" } " " span.field-value { (human_size(u.reclaimable)) } }
                    }
                    p.hint {
                        "Space left by deleted files stays inside the database and is reused by new "
                        "uploads before the database grows again; PicoShare gives it back to the disk "
                        "gradually. Reclaimable space is what is free inside the database right now."
                    }
                }
                h2 { "PicoShare version" }
                div.fields {
                    p.field { span.field-name { "Version:" } " " span.field-value { (VERSION) } }
                    p.field { span.field-name { "Revision:" } " " span.field-value { code { (REVISION) } } }
                    @if !REVISION_TIME.is_empty() {
                        p.field { span.field-name { "Built at:" } " " span.field-value { (REVISION_TIME) } }
                    }
                }
            }
        },
    ))
}
