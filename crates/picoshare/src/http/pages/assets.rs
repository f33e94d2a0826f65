//! Static assets embedded in the binary (the stylesheet, the icon and the
//! browser code, ES modules), served under `/static/`.
//!
//! # URLs and caching
//!
//! Pages link every asset as `/static/VERSION/PATH` ([`url`]), where `PATH` is
//! the file's path under `assets/` and `VERSION` a hash of all the assets
//! (paths and bytes). Those URLs are served with a one-year `immutable` cache
//! lifetime: their content never changes, since any change makes a new
//! `VERSION`.
//!
//! The browser code is ES modules that import each other with relative
//! specifiers (`app.js` imports `./js/qr.js`, `js/pages/files.js` imports
//! `../api.js`). A browser resolves those against the importing module's URL,
//! so they stay inside the same `VERSION` directory: a page's modules all come
//! from one version, and a new version renames every one of them. One version
//! for the whole set, rather than a hash per file, is what makes this work
//! without a build step: per-file hashes would have to be written into every
//! import that names the file (by rewriting the sources at build time), and a
//! change to one module would then have to rename its importers too, up to
//! the entry. Here the files are served byte for byte as they are in the
//! repository; the cost is that a change to one asset makes browsers fetch
//! all of them again once (about 80 KB).
//!
//! A `VERSION` other than the current one is a 404: the bytes it named are
//! gone, and today's bytes under an old name would be kept by caches as if
//! they were the old ones. (Pages are never cached, so no page still links an
//! old version.)
//!
//! Without a version, `/static/PATH` serves the same files for tools and tests
//! (and for the relative imports of a module loaded from there), with
//! `Cache-Control: no-cache`: a name whose content changes must be revalidated.
//!
//! # Icons at fixed paths
//!
//! Browsers, phones and other tools ask for icons at paths of their own
//! (`/favicon.ico`, `/apple-touch-icon.png`, `/site.webmanifest`, …), as the
//! original serves them. [`root_files`] serves `assets/icons/NAME` at `/NAME`
//! for each of them, with `Cache-Control: public, max-age=3600` (a changed
//! icon shows within the hour). The images are our own, drawn from
//! `favicon.svg`'s design by `scripts/make-icons.py`.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::http::{AppError, AppState};

/// One embedded file.
struct Asset {
    /// Its path under `assets/`, which is also its URL path under the version.
    path: &'static str,
    bytes: &'static [u8],
}

/// The embedded files, each given by its path under `assets/`.
macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(Asset {
            path: $path,
            bytes: include_bytes!(concat!("../../../assets/", $path)),
        }),*]
    };
}

/// Every asset. A file added under `assets/` must be listed here (a test
/// checks it, and that every module's imports resolve to listed files).
const ASSETS: &[Asset] = assets![
    "style.css",
    "favicon.svg",
    "app.js",
    "js/api.js",
    "js/clipboard.js",
    "js/dom.js",
    "js/limits.js",
    "js/preview.js",
    "js/qr.js",
    "js/share-group.js",
    "js/tus.js",
    "js/upload-queue.js",
    "js/pages/file-delete.js",
    "js/pages/file-downloads.js",
    "js/pages/file-edit.js",
    "js/pages/file-info.js",
    "js/pages/files.js",
    "js/pages/guest-link-new.js",
    "js/pages/guest-links.js",
    "js/pages/login.js",
    "js/pages/notifications.js",
    "js/pages/sessions.js",
    "js/pages/settings.js",
    "js/pages/shares.js",
    "js/pages/tokens.js",
    "js/pages/upload.js",
    "icons/android-chrome-192x192.png",
    "icons/android-chrome-384x384.png",
    "icons/apple-touch-icon.png",
    "icons/browserconfig.xml",
    "icons/favicon-16x16.png",
    "icons/favicon-32x32.png",
    "icons/favicon.ico",
    "icons/mstile-150x150.png",
    "icons/safari-pinned-tab.svg",
    "icons/site.webmanifest",
];

/// The files of `assets/icons/` served at the root (`/NAME`), the paths the
/// original serves them at.
const ROOT_FILES: &[&str] = &[
    "android-chrome-192x192.png",
    "android-chrome-384x384.png",
    "apple-touch-icon.png",
    "browserconfig.xml",
    "favicon-16x16.png",
    "favicon-32x32.png",
    "favicon.ico",
    "mstile-150x150.png",
    "safari-pinned-tab.svg",
    "site.webmanifest",
];

/// `Cache-Control` of the icons at the root.
const ROOT_CACHE: &str = "public, max-age=3600";

/// `Cache-Control` of versioned URLs.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of unversioned URLs.
const REVALIDATE: &str = "public, no-cache";

/// The version of the asset set: 12 hex digits of a SHA-256 over every
/// asset's path and bytes.
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash = Sha256::new();
        for asset in ASSETS {
            for part in [asset.path.as_bytes(), asset.bytes] {
                hash.update((part.len() as u64).to_le_bytes());
                hash.update(part);
            }
        }
        crate::ids::hex(&hash.finalize()[..6])
    })
}

/// The URL of the asset at `path` (under `assets/`), in the current version,
/// so it can be cached forever.
pub(crate) fn url(path: &str) -> String {
    format!("/static/{}/{path}", version())
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/vnd.microsoft.icon",
        Some("xml") => "application/xml; charset=utf-8",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// The asset a path under `/static/` names, with the `Cache-Control` to
/// serve it with (see the module docs).
fn lookup(path: &str) -> Option<(&'static Asset, &'static str)> {
    let find = |p: &str| ASSETS.iter().find(|a| a.path == p);
    if let Some((first, rest)) = path.split_once('/') {
        if first == version() {
            return find(rest).map(|a| (a, IMMUTABLE));
        }
    }
    find(path).map(|a| (a, REVALIDATE))
}

/// `GET /static/{*path}`: `VERSION/PATH` or `PATH`.
pub(crate) async fn serve(Path(path): Path<String>) -> Result<Response, AppError> {
    let Some((asset, cache)) = lookup(&path) else {
        return Err(AppError::not_found("404 page not found"));
    };
    Ok(asset_response(asset, cache))
}

/// The routes of the icons at the root, one per file of [`ROOT_FILES`]
/// (written out, so that `scripts/check-openapi.py` sees each; a test checks
/// that every one is served).
pub(crate) fn root_files() -> Router<AppState> {
    Router::new()
        .route("/android-chrome-192x192.png", get(serve_root))
        .route("/android-chrome-384x384.png", get(serve_root))
        .route("/apple-touch-icon.png", get(serve_root))
        .route("/browserconfig.xml", get(serve_root))
        .route("/favicon-16x16.png", get(serve_root))
        .route("/favicon-32x32.png", get(serve_root))
        .route("/favicon.ico", get(serve_root))
        .route("/mstile-150x150.png", get(serve_root))
        .route("/safari-pinned-tab.svg", get(serve_root))
        .route("/site.webmanifest", get(serve_root))
}

/// `GET /NAME` for a file of [`ROOT_FILES`]: `assets/icons/NAME`.
async fn serve_root(uri: Uri) -> Result<Response, AppError> {
    let name = uri.path().trim_start_matches('/');
    let Some(asset) = ROOT_FILES
        .contains(&name)
        .then(|| ASSETS.iter().find(|a| a.path == format!("icons/{name}")))
        .flatten()
    else {
        return Err(AppError::not_found("404 page not found"));
    };
    Ok(asset_response(asset, ROOT_CACHE))
}

fn asset_response(asset: &Asset, cache: &'static str) -> Response {
    let mut resp = (StatusCode::OK, asset.bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(asset.path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path as FsPath, PathBuf};

    fn files_under(dir: &FsPath, root: &FsPath, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                files_under(&p, root, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_str().unwrap();
                out.push(rel.replace('\\', "/"));
            }
        }
    }

    #[test]
    fn every_file_under_assets_is_embedded() {
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets"));
        let mut on_disk = Vec::new();
        files_under(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
        for a in ASSETS {
            assert_ne!(
                content_type(a.path),
                "application/octet-stream",
                "{}",
                a.path
            );
        }
    }

    /// The module specifiers a module imports (`import … from "x"`, `import "x"`,
    /// `export … from "x"`, also when the import list spans several lines).
    fn imports(source: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for line in source.lines().map(str::trim) {
            let statement = line.starts_with("import ")
                || line.starts_with("export ")
                || line.starts_with("} from ");
            if !statement {
                continue;
            }
            let rest = match line.split_once(" from ") {
                Some((_, rest)) => rest,
                None if line.starts_with("import ") => &line["import ".len()..],
                None => continue,
            };
            if let Some(spec) = rest
                .trim()
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
            {
                out.push(spec);
            }
        }
        out
    }

    /// Resolves the relative specifier `spec` against the module at `from`.
    fn resolve(from: &str, spec: &str) -> Option<String> {
        if !spec.starts_with("./") && !spec.starts_with("../") {
            return None;
        }
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for seg in spec.split('/') {
            match seg {
                "." => {}
                ".." => {
                    parts.pop()?;
                }
                s => parts.push(s),
            }
        }
        Some(parts.join("/"))
    }

    /// Every import is relative (an absolute URL would leave the version's
    /// directory) and names an embedded module; none is dynamic, so a page's
    /// whole module graph loads before its `DOMContentLoaded`.
    #[test]
    fn every_import_is_relative_and_resolves_to_an_embedded_module() {
        let mut seen = 0;
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let source = std::str::from_utf8(a.bytes).unwrap();
            assert!(!source.contains("import("), "{}: dynamic import", a.path);
            for spec in imports(source) {
                let target = resolve(a.path, spec)
                    .unwrap_or_else(|| panic!("{}: import {spec:?} is not relative", a.path));
                assert!(
                    ASSETS.iter().any(|b| b.path == target),
                    "{}: import {spec:?} names {target}, which is not embedded",
                    a.path
                );
                seen += 1;
            }
        }
        assert!(seen > 20, "the import scan found only {seen} imports");
    }

    #[test]
    fn every_module_is_reachable_from_the_entry() {
        let mut reached = vec!["app.js".to_owned()];
        let mut i = 0;
        while i < reached.len() {
            let asset = ASSETS.iter().find(|a| a.path == reached[i]).unwrap();
            for spec in imports(std::str::from_utf8(asset.bytes).unwrap()) {
                let target = resolve(asset.path, spec).unwrap();
                if !reached.contains(&target) {
                    reached.push(target);
                }
            }
            i += 1;
        }
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            assert!(
                reached.iter().any(|r| r == a.path),
                "{} is never imported",
                a.path
            );
        }
    }

    #[test]
    fn urls_carry_the_version_and_only_the_current_one_is_served() {
        let v = version();
        assert_eq!(v.len(), 12);
        assert!(v.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(url("js/qr.js"), format!("/static/{v}/js/qr.js"));

        let (asset, cache) = lookup(&format!("{v}/js/qr.js")).unwrap();
        assert_eq!((asset.path, cache), ("js/qr.js", IMMUTABLE));
        let (asset, cache) = lookup("js/pages/upload.js").unwrap();
        assert_eq!((asset.path, cache), ("js/pages/upload.js", REVALIDATE));

        let stale = if v == "000000000000" {
            "111111111111"
        } else {
            "000000000000"
        };
        assert!(lookup(&format!("{stale}/app.js")).is_none());
        assert!(lookup(&format!("{v}/nope.js")).is_none());
        assert!(lookup(&format!("{v}/{v}/app.js")).is_none());
        assert!(lookup("js").is_none());
        assert!(lookup("../Cargo.toml").is_none());
    }

    /// The width and height in a PNG's header.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
        (be(16), be(20))
    }

    #[test]
    fn every_root_file_is_an_embedded_icon_of_the_size_its_name_says() {
        for name in ROOT_FILES {
            let asset = ASSETS
                .iter()
                .find(|a| a.path == format!("icons/{name}"))
                .unwrap_or_else(|| panic!("{name} is not embedded"));
            if let Some(dims) = name
                .strip_suffix(".png")
                .and_then(|n| n.rsplit_once('-'))
                .and_then(|(_, d)| d.split_once('x'))
            {
                let want = (dims.0.parse().unwrap(), dims.1.parse().unwrap());
                assert_eq!(png_size(asset.bytes), want, "{name}");
            }
        }
        let find = |p: &str| ASSETS.iter().find(|a| a.path == p).unwrap().bytes;
        assert_eq!(png_size(find("icons/apple-touch-icon.png")), (180, 180));
        // An icon file (type 1) of PNG images, 16, 32 and 48 pixels.
        let ico = find("icons/favicon.ico");
        assert_eq!(&ico[..6], &[0, 0, 1, 0, 3, 0]);
        for (k, size) in [16u8, 32, 48].into_iter().enumerate() {
            let entry = &ico[6 + 16 * k..6 + 16 * (k + 1)];
            assert_eq!((entry[0], entry[1]), (size, size));
            let len = u32::from_le_bytes(entry[8..12].try_into().unwrap()) as usize;
            let at = u32::from_le_bytes(entry[12..16].try_into().unwrap()) as usize;
            let image = &ico[at..at + len];
            assert_eq!(png_size(image), (u32::from(size), u32::from(size)));
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(find("icons/site.webmanifest")).unwrap();
        for icon in manifest["icons"].as_array().unwrap() {
            let src = icon["src"].as_str().unwrap();
            assert!(ROOT_FILES.contains(&&src[1..]), "{src}");
        }
    }

    #[test]
    fn imports_are_found_and_resolved() {
        let src = "import { a } from \"./a.js\";\nimport * as b from \"../b.js\";\n\
                   import {\n  c,\n} from \"./c/c.js\";\nimport \"./d.js\";\n\
                   // import x from \"./no.js\";\nconst s = \"import\";\n";
        assert_eq!(imports(src), ["./a.js", "../b.js", "./c/c.js", "./d.js"]);
        assert_eq!(
            resolve("js/pages/x.js", "../api.js").as_deref(),
            Some("js/api.js")
        );
        assert_eq!(resolve("app.js", "./js/qr.js").as_deref(), Some("js/qr.js"));
        assert_eq!(resolve("app.js", "../x.js"), None);
        assert_eq!(resolve("app.js", "/static/x.js"), None);
    }
}
