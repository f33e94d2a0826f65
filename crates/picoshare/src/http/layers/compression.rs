//! gzip for the server's own text: pages, JSON replies and the browser
//! code and style sheet, when the client accepts it (tower-http's
//! compression layer). A page of the file list is about 60 KB of HTML and
//! under 10 KB compressed.
//!
//! Never compressed: what users uploaded and what is made of it. Every file
//! download (full, ranged or multipart ranges) and a share's ZIP carry
//! `Content-Disposition`, ranged replies `Content-Range` or status 206,
//! and those are left exactly as stored, byte for byte, with their
//! `Content-Length` (clients resume, check and seek by those bytes). Only
//! the media types listed in [`COMPRESSED`] are compressed at all, and
//! replies under [`MIN_BYTES`] are not worth it.

use axum::http::{header, Response, StatusCode};
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;

/// The media types compressed (the part before any `;`).
const COMPRESSED: &[&str] = &[
    "text/html",
    "application/json",
    "text/css",
    "text/javascript",
    "application/javascript",
    "image/svg+xml",
    "text/plain",
];

/// Replies smaller than this are sent as they are.
const MIN_BYTES: u16 = 256;

/// Which replies are compressed (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OwnText;

impl Predicate for OwnText {
    fn should_compress<B>(&self, response: &Response<B>) -> bool
    where
        B: axum::body::HttpBody,
    {
        let h = response.headers();
        if response.status() == StatusCode::PARTIAL_CONTENT
            || h.contains_key(header::CONTENT_DISPOSITION)
            || h.contains_key(header::CONTENT_RANGE)
        {
            return false;
        }
        let media = h
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        media.is_some_and(|m| COMPRESSED.contains(&m.as_str()))
            && SizeAbove::new(MIN_BYTES).should_compress(response)
    }
}

/// The layer: gzip only, for [`OwnText`].
pub(crate) fn layer() -> CompressionLayer<OwnText> {
    CompressionLayer::new().gzip(true).compress_when(OwnText)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn reply(status: u16, headers: &[(header::HeaderName, &str)], len: usize) -> Response<Body> {
        let mut b = Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(k, *v);
        }
        b.body(Body::from(vec![b'a'; len])).unwrap()
    }

    #[test]
    fn only_our_own_text_is_compressed() {
        let html = (header::CONTENT_TYPE, "text/html; charset=utf-8");
        let json = (header::CONTENT_TYPE, "application/json");
        assert!(OwnText.should_compress(&reply(200, std::slice::from_ref(&html), 5000)));
        assert!(OwnText.should_compress(&reply(404, std::slice::from_ref(&json), 5000)));
        // Too small to be worth it.
        assert!(!OwnText.should_compress(&reply(200, std::slice::from_ref(&html), 100)));
        // Downloads: an uploaded HTML or JSON file, whole or in ranges.
        let disposition = (header::CONTENT_DISPOSITION, "inline; filename=\"a.html\"");
        assert!(!OwnText.should_compress(&reply(200, &[html.clone(), disposition], 5000)));
        assert!(!OwnText.should_compress(&reply(206, std::slice::from_ref(&json), 5000)));
        let range = (header::CONTENT_RANGE, "bytes 0-9/100");
        assert!(!OwnText.should_compress(&reply(416, &[json, range], 5000)));
        // Other media types, or none.
        let zip = (header::CONTENT_TYPE, "application/zip");
        assert!(!OwnText.should_compress(&reply(200, &[zip], 5000)));
        assert!(!OwnText.should_compress(&reply(200, &[], 5000)));
    }
}
