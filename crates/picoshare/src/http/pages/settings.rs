//! The settings page (`/settings`): the default lifetime of new uploads.
//! `assets/js/pages/settings.js` sends the form to `PUT /api/settings`.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::files::error_page;
use super::{AdminPage, PageError};
use crate::http::{AppError, AppState};
use crate::store::model::{DefaultLifetime, DEFAULT_LIFETIME_DAYS, MAX_LIFETIME_DAYS};

/// `GET /settings`. Whole years are shown in years; "never" shows the
/// default of 30 days, disabled.
pub(crate) async fn settings(
    AdminPage(page): AdminPage,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let settings = state.store.settings().await.map_err(|e| {
        let err = AppError::store("failed to read settings from database", e);
        error_page(&page, &err, "The server could not read its settings.")
    })?;
    let (days, never) = match settings.default_lifetime {
        DefaultLifetime::Days(d) => (d, false),
        DefaultLifetime::Never => (DEFAULT_LIFETIME_DAYS, true),
    };
    let years = days % 365 == 0;
    let (value, max) = if years {
        (days / 365, MAX_LIFETIME_DAYS / 365)
    } else {
        (days, MAX_LIFETIME_DAYS)
    };
    Ok(page.render(
        "Settings",
        html! {
            section data-page="settings" {
                h1 { "Settings" }
                form #settings-form.stack {
                    fieldset {
                        legend { "Default File Expiration" }
                        div.form-row.check {
                            input #settings-never type="checkbox" name="never" checked[never];
                            label for="settings-never" { "Store files forever" }
                        }
                        div.form-inline {
                            div.form-row {
                                label for="settings-value" { "Default file expiration" }
                                input #settings-value name="value" type="number" min="1" max=(max) step="1"
                                    required value=(value) disabled[never];
                            }
                            div.form-row {
                                label for="settings-unit" { "Unit" }
                                select #settings-unit name="unit" disabled[never] {
                                    option value="days" selected[!years] { "Days" }
                                    option value="years" selected[years] { "Years" }
                                }
                            }
                        }
                        p.hint { "New uploads preselect this lifetime." }
                    }
                    p.error #settings-error role="alert" hidden {}
                    p.status #settings-status role="status" aria-live="polite" {}
                    div.actions {
                        button.button type="submit" { "Save" }
                    }
                }
                h2 { "Notifications" }
                p {
                    "Be told when a guest uploads or a file is downloaded: "
                    a href="/settings/notifications" { "notification settings" } "."
                }
            }
        },
    ))
}
