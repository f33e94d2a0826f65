//! The embedded stylesheet, icon and browser modules: pages link them under
//! one content-hashed version (`/static/VERSION/…`), every module a page
//! imports is served in that version as JavaScript with a long cache
//! lifetime, an old version is never answered with today's bytes, and the
//! unversioned names are revalidated.

use reqwest::Client;

use crate::helpers::*;

/// The `attr="…"` values of the tags named `tag` in `html`.
fn attr_values<'a>(html: &'a str, tag: &str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    html.split(&format!("<{tag} "))
        .skip(1)
        .filter_map(|t| {
            let t = &t[..t.find('>')?];
            let start = t.find(&needle)? + needle.len();
            t[start..].split('"').next()
        })
        .collect()
}

/// The specifiers of a module's static imports (`… from "x"`, `import "x"`).
fn import_specifiers(source: &str) -> Vec<String> {
    source
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("import ") || l.starts_with("} from ") || l.starts_with("export ")
        })
        .filter_map(|l| {
            let rest = match l.split_once(" from ") {
                Some((_, rest)) => rest,
                None => l.strip_prefix("import ")?,
            };
            let rest = rest.trim().strip_prefix('"')?;
            Some(rest.split('"').next()?.to_owned())
        })
        .collect()
}

/// Resolves `spec` against the URL path `base`, as a browser does for a
/// relative import.
fn resolve(base: &str, spec: &str) -> String {
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for seg in spec.split('/') {
        match seg {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// The versioned paths a page links: (entry module, stylesheet, icon).
async fn linked_assets(s: &TestServer, c: &Client, page: &str) -> (String, String, String) {
    let resp = c.get(s.url(page)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{page}");
    let csp = header_str(resp.headers(), "content-security-policy");
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src "))
        .unwrap_or_else(|| panic!("{page}: no script-src in {csp:?}"));
    // Static imports are fetched without a nonce: same-origin scripts must be
    // allowed by 'self' ('strict-dynamic' would turn that off).
    assert!(script_src.contains("'self'"), "{page}: {script_src}");
    assert!(
        !script_src.contains("strict-dynamic"),
        "{page}: {script_src}"
    );
    let html = resp.text().await.unwrap();
    let scripts: Vec<&str> = attr_values(&html, "script", "src");
    assert_eq!(scripts.len(), 1, "{page}: one entry module: {scripts:?}");
    assert!(
        html.contains(&format!("<script type=\"module\" src=\"{}\"", scripts[0])),
        "{page}: the entry is loaded as a module"
    );
    let links = attr_values(&html, "link", "href");
    let css = links.iter().find(|h| h.ends_with("/style.css")).unwrap();
    let icon = links.iter().find(|h| h.ends_with("/favicon.svg")).unwrap();
    (scripts[0].to_owned(), (*css).to_owned(), (*icon).to_owned())
}

/// The version in a versioned asset path (`/static/VERSION/…`).
fn version_of(path: &str) -> &str {
    let rest = path.strip_prefix("/static/").unwrap();
    let (version, _) = rest.split_once('/').unwrap();
    assert!(
        version.len() >= 8 && version.bytes().all(|b| b.is_ascii_hexdigit()),
        "{path}: not a content-hashed version"
    );
    version
}

fn assert_long_lived(what: &str, headers: &reqwest::header::HeaderMap) {
    let cache = header_str(headers, "cache-control");
    assert!(cache.contains("max-age=31536000"), "{what}: {cache:?}");
    assert!(cache.contains("immutable"), "{what}: {cache:?}");
    assert_eq!(
        header_str(headers, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
}

/// Every page links the same version of the assets; the whole module graph
/// of the entry (every static import, followed as a browser does) is served
/// in that version as `text/javascript` with a one-year immutable lifetime.
#[tokio::test]
async fn pages_load_every_module_from_one_version_with_long_cache_lifetimes() {
    let s = TestServer::start().await;
    let anon = plain_client();
    let admin = s.admin_client().await;
    let (entry, css, icon) = linked_assets(&s, &anon, "/login").await;
    let version = version_of(&entry).to_owned();
    assert_eq!(entry, format!("/static/{version}/app.js"));
    assert_eq!(css, format!("/static/{version}/style.css"));
    assert_eq!(icon, format!("/static/{version}/favicon.svg"));
    for page in ["/", "/files", "/tokens", "/settings"] {
        let (e, c, _) = linked_assets(&s, &admin, page).await;
        assert_eq!(
            (e.as_str(), c.as_str()),
            (entry.as_str(), css.as_str()),
            "{page}"
        );
    }

    let mut modules = vec![entry.clone()];
    let mut i = 0;
    while i < modules.len() {
        let path = modules[i].clone();
        let resp = anon.get(s.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(
            header_str(resp.headers(), "content-type"),
            "text/javascript; charset=utf-8",
            "{path}"
        );
        assert_long_lived(&path, resp.headers());
        let source = resp.text().await.unwrap();
        for spec in import_specifiers(&source) {
            assert!(
                spec.starts_with("./") || spec.starts_with("../"),
                "{path}: import {spec:?} would leave the version"
            );
            let target = resolve(&path, &spec);
            assert!(
                target.starts_with(&format!("/static/{version}/")),
                "{path}: {spec}"
            );
            if !modules.contains(&target) {
                modules.push(target);
            }
        }
        i += 1;
    }
    assert!(
        modules.len() >= 10,
        "the entry imports the shared and page modules: {modules:?}"
    );
    for m in [
        "js/clipboard.js",
        "js/qr.js",
        "js/upload-queue.js",
        "js/tus.js",
    ] {
        assert!(
            modules.contains(&format!("/static/{version}/{m}")),
            "{m} in {modules:?}"
        );
    }

    let resp = anon.get(s.url(&css)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header_str(resp.headers(), "content-type"),
        "text/css; charset=utf-8"
    );
    assert_long_lived(&css, resp.headers());
    let resp = anon.get(s.url(&icon)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header_str(resp.headers(), "content-type"), "image/svg+xml");
    assert_long_lived(&icon, resp.headers());
}

/// A version other than the current one (what a cache or an old page may
/// still ask for) is a 404, never today's bytes under the old name; unknown
/// files within the current version too.
#[tokio::test]
async fn a_stale_version_is_not_served_as_the_new_content() {
    let s = TestServer::start().await;
    let c = plain_client();
    let (entry, _, _) = linked_assets(&s, &c, "/login").await;
    let version = version_of(&entry).to_owned();
    let stale: String = version
        .chars()
        .map(|ch| if ch == '0' { '1' } else { '0' })
        .collect();
    for file in [
        "app.js",
        "js/qr.js",
        "js/pages/upload.js",
        "style.css",
        "favicon.svg",
    ] {
        let current = c
            .get(s.url(&format!("/static/{version}/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(current.status(), 200, "{file}");
        let current = current.bytes().await.unwrap();
        let resp = c
            .get(s.url(&format!("/static/{stale}/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{file} under a stale version");
        let cache = header_str(resp.headers(), "cache-control");
        assert!(!cache.contains("immutable"), "{file}: {cache:?}");
        assert_ne!(resp.bytes().await.unwrap(), current, "{file}");
    }
    for path in [
        format!("/static/{version}/nope.js"),
        format!("/static/{version}/js/pages/nope.js"),
        format!("/static/{version}/{version}/app.js"),
        format!("/static/{version}/"),
        "/static/js/nope.js".to_owned(),
    ] {
        let resp = c.get(s.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
}

/// Without a version, the same files are served for tools and tests, with
/// `Cache-Control: no-cache`: their content changes under the same name, so
/// a cache must revalidate them.
#[tokio::test]
async fn unversioned_names_serve_the_same_files_and_are_revalidated() {
    let s = TestServer::start().await;
    let c = plain_client();
    let (entry, _, _) = linked_assets(&s, &c, "/login").await;
    let version = version_of(&entry).to_owned();
    for (file, ctype) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("js/clipboard.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
    ] {
        let resp = c
            .get(s.url(&format!("/static/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{file}");
        assert_eq!(header_str(resp.headers(), "content-type"), ctype, "{file}");
        let cache = header_str(resp.headers(), "cache-control");
        assert!(cache.contains("no-cache"), "{file}: {cache:?}");
        assert!(!cache.contains("immutable"), "{file}: {cache:?}");
        let unversioned = resp.bytes().await.unwrap();
        let versioned = c
            .get(s.url(&format!("/static/{version}/{file}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(unversioned, versioned, "{file}");
    }
}
