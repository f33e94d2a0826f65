//! A small User-Agent classifier for the download history: which browser (or
//! tool) and which platform fetched a file.
//!
//! This is deliberately not a general UA parser. The history page only needs a
//! name a person recognises, so the rules below look for a handful of product
//! tokens, in an order that resolves the ways real User-Agent strings lie:
//!
//! - Almost every browser claims to be `Mozilla/5.0`, so that word means nothing.
//! - Chromium-based browsers (Edge, Opera, Samsung Internet) also send
//!   `Chrome/…` and `Safari/…`, and Chrome itself sends `Safari/…`. So the more
//!   specific brand tokens are checked first, Chrome after them, Safari last.
//! - Android UAs contain `Linux`, and iOS UAs contain `like Mac OS X`, so
//!   Android and iOS are checked before Linux and macOS.
//! - Command-line tools and link-preview bots name themselves at the start
//!   (`curl/8.5.0`) or inside a `compatible;` comment, and some crawlers also
//!   carry `Chrome/…`; they are checked before the browsers.
//!
//! Versions are not reported: the history shows "Chrome", not "Chrome 131".
//! Anything unrecognised is "Unknown". Matching is by plain substring, which is
//! enough for these tokens and cannot be made slow by a hostile header.

/// What [`parse`] recognised in a User-Agent header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserAgent {
    /// Browser or client name, such as `Chrome` or `curl`; `Unknown` if unrecognised.
    pub(crate) browser: String,
    /// Operating system, such as `Windows` or `iOS`; `Unknown` if unrecognised.
    pub(crate) platform: String,
}

/// The name used for anything the rules do not recognise.
const UNKNOWN: &str = "Unknown";

/// How a rule's token must appear in the User-Agent.
#[derive(Clone, Copy)]
enum At {
    /// At the very start, ignoring ASCII case (tools put their product token first).
    Start,
    /// Anywhere, with exact case.
    Anywhere,
}

/// One rule: if `token` appears (as `at` says), the answer is `name`.
struct Rule {
    token: &'static str,
    at: At,
    name: &'static str,
}

const fn start(token: &'static str, name: &'static str) -> Rule {
    Rule {
        token,
        at: At::Start,
        name,
    }
}

const fn anywhere(token: &'static str, name: &'static str) -> Rule {
    Rule {
        token,
        at: At::Anywhere,
        name,
    }
}

/// Clients, first match wins. Tools and bots come first (some crawlers also
/// send a `Chrome/` token); then the Chromium brands that also send `Chrome/`;
/// then Firefox, Chrome and finally Safari, whose token every WebKit and
/// Chromium browser repeats.
const CLIENTS: &[Rule] = &[
    // Command-line tools and HTTP libraries.
    start("curl/", "curl"),
    start("wget/", "Wget"),
    start("python-requests/", "Python Requests"),
    start("python-urllib/", "Python urllib"),
    start("go-http-client/", "Go-http-client"),
    start("okhttp/", "OkHttp"),
    anywhere("WindowsPowerShell/", "PowerShell"),
    // Link previews: chat apps fetch a shared link to show a preview, which is
    // worth telling apart from a person downloading the file.
    anywhere("Slackbot", "Slackbot"),
    anywhere("Discordbot/", "Discordbot"),
    anywhere("TelegramBot", "TelegramBot"),
    start("whatsapp/", "WhatsApp"),
    anywhere("facebookexternalhit/", "Facebook"),
    anywhere("Twitterbot/", "Twitterbot"),
    anywhere("Googlebot/", "Googlebot"),
    anywhere("bingbot/", "Bingbot"),
    // Chromium-based brands, before Chrome. `Edg/` is Chromium Edge on the
    // desktop, `EdgA/` and `EdgiOS/` the mobile apps, `Edge/` the old EdgeHTML.
    anywhere("Edg/", "Edge"),
    anywhere("EdgA/", "Edge"),
    anywhere("EdgiOS/", "Edge"),
    anywhere("Edge/", "Edge"),
    // `OPR/` is Chromium Opera, `OPiOS/` Opera on iOS, `Opera` the old Presto
    // versions (`Opera/9.80 …`).
    anywhere("OPR/", "Opera"),
    anywhere("OPiOS/", "Opera"),
    anywhere("Opera", "Opera"),
    anywhere("SamsungBrowser/", "Samsung Internet"),
    anywhere("Vivaldi/", "Vivaldi"),
    anywhere("YaBrowser/", "Yandex Browser"),
    // Firefox: `FxiOS/` on iOS (a WebKit shell that does not say `Firefox/`).
    anywhere("FxiOS/", "Firefox"),
    anywhere("Firefox/", "Firefox"),
    // Chrome: `CriOS/` on iOS.
    anywhere("CriOS/", "Chrome"),
    anywhere("Chrome/", "Chrome"),
    anywhere("Chromium/", "Chromium"),
];

/// Platforms, first match wins. ChromeOS and Android say `Linux` too and iOS
/// says `like Mac OS X`, so they come before Linux and macOS.
const PLATFORMS: &[Rule] = &[
    anywhere("CrOS ", "ChromeOS"),
    anywhere("Android", "Android"),
    anywhere("iPhone", "iOS"),
    anywhere("iPad", "iOS"),
    anywhere("iPod", "iOS"),
    anywhere("Windows", "Windows"),
    anywhere("Macintosh", "macOS"),
    anywhere("Mac OS X", "macOS"),
    anywhere("Linux", "Linux"),
    anywhere("X11", "Linux"),
];

fn matches(ua: &str, rule: &Rule) -> bool {
    match rule.at {
        At::Anywhere => ua.contains(rule.token),
        At::Start => ua
            .get(..rule.token.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(rule.token)),
    }
}

fn first_match(ua: &str, rules: &[Rule]) -> Option<&'static str> {
    rules.iter().find(|r| matches(ua, r)).map(|r| r.name)
}

/// Safari is recognised by elimination: a WebKit UA with `Safari/` and Apple's
/// `Version/` token that no other rule claimed. (Apps that embed WebKit send
/// neither, and stay "Unknown" rather than being called Safari.)
fn is_safari(ua: &str) -> bool {
    ua.contains("Safari/") && ua.contains("Version/")
}

/// Classifies a User-Agent header value.
pub(crate) fn parse(ua: &str) -> UserAgent {
    let browser = first_match(ua, CLIENTS)
        .or_else(|| is_safari(ua).then_some("Safari"))
        .unwrap_or(UNKNOWN);
    let platform = first_match(ua, PLATFORMS).unwrap_or(UNKNOWN);
    UserAgent {
        browser: browser.to_owned(),
        platform: platform.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ua: &str, browser: &str, platform: &str) {
        let got = parse(ua);
        assert_eq!(
            (got.browser.as_str(), got.platform.as_str()),
            (browser, platform),
            "{ua}"
        );
    }

    #[test]
    fn the_fixture_user_agents() {
        check(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Chrome",
            "Windows",
        );
        check(
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox",
            "Linux",
        );
    }

    #[test]
    fn desktop_browsers() {
        check(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
            "Safari",
            "macOS",
        );
        check(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.2849.80",
            "Edge",
            "Windows",
        );
        check(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19045",
            "Edge",
            "Windows",
        );
        check(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36 OPR/115.0.0.0",
            "Opera",
            "macOS",
        );
        check(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.6; rv:132.0) Gecko/20100101 Firefox/132.0",
            "Firefox",
            "macOS",
        );
        check(
            "Mozilla/5.0 (X11; CrOS x86_64 15917.71.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36",
            "Chrome",
            "ChromeOS",
        );
        check(
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Vivaldi/6.7.3329.41",
            "Vivaldi",
            "Linux",
        );
        check(
            "Opera/9.80 (Windows NT 6.1; U; en) Presto/2.12.388 Version/12.18",
            "Opera",
            "Windows",
        );
    }

    #[test]
    fn mobile_browsers() {
        check(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari",
            "iOS",
        );
        check(
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/127.0.6533.107 Mobile/15E148 Safari/604.1",
            "Chrome",
            "iOS",
        );
        check(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/131.0 Mobile/15E148 Safari/605.1.15",
            "Firefox",
            "iOS",
        );
        check(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.39 Mobile Safari/537.36",
            "Chrome",
            "Android",
        );
        check(
            "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
            "Samsung Internet",
            "Android",
        );
        check(
            "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
            "Firefox",
            "Android",
        );
        check(
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64",
            "Edge",
            "Android",
        );
        // An app's embedded WebKit view: no browser brand to report.
        check(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
            "Unknown",
            "iOS",
        );
    }

    #[test]
    fn tools_and_bots() {
        check("curl/8.5.0", "curl", "Unknown");
        check("Wget/1.21.4", "Wget", "Unknown");
        check("python-requests/2.32.3", "Python Requests", "Unknown");
        check("Python-urllib/3.12", "Python urllib", "Unknown");
        check("Go-http-client/1.1", "Go-http-client", "Unknown");
        check("Go-http-client/2.0", "Go-http-client", "Unknown");
        check(
            "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.6",
            "Unknown",
            "Windows",
        );
        check(
            "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.22621.4391",
            "PowerShell",
            "Windows",
        );
        check(
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Slackbot",
            "Unknown",
        );
        check(
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "Discordbot",
            "Unknown",
        );
        check("WhatsApp/2.23.20.0 A", "WhatsApp", "Unknown");
        // A crawler that also claims Chrome is still the crawler.
        check(
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/131.0.6778.69 Safari/537.36",
            "Googlebot",
            "Unknown",
        );
    }

    #[test]
    fn unknown_and_odd_input() {
        check("", "Unknown", "Unknown");
        check("Mozilla/5.0", "Unknown", "Unknown");
        check("something else entirely", "Unknown", "Unknown");
        // A tool token later in the string is not the tool's own UA.
        check("my-app (uses curl/8.0)", "Unknown", "Unknown");
        // Non-ASCII input must not panic on a char boundary.
        check("ü", "Unknown", "Unknown");
        check("cürl/1", "Unknown", "Unknown");
    }
}
