//! HTTP integration tests for the `picoshare` server.
//!
//! One test binary (faster to link than one per file) whose modules each
//! cover one part of the behaviour contract. Every test starts the real
//! binary on a fresh temp database and talks to it only over HTTP (plus a
//! read-only look into its SQLite file), so the suite checks what users and
//! API clients see, whatever the server's internals look like.

// The harness: starting the server, clients, multipart bodies, parsers.
mod helpers;

// Login, logout, session cookies, admin-only routes.
mod auth;
// PUT /api/entry/{id}/content: replacing a file behind its link.
mod replace;
// Notifications: webhooks and pushes to a receiver on loopback, retries, restarts.
mod webhooks;
// Notifications by e-mail, through a real SMTP server (aiosmtpd) on loopback.
mod email;
// Startup configuration: secret sources, database path flags.
mod config;
// POST /api/entry: what is stored and every way an upload is refused.
mod upload;
// A 64 MiB streamed round trip without temp files.
mod bigfile;
// Public downloads: routes, HEAD, headers, types, names, history.
mod download;
// Reused connections: TCP_NODELAY on every accepted socket.
mod keepalive;
// An idle server makes no system calls (strace attached).
mod idle;
// Range and conditional requests.
mod ranges;
// PUT and DELETE /api/entry/{id}.
mod entries;
// Uploads cut off by the client or by a killed server.
mod aborted;
// A database written by the original Go server.
mod fixture;
// Parallel clients and slow readers.
mod concurrency;
// SIGTERM with uploads in flight.
mod shutdown;
// Prometheus counters.
mod metrics;
// GET/PUT /api/settings: the default file lifetime.
mod settings;
// The file list and download history APIs, with User-Agent parsing.
mod history;
// The long lists in pages (API and /files), sorted and filtered; gzip.
mod listing;
// GET /api/system: disk usage and version.
mod system;
// Expiry, garbage collection, incremental vacuum.
mod gc;
// A full disk (a small tmpfs of the test's own).
mod disk_full;
// SIGKILL at 20 points during uploads.
mod crash;
// Two servers sharing PostgreSQL and a bucket (scale-out store only).
mod scaleout;
// Guest links: the owner's routes and guest uploads within their limits.
mod guest_links;
// The admin HTML pages: files, history, guest links, settings, information.
mod admin_pages;
// The server side of the landing, login and upload pages.
mod pages;
// The embedded stylesheet, icon and browser modules: versioned URLs, caching.
mod assets;
// Resumable uploads with the tus protocol.
mod tus;
// SIGKILL at 12 points during resumable uploads.
mod tus_crash;
// Slow and stalled clients: header, body and send timeouts.
mod slow_clients;
// CSRF checks, security headers, sandboxed downloads, session expiry.
mod web_security;
// API tokens: managed by the owner, used by scripts to upload (curl, ShareX).
mod tokens;
// Hostile input on every route that takes it: clean 4xx, never a 5xx.
mod hostile;
// Download limits and one-shot links: what counts, 410, concurrent downloads.
mod limits;
// Password-protected files: form, cookie, Basic auth, rate limits, hashing.
mod passwords;
// GET /healthz, request and database metrics, JSON logs.
mod ops;
// The view page /v/{id} and previews on the file information page.
mod preview;
// Shares: several files behind one link, and their streamed ZIP.
mod shares;
// The sqlite3 shell opening and closing the database beside the server.
mod outside_sqlite;
// `picoshare backup`: a consistent copy while uploads run.
mod backup_cmd;
// What clients of the original meet: extended file names, IPv4 addresses,
// the HTTPS redirect, icons at fixed paths, guest page suffixes, clean paths.
mod compat;
// `picoshare rollback-check`: before going back to the original.
mod rollback;
// The real Litestream beside the server: replicate, restart, restore.
mod litestream;
// The image's entrypoint: Litestream to S3, restore on start (scale-out run only).
mod entrypoint;
// Behind a real nginx: the client's address, chains of proxies, a cache.
mod proxy;
// Login sessions: bound to the passphrase, listed and ended by the owner.
mod sessions;
// What the log says: no link IDs.
mod logs;
