//! Choice of the `Content-Type` sent with a download.
//!
//! This module owns the extension-to-media-type table and the rule for when a
//! stored content type is trusted versus inferred from the filename. Every
//! value it returns is safe to place in a header.

/// Used when nothing better is known.
const OCTET_STREAM: &str = "application/octet-stream";

/// Known file extensions (lowercase, without the dot) and their media types.
/// Textual types carry an explicit UTF-8 charset.
const EXTENSIONS: &[(&str, &str)] = &[
    // Text and web.
    ("txt", "text/plain; charset=utf-8"),
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("xml", "application/xml"),
    ("csv", "text/csv; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("toml", "application/toml"),
    ("sh", "application/x-sh"),
    // Images.
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("svg", "image/svg+xml"),
    ("ico", "image/x-icon"),
    ("bmp", "image/bmp"),
    ("avif", "image/avif"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("heic", "image/heic"),
    // Audio.
    ("mp3", "audio/mpeg"),
    ("wav", "audio/wav"),
    ("ogg", "audio/ogg"),
    ("oga", "audio/ogg"),
    ("flac", "audio/flac"),
    ("m4a", "audio/mp4"),
    ("aac", "audio/aac"),
    ("opus", "audio/ogg"),
    ("weba", "audio/webm"),
    // Video.
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("webm", "video/webm"),
    ("ogv", "video/ogg"),
    ("mov", "video/quicktime"),
    ("mkv", "video/x-matroska"),
    ("avi", "video/x-msvideo"),
    ("mpeg", "video/mpeg"),
    ("mpg", "video/mpeg"),
    ("3gp", "video/3gpp"),
    // Documents and archives.
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tgz", "application/gzip"),
    ("tar", "application/x-tar"),
    ("bz2", "application/x-bzip2"),
    ("xz", "application/x-xz"),
    ("7z", "application/x-7z-compressed"),
    ("rar", "application/vnd.rar"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("odt", "application/vnd.oasis.opendocument.text"),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ("odp", "application/vnd.oasis.opendocument.presentation"),
    ("rtf", "application/rtf"),
    ("epub", "application/epub+zip"),
    // Fonts.
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    // Binaries and images of media.
    ("wasm", "application/wasm"),
    ("apk", "application/vnd.android.package-archive"),
    ("iso", "application/x-iso9660-image"),
];

/// Content type to send: the stored value unless it is empty or `application/octet-stream`, in which case it is inferred from the filename's extension (case-insensitive); falls back to the stored value, or `application/octet-stream` if stored is empty.
///
/// A stored value containing anything other than visible ASCII and spaces
/// (for example CR/LF) is treated as empty, since it ends up in a header.
pub(crate) fn effective_content_type(stored: &str, filename: &str) -> String {
    let stored = sanitize(stored);
    if !stored.is_empty() && !is_octet_stream(stored) {
        return stored.to_string();
    }
    if let Some(inferred) = extension(filename).and_then(lookup) {
        return inferred.to_string();
    }
    if stored.is_empty() {
        OCTET_STREAM.to_string()
    } else {
        stored.to_string()
    }
}

/// The trimmed stored value, or `""` if it is not a safe header value.
fn sanitize(stored: &str) -> &str {
    let trimmed = stored.trim_matches([' ', '\t']);
    if trimmed.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        trimmed
    } else {
        ""
    }
}

/// Whether the media type (ignoring parameters) is `application/octet-stream`.
fn is_octet_stream(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(OCTET_STREAM)
}

/// The text after the final dot, unless the name has no stem before it
/// (`.bashrc`) or nothing after it (`file.`).
fn extension(filename: &str) -> Option<&str> {
    let (stem, ext) = filename.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then_some(ext)
}

/// The media type registered for an extension, ignoring ASCII case.
fn lookup(ext: &str) -> Option<&'static str> {
    EXTENSIONS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(ext))
        .map(|&(_, media_type)| media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_value_wins_when_specific() {
        assert_eq!(
            effective_content_type("image/png", "notes.txt"),
            "image/png"
        );
        assert_eq!(
            effective_content_type("text/plain; charset=latin1", "a.pdf"),
            "text/plain; charset=latin1"
        );
    }

    #[test]
    fn empty_stored_value_is_inferred() {
        assert_eq!(effective_content_type("", "song.mp3"), "audio/mpeg");
        assert_eq!(effective_content_type("", "clip.mp4"), "video/mp4");
        assert_eq!(
            effective_content_type("", "notes.txt"),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn octet_stream_is_inferred() {
        assert_eq!(
            effective_content_type("application/octet-stream", "page.html"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            effective_content_type("Application/Octet-Stream", "a.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(
            effective_content_type("application/octet-stream; x=y", "a.pdf"),
            "application/pdf"
        );
    }

    #[test]
    fn extension_is_case_insensitive() {
        assert_eq!(effective_content_type("", "PHOTO.JPG"), "image/jpeg");
        assert_eq!(
            effective_content_type("", "Data.Csv"),
            "text/csv; charset=utf-8"
        );
    }

    #[test]
    fn only_last_extension_counts() {
        assert_eq!(
            effective_content_type("", "backup.tar.gz"),
            "application/gzip"
        );
        assert_eq!(
            effective_content_type("", "app.min.js"),
            "text/javascript; charset=utf-8"
        );
    }

    #[test]
    fn unknown_extension_falls_back() {
        assert_eq!(effective_content_type("", "data.xyz"), OCTET_STREAM);
        assert_eq!(
            effective_content_type("application/octet-stream", "data.xyz"),
            OCTET_STREAM
        );
        assert_eq!(
            effective_content_type("application/octet-stream; a=b", "x"),
            "application/octet-stream; a=b"
        );
    }

    #[test]
    fn names_without_real_extension_fall_back() {
        for name in ["", "README", ".txt", "file.", "dir.d/"] {
            assert_eq!(effective_content_type("", name), OCTET_STREAM, "{name:?}");
        }
    }

    #[test]
    fn unsafe_stored_values_are_discarded() {
        assert_eq!(
            effective_content_type("text/html\r\nSet-Cookie: a=b", "a.png"),
            "image/png"
        );
        assert_eq!(effective_content_type("text/plain\0", "x"), OCTET_STREAM);
        assert_eq!(
            effective_content_type("tëxt/plain", "x.md"),
            "text/markdown; charset=utf-8"
        );
    }

    #[test]
    fn stored_value_is_trimmed() {
        assert_eq!(effective_content_type("  image/gif\t", "x"), "image/gif");
        assert_eq!(effective_content_type("   ", "x.wasm"), "application/wasm");
    }

    #[test]
    fn table_is_well_formed() {
        assert!(EXTENSIONS.len() >= 60);
        for (i, (ext, media_type)) in EXTENSIONS.iter().enumerate() {
            assert_eq!(*ext, ext.to_ascii_lowercase(), "{ext}");
            assert!(
                EXTENSIONS[..i].iter().all(|(e, _)| e != ext),
                "duplicate {ext}"
            );
            assert!(
                media_type
                    .bytes()
                    .all(|b| b == b' ' || b.is_ascii_graphic()),
                "{media_type}"
            );
            if media_type.starts_with("text/") {
                assert!(media_type.ends_with("; charset=utf-8"), "{media_type}");
            }
        }
    }
}
