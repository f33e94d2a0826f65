//! `picoshare rollback-check`: before going back to the original PicoShare,
//! what it would expose and what would be lost, said in words (the findings
//! come from the SQLite store, `store::sqlite::rollback`). The README's
//! "Going back to the original" says the same for every database.

use std::fmt::Write as _;
use std::path::Path;

use crate::store::sqlite::rollback::{inspect, RollbackFindings};

/// Reads the database at `db` (read-only) and returns the report, or an
/// error for a file that is missing or is not a PicoShare database.
///
/// # Errors
/// The reason the database could not be read.
pub fn rollback_check(db: &Path) -> anyhow::Result<String> {
    let now = crate::validate::db_time(chrono::Utc::now());
    let findings = inspect(db, &now).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(report(db, &findings))
}

/// `n` with its noun, singular or plural.
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// The report for people (see `rollback_check`).
fn report(db: &Path, f: &RollbackFindings) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Going back to the original PicoShare with {}:",
        db.display()
    );
    let _ = writeln!(out);
    if !f.opened_by_us {
        let _ = writeln!(
            out,
            "This server has never opened this database: it holds only what the original \
             wrote, and nothing of this server's would be lost."
        );
    }

    let _ = writeln!(
        out,
        "Files that would become public, without their password or download limit: {}",
        f.exposed.len()
    );
    for e in &f.exposed {
        let mut what = Vec::new();
        if e.password {
            what.push("password".to_owned());
        }
        if let Some(max) = e.max_downloads {
            if e.downloads_used >= max {
                what.push(format!(
                    "download limit {max}, used up (unavailable here, downloadable again there)"
                ));
            } else {
                what.push(format!("download limit {max}, {} used", e.downloads_used));
            }
        }
        let _ = writeln!(out, "  /-{}  {}  ({})", e.id, e.filename, what.join("; "));
    }
    let _ = writeln!(
        out,
        "Expired files not yet deleted, refused here and served there until its garbage \
         collection (which first runs 7 hours after it starts): {}",
        f.expired.len()
    );
    for e in &f.expired {
        let _ = writeln!(
            out,
            "  /-{}  {}  (expired {})",
            e.id, e.filename, e.expiration
        );
    }

    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "What the original ignores (the rows stay in the file, unused):"
    );
    let _ = writeln!(
        out,
        "  API tokens: {}{}",
        f.api_tokens.len(),
        if f.api_tokens.is_empty() {
            String::new()
        } else {
            format!(
                " ({}): scripts and ShareX using them are refused",
                f.api_tokens
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let _ = writeln!(
        out,
        "  Shares: {}{}",
        f.shares.len(),
        if f.shares.is_empty() {
            ""
        } else {
            ": their /s/ links answer 404 (their files stay, each at its own link)"
        }
    );
    for s in &f.shares {
        let _ = writeln!(
            out,
            "    /s/{}  {}  ({})",
            s.id,
            s.title.as_deref().unwrap_or("(no title)"),
            count(s.files as usize, "file", "files")
        );
    }
    let _ = writeln!(
        out,
        "  Unfinished resumable uploads: {}{}",
        f.unfinished_uploads.len(),
        if f.unfinished_uploads.is_empty() {
            ""
        } else {
            ": lost, their bytes are deleted by the original's garbage collection; \
             their senders must start again"
        }
    );
    for u in &f.unfinished_uploads {
        let _ = writeln!(
            out,
            "    {}  {} of {} received{}",
            u.filename,
            mib(u.received),
            mib(u.length),
            if u.guest { ", by a guest" } else { "" }
        );
    }
    let replacements: u64 = f.replaced.iter().map(|r| r.replacements).sum();
    let _ = writeln!(
        out,
        "  Content replacements: {}{}",
        replacements,
        if f.replaced.is_empty() {
            String::new()
        } else {
            format!(
                " ({}): their history is lost (each file keeps its current content at its \
                 link, and cannot go back to an earlier one){}",
                count(f.replaced.len(), "file", "files"),
                if f.old_contents_kept == 0 {
                    String::new()
                } else {
                    format!(
                        "; {} kept for downloads in progress here {} deleted by its garbage collection",
                        count(f.old_contents_kept as usize, "old content", "old contents"),
                        if f.old_contents_kept == 1 { "is" } else { "are" }
                    )
                }
            )
        }
    );
    for r in &f.replaced {
        let _ = writeln!(
            out,
            "    /-{}  {}  (replaced {})",
            r.id,
            r.filename,
            count(r.replacements as usize, "time", "times")
        );
    }
    let _ = writeln!(
        out,
        "  Login sessions: {}{}",
        f.sessions,
        if f.sessions == 0 {
            ""
        } else {
            ": the original has its own login cookie; log in again"
        }
    );
    let (destinations, waiting) = &f.notifications;
    let _ = writeln!(
        out,
        "  Notification destinations: {}{}",
        destinations.len(),
        if destinations.is_empty() {
            String::new()
        } else {
            format!(
                " ({}): the original sends no notifications; {} waiting are sent if you come back",
                destinations
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                count(*waiting as usize, "event", "events")
            )
        }
    );
    let _ = writeln!(
        out,
        "  Preview pages (/v/ links): they answer 404 there; the download links work"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Everything else carries over: every file byte for byte with its name, type, note \
         and expiry, guest links, settings and download history."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::rollback::{ExposedFile, ReplacedFile, ShareRow, UnfinishedUpload};

    #[test]
    fn an_empty_finding_says_nothing_is_lost() {
        let text = report(Path::new("x.db"), &RollbackFindings::default());
        assert!(text.contains("never opened this database"), "{text}");
        assert!(text.contains("without their password or download limit: 0"));
        assert!(text.contains("API tokens: 0\n"), "{text}");
        assert!(text.contains("Content replacements: 0\n"), "{text}");
        assert!(text.contains("Notification destinations: 0\n"), "{text}");
    }

    #[test]
    fn every_finding_is_listed() {
        let f = RollbackFindings {
            opened_by_us: true,
            exposed: vec![
                ExposedFile {
                    id: "abcdefghij".into(),
                    filename: "secret.pdf".into(),
                    password: true,
                    max_downloads: Some(1),
                    downloads_used: 1,
                },
                ExposedFile {
                    id: "klmnopqrst".into(),
                    filename: "limited.zip".into(),
                    password: false,
                    max_downloads: Some(5),
                    downloads_used: 2,
                },
            ],
            api_tokens: vec!["laptop".into()],
            shares: vec![ShareRow {
                id: "abcdefghijklmn".into(),
                title: None,
                files: 1,
            }],
            unfinished_uploads: vec![UnfinishedUpload {
                filename: "big.iso".into(),
                received: 3 << 20,
                length: 10 << 20,
                guest: true,
            }],
            sessions: 2,
            replaced: vec![ReplacedFile {
                id: "uvwxyzabcd".into(),
                filename: "report.pdf".into(),
                replacements: 3,
            }],
            old_contents_kept: 1,
            notifications: (vec!["phone".into()], 3),
            ..RollbackFindings::default()
        };
        let text = report(Path::new("x.db"), &f);
        assert!(!text.contains("never opened"), "{text}");
        for want in [
            "limit: 2\n",
            "/-abcdefghij  secret.pdf  (password; download limit 1, used up",
            "/-klmnopqrst  limited.zip  (download limit 5, 2 used)",
            "API tokens: 1 (\"laptop\")",
            "/s/abcdefghijklmn  (no title)  (1 file)",
            "big.iso  3.0 MiB of 10.0 MiB received, by a guest",
            "Login sessions: 2: ",
            "Content replacements: 3 (1 file): their history is lost",
            "; 1 old content kept for downloads in progress here is deleted by its garbage collection\n",
            "/-uvwxyzabcd  report.pdf  (replaced 3 times)\n",
            "Notification destinations: 1 (\"phone\"): the original sends no notifications; 3 events waiting",
        ] {
            assert!(text.contains(want), "{want:?} missing in:\n{text}");
        }
    }
}
