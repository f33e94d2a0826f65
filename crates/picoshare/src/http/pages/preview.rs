//! Inline previews of a file, so that it can be seen before it is downloaded:
//! on the admin's file information page and on the public view page
//! `/v/{id}`, which anyone with the file's ID may open (the same capability
//! as the download link).
//!
//! A preview embeds the file from its download URL (`/-{id}`), which keeps
//! serving raw bytes with its `Content-Security-Policy: sandbox`: images,
//! video and audio as media elements, PDFs in an `<iframe>` (the pages' CSP
//! allows frames, images and media from `'self'` only), text as the first
//! 64 KiB fetched by `assets/js/preview.js` with a `Range` request and shown as text,
//! never as HTML. Other types get no preview.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::files::{full_link, human_size, lookup_message};
use super::{problem, Page, PageError};
use crate::http::downloads::file::{EXPIRED, USED_UP};
use crate::http::error::Path;
use crate::http::params::entry_named;
use crate::http::proto::mime::effective_content_type;
use crate::http::AppState;
use crate::store::model::{Entry, EntryLimits};

/// Bytes of a text file the preview shows.
const TEXT_PREVIEW_BYTES: u64 = 64 * 1024;

/// What kind of preview a file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `<img>`.
    Image,
    /// `<video>`.
    Video,
    /// `<audio>`.
    Audio,
    /// `<iframe>` with the browser's PDF viewer.
    Pdf,
    /// The first bytes as text in a `<pre>`.
    Text,
}

impl Kind {
    /// The `data-preview` value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Video => "video",
            Kind::Audio => "audio",
            Kind::Pdf => "pdf",
            Kind::Text => "text",
        }
    }
}

/// The preview kind for a media type (parameters ignored), if any.
pub(crate) fn kind(content_type: &str) -> Option<Kind> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let (top, sub) = essence.split_once('/')?;
    match top {
        "image" => Some(Kind::Image),
        "video" => Some(Kind::Video),
        "audio" => Some(Kind::Audio),
        "text" => Some(Kind::Text),
        "application" => match sub {
            "pdf" => Some(Kind::Pdf),
            "json" | "xml" | "yaml" | "toml" | "javascript" | "x-sh" | "x-yaml" => Some(Kind::Text),
            s if s.ends_with("+json") || s.ends_with("+xml") => Some(Kind::Text),
            _ => None,
        },
        _ => None,
    }
}

/// The preview of `entry` (nothing for types without one).
pub(crate) fn preview(entry: &Entry) -> Markup {
    let content_type = effective_content_type(&entry.content_type, &entry.filename);
    let Some(kind) = kind(&content_type) else {
        return html! {};
    };
    let src = format!("/-{}", entry.id.as_str());
    let label = format!("Preview of {}", entry.filename);
    html! {
        figure.preview data-preview=(kind.name()) {
            @match kind {
                Kind::Image => img src=(src) alt=(label);
                Kind::Video => video controls preload="metadata" src=(src) aria-label=(label) {
                    a href=(src) { "Download the video" }
                },
                Kind::Audio => audio controls preload="metadata" src=(src) aria-label=(label) {
                    a href=(src) { "Download the audio" }
                },
                Kind::Pdf => iframe src=(src) title=(label) {},
                Kind::Text => {
                    pre.preview-text tabindex="0" aria-label=(label)
                        data-preview-text=(src) data-size=(entry.size)
                        data-limit=(TEXT_PREVIEW_BYTES) { "Loading…" }
                    @if entry.size > TEXT_PREVIEW_BYTES {
                        figcaption { "The first " (human_size(TEXT_PREVIEW_BYTES)) " of " (human_size(entry.size)) "." }
                    }
                },
            }
        }
    }
}

/// A QR code of `path` (made absolute in the browser), with a caption.
pub(crate) fn qr_figure(path: &str, caption: &str) -> Markup {
    html! {
        figure.qr-figure {
            div.qr-box data-qr=(path) data-qr-label=(format!("QR code: {caption}")) {}
            figcaption { (caption) }
        }
    }
}

/// `GET /v/{id}`: the public view page: the file's name and size, its preview,
/// a download button and a QR code of the page.
pub(crate) async fn view_page(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    page: Page,
) -> Result<Response, PageError> {
    let entry = match entry_named(&state, &raw_id).await {
        Ok((_, entry)) => entry,
        Err(e) => {
            let title = match e.status() {
                StatusCode::NOT_FOUND => "Not Found",
                StatusCode::BAD_REQUEST => "Bad Request",
                _ => "Error",
            };
            return Err(problem(
                &page,
                e.status(),
                title,
                lookup_message(e.status()),
            ));
        }
    };
    if entry.is_expired(state.clock.now()) {
        return Err(problem(&page, StatusCode::GONE, "Expired", EXPIRED));
    }
    let limits = match state.store.entry_limits(&entry.id).await {
        Ok(l) => l,
        Err(_) => {
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            return Err(problem(&page, status, "Error", lookup_message(status)));
        }
    };
    if limits.as_ref().is_some_and(|l| l.used_up()) && !page.admin {
        return Err(problem(
            &page,
            StatusCode::GONE,
            "No Longer Available",
            USED_UP,
        ));
    }
    // A preview of a file with a download limit would use up a download (an
    // embedded image or video is a full download), and one with a password
    // cannot be shown before it is given: visitors get the download button
    // only. The owner's downloads never count and need no password.
    let restricted = limits.as_ref().is_some_and(EntryLimits::restricts);
    let id = entry.id.as_str();
    let view = format!("/v/{id}");
    // A password protects the file's name and size too (its download link
    // shows them only once the password is given): visitors see nothing of
    // it but a link to the download, which asks for the password.
    if limits.as_ref().is_some_and(|l| l.password_hash.is_some()) && !page.admin {
        let download = format!("/-{id}");
        return Ok(page.render(
            "Protected file",
            html! {
                section data-page="view" {
                    h1 { "Protected file" }
                    p.notice { "This file is protected by a password: the download asks for it." }
                    div.actions {
                        a.button href=(download) { "Download" }
                        button.button.secondary type="button" data-action="copy-link" data-path=(view) { "Copy link" }
                    }
                    p.status role="status" aria-live="polite" {}
                    (qr_figure(&view, "This page"))
                }
            },
        ));
    }
    let full = full_link(id, &entry.filename);
    Ok(page.render(
        &entry.filename,
        html! {
            section data-page="view" {
                h1.filename { (entry.filename) }
                p.subtitle { (human_size(entry.size)) }
                @if restricted && !page.admin {
                    p.notice {
                        "This file can be downloaded a limited number of times, so it has no preview. "
                    }
                } @else {
                    (preview(&entry))
                }
                div.actions {
                    a.button href=(full) download=(entry.filename) { "Download" }
                    button.button.secondary type="button" data-action="copy-link" data-path=(view) { "Copy link" }
                }
                p.status role="status" aria-live="polite" {}
                (qr_figure(&view, "This page"))
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_media_type() {
        assert_eq!(kind("image/png"), Some(Kind::Image));
        assert_eq!(kind("image/svg+xml"), Some(Kind::Image));
        assert_eq!(kind("video/mp4"), Some(Kind::Video));
        assert_eq!(kind("audio/wav"), Some(Kind::Audio));
        assert_eq!(kind("application/pdf"), Some(Kind::Pdf));
        assert_eq!(kind("text/html; charset=utf-8"), Some(Kind::Text));
        assert_eq!(kind("application/json"), Some(Kind::Text));
        assert_eq!(kind("application/ld+json"), Some(Kind::Text));
        assert_eq!(kind("application/zip"), None);
        assert_eq!(kind("application/octet-stream"), None);
        assert_eq!(kind("nonsense"), None);
    }
}
