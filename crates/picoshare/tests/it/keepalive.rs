//! Reused (keep-alive) connections: every accepted socket has `TCP_NODELAY`
//! set, so a response is never held back behind the client's delayed ACK
//! (with Nagle's algorithm on, every small download after the first on a
//! connection waited about 40 ms). Checked without timing anything: `strace`
//! (Debian's, installed by scripts/test) attached to the running server
//! records its `setsockopt` calls while new connections arrive; then several
//! downloads on one connection all answer.

use std::time::{Duration, Instant};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_connections_have_tcp_nodelay() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s
        .upload(
            &c,
            "small.txt",
            &random_bytes(12_800, 5),
            "text/plain",
            None,
            None,
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let strace = Strace::attach(
        s.pid().unwrap(),
        &["-e", "trace=setsockopt"],
        &dir.path().join("strace.log"),
    );

    let nodelay = || nodelay_calls(&strace.log());
    // New connections (no connection reuse in `plain_client` across
    // clients), each with two requests, until strace has seen five sockets
    // set up, or 50 connections went by without it.
    let mut connections = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodelay() < 5 && connections < 50 && Instant::now() < deadline {
        let client = plain_client();
        for _ in 0..2 {
            let resp = client.get(s.url(&format!("/-{id}"))).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(resp.bytes().await.unwrap().len(), 12_800);
        }
        connections += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = strace.detach();
    let seen = nodelay_calls(&log);
    assert!(
        seen >= 5,
        "after {connections} new connections strace saw TCP_NODELAY set {seen} times:\n{log}"
    );
}

/// Successful `setsockopt(…, TCP_NODELAY, [1], …)` calls in an strace log.
fn nodelay_calls(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("TCP_NODELAY, [1]") && l.trim_end().ends_with("= 0"))
        .count()
}
