//! Checking one cut point: the image attached to a loop device and mounted
//! (ext4 replays its journal), the real server started on the database it
//! holds, and then:
//!
//! - `PRAGMA integrity_check` is `ok` (and `quick_check` once more at the end);
//! - every change acknowledged at or before the cut's flush is there: each
//!   acknowledged upload is served (`GET /-{id}`, 200) byte for byte, each
//!   acknowledged edit and delete shows, the settings, the guest link, the
//!   API token, the share, and each resumable upload's acknowledged offset;
//!   a one-shot file whose one download was received in full stays used up
//!   (410: the server commits the count before the last byte);
//! - nothing else is: every file the database holds is one the workload
//!   uploaded, whole and byte-identical (never a partial file), with a name
//!   and note it was given, in an order the edits allow; an unfinished
//!   resumable upload holds exactly its file's first `Upload-Offset` bytes;
//! - space is reclaimed: no chunk belongs to no entry and to no unfinished
//!   resumable upload, none lies past an unfinished upload's offset, and
//!   once the server has been idle the free-page list is empty and the file
//!   is no longer than its pages (incremental vacuum, then a checkpoint).
//!
//! Whatever the check writes (journal replay, the server's recovery, its
//! logins and vacuum) goes to the cut's copy-on-write file, never to the
//! recording.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::content::Content;
use crate::cuts::Cut;
use crate::expect::Expect;
use crate::fusefs::{CutImage, Images};
use crate::journal::Journal;
use crate::server::{self, Server};
use crate::system::{Ext4Mount, LoopDevice};
use crate::workload::{History, Op};

/// How long a restarted server may take to give free pages back and
/// checkpoint them before that counts as a failure.
const RECLAIM_TIMEOUT: Duration = Duration::from_secs(45);

/// What one worker checks cuts with.
pub struct Worker {
    /// Its own directory (mount point, copy-on-write files, logs).
    pub dir: PathBuf,
    /// Where the image filesystem is mounted.
    pub fuse_dir: PathBuf,
    pub images: Images,
    pub journal: Arc<RwLock<Journal>>,
    pub binary: PathBuf,
}

/// The result of checking one cut.
#[derive(Debug)]
pub struct Outcome {
    pub description: String,
    /// What was wrong; empty when the cut passed.
    pub problems: Vec<String>,
    pub elapsed: Duration,
    /// Files downloaded and compared, and their bytes.
    pub files: usize,
    pub bytes: u64,
    /// Bytes the check wrote to the image (replay, recovery, vacuum).
    pub written: u64,
    /// How long reclamation took after the server started.
    pub reclaim: Duration,
}

fn open_db(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(10))?;
    Ok(c)
}

fn one_string(conn: &Connection, sql: &str) -> rusqlite::Result<String> {
    conn.query_row(sql, [], |r| r.get(0))
}

fn count(conn: &Connection, sql: &str) -> rusqlite::Result<i64> {
    conn.query_row(sql, [], |r| r.get(0))
}

/// The chunks of `entry` in order, then `tail`.
fn stored_bytes(
    conn: &Connection,
    entry: &str,
    tail: Option<Vec<u8>>,
) -> rusqlite::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut stmt =
        conn.prepare("SELECT chunk FROM entries_data WHERE id = ?1 ORDER BY chunk_index")?;
    let rows = stmt.query_map([entry], |r| r.get::<_, Vec<u8>>(0))?;
    for chunk in rows {
        out.extend_from_slice(&chunk?);
    }
    out.extend_from_slice(&tail.unwrap_or_default());
    Ok(out)
}

/// Checks one cut. `Err` is a failure of the machinery (a loop device, a
/// mount); what is wrong with the server's data is in the outcome's
/// problems.
///
/// # Errors
/// Attaching, mounting, unmounting or detaching fails.
pub fn check(worker: &Worker, cut: &Cut, history: &History) -> Result<Outcome> {
    let started = Instant::now();
    let name = format!("cut-{}", cut.number);
    let cow = worker.dir.join(format!("{name}.cow"));
    let overlay = {
        let j = worker.journal.read().unwrap_or_else(|e| e.into_inner());
        cut.overlay(&j)
    };
    let image = Arc::new(CutImage::new(
        worker.journal.clone(),
        cut.at,
        overlay,
        &cow,
    )?);
    worker.images.add(&name, image.clone());
    let mut outcome = Outcome {
        description: cut.describe(),
        problems: Vec::new(),
        elapsed: Duration::ZERO,
        files: 0,
        bytes: 0,
        written: 0,
        reclaim: Duration::ZERO,
    };
    let result = (|| -> Result<()> {
        let dev = LoopDevice::attach(&worker.fuse_dir.join(&name))?;
        let mnt = worker.dir.join("mnt");
        std::fs::create_dir_all(&mnt)?;
        let fs = match Ext4Mount::mount(dev.path(), &mnt) {
            Ok(fs) => fs,
            Err(e) => {
                outcome.problems.push(format!(
                    "the filesystem does not mount after the cut: {e:#}"
                ));
                return dev.detach();
            }
        };
        let db = fs.dir().join("data").join("store.db");
        let stderr = worker.dir.join(format!("{name}.stderr"));
        match Server::start(&worker.binary, &db, &stderr, Duration::from_secs(90)) {
            Ok(mut server) => {
                if let Err(e) = check_running(&server, &db, cut, history, &mut outcome) {
                    outcome.problems.push(format!("{e:#}"));
                }
                if let Some(exit) = server.exited() {
                    outcome.problems.push(format!(
                        "the server exited during the check ({exit}); its stderr ends with:\n{}",
                        server.stderr_tail()
                    ));
                }
                server.kill();
                if outcome.problems.is_empty() {
                    let _ = std::fs::remove_file(&stderr);
                } else {
                    outcome.problems.push(format!(
                        "server log: {} (kept with --keep-dir); its stderr ends with:\n{}",
                        stderr.display(),
                        server.stderr_tail()
                    ));
                }
            }
            Err(e) => outcome
                .problems
                .push(format!("the server does not start on the database: {e:#}")),
        }
        fs.unmount()?;
        dev.detach()?;
        Ok(())
    })();
    worker.images.remove(&name);
    outcome.written = image.written_bytes();
    drop(image);
    let _ = std::fs::remove_file(&cow);
    result?;
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// The checks against the running server and its database.
fn check_running(
    server: &Server,
    db: &Path,
    cut: &Cut,
    history: &History,
    outcome: &mut Outcome,
) -> Result<()> {
    let expect = Expect {
        history,
        at: cut.at,
        horizon: cut.horizon(),
    };
    let problems = &mut outcome.problems;
    let conn = open_db(db).context("open the database read-only")?;
    let integrity = one_string(&conn, "PRAGMA integrity_check").context("integrity_check")?;
    if integrity != "ok" {
        problems.push(format!("PRAGMA integrity_check: {integrity}"));
    }
    let client = server::client()?;
    server::login(&client, server)?;
    let plain = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(300))
        .build()?;

    // Files: every acknowledged one there, nothing that should not be.
    let mut rows: HashMap<String, (String, Option<String>)> = HashMap::new();
    {
        let mut stmt = conn.prepare("SELECT id, filename, note FROM entries")?;
        let it = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?;
        for row in it {
            let (id, filename, note) = row?;
            rows.insert(id, (filename, note));
        }
    }
    let files = expect.files();
    for (id, f) in &files {
        let deleted = f.delete.is_some_and(|(_, acked)| expect.required(acked));
        let may_be_deleted = f.delete.is_some_and(|(sent, _)| expect.possible(sent));
        let must_exist = expect.required(f.acked) && !may_be_deleted;
        let row = rows.get(id);
        if must_exist && row.is_none() {
            problems.push(format!(
                "acknowledged upload {id} ({:?}, {} bytes, acknowledged at event {}) is missing",
                f.kind, f.content.len, f.acked
            ));
        }
        if deleted && row.is_some() {
            problems.push(format!(
                "{id} is still there although its delete was acknowledged at event {}",
                f.delete.map_or(0, |d| d.1)
            ));
        }
        let Some((filename, note)) = row else {
            continue;
        };
        if !expect.possible(f.sent) {
            problems.push(format!(
                "{id} is there although its upload was only sent at event {}, after the cut's last event {}",
                f.sent, expect.horizon
            ));
        }
        let allowed = f.allowed(expect.horizon);
        if !allowed.iter().any(|(n, t)| n == filename && t == note) {
            problems.push(format!(
                "{id} is named {filename:?} with note {note:?}; after the acknowledged edits it must be one of {allowed:?}"
            ));
        }
        let resp = plain
            .get(server.url(&format!("/-{id}")))
            .send()
            .with_context(|| format!("GET /-{id}"))?;
        // A one-shot file whose download was received in full before the
        // cut stays used up; one whose download may have started may be
        // either.
        if f.one_shot {
            let used = f
                .downloaded
                .is_some_and(|(_, acked)| expect.required(acked));
            let maybe = f.downloaded.is_some_and(|(sent, _)| expect.possible(sent));
            let code = resp.status().as_u16();
            if used && code != 410 {
                problems.push(format!(
                    "the one-shot file {id} was downloaded in full before the cut (event {}), \
                     yet it answers {code}, not 410: the download was given back",
                    f.downloaded.map_or(0, |d| d.1)
                ));
                continue;
            }
            if code == 410 {
                if !used && !maybe {
                    problems.push(format!(
                        "the one-shot file {id} answers 410 although nothing downloaded it before the cut"
                    ));
                }
                outcome.files += 1;
                continue;
            }
        }
        if resp.status().as_u16() != 200 {
            problems.push(format!(
                "GET /-{id} answered {} although the entry is in the database",
                resp.status()
            ));
            continue;
        }
        let mut resp = resp;
        match f.content.compare(&mut resp) {
            Ok(Ok(())) => {
                outcome.files += 1;
                outcome.bytes += f.content.len;
            }
            Ok(Err(diff)) => problems.push(format!("GET /-{id} ({:?}): {diff}", f.kind)),
            Err(e) => problems.push(format!("GET /-{id}: reading the body failed: {e}")),
        }
    }
    for id in rows.keys() {
        if !files.contains_key(id) {
            problems.push(format!(
                "entry {id} is in the database but was never uploaded"
            ));
        }
    }

    // Settings, guest link, token, share.
    // The settings went through states one after another: the last one
    // acknowledged by the cut, or any later one.
    let mut settings = vec![30u32];
    for step in &history.steps {
        if let Op::Settings { days } = step.op {
            if expect.required(step.acked) {
                settings = vec![days];
            } else if expect.possible(step.sent) {
                settings.push(days);
            }
        }
    }
    let got: serde_json::Value = client
        .get(server.url("/api/settings"))
        .send()?
        .json()
        .context("GET /api/settings")?;
    let days = got["defaultExpirationDays"].as_u64().unwrap_or(0) as u32;
    if !settings.contains(&days) {
        problems.push(format!(
            "the default lifetime is {days} days; the acknowledged settings allow only {settings:?}"
        ));
    }
    for step in history.steps.iter().filter(|s| expect.required(s.acked)) {
        let (table, id) = match &step.op {
            Op::GuestLink { id } => ("guest_links", id),
            Op::Token { id } => ("picoshare_api_tokens", id),
            Op::Share { id } => ("picoshare_shares", id),
            _ => continue,
        };
        let found: Option<i64> = conn
            .query_row(&format!("SELECT 1 FROM {table} WHERE id = ?1"), [id], |r| {
                r.get(0)
            })
            .optional()?;
        if found.is_none() {
            problems.push(format!(
                "{table} row {id}, acknowledged at event {}, is missing",
                step.acked
            ));
        }
    }

    // Resumable uploads: the acknowledged offset, and exactly the file's
    // first bytes stored.
    check_resumable(&conn, server, &client, &expect, problems)?;

    // Reclamation.
    let orphans = count(
        &conn,
        "SELECT count(*) FROM entries_data WHERE id NOT IN (SELECT id FROM entries)
         AND id NOT IN (SELECT entry_id FROM picoshare_tus_uploads WHERE completed = 0)",
    )?;
    if orphans > 0 {
        problems.push(format!(
            "{orphans} chunks belong to no entry and no unfinished upload after the restart"
        ));
    }
    let beyond = count(
        &conn,
        "SELECT count(*) FROM picoshare_tus_uploads t JOIN entries_data d ON d.id = t.entry_id
         WHERE t.completed = 0 AND d.chunk_index >= t.upload_offset / t.chunk_size",
    )?;
    if beyond > 0 {
        problems.push(format!(
            "{beyond} chunks lie past their unfinished upload's offset after the restart"
        ));
    }
    drop(conn);
    let reclaim_started = Instant::now();
    let mut last = String::new();
    let reclaimed = loop {
        let conn = open_db(db)?;
        let free = count(&conn, "PRAGMA freelist_count")?;
        let pages = count(&conn, "PRAGMA page_count")?;
        let page = count(&conn, "PRAGMA page_size")?;
        drop(conn);
        let len = std::fs::metadata(db).map(|m| m.len()).unwrap_or(0);
        if free == 0 && len as i64 <= pages * page {
            break true;
        }
        last = format!("{free} free pages, file of {len} bytes for {pages} pages of {page} bytes");
        if reclaim_started.elapsed() > RECLAIM_TIMEOUT {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    outcome.reclaim = reclaim_started.elapsed();
    if !reclaimed {
        outcome.problems.push(format!(
            "space not reclaimed {} s after the restart: {last}",
            RECLAIM_TIMEOUT.as_secs()
        ));
    }
    let conn = open_db(db)?;
    let quick = one_string(&conn, "PRAGMA quick_check")?;
    if quick != "ok" {
        outcome
            .problems
            .push(format!("PRAGMA quick_check after reclamation: {quick}"));
    }
    Ok(())
}

fn check_resumable(
    conn: &Connection,
    server: &Server,
    client: &reqwest::blocking::Client,
    expect: &Expect<'_>,
    problems: &mut Vec<String>,
) -> Result<()> {
    // upload ID → (content, created acknowledged, acknowledged offset, completed acknowledged)
    let mut uploads: HashMap<&str, (Content, bool, u64, bool)> = HashMap::new();
    for step in &expect.history.steps {
        let req = expect.required(step.acked);
        match &step.op {
            Op::ResumableCreated { upload, content } => {
                uploads.insert(upload, (*content, req, 0, false));
            }
            Op::ResumableProgress { upload, offset } if req => {
                if let Some(u) = uploads.get_mut(upload.as_str()) {
                    u.2 = u.2.max(*offset);
                }
            }
            Op::Upload {
                resumable: Some(upload),
                ..
            } if req => {
                if let Some(u) = uploads.get_mut(upload.as_str()) {
                    u.3 = true;
                }
            }
            _ => {}
        }
    }
    let mut seen = HashSet::new();
    for (upload, (content, created, min_offset, completed_required)) in &uploads {
        let row: Option<(String, i64, i64, Option<Vec<u8>>)> = conn
            .query_row(
                "SELECT entry_id, upload_offset, completed, tail FROM picoshare_tus_uploads WHERE id = ?1",
                [upload],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((entry, offset, completed, tail)) = row else {
            if *created {
                problems.push(format!("acknowledged resumable upload {upload} is missing"));
            }
            continue;
        };
        seen.insert(upload.to_string());
        let offset = offset as u64;
        if offset < *min_offset {
            problems.push(format!(
                "resumable upload {upload} is at offset {offset}; {min_offset} was acknowledged"
            ));
        }
        if *completed_required && completed == 0 {
            problems.push(format!(
                "resumable upload {upload} is unfinished although its last PATCH was acknowledged"
            ));
        }
        if completed == 0 {
            let stored = stored_bytes(conn, &entry, tail)?;
            if stored.len() as u64 != offset || stored != content.prefix(offset) {
                problems.push(format!(
                    "resumable upload {upload} at offset {offset} holds {} bytes that are not the file's first {offset}",
                    stored.len()
                ));
            }
        }
        let resp = client
            .head(server.url(&format!("/api/tus/{upload}")))
            .header("Tus-Resumable", "1.0.0")
            .send()?;
        let head_offset = resp
            .headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if resp.status().as_u16() != 200 || head_offset != Some(offset) {
            problems.push(format!(
                "HEAD /api/tus/{upload}: {} with Upload-Offset {head_offset:?}; the database says {offset}",
                resp.status()
            ));
        }
    }
    let all: Vec<String> = {
        let mut stmt = conn.prepare("SELECT id FROM picoshare_tus_uploads")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        ids
    };
    for id in all {
        if !seen.contains(&id) && !uploads.contains_key(id.as_str()) {
            problems.push(format!(
                "resumable upload {id} is in the database but was never created"
            ));
        }
    }
    Ok(())
}
