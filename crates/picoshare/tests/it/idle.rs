//! Idle means idle: once requests stop and the server has finished what
//! they left (the WAL checkpointed, the blocking threads retired), no thread
//! of it wakes up until the next request or garbage collection (hourly):
//! `strace -f` attached to the server must see seconds go by without a
//! single system call. Counted, not timed: a thread that polled (the
//! writeback thread used to wake every 50 ms, forever) makes calls in every
//! window.

use std::time::{Duration, Instant};

use crate::helpers::*;

/// How long the server must stay silent.
const QUIET: Duration = Duration::from_secs(3);

/// How long the test waits for that: after the last request the writer
/// checkpoints (a second or two), and the runtime's idle blocking threads
/// exit after 10 s.
const PATIENCE: Duration = Duration::from_secs(40);

#[tokio::test]
async fn an_idle_server_makes_no_system_calls() {
    let s = TestServer::start().await;
    {
        // A bit of everything that leaves work behind: an upload (WAL,
        // checkpoint, writeback), downloads (their records), the list
        // page and a garbage collection. The client goes, and with it its
        // connections.
        let c = s.admin_client().await;
        let id = s
            .upload(
                &c,
                "idle.bin",
                &random_bytes(3 << 20, 9),
                "application/octet-stream",
                None,
                None,
            )
            .await;
        for _ in 0..3 {
            let resp = c.get(s.url(&format!("/-{id}"))).send().await.unwrap();
            assert_eq!(resp.bytes().await.unwrap().len(), 3 << 20);
        }
        let resp = c.get(s.url("/files")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let resp = c.post(s.url("/api/admin/gc")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    let dir = tempfile::tempdir().unwrap();
    let strace = Strace::attach(s.pid().unwrap(), &[], &dir.path().join("strace.log"));
    let started = Instant::now();
    let mut calls = 0;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < QUIET && started.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = calls_after_attach(&strace.log()).len();
        if now != calls {
            calls = now;
            quiet_since = Instant::now();
        }
    }
    let log = strace.detach();
    let quiet = quiet_since.elapsed();
    assert!(
        quiet >= QUIET,
        "the server was never silent for {QUIET:?} in {PATIENCE:?} of idleness \
         (the longest tail: {quiet:?}); the system calls strace saw:\n{}",
        tail(&calls_after_attach(&log), 60)
    );
}

/// The last `n` lines.
fn tail(lines: &[&str], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The parser of the log counts what a thread does after the attach, not
/// what it was blocked in when strace came.
#[test]
fn calls_after_attach_skip_the_calls_in_progress() {
    let log = "\
101 10:00:00.000001 epoll_wait(3,  <unfinished ...>
102 10:00:00.000002 futex(0x1, FUTEX_WAIT_PRIVATE, 1, NULL <unfinished ...>
102 10:00:01.000000 <... futex resumed>) = 0
102 10:00:01.000010 write(4, \"x\", 1) = 1
102 10:00:01.000020 futex(0x1, FUTEX_WAIT_PRIVATE, 1, NULL <unfinished ...>
103 10:00:02.000000 restart_syscall(<... resuming interrupted read ...> <unfinished ...>
103 10:00:09.000000 <... restart_syscall resumed>) = -1 ETIMEDOUT
103 10:00:09.000100 exit(0)           = ?
103 10:00:09.000200 +++ exited with 0 +++
";
    let calls = calls_after_attach(log);
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls[0].contains("write(4"));
    assert!(calls[1].contains("futex"));
    assert!(calls[2].contains("exit(0)"));
}
