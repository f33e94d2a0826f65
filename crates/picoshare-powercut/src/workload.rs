//! The workload run on the recorded disk, and the history it leaves: every
//! change the server acknowledged, with the journal's sequence number when
//! the request was sent and when its reply had arrived.
//!
//! What it does, in order (an outside `sqlite3` process opening the database,
//! counting entries and closing it again every 100 ms throughout):
//!
//! 1. settings, an API token, a guest link; uploads of every kind: multipart
//!    (`POST /api/entry`), raw with the token (`PUT /api/upload/{name}`),
//!    resumable in two PATCHes (the first one's offset acknowledged),
//!    resumable with creation-with-upload, a guest upload; an edit, a
//!    one-shot file and its one download, a share, a delete, and a resumable
//!    upload left unfinished; then idle (the server checkpoints);
//! 2. one large multipart upload ([`Options::big_mib`], at least 128 MiB,
//!    past the server's early-writeback threshold) while the outside reader
//!    keeps opening and closing the database, then, after a few more of its
//!    runs, a small upload, an edit, a raw upload and a settings change: the
//!    changes that a server which lost its locks on the database would lose
//!    (the outside reader, believing itself the last connection, would
//!    checkpoint and delete the live WAL);
//! 3. the large file deleted (incremental vacuum gives its pages back while
//!    the server is idle), then another upload, edit and delete, and idle
//!    again; then the reader stops and the server is killed.
//!
//! [`Options::big_mib`]: crate::Options::big_mib

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use reqwest::blocking::{multipart, Client, Response};
use reqwest::Method;

use crate::content::Content;
pub use crate::history::{History, Op, Step, UploadKind};
use crate::outside_reader::{wait_for_reader, Reader};
use crate::server::{self, Server};

/// Far-future expiration: files that never expire.
pub const NEVER: &str = "2999-12-31T00:00:00Z";

/// Where the workload runs and what it may take.
pub struct Setup<'a> {
    pub binary: &'a Path,
    /// The database path on the recorded filesystem.
    pub db: PathBuf,
    pub stderr_path: PathBuf,
    /// The journal's sequence number now.
    pub seq: Arc<dyn Fn() -> u64 + Send + Sync>,
    pub seed: u64,
    pub big_mib: u64,
}

struct Run<'a> {
    setup: &'a Setup<'a>,
    server: Server,
    client: Client,
    token: String,
    guest_link: String,
    steps: Vec<Step>,
    next_content: u64,
}

fn status(resp: &Response) -> u16 {
    resp.status().as_u16()
}

fn expect(resp: Response, want: u16, what: &str) -> Result<Response> {
    if status(&resp) != want {
        let code = status(&resp);
        let body = resp.text().unwrap_or_default();
        bail!("{what}: {code} (wanted {want}): {body}");
    }
    Ok(resp)
}

fn json_id(resp: Response, what: &str) -> Result<String> {
    let v: serde_json::Value = resp.json().with_context(|| format!("{what}: reply"))?;
    v["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{what}: no id in {v}"))
}

/// A reply header's value, if it is text.
fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

impl Run<'_> {
    fn seq(&self) -> u64 {
        (self.setup.seq)()
    }

    fn content(&mut self, len: u64) -> Content {
        self.next_content += 1;
        Content {
            seed: self
                .setup
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(self.next_content),
            len,
        }
    }

    fn record(&mut self, op: Op, sent: u64) {
        let acked = self.seq();
        self.steps.push(Step { op, sent, acked });
    }

    /// Records `op`, acknowledged by the reply of the step recorded last (a
    /// tus request that completed the upload).
    fn record_acked_with_last(&mut self, op: Op, sent: u64) {
        let acked = self.steps.last().map_or(sent, |s| s.acked);
        self.steps.push(Step { op, sent, acked });
    }

    /// `method path` with the JSON `body`, if any, on the session; the reply,
    /// which must be a 200.
    fn api(&self, method: Method, path: &str, body: Option<serde_json::Value>) -> Result<Response> {
        let mut req = self.client.request(method.clone(), self.server.url(path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        expect(req.send()?, 200, &format!("{method} {path}"))
    }

    fn settings(&mut self, days: u32) -> Result<()> {
        let sent = self.seq();
        let body =
            serde_json::json!({ "defaultExpirationDays": days, "defaultNeverExpire": false });
        self.api(Method::PUT, "/api/settings", Some(body))?
            .bytes()?;
        self.record(Op::Settings { days }, sent);
        Ok(())
    }

    fn create_token(&mut self) -> Result<()> {
        let sent = self.seq();
        let body = serde_json::json!({ "name": "power cut" });
        let v: serde_json::Value = self.api(Method::POST, "/api/tokens", Some(body))?.json()?;
        self.token = v["token"].as_str().context("token")?.to_string();
        let id = v["id"].as_str().context("token id")?.to_string();
        self.record(Op::Token { id }, sent);
        Ok(())
    }

    fn create_guest_link(&mut self) -> Result<()> {
        let sent = self.seq();
        let body = serde_json::json!({
            "label": "power cut",
            "urlExpirationTime": NEVER,
            "fileLifetime": "876000h",
        });
        let id = json_id(
            self.api(Method::POST, "/api/guest-links", Some(body))?,
            "guest link",
        )?;
        self.guest_link = id.clone();
        self.record(Op::GuestLink { id }, sent);
        Ok(())
    }

    fn multipart(&mut self, filename: &str, len: u64, note: Option<&str>) -> Result<String> {
        self.multipart_with(filename, len, note, &[])
    }

    /// A one-shot file (`maxDownloads` 1), then its one full download.
    fn one_shot(&mut self, filename: &str, len: u64) -> Result<String> {
        let id = self.multipart_with(filename, len, None, &[("maxDownloads", "1")])?;
        let acked = self.steps.last().map_or(0, |s| s.acked);
        let sent = self.steps.last().map_or(0, |s| s.sent);
        self.steps.push(Step {
            op: Op::OneShot { id: id.clone() },
            sent,
            acked,
        });
        let content = self.steps.iter().rev().find_map(|s| match &s.op {
            Op::Upload { id: i, content, .. } if *i == id => Some(*content),
            _ => None,
        });
        let sent = self.seq();
        let mut r = reqwest::blocking::Client::new()
            .get(self.server.url(&format!("/-{id}")))
            .send()?;
        if status(&r) != 200 {
            bail!("GET /-{id} of a one-shot file: {}", status(&r));
        }
        match content
            .context("the one-shot file's content")?
            .compare(&mut r)?
        {
            Ok(()) => {}
            Err(diff) => bail!("GET /-{id} of a one-shot file: {diff}"),
        }
        self.record(Op::Downloaded { id: id.clone() }, sent);
        Ok(id)
    }

    fn multipart_with(
        &mut self,
        filename: &str,
        len: u64,
        note: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Result<String> {
        let content = self.content(len);
        let mut form = multipart::Form::new();
        if let Some(n) = note {
            form = form.text("note", n.to_string());
        }
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        form = form.part(
            "file",
            multipart::Part::reader_with_length(content.reader(), len)
                .file_name(filename.to_string())
                .mime_str("application/octet-stream")?,
        );
        let sent = self.seq();
        let r = self
            .client
            .post(self.server.url(&format!("/api/entry?expiration={NEVER}")))
            .multipart(form)
            .send()?;
        self.acknowledged(r, UploadKind::Multipart, content, filename, note, sent)
    }

    /// Records the one-request upload whose reply `r` (a 200 with the
    /// entry's ID) acknowledged `content` as `filename` with `note`, sent
    /// when the journal was at `sent`; the entry's ID.
    fn acknowledged(
        &mut self,
        r: Response,
        kind: UploadKind,
        content: Content,
        filename: &str,
        note: Option<&str>,
        sent: u64,
    ) -> Result<String> {
        let what = match kind {
            UploadKind::Multipart => "POST /api/entry",
            UploadKind::RawWithToken => "PUT /api/upload",
            UploadKind::Guest => "POST /api/guest",
            UploadKind::Resumable | UploadKind::ResumableInCreation => "POST /api/tus",
        };
        let id = json_id(expect(r, 200, what)?, what)?;
        let op = Op::Upload {
            id: id.clone(),
            kind,
            content,
            filename: filename.into(),
            note: note.map(str::to_string),
            resumable: None,
        };
        self.record(op, sent);
        Ok(id)
    }

    fn raw_with_token(&mut self, filename: &str, len: u64) -> Result<String> {
        let content = self.content(len);
        let sent = self.seq();
        let r = reqwest::blocking::Client::new()
            .put(
                self.server
                    .url(&format!("/api/upload/{filename}?expiration={NEVER}")),
            )
            .bearer_auth(&self.token)
            .header("Accept", "application/json")
            .body(content.bytes())
            .send()?;
        self.acknowledged(r, UploadKind::RawWithToken, content, filename, None, sent)
    }

    fn guest_upload(&mut self, filename: &str, len: u64) -> Result<String> {
        let content = self.content(len);
        let form = multipart::Form::new().part(
            "file",
            multipart::Part::bytes(content.bytes())
                .file_name(filename.to_string())
                .mime_str("application/octet-stream")?,
        );
        let sent = self.seq();
        let r = reqwest::blocking::Client::new()
            .post(self.server.url(&format!("/api/guest/{}", self.guest_link)))
            .header("Accept", "application/json")
            .multipart(form)
            .send()?;
        self.acknowledged(r, UploadKind::Guest, content, filename, None, sent)
    }

    fn tus_metadata(filename: &str, note: Option<&str>) -> String {
        let mut m = format!("filename {},expiration {}", b64(filename), b64(NEVER));
        if let Some(n) = note {
            m.push_str(&format!(",note {}", b64(n)));
        }
        m
    }

    /// Creates a resumable upload of `len` bytes, optionally with all of them
    /// in the creation request; returns its ID, and the entry ID if complete.
    fn tus_create(
        &mut self,
        filename: &str,
        len: u64,
        with_body: bool,
        note: Option<&str>,
    ) -> Result<(String, Content, Option<String>)> {
        let content = self.content(len);
        let mut req = self
            .client
            .post(self.server.url("/api/tus"))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", len.to_string())
            .header("Upload-Metadata", Self::tus_metadata(filename, note));
        if with_body {
            req = req
                .header("Content-Type", "application/offset+octet-stream")
                .body(content.bytes());
        }
        let sent = self.seq();
        let r = expect(req.send()?, 201, "POST /api/tus")?;
        let location = header(&r, "location").context("tus Location")?;
        let entry = header(&r, "picoshare-entry-id");
        r.bytes()?;
        let upload = location
            .rsplit('/')
            .next()
            .context("tus upload ID")?
            .to_string();
        self.record(
            Op::ResumableCreated {
                upload: upload.clone(),
                content,
            },
            sent,
        );
        if let Some(id) = &entry {
            // The creation request's own acknowledgement also stored the file.
            let op = Op::Upload {
                id: id.clone(),
                kind: UploadKind::ResumableInCreation,
                content,
                filename: filename.into(),
                note: note.map(str::to_string),
                resumable: Some(upload.clone()),
            };
            self.record_acked_with_last(op, sent);
        }
        Ok((upload, content, entry))
    }

    /// Sends `content[from..to]` to a resumable upload; returns the entry ID
    /// if that completed it.
    fn tus_patch(
        &mut self,
        upload: &str,
        content: Content,
        from: u64,
        to: u64,
    ) -> Result<Option<String>> {
        let bytes = content.bytes()[from as usize..to as usize].to_vec();
        let sent = self.seq();
        let r = self
            .client
            .patch(self.server.url(&format!("/api/tus/{upload}")))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", from.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(bytes)
            .send()?;
        let r = expect(r, 204, "PATCH /api/tus")?;
        let offset: u64 = header(&r, "upload-offset")
            .and_then(|v| v.parse().ok())
            .context("Upload-Offset")?;
        if offset != to {
            bail!("PATCH acknowledged offset {offset}, not {to}");
        }
        let entry = header(&r, "picoshare-entry-id");
        r.bytes()?;
        self.record(
            Op::ResumableProgress {
                upload: upload.to_string(),
                offset,
            },
            sent,
        );
        Ok(entry)
    }

    fn tus_upload_in_two(
        &mut self,
        filename: &str,
        len: u64,
        note: Option<&str>,
    ) -> Result<String> {
        let (upload, content, _) = self.tus_create(filename, len, false, note)?;
        let half = len / 2 + 12_345;
        if self.tus_patch(&upload, content, 0, half)?.is_some() {
            bail!("a partial PATCH completed the upload");
        }
        let sent = self.seq();
        let id = self
            .tus_patch(&upload, content, half, len)?
            .context("the last PATCH gave no entry ID")?;
        let op = Op::Upload {
            id: id.clone(),
            kind: UploadKind::Resumable,
            content,
            filename: filename.into(),
            note: note.map(str::to_string),
            resumable: Some(upload),
        };
        self.record_acked_with_last(op, sent);
        Ok(id)
    }

    fn edit(&mut self, id: &str, filename: &str, note: Option<&str>) -> Result<()> {
        let sent = self.seq();
        let body = serde_json::json!({ "filename": filename, "expiration": NEVER, "note": note });
        self.api(Method::PUT, &format!("/api/entry/{id}"), Some(body))?
            .bytes()?;
        self.record(
            Op::Edit {
                id: id.into(),
                filename: filename.into(),
                note: note.map(str::to_string),
            },
            sent,
        );
        Ok(())
    }

    fn delete(&mut self, id: &str) -> Result<()> {
        let sent = self.seq();
        self.api(Method::DELETE, &format!("/api/entry/{id}"), None)?
            .bytes()?;
        self.record(Op::Delete { id: id.into() }, sent);
        Ok(())
    }

    fn share(&mut self, entries: &[&str]) -> Result<()> {
        let sent = self.seq();
        let body = serde_json::json!({ "title": "power cut", "entries": entries });
        let id = json_id(self.api(Method::POST, "/api/shares", Some(body))?, "share")?;
        self.record(Op::Share { id }, sent);
        Ok(())
    }
}

/// Runs the workload: starts the server on `setup.db`, makes the changes,
/// stops the outside reader and kills the server.
///
/// # Errors
/// Any request failing or answering what it should not; the server not
/// starting.
pub fn run(setup: &Setup<'_>) -> Result<History> {
    let started = Instant::now();
    let server = Server::start(
        setup.binary,
        &setup.db,
        &setup.stderr_path,
        Duration::from_secs(60),
    )?;
    let client = server::client()?;
    server::login(&client, &server)?;
    let reader = Reader::start(setup.db.clone(), setup.seq.clone());
    let mut run = Run {
        setup,
        server,
        client,
        token: String::new(),
        guest_link: String::new(),
        steps: Vec::new(),
        next_content: 0,
    };
    let result = phases(&mut run, &reader);
    let runs = reader.stop();
    // Only now: a reader run after the kill would find no server holding the
    // database and checkpoint it, which is not part of the crash.
    let server_exit = run.server.exited();
    run.server.kill();
    let end = run.seq();
    if let Err(e) = result {
        return Err(e.context(format!(
            "the workload failed (server exit: {server_exit:?}); server stderr ends with:\n{}",
            run.server.stderr_tail()
        )));
    }
    let big = result.unwrap_or_default();
    let big_acked = run
        .steps
        .iter()
        .find(|s| matches!(&s.op, Op::Upload { id, .. } if *id == big))
        .map_or(u64::MAX, |s| s.acked);
    Ok(History {
        steps: run.steps,
        big: Some(big),
        reader_runs: runs.iter().filter(|r| r.1).count(),
        reader_runs_after_big: runs.iter().filter(|r| r.1 && r.0 > big_acked).count(),
        reader_failures: runs
            .iter()
            .filter(|r| !r.1)
            .take(5)
            .map(|r| r.2.clone())
            .collect(),
        end,
        elapsed: started.elapsed(),
    })
}

/// The three phases; returns the large upload's entry ID.
fn phases(run: &mut Run<'_>, reader: &Reader) -> Result<String> {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    // 1. Every kind of change, small.
    run.settings(9)?;
    run.create_token()?;
    run.create_guest_link()?;
    let a = run.multipart("a.bin", 300 * KIB + 17, Some("first"))?;
    let b = run.raw_with_token("b.bin", MIB + 200 * KIB)?;
    run.tus_upload_in_two("c.bin", 2 * MIB + 500 * KIB + 3, Some("resumable"))?;
    let d = run.guest_upload("d.bin", 700 * KIB + 5)?;
    let (_, _, e) = run.tus_create("e.bin", 100 * KIB + 9, true, None)?;
    if e.is_none() {
        bail!("creation-with-upload of a whole file gave no entry ID");
    }
    run.edit(&a, "a-renamed.bin", Some("edited once"))?;
    run.one_shot("once.bin", 500 * KIB + 3)?;
    run.share(&[&a, &d])?;
    run.delete(&b)?;
    let (f, f_content, _) = run.tus_create("f.bin", 3 * MIB, false, None)?;
    run.tus_patch(&f, f_content, 0, MIB + 300 * KIB + 1)?;
    std::thread::sleep(Duration::from_millis(1500));

    // 2. The large upload, the outside reader running, then small changes.
    let big = run.multipart("big.bin", run.setup.big_mib * MIB, Some("large"))?;
    let big_acked = run.steps.last().map_or(0, |s| s.acked);
    wait_for_reader(reader, big_acked, 3)?;
    let h = run.multipart("h.bin", 64 * KIB + 1, None)?;
    wait_for_reader(reader, run.seq(), 1)?;
    run.edit(&h, "h-renamed.bin", Some("after the large upload"))?;
    run.raw_with_token("i.bin", 2 * MIB + 7)?;
    run.settings(12)?;
    wait_for_reader(reader, run.seq(), 2)?;

    // 3. The large file deleted and its space reclaimed while idle; more.
    run.delete(&big)?;
    std::thread::sleep(Duration::from_millis(2500));
    run.multipart("j.bin", 900 * KIB + 11, Some("late"))?;
    run.edit(&a, "a-renamed-twice.bin", None)?;
    run.delete(&d)?;
    wait_for_reader(reader, run.seq(), 2)?;
    std::thread::sleep(Duration::from_millis(1200));
    Ok(big)
}
