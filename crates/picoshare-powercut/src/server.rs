//! The server under test: the real `picoshare` binary, started on a database
//! path with a fresh environment, on `127.0.0.1:0`; ready when it prints
//! `picoshare listening on http://ADDR`. Killed (SIGKILL) when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// The passphrase every server of a run is started with.
pub const SECRET: &str = "power-cut-secret";

const READY: &str = "picoshare listening on ";

/// A running server.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stderr_path: PathBuf,
}

impl Server {
    /// Starts `binary` on the database `db`, its stderr going to
    /// `stderr_path`; waits up to `timeout` for it to say where it listens.
    ///
    /// # Errors
    /// It cannot be started, exits, or does not announce itself in time
    /// (the message then has the end of its stderr).
    pub fn start(
        binary: &Path,
        db: &Path,
        stderr_path: &Path,
        timeout: Duration,
    ) -> Result<Server> {
        let stderr = std::fs::File::create(stderr_path)
            .with_context(|| format!("create {}", stderr_path.display()))?;
        let mut cmd = Command::new(binary);
        cmd.arg("--db")
            .arg(db)
            .args(["--listen", "127.0.0.1:0"])
            .env_clear()
            .env("PS_SHARED_SECRET", SECRET)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        // Reads the ready line, then keeps draining stdout until it closes.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(url) = line.trim().strip_prefix(READY) {
                        sent = true;
                        let _ = tx.send(url.trim().trim_end_matches('/').to_string());
                    }
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            base: String::new(),
            stderr_path: stderr_path.to_path_buf(),
        };
        match rx.recv_timeout(timeout) {
            Ok(url) => {
                server.base = url;
                Ok(server)
            }
            Err(_) => {
                let status = server.kill();
                bail!(
                    "the server did not say it was listening (waited at most {timeout:?}; exit: {status}); its stderr ends with:\n{}",
                    server.stderr_tail()
                )
            }
        }
    }

    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL and wait; returns how the process ended, as text.
    pub fn kill(&mut self) -> String {
        match self.child.take() {
            Some(mut c) => {
                let _ = c.kill();
                match c.wait() {
                    Ok(s) => s.to_string(),
                    Err(e) => e.to_string(),
                }
            }
            None => "not running".into(),
        }
    }

    /// Whether the process has exited by itself (then how).
    pub fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(s)) => Some(s.to_string()),
            _ => None,
        }
    }

    /// The last 4 KiB of its stderr.
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read(&self.stderr_path).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP client with a cookie store, no proxy and no redirects.
///
/// # Errors
/// The client cannot be built.
pub fn client() -> Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .cookie_store(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| anyhow!("HTTP client: {e}"))
}

/// Logs `client` in on `server`.
///
/// # Errors
/// The request fails or is refused.
pub fn login(client: &reqwest::blocking::Client, server: &Server) -> Result<()> {
    let resp = client
        .post(server.url("/api/auth"))
        .json(&serde_json::json!({ "sharedSecretKey": SECRET }))
        .send()
        .context("POST /api/auth")?;
    if resp.status().as_u16() != 200 {
        bail!("login refused: {}", resp.status());
    }
    Ok(())
}
