//! `strace` (Debian's, installed by scripts/test) attached to a running
//! server, to see the system calls it makes: which options it sets on its
//! sockets, and that it makes none while idle.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// An `strace -f -tt` attached to a process, writing to a log file.
pub struct Strace {
    child: Child,
    log: PathBuf,
}

impl Strace {
    /// Attaches to `pid` (all its threads) with the extra `args` (such as
    /// `-e trace=setsockopt`), logging to `log`; returns once strace says it
    /// has attached.
    pub fn attach(pid: u32, args: &[&str], log: &Path) -> Strace {
        let mut child = Command::new("strace")
            .args(["-f", "-tt", "-o"])
            .arg(log)
            .args(args)
            .args(["-p", &pid.to_string()])
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace must be installed (scripts/test installs Debian's strace)");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("attached") {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "strace could not attach to the server"
            );
        }
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Strace {
            child,
            log: log.to_owned(),
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Detaches (SIGINT) and returns the whole log.
    pub fn detach(mut self) -> String {
        // SAFETY: plain kill(2) of our own child; SIGINT makes strace detach.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let _ = self.child.wait();
        self.log()
    }
}

/// The system calls an `strace -f` log shows being made after it attached:
/// every call line but the one each thread was blocked in when strace
/// attached (its first line, `<unfinished ...>`), and but the completions
/// (`<... resumed>`), signals (`---`), exits of threads (`+++`) and what
/// detaching prints. A thread that wakes up makes calls of its own, which
/// count.
pub fn calls_after_attach(log: &str) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let mut words = line.splitn(3, ' ');
        let (Some(tid), Some(_time), Some(call)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let first = seen.insert(tid.to_owned());
        if call.starts_with("<...")
            || call.starts_with("---")
            || call.starts_with("+++")
            || call.contains("<detached ...>")
            || (first && call.trim_end().ends_with("<unfinished ...>"))
        {
            continue;
        }
        out.push(line);
    }
    out
}
