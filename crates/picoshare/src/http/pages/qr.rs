//! QR codes, drawn by the server: `GET /qr.svg?text=…` answers an SVG image
//! of `text` (a link of this server, made absolute by the page's script), as
//! `<img>` of the pages (file information, the view page, a share, the upload
//! result's code on demand). The encoding is the `qrcode` crate's (error
//! correction level M); this module only sizes and serves it.
//!
//! Anyone may ask: it reads nothing from the store and reveals nothing the
//! asker did not send. The text is capped at [`MAX_TEXT`] bytes so that a
//! request cannot make the server draw huge images.

use axum::extract::Query;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use serde::Deserialize;

use crate::http::AppError;

/// Longest text encoded, in bytes (a link with a long file name fits).
pub(crate) const MAX_TEXT: usize = 1024;

/// The query of `GET /qr.svg`.
#[derive(Debug, Deserialize)]
pub(crate) struct QrQuery {
    text: Option<String>,
}

/// The SVG of `text` (dark modules on white, with the standard quiet zone).
pub(crate) fn svg_of(text: &str) -> Result<String, AppError> {
    if text.is_empty() {
        return Err(AppError::bad_request("text is required"));
    }
    if text.len() > MAX_TEXT {
        return Err(AppError::bad_request(format!(
            "text is too long for a QR code here (at most {MAX_TEXT} bytes)"
        )));
    }
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|_| AppError::bad_request("text does not fit in a QR code"))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build())
}

/// `GET /qr.svg?text=…`: the QR code of `text` as `image/svg+xml`.
pub(crate) async fn qr_svg(Query(q): Query<QrQuery>) -> Result<Response, AppError> {
    let svg = svg_of(q.text.as_deref().unwrap_or_default())?;
    let mut resp = (StatusCode::OK, svg).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    // The same text always gives the same image.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg_and_refuses_empty_or_long_texts() {
        let svg = svg_of("http://127.0.0.1:4001/v/abcdefghij").unwrap();
        assert!(svg.starts_with("<?xml"), "{svg}");
        assert!(svg.contains("<svg"), "{svg}");
        assert_eq!(svg_of("").unwrap_err().status(), StatusCode::BAD_REQUEST);
        let long = "x".repeat(MAX_TEXT + 1);
        assert_eq!(svg_of(&long).unwrap_err().status(), StatusCode::BAD_REQUEST);
    }
}
