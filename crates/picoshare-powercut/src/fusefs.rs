//! The FUSE filesystem that stands in for a disk: a flat directory of image
//! files, each the backing file of a loop device.
//!
//! A loop device in its default (buffered) mode turns the reads and writes
//! of the filesystem above it into reads and writes of its backing file, and
//! a cache flush (a `REQ_PREFLUSH`, or the flush that the block layer makes
//! of a `REQ_FUA` write, loop devices announcing no FUA) into an `fsync` of
//! that file. The files here are opened with `FOPEN_DIRECT_IO`, so the kernel
//! keeps no page cache of them and each request reaches this process as it is
//! made: a write only completes once it is recorded, and an `fsync` arrives
//! after every write that completed before it.
//!
//! Its files are [`Device`]s (`devices.rs`): the recorded disk and the disks
//! as power cuts left them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, LockOwner,
    MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyWrite, Request, WriteFlags,
};

pub use crate::devices::{CutImage, Device, Recorder};
use crate::journal::BLOCK;

const ROOT: u64 = 1;
const TTL: Duration = Duration::ZERO;

/// The files: name → (inode, device).
#[derive(Default)]
struct Files {
    by_name: HashMap<String, u64>,
    by_ino: HashMap<u64, (String, Arc<dyn Device>)>,
    next_ino: u64,
}

/// The filesystem's table of files, shared with whoever adds and removes them.
#[derive(Clone, Default)]
pub struct Images {
    files: Arc<Mutex<Files>>,
}

impl Images {
    /// Adds (or replaces) the file `name`.
    pub fn add(&self, name: &str, device: Arc<dyn Device>) {
        let mut f = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = f.by_name.remove(name) {
            f.by_ino.remove(&old);
        }
        f.next_ino = f.next_ino.max(ROOT) + 1;
        let ino = f.next_ino;
        f.by_name.insert(name.to_string(), ino);
        f.by_ino.insert(ino, (name.to_string(), device));
    }

    /// Removes the file `name` (a loop device still holding it open keeps
    /// using its device until it lets go).
    pub fn remove(&self, name: &str) {
        let mut f = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ino) = f.by_name.remove(name) {
            f.by_ino.remove(&ino);
        }
    }

    fn device(&self, ino: u64) -> Option<Arc<dyn Device>> {
        let f = self.files.lock().unwrap_or_else(|e| e.into_inner());
        f.by_ino.get(&ino).map(|(_, d)| d.clone())
    }
}

/// The filesystem: a root directory of [`Images`].
struct ImageFs {
    images: Images,
    /// Devices of open files, by file handle, so that a file removed from
    /// the table while open keeps working.
    open: Mutex<HashMap<u64, Arc<dyn Device>>>,
    next_fh: Mutex<u64>,
}

fn attr(ino: u64, size: u64, dir: bool) -> FileAttr {
    let now = SystemTime::now();
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: now,
        mtime: now,
        ctime: now,
        crtime: now,
        kind: if dir {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: if dir { 0o755 } else { 0o600 },
        nlink: if dir { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: BLOCK as u32,
        flags: 0,
    }
}

fn errno(e: &io::Error) -> Errno {
    match e.raw_os_error() {
        Some(code) => Errno::from_i32(code),
        None if e.kind() == io::ErrorKind::InvalidInput => Errno::EINVAL,
        None => Errno::EIO,
    }
}

impl ImageFs {
    fn handle(&self, fh: FileHandle) -> Option<Arc<dyn Device>> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&fh.0).cloned()
    }
}

impl Filesystem for ImageFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if u64::from(parent) != ROOT {
            return reply.error(Errno::ENOENT);
        }
        let found = {
            let f = self.images.files.lock().unwrap_or_else(|e| e.into_inner());
            name.to_str()
                .and_then(|n| f.by_name.get(n))
                .and_then(|ino| f.by_ino.get(ino).map(|(_, d)| (*ino, d.clone())))
        };
        match found {
            Some((ino, dev)) => {
                reply.entry(&TTL, &attr(ino, dev.size(), false), fuser::Generation(0))
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let ino = u64::from(ino);
        if ino == ROOT {
            return reply.attr(&TTL, &attr(ROOT, 0, true));
        }
        let dev = fh
            .and_then(|fh| self.handle(fh))
            .or_else(|| self.images.device(ino));
        match dev {
            Some(dev) => reply.attr(&TTL, &attr(ino, dev.size(), false)),
            None => reply.error(Errno::ENOENT),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let n = u64::from(ino);
        let dev = fh
            .and_then(|fh| self.handle(fh))
            .or_else(|| self.images.device(n));
        match dev {
            // A disk's size is fixed.
            Some(dev) if size.is_none_or(|s| s == dev.size()) => {
                reply.attr(&TTL, &attr(n, dev.size(), false))
            }
            Some(_) => reply.error(Errno::EPERM),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let Some(dev) = self.images.device(u64::from(ino)) else {
            return reply.error(Errno::ENOENT);
        };
        let fh = {
            let mut next = self.next_fh.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, dev);
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(dev) = self.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        let len = (size as u64).min(dev.size().saturating_sub(offset));
        let mut buf = vec![0u8; len as usize];
        match dev.read(offset, &mut buf) {
            Ok(()) => reply.data(&buf),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let Some(dev) = self.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        match dev.write(offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2), not a cache flush: nothing to do.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.handle(fh) {
            Some(dev) => {
                dev.flush();
                reply.ok();
            }
            None => reply.error(Errno::EBADF),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let Some(dev) = self.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        let zeroing = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE;
        if mode & zeroing != 0 {
            match dev.zero(offset, length) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        } else if mode & !libc::FALLOC_FL_KEEP_SIZE == 0 {
            // Allocation only: every byte of an image is already there.
            reply.ok();
        } else {
            reply.error(Errno::EOPNOTSUPP);
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if u64::from(ino) != ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let mut entries = vec![
            (ROOT, FileType::Directory, ".".to_string()),
            (ROOT, FileType::Directory, "..".to_string()),
        ];
        {
            let f = self.images.files.lock().unwrap_or_else(|e| e.into_inner());
            let mut files: Vec<_> = f.by_ino.iter().map(|(i, (n, _))| (*i, n.clone())).collect();
            files.sort();
            entries.extend(
                files
                    .into_iter()
                    .map(|(i, n)| (i, FileType::RegularFile, n)),
            );
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

/// A mounted image filesystem; unmounted when dropped (after whatever uses its
/// files has let go of them).
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
}

impl Mounted {
    /// Mounts a filesystem serving `images` at `mountpoint`, with `threads`
    /// threads answering the kernel.
    ///
    /// # Errors
    /// The mount fails (no `/dev/fuse`, not root, …).
    pub fn mount(images: Images, mountpoint: &Path, threads: usize) -> io::Result<Mounted> {
        let fs = ImageFs {
            images,
            open: Mutex::new(HashMap::new()),
            next_fh: Mutex::new(0),
        };
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("picoshare-powercut".into()),
            MountOption::Subtype("powercut".into()),
            MountOption::NoExec,
            MountOption::NoSuid,
            MountOption::NoDev,
        ];
        config.n_threads = Some(threads.max(1));
        let session = fuser::Session::new(fs, mountpoint, &config)?.spawn()?;
        Ok(Mounted {
            session: Some(session),
        })
    }

    /// Unmounts and waits for the serving threads.
    ///
    /// # Errors
    /// The unmount fails (a file still open: a loop device still attached).
    pub fn unmount(mut self) -> io::Result<()> {
        match self.session.take() {
            Some(s) => s.umount_and_join(),
            None => Ok(()),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            if let Err(e) = s.umount_and_join() {
                eprintln!("picoshare-powercut: could not unmount the image filesystem: {e}");
            }
        }
    }
}
