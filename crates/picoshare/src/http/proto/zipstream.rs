//! A streaming ZIP writer for the "Download all" of a share. Pure: it makes
//! the header bytes; the caller sends each member's data between them and
//! passes it through [`ZipStream::data`].
//!
//! - Members are STORED (no compression): shared files are mostly compressed
//!   already, it costs no CPU, and every size is known before the first byte,
//!   so the archive's exact length is too (`Content-Length`).
//! - Each member's CRC-32 is computed while its bytes go out and written in a
//!   data descriptor after them (flag bit 3), so nothing is read twice and
//!   nothing is buffered.
//! - ZIP64: a member whose size or local header offset reaches the limit
//!   (`0xFFFFFFFF`) gets a ZIP64 extended information field in its local and
//!   central headers and 8-byte sizes in its descriptor; when any member does,
//!   or the central directory's offset or size reaches the limit, or there are
//!   65535 members or more, the archive ends with the ZIP64 end of central
//!   directory record and locator. The limit is a parameter so that tests can
//!   force ZIP64 records on small archives.
//! - Names are UTF-8 (flag bit 11).
//!
//! Written here rather than with a ZIP crate: the reply states the archive's
//! exact length (`Content-Length`) before its first byte, which needs every
//! header's size computed up front ([`ZipStream`]'s length), and the members'
//! bytes are streamed from the store between headers made without buffering
//! or seeking; the ZIP writers of the Rust package registry (`zip`,
//! `async_zip`) learn an archive's length only by writing it.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Datelike, Timelike, Utc};

/// Sizes and offsets from this value on need ZIP64 records.
pub(crate) const ZIP64_LIMIT: u64 = 0xFFFF_FFFF;

const LOCAL_SIG: u32 = 0x0403_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const END_SIG: u32 = 0x0605_4b50;
/// Data descriptor follows the data (bit 3); names are UTF-8 (bit 11).
const FLAGS: u16 = 0x0008 | 0x0800;
/// Version 4.5 (ZIP64) made on Unix (3), so that the permissions apply.
const MADE_BY: u16 = (3 << 8) | 45;
/// `-rw-r--r--` regular file, in the high half of the external attributes.
const UNIX_FILE_MODE: u32 = 0o100_644 << 16;
/// Members from this count on need the ZIP64 end records.
const MAX_MEMBERS: usize = 0xFFFF;

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// The name inside the archive (a relative path with `/`).
    pub(crate) name: String,
    /// Size in bytes, exactly what will be sent.
    pub(crate) size: u64,
    /// Modification time (stored as an MS-DOS time, in UTC).
    pub(crate) modified: DateTime<Utc>,
}

#[derive(Debug)]
struct Placed {
    member: Member,
    offset: u64,
    zip64: bool,
}

/// Where everything goes: computed once from the members, before any byte.
#[derive(Debug)]
pub(crate) struct ZipLayout {
    placed: Vec<Placed>,
    cd_offset: u64,
    cd_len: u64,
    zip64_end: bool,
    total: u64,
}

fn local_header_len(name: &str, zip64: bool) -> u64 {
    30 + name.len() as u64 + if zip64 { 20 } else { 0 }
}

fn descriptor_len(zip64: bool) -> u64 {
    if zip64 {
        24
    } else {
        16
    }
}

fn central_len(name: &str, zip64: bool) -> u64 {
    46 + name.len() as u64 + if zip64 { 28 } else { 0 }
}

impl ZipLayout {
    /// Lays out `members` in order; sizes and offsets from `limit` on get
    /// ZIP64 records ([`ZIP64_LIMIT`] except in tests).
    pub(crate) fn new(members: Vec<Member>, limit: u64) -> Self {
        let mut offset = 0u64;
        let mut placed = Vec::with_capacity(members.len());
        for member in members {
            let zip64 = member.size >= limit || offset >= limit;
            let len = local_header_len(&member.name, zip64) + member.size + descriptor_len(zip64);
            placed.push(Placed {
                member,
                offset,
                zip64,
            });
            offset += len;
        }
        let cd_offset = offset;
        let cd_len: u64 = placed
            .iter()
            .map(|p| central_len(&p.member.name, p.zip64))
            .sum();
        let zip64_end = placed.iter().any(|p| p.zip64)
            || placed.len() >= MAX_MEMBERS
            || cd_offset >= limit
            || cd_len >= limit;
        let total = cd_offset + cd_len + if zip64_end { 56 + 20 } else { 0 } + 22;
        ZipLayout {
            placed,
            cd_offset,
            cd_len,
            zip64_end,
            total,
        }
    }

    /// The archive's length in bytes.
    pub(crate) fn total_len(&self) -> u64 {
        self.total
    }

    /// Whether the archive ends with the ZIP64 records.
    #[cfg(test)]
    fn has_zip64_end(&self) -> bool {
        self.zip64_end
    }
}

/// MS-DOS date and time (2-second resolution, years 1980–2107).
fn dos_time(t: DateTime<Utc>) -> (u16, u16) {
    let year = t.year().clamp(1980, 2107);
    if year != t.year() {
        let month_day = if year == 1980 { (1, 1) } else { (12, 31) };
        let date = ((year - 1980) as u16) << 9 | month_day.0 << 5 | month_day.1;
        return (if year == 1980 { 0 } else { 0xBF7D }, date);
    }
    let time = (t.hour() as u16) << 11 | (t.minute() as u16) << 5 | (t.second() as u16 / 2);
    let date = ((year - 1980) as u16) << 9 | (t.month() as u16) << 5 | t.day() as u16;
    (time, date)
}

fn u32_or_max(v: u64, zip64: bool) -> u32 {
    if zip64 || v >= u64::from(u32::MAX) {
        u32::MAX
    } else {
        v as u32
    }
}

/// Why a stream could not be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ZipError {
    /// A member's data did not have its announced size.
    #[error("member {name:?}: {got} bytes sent, {want} announced")]
    SizeMismatch {
        /// The member's name.
        name: String,
        /// Bytes passed to [`ZipStream::data`].
        got: u64,
        /// Its size in the layout.
        want: u64,
    },
    /// Calls out of order (a bug in the caller).
    #[error("zip stream used out of order")]
    Order,
}

/// The writer's state while an archive streams: which member is open, its
/// running CRC-32 and size, and the CRCs of the members done.
#[derive(Debug)]
pub(crate) struct ZipStream {
    layout: ZipLayout,
    crcs: Vec<u32>,
    open: Option<(crc32fast::Hasher, u64)>,
}

impl ZipStream {
    /// A stream of the archive `layout` describes.
    pub(crate) fn new(layout: ZipLayout) -> Self {
        let crcs = Vec::with_capacity(layout.placed.len());
        ZipStream {
            layout,
            crcs,
            open: None,
        }
    }

    /// Opens the next member and returns its local header.
    ///
    /// # Errors
    /// [`ZipError::Order`] if a member is still open or none is left.
    pub(crate) fn begin(&mut self) -> Result<Bytes, ZipError> {
        let i = self.crcs.len();
        let Some(p) = self.layout.placed.get(i) else {
            return Err(ZipError::Order);
        };
        if self.open.is_some() {
            return Err(ZipError::Order);
        }
        self.open = Some((crc32fast::Hasher::new(), 0));
        let name = p.member.name.as_bytes();
        let (time, date) = dos_time(p.member.modified);
        let mut b = BytesMut::with_capacity(local_header_len(&p.member.name, p.zip64) as usize);
        b.put_u32_le(LOCAL_SIG);
        b.put_u16_le(if p.zip64 { 45 } else { 20 });
        b.put_u16_le(FLAGS);
        b.put_u16_le(0); // stored
        b.put_u16_le(time);
        b.put_u16_le(date);
        // CRC and sizes follow the data, in the descriptor.
        b.put_u32_le(0);
        let size = if p.zip64 { u32::MAX } else { 0 };
        b.put_u32_le(size);
        b.put_u32_le(size);
        b.put_u16_le(name.len() as u16);
        b.put_u16_le(if p.zip64 { 20 } else { 0 });
        b.put_slice(name);
        if p.zip64 {
            b.put_u16_le(0x0001);
            b.put_u16_le(16);
            b.put_u64_le(0);
            b.put_u64_le(0);
        }
        Ok(b.freeze())
    }

    /// Passes a piece of the open member's data (already sent or about to be).
    pub(crate) fn data(&mut self, bytes: &[u8]) {
        if let Some((hasher, n)) = &mut self.open {
            hasher.update(bytes);
            *n += bytes.len() as u64;
        }
    }

    /// Closes the open member and returns its data descriptor.
    ///
    /// # Errors
    /// [`ZipError::SizeMismatch`] if its data was not exactly its size;
    /// [`ZipError::Order`] if no member is open.
    pub(crate) fn end(&mut self) -> Result<Bytes, ZipError> {
        let (hasher, n) = self.open.take().ok_or(ZipError::Order)?;
        let p = &self.layout.placed[self.crcs.len()];
        if n != p.member.size {
            return Err(ZipError::SizeMismatch {
                name: p.member.name.clone(),
                got: n,
                want: p.member.size,
            });
        }
        let crc = hasher.finalize();
        self.crcs.push(crc);
        let mut b = BytesMut::with_capacity(descriptor_len(p.zip64) as usize);
        b.put_u32_le(DESCRIPTOR_SIG);
        b.put_u32_le(crc);
        if p.zip64 {
            b.put_u64_le(n);
            b.put_u64_le(n);
        } else {
            b.put_u32_le(n as u32);
            b.put_u32_le(n as u32);
        }
        Ok(b.freeze())
    }

    /// The central directory and end records, once every member is done.
    ///
    /// # Errors
    /// [`ZipError::Order`] if a member is open or not yet sent.
    pub(crate) fn finish(self) -> Result<Bytes, ZipError> {
        if self.open.is_some() || self.crcs.len() != self.layout.placed.len() {
            return Err(ZipError::Order);
        }
        let l = &self.layout;
        let mut b = BytesMut::with_capacity((l.total - l.cd_offset) as usize);
        for (p, crc) in l.placed.iter().zip(&self.crcs) {
            let name = p.member.name.as_bytes();
            let (time, date) = dos_time(p.member.modified);
            b.put_u32_le(CENTRAL_SIG);
            b.put_u16_le(MADE_BY);
            b.put_u16_le(if p.zip64 { 45 } else { 20 });
            b.put_u16_le(FLAGS);
            b.put_u16_le(0);
            b.put_u16_le(time);
            b.put_u16_le(date);
            b.put_u32_le(*crc);
            b.put_u32_le(u32_or_max(p.member.size, p.zip64));
            b.put_u32_le(u32_or_max(p.member.size, p.zip64));
            b.put_u16_le(name.len() as u16);
            b.put_u16_le(if p.zip64 { 28 } else { 0 });
            b.put_u16_le(0); // comment
            b.put_u16_le(0); // disk
            b.put_u16_le(0); // internal attributes
            b.put_u32_le(UNIX_FILE_MODE);
            b.put_u32_le(u32_or_max(p.offset, p.zip64));
            b.put_slice(name);
            if p.zip64 {
                // Every field the header set to 0xFFFFFFFF, in the spec's order.
                b.put_u16_le(0x0001);
                b.put_u16_le(24);
                b.put_u64_le(p.member.size);
                b.put_u64_le(p.member.size);
                b.put_u64_le(p.offset);
            }
        }
        let count = l.placed.len() as u64;
        if l.zip64_end {
            let end64_offset = l.cd_offset + l.cd_len;
            b.put_u32_le(ZIP64_END_SIG);
            b.put_u64_le(44); // the record's size after this field
            b.put_u16_le(MADE_BY);
            b.put_u16_le(45);
            b.put_u32_le(0);
            b.put_u32_le(0);
            b.put_u64_le(count);
            b.put_u64_le(count);
            b.put_u64_le(l.cd_len);
            b.put_u64_le(l.cd_offset);
            b.put_u32_le(ZIP64_LOCATOR_SIG);
            b.put_u32_le(0);
            b.put_u64_le(end64_offset);
            b.put_u32_le(1);
        }
        let count16 = if l.zip64_end || count >= MAX_MEMBERS as u64 {
            u16::MAX
        } else {
            count as u16
        };
        b.put_u32_le(END_SIG);
        b.put_u16_le(0);
        b.put_u16_le(0);
        b.put_u16_le(count16);
        b.put_u16_le(count16);
        b.put_u32_le(u32_or_max(l.cd_len, l.zip64_end));
        b.put_u32_le(u32_or_max(l.cd_offset, l.zip64_end));
        b.put_u16_le(0);
        debug_assert_eq!(b.len() as u64, l.total - l.cd_offset);
        Ok(b.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T18:30:08Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn member(name: &str, size: u64) -> Member {
        Member {
            name: name.into(),
            size,
            modified: t(),
        }
    }

    /// Writes a whole archive of small members into memory.
    fn archive(files: &[(&str, &[u8])], limit: u64) -> Vec<u8> {
        let layout = ZipLayout::new(
            files
                .iter()
                .map(|(n, d)| member(n, d.len() as u64))
                .collect(),
            limit,
        );
        let total = layout.total_len();
        let mut z = ZipStream::new(layout);
        let mut out = Vec::new();
        for (_, data) in files {
            out.extend_from_slice(&z.begin().unwrap());
            out.extend_from_slice(data);
            z.data(data);
            out.extend_from_slice(&z.end().unwrap());
        }
        out.extend_from_slice(&z.finish().unwrap());
        assert_eq!(out.len() as u64, total, "announced length");
        out
    }

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// One central directory entry as read back: name, CRC, size, offset
    /// (ZIP64 values resolved), and whether it had a ZIP64 field.
    #[derive(Debug, PartialEq)]
    struct Read {
        name: String,
        crc: u32,
        size: u64,
        offset: u64,
        zip64: bool,
    }

    /// Parses the end records and central directory of `tail`, the last
    /// bytes of an archive of `total` bytes (whose directory is in `tail`).
    fn read_directory(tail: &[u8], total: u64) -> (Vec<Read>, bool) {
        let base = total - tail.len() as u64;
        let end = tail.len() - 22;
        assert_eq!(u32_at(tail, end), END_SIG);
        let mut count = u64::from(u16_at(tail, end + 10));
        let mut cd_len = u64::from(u32_at(tail, end + 12));
        let mut cd_offset = u64::from(u32_at(tail, end + 16));
        let zip64_end = end >= 20 && u32_at(tail, end - 20) == ZIP64_LOCATOR_SIG;
        if zip64_end {
            let loc = end - 20;
            let rec = (u64_at(tail, loc + 8) - base) as usize;
            assert_eq!(rec, loc - 56, "locator points at the record");
            assert_eq!(u32_at(tail, rec), ZIP64_END_SIG);
            assert_eq!(u64_at(tail, rec + 4), 44);
            count = u64_at(tail, rec + 32);
            cd_len = u64_at(tail, rec + 40);
            cd_offset = u64_at(tail, rec + 48);
            assert_eq!(cd_offset + cd_len, base + rec as u64);
        } else {
            assert_eq!(cd_offset + cd_len, base + end as u64);
        }
        let mut at = (cd_offset - base) as usize;
        let mut out = Vec::new();
        for _ in 0..count {
            assert_eq!(u32_at(tail, at), CENTRAL_SIG);
            assert_eq!(u16_at(tail, at + 8), FLAGS);
            assert_eq!(u16_at(tail, at + 10), 0, "stored");
            let crc = u32_at(tail, at + 16);
            let csize = u32_at(tail, at + 20);
            let usize_ = u32_at(tail, at + 24);
            let name_len = u16_at(tail, at + 28) as usize;
            let extra_len = u16_at(tail, at + 30) as usize;
            let offset = u32_at(tail, at + 42);
            let name = String::from_utf8(tail[at + 46..at + 46 + name_len].to_vec()).unwrap();
            let extra = &tail[at + 46 + name_len..at + 46 + name_len + extra_len];
            let mut r = Read {
                name,
                crc,
                size: u64::from(usize_),
                offset: u64::from(offset),
                zip64: false,
            };
            if !extra.is_empty() {
                assert_eq!(u16_at(extra, 0), 1, "ZIP64 field");
                assert_eq!(u16_at(extra, 2), 24);
                assert_eq!((csize, usize_, offset), (u32::MAX, u32::MAX, u32::MAX));
                assert_eq!(u64_at(extra, 4), u64_at(extra, 12), "stored: sizes equal");
                r.size = u64_at(extra, 4);
                r.offset = u64_at(extra, 20);
                r.zip64 = true;
            } else {
                assert_eq!(csize, usize_);
            }
            out.push(r);
            at += 46 + name_len + extra_len;
        }
        (out, zip64_end)
    }

    #[test]
    fn small_archives_have_no_zip64_records() {
        let zip = archive(
            &[("a.txt", b"hello\n"), ("dir/b.bin", &[7u8; 1000])],
            ZIP64_LIMIT,
        );
        let (dir, zip64) = read_directory(&zip, zip.len() as u64);
        assert!(!zip64);
        assert_eq!(
            dir,
            [
                Read {
                    name: "a.txt".into(),
                    crc: crc32fast::hash(b"hello\n"),
                    size: 6,
                    offset: 0,
                    zip64: false
                },
                Read {
                    name: "dir/b.bin".into(),
                    crc: crc32fast::hash(&[7u8; 1000]),
                    size: 1000,
                    offset: 30 + 5 + 6 + 16,
                    zip64: false
                },
            ]
        );
        // The local header of the second member, and its descriptor.
        let at = dir[1].offset as usize;
        assert_eq!(u32_at(&zip, at), LOCAL_SIG);
        assert_eq!(&zip[at + 30..at + 39], b"dir/b.bin");
        let desc = at + 39 + 1000;
        assert_eq!(u32_at(&zip, desc), DESCRIPTOR_SIG);
        assert_eq!(u32_at(&zip, desc + 4), dir[1].crc);
        assert_eq!(u32_at(&zip, desc + 8), 1000);
    }

    #[test]
    fn a_forced_limit_writes_zip64_records_everywhere() {
        let zip = archive(&[("a", b"abc"), ("b", b""), ("c", b"xyz!")], 0);
        let (dir, zip64) = read_directory(&zip, zip.len() as u64);
        assert!(zip64);
        assert!(dir.iter().all(|r| r.zip64));
        assert_eq!(dir.iter().map(|r| r.size).collect::<Vec<_>>(), [3, 0, 4]);
        // Local header: ZIP64 field with zero sizes; descriptor: 8-byte sizes.
        let at = dir[2].offset as usize;
        assert_eq!(u32_at(&zip, at), LOCAL_SIG);
        assert_eq!(u32_at(&zip, at + 18), u32::MAX);
        assert_eq!(u16_at(&zip, at + 28), 20);
        assert_eq!(u16_at(&zip, at + 31), 1);
        let desc = at + 30 + 1 + 20 + 4;
        assert_eq!(u32_at(&zip, desc), DESCRIPTOR_SIG);
        assert_eq!(u64_at(&zip, desc + 8), 4);
        assert_eq!(u64_at(&zip, desc + 16), 4);
    }

    #[test]
    fn a_member_over_4_gib_gets_zip64_fields() {
        // 4 GiB + 3 bytes of a lazily generated pattern, then a small member
        // whose offset is past 4 GiB. Only headers are kept in memory.
        let big: u64 = (4 << 30) + 3;
        let layout = ZipLayout::new(
            vec![member("big.bin", big), member("small.txt", 5)],
            ZIP64_LIMIT,
        );
        let total = layout.total_len();
        let mut z = ZipStream::new(layout);
        let mut sent: u64 = 0;
        let mut reference = crc32fast::Hasher::new();
        let block: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
        let head = z.begin().unwrap();
        sent += head.len() as u64;
        assert_eq!(u16_at(&head, 28), 20, "local ZIP64 field");
        let mut left = big;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            z.data(&block[..n]);
            reference.update(&block[..n]);
            left -= n as u64;
        }
        sent += big;
        let desc = z.end().unwrap();
        assert_eq!(desc.len(), 24);
        assert_eq!(u64_at(&desc, 8), big);
        sent += desc.len() as u64;
        let second_offset = sent;
        sent += z.begin().unwrap().len() as u64;
        z.data(b"small");
        sent += 5;
        let desc = z.end().unwrap();
        assert_eq!(desc.len(), 24, "offset past 4 GiB: ZIP64 member");
        sent += desc.len() as u64;
        let tail = z.finish().unwrap();
        sent += tail.len() as u64;
        assert_eq!(sent, total);
        let (dir, zip64) = read_directory(&tail, total);
        assert!(zip64);
        assert_eq!(
            dir,
            [
                Read {
                    name: "big.bin".into(),
                    crc: reference.finalize(),
                    size: big,
                    offset: 0,
                    zip64: true
                },
                Read {
                    name: "small.txt".into(),
                    crc: crc32fast::hash(b"small"),
                    size: 5,
                    offset: second_offset,
                    zip64: true
                },
            ]
        );
    }

    #[test]
    fn many_members_need_the_zip64_end_records() {
        let members: Vec<Member> = (0..MAX_MEMBERS)
            .map(|i| member(&format!("{i}"), 0))
            .collect();
        assert!(ZipLayout::new(members, ZIP64_LIMIT).has_zip64_end());
        let members: Vec<Member> = (0..10).map(|i| member(&format!("{i}"), 0)).collect();
        assert!(!ZipLayout::new(members, ZIP64_LIMIT).has_zip64_end());
    }

    #[test]
    fn wrong_sizes_and_order_are_errors() {
        let mut z = ZipStream::new(ZipLayout::new(vec![member("a", 3)], ZIP64_LIMIT));
        assert_eq!(z.end(), Err(ZipError::Order));
        z.begin().unwrap();
        assert_eq!(z.begin(), Err(ZipError::Order));
        z.data(b"ab");
        assert!(matches!(
            z.end(),
            Err(ZipError::SizeMismatch {
                got: 2,
                want: 3,
                ..
            })
        ));
        let z = ZipStream::new(ZipLayout::new(vec![member("a", 3)], ZIP64_LIMIT));
        assert_eq!(z.finish(), Err(ZipError::Order));
    }

    #[test]
    fn dos_times() {
        assert_eq!(
            dos_time(t()),
            (18 << 11 | 30 << 5 | 4, 46 << 9 | 11 << 5 | 26)
        );
        let old = DateTime::parse_from_rfc3339("1970-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(dos_time(old), (0, 1 << 5 | 1));
    }
}
