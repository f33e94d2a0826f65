//! A real reverse proxy in front of the server under test: Debian's `nginx`
//! (installed by `scripts/test` when missing), started on a loopback port
//! with a configuration of the test's own in a temporary directory (its
//! pid file, logs, temporary and cache folders there too), and stopped when
//! the value is dropped.
//!
//! [`NginxSite`] describes the one `server` block: the directives of its
//! `location /` (how the proxy forwards), and any directives of the `http`
//! block (a cache zone). The proxy's address to connect to is
//! [`Nginx::base`].

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Where Debian's package puts the binary (`/usr/sbin` is not always on a
/// test's `PATH`).
const NGINX: &str = "/usr/sbin/nginx";

/// What the proxy does.
#[derive(Debug, Clone, Default)]
pub struct NginxSite {
    /// Directives inside `location / { … }`, after `proxy_pass` and
    /// `proxy_http_version 1.1`.
    pub location: String,
    /// Directives of the `http` block (`{dir}` is replaced by the proxy's
    /// own temporary directory, e.g. for a `proxy_cache_path`).
    pub http: String,
    /// The address the proxy listens on (`127.0.0.1` if empty).
    pub listen_ip: String,
}

/// A running nginx in front of `upstream`.
pub struct Nginx {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    pub addr: SocketAddr,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx proxying to `upstream` as `site` says; panics (with
    /// nginx's error log) if it does not accept connections within 15 s.
    pub fn start(upstream: SocketAddr, site: &NginxSite) -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: install Debian's nginx package (scripts/test does)"
        );
        let listen_ip = if site.listen_ip.is_empty() {
            "127.0.0.1"
        } else {
            &site.listen_ip
        };
        // A port that was free a moment ago may be taken by the time nginx
        // binds it (other tests run at the same time): try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("picoshare-nginx-")
                .tempdir()
                .expect("temp dir");
            let port = TcpListener::bind((listen_ip, 0))
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let addr: SocketAddr = format!("{listen_ip}:{port}").parse().unwrap();
            let conf = config(dir.path(), addr, upstream, site);
            let conf_path = dir.path().join("nginx.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let child = Command::new(NGINX)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run nginx");
            let mut nginx = Nginx {
                child: Some(child),
                base: format!("http://{addr}"),
                addr,
                dir,
            };
            match nginx.wait_ready() {
                Ok(()) => return nginx,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    /// Waits until the proxy accepts connections; the error log if it
    /// exited or took too long.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("exited with {status}: {}", self.error_log()));
                }
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!("not listening after 15 s: {}", self.error_log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The absolute URL of `path` through the proxy.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What nginx wrote to its error log.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGQUIT would wait for connections; tests are done with them.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- nginx error log ---\n{}", self.error_log());
        }
        self.stop();
    }
}

/// The whole configuration: one process in the foreground, everything it
/// writes under `dir`.
fn config(dir: &Path, listen: SocketAddr, upstream: SocketAddr, site: &NginxSite) -> String {
    let d = dir.display();
    let http = site.http.replace("{dir}", &d.to_string());
    format!(
        "daemon off;
master_process off;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    {http}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            {location}
        }}
    }}
}}
",
        location = site.location,
    )
}
