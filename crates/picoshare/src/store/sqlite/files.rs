//! The database and WAL files as SQLite itself holds them open.
//!
//! The process must never open the database, its `-wal` or its `-shm` by
//! path while SQLite has them open: POSIX record locks belong to the process
//! and the inode, so closing *any* descriptor of the file drops every lock the
//! process holds on it, including the SHARED lock each SQLite connection
//! keeps in WAL mode. An outside SQLite client (the `sqlite3` shell, a backup,
//! Litestream) that closes then believes it is the last connection,
//! checkpoints, and deletes the live WAL while this server keeps writing to
//! the unlinked file.
//!
//! So whatever the writer does to those files beyond SQL goes through the
//! files SQLite opened:
//! - **Syncing the WAL** for a durable commit calls the WAL's own `xSync`
//!   (`SQLITE_FCNTL_JOURNAL_POINTER` gives the `sqlite3_file` object; its
//!   methods are SQLite's public VFS interface). SQLite then also syncs the
//!   folder once after creating the WAL, which a bare `fdatasync` would miss.
//! - **Early writeback** (`sync_file_range`) needs the descriptor number,
//!   which the VFS interface does not give. The unix VFS keeps it as the
//!   fourth field of its file object (`pMethod`, `pVfs`, `pInode`, `h`, the
//!   same since SQLite 3.7); [`Descriptor::of`] reads it there and only
//!   trusts it when `fstat` of that descriptor names the same device and inode
//!   as `stat` of the path. Anything else (another VFS, another layout) turns
//!   early writeback off with a warning, never into a wrong `fd`. The
//!   descriptor stays owned by SQLite: it is used, never closed, and only while
//!   the connection that owns it is open.
//!
//! Written here rather than taken from a crate: no crate exposes SQLite's
//! file objects; rusqlite gives the raw handle this module needs.

use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;
use std::path::Path;

use rusqlite::{ffi, Connection};

use crate::store::StoreError;

/// Which of a connection's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// The database file itself.
    Database,
    /// The journal: in WAL mode, the `-wal` file.
    Journal,
}

impl Which {
    fn opcode(self) -> c_int {
        match self {
            Which::Database => ffi::SQLITE_FCNTL_FILE_POINTER,
            Which::Journal => ffi::SQLITE_FCNTL_JOURNAL_POINTER,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Which::Database => "database",
            Which::Journal => "WAL",
        }
    }
}

/// The `sqlite3_file` object of `conn`'s main database or journal, if SQLite
/// has that file open.
fn file_object(conn: &Connection, which: Which) -> Option<*mut ffi::sqlite3_file> {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `conn` is a live connection used only by this thread; the
    // opcode writes one `sqlite3_file*` into `file`, which outlives the call.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            which.opcode(),
            (&mut file as *mut *mut ffi::sqlite3_file).cast::<c_void>(),
        )
    };
    if rc != ffi::SQLITE_OK || file.is_null() {
        return None;
    }
    // SAFETY: SQLite returned a pointer to its own file object, valid while
    // the connection is open; a file that is not open has no methods.
    let open = unsafe { !(*file).pMethods.is_null() };
    open.then_some(file)
}

/// Syncs `conn`'s journal (the WAL) to disk through SQLite's own file
/// object, so that every commit written to it so far is durable.
///
/// # Errors
/// The WAL is not open (a WAL-mode connection that has committed has it
/// open, so this is never "nothing to do"), or the sync failed.
pub(super) fn sync_journal(conn: &Connection) -> Result<(), StoreError> {
    let Some(file) = file_object(conn, Which::Journal) else {
        return Err(StoreError::Io(std::io::Error::other(
            "the WAL file is not open: the commit cannot be made durable",
        )));
    };
    // SAFETY: `file` is SQLite's open file object (checked above) and this
    // thread is the only user of its connection; xSync is part of every
    // VFS's method table.
    let rc = unsafe {
        match (*(*file).pMethods).xSync {
            Some(sync) => sync(file, ffi::SQLITE_SYNC_NORMAL),
            None => ffi::SQLITE_IOERR_FSYNC,
        }
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(StoreError::Io(std::io::Error::other(format!(
            "syncing the WAL failed (SQLite error {rc}: {})",
            ffi::code_to_str(rc)
        ))))
    }
}

/// The start of the unix VFS's file object (`struct unixFile`).
#[repr(C)]
struct UnixFileHead {
    methods: *const c_void,
    vfs: *const c_void,
    inode: *const c_void,
    fd: c_int,
}

/// A descriptor SQLite holds open on one of a connection's files, checked
/// against the file at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Descriptor(RawFd);

impl Descriptor {
    /// The descriptor the unix VFS holds for `conn`'s `which` file, if it is
    /// open and is the file at `path` (same device and inode).
    pub(super) fn of(conn: &Connection, which: Which, path: &Path) -> Option<Descriptor> {
        let file = file_object(conn, which)?;
        // SAFETY: `file` points to an open file object of at least the unix
        // VFS's size when the default (unix) VFS made it; the descriptor
        // read is only trusted after the inode check below, so a different
        // layout yields no descriptor rather than a wrong one.
        let fd = unsafe { (*file.cast::<UnixFileHead>()).fd };
        (fd >= 0 && same_inode(fd, path)).then_some(Descriptor(fd))
    }

    /// Like [`Descriptor::of`], with a warning when it fails.
    pub(super) fn of_or_warn(conn: &Connection, which: Which, path: &Path) -> Option<Descriptor> {
        let d = Self::of(conn, which, path);
        if d.is_none() {
            tracing::warn!(
                file = which.name(),
                "cannot find SQLite's descriptor of the {} file: early writeback is off",
                which.name()
            );
        }
        d
    }

    /// Asks the kernel to start writing the file's dirty pages back, without
    /// waiting for them.
    pub(super) fn start_writeback(self) {
        #[cfg(target_os = "linux")]
        // SAFETY: the descriptor is open (SQLite owns it for as long as the
        // writer's connection is open, which outlives every caller); the call
        // only schedules writeback and does not touch our memory.
        unsafe {
            libc::sync_file_range(self.0, 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
}

/// Whether descriptor `fd` and the file at `path` are the same inode. Only
/// `fstat` and `stat`: nothing is opened.
fn same_inode(fd: RawFd, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    // SAFETY: fstat fills the zeroed struct; an invalid `fd` makes it fail.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return false;
    }
    st.st_dev as u64 == meta.dev() && st.st_ino as u64 == meta.ino()
}

/// The path of the WAL of the database at `db`.
pub(super) fn wal_path(db: &Path) -> std::path::PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_db() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
        )
        .unwrap();
        (dir, path, conn)
    }

    /// The POSIX locks this process holds on the inode of `path`, from
    /// /proc/locks.
    fn our_locks(path: &Path) -> usize {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).unwrap();
        let pid = std::process::id().to_string();
        // /proc/locks names a file as MAJOR:MINOR:INODE (hex device numbers).
        let ino = format!(":{} ", meta.ino());
        std::fs::read_to_string("/proc/locks")
            .unwrap()
            .lines()
            .filter(|l| l.contains("POSIX") && l.contains(&ino))
            .filter(|l| l.split_whitespace().nth(4) == Some(pid.as_str()))
            .count()
    }

    #[test]
    fn finds_the_descriptors_sqlite_holds() {
        let (_dir, path, conn) = wal_db();
        let db = Descriptor::of(&conn, Which::Database, &path).expect("database fd");
        let wal = Descriptor::of(&conn, Which::Journal, &wal_path(&path)).expect("WAL fd");
        assert_ne!(db, wal);
        // The database's descriptor is not the WAL's file, and the reverse.
        assert!(!same_inode(db.0, &wal_path(&path)));
        assert!(!same_inode(wal.0, &path));
        db.start_writeback();
        wal.start_writeback();
    }

    #[test]
    fn syncing_and_writeback_keep_sqlite_s_locks() {
        let (_dir, path, conn) = wal_db();
        let before = our_locks(&path);
        assert!(before >= 1, "a WAL connection holds a shared lock");
        for _ in 0..3 {
            conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
            sync_journal(&conn).unwrap();
            Descriptor::of(&conn, Which::Database, &path)
                .unwrap()
                .start_writeback();
            Descriptor::of(&conn, Which::Journal, &wal_path(&path))
                .unwrap()
                .start_writeback();
        }
        assert_eq!(our_locks(&path), before);
        // Opening and closing the file by path is exactly what drops them
        // (the reason for this module).
        drop(std::fs::File::open(&path).unwrap());
        assert_eq!(our_locks(&path), 0);
    }

    #[test]
    fn a_journal_that_is_not_open_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        // Rollback-journal mode with no transaction: no journal file is open.
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        assert!(sync_journal(&conn).is_err());
        assert!(Descriptor::of(&conn, Which::Journal, &dir.path().join("t.db-journal")).is_none());
    }

    #[test]
    fn a_path_naming_another_file_gives_no_descriptor() {
        let (dir, _path, conn) = wal_db();
        let other = dir.path().join("other");
        std::fs::write(&other, b"x").unwrap();
        assert!(Descriptor::of(&conn, Which::Database, &other).is_none());
        assert!(Descriptor::of(&conn, Which::Database, &dir.path().join("missing")).is_none());
    }
}
