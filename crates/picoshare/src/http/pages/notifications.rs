//! The notifications page (`/settings/notifications`): the destinations of
//! events (webhooks, push topics, e-mail addresses) with the events and
//! filters each takes, whether it is paused, and its delivery state; the
//! form that adds one (and changes one: Edit), and for each Edit, Pause or
//! Resume, "Send test event" and Delete. E-mail is offered only when the
//! server has an SMTP server (`PS_SMTP_*`).
//! `assets/js/pages/notifications.js` talks to `/api/notifications…` and
//! shows the state it reads back; it writes a row as [`hook_row`] does.

use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};

use super::files::{date_time, error_page};
use super::{AdminPage, PageError};
use crate::config::SmtpConfig;
use crate::http::{AppError, AppState};
use crate::store::model::hooks::{
    recipients, Destination, DestinationKind, EventType, EVENT_TYPES,
};

/// Where `d` sends its events: its URL, or its e-mail addresses.
fn sends_to(d: &Destination) -> String {
    match d.spec.kind {
        DestinationKind::Email => recipients(&d.spec.url).join(", "),
        _ => d.spec.url.clone(),
    }
}

/// Chosen files a row names at most (then "and N more").
const FILES_SHOWN: usize = 5;

/// What `d` receives, in words: its event types ("All events" when it takes
/// every one), then its filters (first downloads only, chosen files).
fn events_cell(d: &Destination) -> Markup {
    let s = &d.spec;
    let chosen: Vec<EventType> = EVENT_TYPES
        .into_iter()
        .filter(|t| *t != EventType::Test && s.events.contains(t))
        .collect();
    let types = if chosen.is_empty() {
        "No events (test events only)".to_owned()
    } else if chosen.len() == EVENT_TYPES.len() - 1 {
        "All events".to_owned()
    } else {
        chosen
            .iter()
            .map(|t| t.title())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ids = s.entry_ids.as_deref().unwrap_or_default();
    html! {
        ul.plain {
            li { (types) }
            @if s.first_download_only && chosen.contains(&EventType::Download) {
                li { "Only a file's first download" }
            }
            @if !ids.is_empty() {
                li {
                    @if ids.len() == 1 { "Only file: " } @else { "Only " (ids.len()) " files: " }
                    @for (i, id) in ids.iter().take(FILES_SHOWN).enumerate() {
                        @if i > 0 { ", " }
                        code { (id) }
                    }
                    @if ids.len() > FILES_SHOWN { " and " (ids.len() - FILES_SHOWN) " more" }
                }
            }
        }
    }
}

/// The SMTP server in words, for the hint under the addresses.
fn smtp_hint(smtp: &SmtpConfig) -> String {
    format!(
        "Separated by commas, at most 10. Sent from {} through {}:{}.",
        smtp.from.email, smtp.host, smtp.port
    )
}

/// The delivery state of `d` in words.
fn state_cell(d: &Destination) -> Markup {
    html! {
        ul.plain {
            li { "Last delivered: " (d.last_success.map_or_else(|| "never".to_owned(), date_time)) }
            @if let Some((e, t)) = &d.last_error {
                li { "Last error: " (e) " (" (date_time(*t)) ")" }
            }
            li { "Waiting: " (d.queued) }
        }
    }
}

/// The row of destination `d` in the table.
fn hook_row(d: &Destination) -> Markup {
    let paused = !d.spec.enabled;
    html! {
        tr data-hook-id=(d.id) class=[paused.then_some("paused")] {
            td.name {
                span.hook-name { (d.spec.name) }
                @if paused { " " span.badge.paused { "paused" } }
            }
            td { (d.spec.kind.as_str()) }
            td.url { code { (sends_to(d)) } }
            td.hook-events { (events_cell(d)) }
            td.hook-state { (state_cell(d)) }
            td.actions {
                button.button.secondary type="button" data-action="hook-edit" { "Edit" }
                " "
                button.button.secondary type="button" data-action="hook-toggle" {
                    @if paused { "Resume" } @else { "Pause" }
                }
                " "
                button.button.secondary type="button" data-action="hook-test" { "Send test event" }
                " "
                button.button.danger type="button" data-action="hook-delete" { "Delete" }
            }
        }
    }
}

/// `GET /settings/notifications`.
pub(crate) async fn notifications(
    AdminPage(page): AdminPage,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let dests = state.store.hook_destinations().await.map_err(|e| {
        let err = AppError::store("failed to read the notification destinations", e);
        error_page(
            &page,
            &err,
            "The server could not read the notification destinations.",
        )
    })?;
    let smtp = state.config.smtp.as_ref();
    Ok(page.render(
        "Notifications",
        html! {
            section data-page="notifications" {
                h1 { "Notifications" }
                p.explainer {
                    "PicoShare can tell you when a guest uploads a file, a file is downloaded, "
                    "a download limit or a guest link is used up, or a file is about to expire. "
                    "Events go to a webhook (a signed JSON POST), to a push topic URL such as "
                    "ntfy's (plain text), or by e-mail. Events wait in the database until they "
                    "are delivered, and are retried for as long as the receiver is down."
                }
                p.explainer {
                    "A paused destination gets no events until it is resumed (those that happen "
                    "meanwhile are not kept for it; a test event is still sent, and events already "
                    "waiting are still delivered)."
                }
                h2 #hook-form-title { "Add a destination" }
                form #hook-form.stack aria-labelledby="hook-form-title" {
                    div.form-row {
                        label for="hook-name" { "Name" }
                        input #hook-name name="name" type="text" maxlength="100" required
                            placeholder="e.g. phone, CI webhook" autocomplete="off";
                    }
                    div.form-row {
                        label for="hook-kind" { "Format" }
                        select #hook-kind name="kind" {
                            option value="webhook" { "Webhook (signed JSON)" }
                            option value="ntfy" { "Push topic (ntfy-style plain text)" }
                            @if smtp.is_some() {
                                option value="email" { "E-mail (plain text)" }
                            } @else {
                                option value="email" disabled {
                                    "E-mail (needs an SMTP server: PS_SMTP_HOST)"
                                }
                            }
                        }
                    }
                    @if let Some(smtp) = smtp {
                        div.form-row #hook-to-row hidden {
                            label for="hook-to" { "E-mail addresses" }
                            input #hook-to name="to" type="email" multiple maxlength="2600"
                                placeholder="me@example.com" autocomplete="email"
                                aria-describedby="hook-to-hint";
                            p.hint #hook-to-hint { (smtp_hint(smtp)) }
                        }
                    }
                    div.form-row #hook-url-row {
                        label for="hook-url" { "URL" }
                        input #hook-url name="url" type="url" required maxlength="2000"
                            placeholder="https://ntfy.sh/my-topic" autocomplete="off";
                    }
                    div.form-row #hook-secret-row {
                        label for="hook-secret" { "Secret (optional)" }
                        input #hook-secret name="secret" type="text" maxlength="256"
                            autocomplete="off" spellcheck="false" aria-describedby="hook-secret-hint";
                        p.hint #hook-secret-hint {
                            "A webhook's signing key (one is made if you leave it empty), or a push "
                            "service's access token."
                        }
                    }
                    fieldset {
                        legend { "Events" }
                        @for t in EVENT_TYPES.iter().filter(|t| **t != EventType::Test) {
                            div.form-row.check {
                                input id={"hook-event-" (t.as_str())} type="checkbox" name="events"
                                    value=(t.as_str()) checked;
                                label for={"hook-event-" (t.as_str())} { (t.title()) }
                            }
                        }
                        div.form-row.check {
                            input #hook-first type="checkbox" name="firstDownloadOnly";
                            label for="hook-first" { "Downloads: only a file's first download" }
                        }
                    }
                    div.form-row {
                        label for="hook-entries" { "Only these files (optional)" }
                        input #hook-entries name="entryIds" type="text" autocomplete="off"
                            spellcheck="false" aria-describedby="hook-entries-hint";
                        p.hint #hook-entries-hint {
                            "File IDs separated by spaces (the ID is the part of a file's link after "
                            "the dash). Empty: every file."
                        }
                    }
                    p.error #hook-error role="alert" hidden {}
                    div.actions {
                        button.button type="submit" { "Add destination" }
                        button.button.secondary type="button" data-action="hook-cancel" hidden {
                            "Cancel"
                        }
                    }
                }
                div #hook-created.card hidden {
                    h2 { "Destination added" }
                    p { strong { "Copy the secret now: it is shown only this once." } }
                    div.form-row {
                        label for="hook-created-secret" { "Secret" }
                        input #hook-created-secret type="text" readonly spellcheck="false";
                    }
                    div.actions {
                        button.button type="button" data-action="hook-done" { "Done" }
                    }
                }
                p.status #hooks-status role="status" aria-live="polite" {}
                p.empty #hooks-empty hidden[!dests.is_empty()] { "No destinations yet." }
                div.table-scroll hidden[dests.is_empty()] {
                    table.data-table.hooks-table {
                        thead {
                            tr {
                                th scope="col" { "Name" }
                                th scope="col" { "Format" }
                                th scope="col" { "Sends to" }
                                th scope="col" { "Events" }
                                th scope="col" { "Delivery" }
                                th scope="col" { span.visually-hidden { "Actions" } }
                            }
                        }
                        tbody {
                            @for d in &dests { (hook_row(d)) }
                        }
                    }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::hooks::DestinationSpec;

    fn destination(events: &[EventType], first: bool, ids: Option<&[&str]>) -> Destination {
        Destination {
            id: "0123456789abcdef".into(),
            spec: DestinationSpec {
                name: "hook".into(),
                kind: DestinationKind::Webhook,
                url: "https://example.com/h".into(),
                secret: "s".into(),
                events: events.to_vec(),
                first_download_only: first,
                entry_ids: ids.map(|ids| ids.iter().map(|&i| i.to_owned()).collect()),
                enabled: true,
            },
            created: chrono::DateTime::UNIX_EPOCH,
            last_success: None,
            last_error: None,
            queued: 0,
        }
    }

    fn words(d: &Destination) -> String {
        events_cell(d).into_string()
    }

    #[test]
    fn events_and_filters_in_words() {
        let all: Vec<EventType> = EVENT_TYPES
            .into_iter()
            .filter(|t| *t != EventType::Test)
            .collect();
        assert_eq!(
            words(&destination(&all, false, None)),
            "<ul class=\"plain\"><li>All events</li></ul>"
        );
        // In the page's order, whatever the order given; the download filter
        // only with downloads.
        let d = destination(
            &[EventType::ExpiringSoon, EventType::Download],
            true,
            Some(&["aaaaaaaaaa"]),
        );
        assert_eq!(
            words(&d),
            "<ul class=\"plain\"><li>File downloaded, File expiring soon</li>\
             <li>Only a file's first download</li>\
             <li>Only file: <code>aaaaaaaaaa</code></li></ul>"
        );
        assert_eq!(
            words(&destination(&[], true, None)),
            "<ul class=\"plain\"><li>No events (test events only)</li></ul>"
        );
        let ids = ["a1", "a2", "a3", "a4", "a5", "a6", "a7"];
        let text = words(&destination(&[EventType::Download], false, Some(&ids)));
        assert!(
            text.ends_with(
                "<li>Only 7 files: <code>a1</code>, <code>a2</code>, <code>a3</code>, \
                 <code>a4</code>, <code>a5</code> and 2 more</li></ul>"
            ),
            "{text}"
        );
        let paused = Destination {
            spec: DestinationSpec {
                enabled: false,
                ..destination(&all, false, None).spec
            },
            ..destination(&all, false, None)
        };
        let row = hook_row(&paused).into_string();
        assert!(row.contains("class=\"paused\""), "{row}");
        assert!(
            row.contains("<span class=\"badge paused\">paused</span>"),
            "{row}"
        );
        assert!(row.contains(">Resume</button>"), "{row}");
    }
}
