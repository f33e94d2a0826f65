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

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::http::AppError;

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
    "js/pages/files.js",
    "js/pages/guest-link-new.js",
    "js/pages/guest-links.js",
    "js/pages/login.js",
    "js/pages/settings.js",
    "js/pages/shares.js",
    "js/pages/tokens.js",
    "js/pages/upload.js",
];

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
    let mut resp = (StatusCode::OK, asset.bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(asset.path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(resp)
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
