//! A streaming ZIP writer for the page's folder downloads: every byte goes straight to an `out`
//! callback, so a folder of many GiB becomes one `.zip` without ever being held in memory.
//! Only the central directory is kept: one small record per entry.
//!
//! STORE only (no compression): files inside volume images are often compressed already, storing
//! runs at the speed of the reader, and a restore tool is better off with less code to trust.
//!
//! Layout (APPNOTE.TXT 6.3.10), chosen because sizes and CRC are only known after the data:
//! - a file's local header has flag bit 3 (sizes and CRC follow the data), sizes 0xFFFFFFFF and
//!   a ZIP64 extra field (0x0001) holding zero sizes; its data is followed by a ZIP64 data
//!   descriptor (8-byte sizes). Any file may turn out larger than 4 GiB, and the ZIP64 extra in
//!   the local header is what tells a reader the descriptor has 8-byte sizes (APPNOTE 4.3.9.2),
//!   so every file gets both. This is what Python's `zipfile` writes when streaming with
//!   `force_zip64`; Info-ZIP `unzip`, Python, 7-Zip and libarchive (which reads the local
//!   headers and descriptors front to back) all read it, see the tests.
//! - a folder's local header is complete up front (no data, no descriptor).
//! - the central directory has ZIP64 extra fields only for values that do not fit 32 bits,
//!   and the ZIP64 end record + locator are written only when the count, size or offset of
//!   the central directory do not fit the classic end record.
//! - every entry has an "extended timestamp" extra field (0x5455), so `unzip` restores the exact
//!   mtime instead of the 2-second, time-zone-less MS-DOS one.

use crate::error::{Error, Result};

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const ZIP64_END: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const END: u32 = 0x0605_4b50;

/// Unix host, APPNOTE 6.3 (the version that documents the UTF-8 flag).
const VERSION_MADE_BY: u16 = 3 << 8 | 63;
/// 4.5: ZIP64. One value for every entry, since every file has a ZIP64 local extra field.
const VERSION_NEEDED: u16 = 45;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
/// A 32-bit field holding this value means "see the ZIP64 field", so the value itself needs ZIP64.
const MAX32: u64 = 0xFFFF_FFFF;
const MAX_ENTRIES16: u64 = 0xFFFF;

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const DOS_DIRECTORY: u32 = 0x10;

/// What the central directory needs to know about one entry.
#[derive(Debug, Clone)]
struct Record {
    /// As stored: folders end with '/'.
    name: Vec<u8>,
    is_dir: bool,
    flags: u16,
    dos_time: u16,
    dos_date: u16,
    unix_mtime: i32,
    external_attrs: u32,
    crc: u32,
    size: u64,
    /// Where its local header starts.
    offset: u64,
}

/// A file between `start_file` and `end_file`.
struct OpenFile {
    record: Record,
    crc: crc32fast::Hasher,
}

pub struct ZipWriter {
    offset: u64,
    records: Vec<Record>,
    open: Option<OpenFile>,
    /// Why nothing more may be written: finished, or an earlier write failed
    /// (offsets would no longer match the bytes the sink holds).
    closed: Option<&'static str>,
}

impl Default for ZipWriter {
    fn default() -> ZipWriter {
        ZipWriter::new()
    }
}

impl ZipWriter {
    pub fn new() -> ZipWriter {
        ZipWriter { offset: 0, records: Vec::new(), open: None, closed: None }
    }

    /// Bytes written so far (the next entry's local header offset).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// A folder entry; `name` is the relative path with '/' separators, WITHOUT trailing slash
    /// (the writer adds it).
    pub fn add_dir(
        &mut self,
        name: &[u8],
        mtime: i64,
        mode: u16,
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        self.ready("add_dir")?;
        let mut stored = name.to_vec();
        stored.push(b'/');
        let record = self.record(name, stored, true, mtime, mode)?;
        self.emit(&local_header(&record), out)?;
        self.records.push(record);
        Ok(())
    }

    /// Starts a file entry; then `file_data` any number of times; then `end_file`.
    /// `mtime` is seconds since the epoch; `mode` gives the permission bits (0o7777), the
    /// writer adds the file type.
    pub fn start_file(
        &mut self,
        name: &[u8],
        mtime: i64,
        mode: u16,
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        self.ready("start_file")?;
        let record = self.record(name, name.to_vec(), false, mtime, mode)?;
        self.emit(&local_header(&record), out)?;
        self.open = Some(OpenFile { record, crc: crc32fast::Hasher::new() });
        Ok(())
    }

    /// The next bytes of the open file, passed on as they are (STORE).
    pub fn file_data(&mut self, bytes: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.check_closed("file_data")?;
        let Some(file) = self.open.as_mut() else {
            return Err(misuse("file_data", "no file is open (call start_file first)"));
        };
        file.crc.update(bytes);
        file.record.size += bytes.len() as u64;
        self.emit(bytes, out)
    }

    /// Ends the open file with its data descriptor (CRC and sizes).
    pub fn end_file(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.check_closed("end_file")?;
        let Some(file) = self.open.take() else {
            return Err(misuse("end_file", "no file is open"));
        };
        let mut record = file.record;
        record.crc = file.crc.finalize();
        let mut d = Vec::with_capacity(24);
        put32(&mut d, DATA_DESCRIPTOR);
        put32(&mut d, record.crc);
        put64(&mut d, record.size); // compressed size: STORE
        put64(&mut d, record.size);
        self.emit(&d, out)?;
        self.records.push(record);
        Ok(())
    }

    /// Central directory (+ ZIP64 end records when needed) and end record. Every call after it
    /// is refused.
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.ready("finish")?;
        let cd_start = self.offset;
        let records = std::mem::take(&mut self.records);
        for record in &records {
            self.emit(&central_header(record), out)?;
        }
        let count = records.len() as u64;
        let cd_size = self.offset - cd_start;
        let mut end = Vec::with_capacity(56 + 20 + 22);
        if count >= MAX_ENTRIES16 || cd_size >= MAX32 || cd_start >= MAX32 {
            let zip64_end_at = self.offset;
            put32(&mut end, ZIP64_END);
            put64(&mut end, 44); // size of the rest of this record
            put16(&mut end, VERSION_MADE_BY);
            put16(&mut end, VERSION_NEEDED);
            put32(&mut end, 0); // this disk
            put32(&mut end, 0); // disk where the central directory starts
            put64(&mut end, count); // entries on this disk
            put64(&mut end, count);
            put64(&mut end, cd_size);
            put64(&mut end, cd_start);
            put32(&mut end, ZIP64_LOCATOR);
            put32(&mut end, 0); // disk holding the ZIP64 end record
            put64(&mut end, zip64_end_at);
            put32(&mut end, 1); // disks in total
        }
        // Values that do not fit become all-ones: "see the ZIP64 end record".
        put32(&mut end, END);
        put16(&mut end, 0); // this disk
        put16(&mut end, 0); // disk where the central directory starts
        put16(&mut end, count.min(MAX_ENTRIES16) as u16);
        put16(&mut end, count.min(MAX_ENTRIES16) as u16);
        put32(&mut end, cd_size.min(MAX32) as u32);
        put32(&mut end, cd_start.min(MAX32) as u32);
        put16(&mut end, 0); // comment length
        self.emit(&end, out)?;
        self.closed = Some("the archive is finished");
        Ok(())
    }

    fn record(&self, name: &[u8], stored: Vec<u8>, is_dir: bool, mtime: i64, mode: u16) -> Result<Record> {
        check_name(name)?;
        if stored.len() > usize::from(u16::MAX) {
            return Err(bad_name(name, "is longer than the 65535 bytes a zip allows"));
        }
        let mut flags = if is_dir { 0 } else { FLAG_DESCRIPTOR };
        if std::str::from_utf8(&stored).is_ok() {
            flags |= FLAG_UTF8;
        }
        let (dos_date, dos_time) = dos_date_time(mtime);
        let kind = if is_dir { S_IFDIR } else { S_IFREG };
        let dos = if is_dir { DOS_DIRECTORY } else { 0 };
        Ok(Record {
            name: stored,
            is_dir,
            flags,
            dos_time,
            dos_date,
            unix_mtime: mtime.clamp(i32::MIN.into(), i32::MAX.into()) as i32,
            external_attrs: (u32::from(mode) & 0o7777 | kind) << 16 | dos,
            crc: 0,
            size: 0,
            offset: self.offset,
        })
    }

    /// A new entry or the end may start only between entries of an open archive.
    fn ready(&self, what: &str) -> Result<()> {
        self.check_closed(what)?;
        if self.open.is_some() {
            return Err(misuse(what, "a file is still open (call end_file first)"));
        }
        Ok(())
    }

    fn check_closed(&self, what: &str) -> Result<()> {
        match self.closed {
            // The sink failed before (disk full, cancelled): still an I/O failure, not a bug.
            Some(why) if why == WRITE_FAILED => Err(Error::Io(format!("zip: {what} refused: {why}"))),
            Some(why) => Err(misuse(what, why)),
            None => Ok(()),
        }
    }

    fn emit(&mut self, bytes: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if let Err(e) = out(bytes) {
            self.closed = Some(WRITE_FAILED);
            self.open = None;
            return Err(e);
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

fn local_header(r: &Record) -> Vec<u8> {
    let mut extra = Vec::with_capacity(20 + 9);
    if !r.is_dir {
        put16(&mut extra, 0x0001);
        put16(&mut extra, 16);
        put64(&mut extra, 0); // uncompressed size: in the data descriptor
        put64(&mut extra, 0); // compressed size: likewise
    }
    put_timestamp(&mut extra, r.unix_mtime);
    // 0xFFFFFFFF points a reader at the ZIP64 extra field, which says "0, see the descriptor".
    let size32 = if r.is_dir { 0 } else { MAX32 as u32 };
    let mut h = Vec::with_capacity(30 + r.name.len() + extra.len());
    put32(&mut h, LOCAL_HEADER);
    put16(&mut h, VERSION_NEEDED);
    put16(&mut h, r.flags);
    put16(&mut h, 0); // method: STORE
    put16(&mut h, r.dos_time);
    put16(&mut h, r.dos_date);
    put32(&mut h, 0); // CRC: in the data descriptor (a folder's is 0)
    put32(&mut h, size32);
    put32(&mut h, size32);
    put16(&mut h, r.name.len() as u16);
    put16(&mut h, extra.len() as u16);
    h.extend_from_slice(&r.name);
    h.extend_from_slice(&extra);
    h
}

fn central_header(r: &Record) -> Vec<u8> {
    // ZIP64 fields appear in this fixed order, each only when its 32-bit field is all-ones.
    let mut zip64 = Vec::new();
    let size32 = if r.size >= MAX32 {
        put64(&mut zip64, r.size);
        put64(&mut zip64, r.size);
        MAX32
    } else {
        r.size
    };
    let offset32 = if r.offset >= MAX32 {
        put64(&mut zip64, r.offset);
        MAX32
    } else {
        r.offset
    };
    let mut extra = Vec::with_capacity(4 + zip64.len() + 9);
    if !zip64.is_empty() {
        put16(&mut extra, 0x0001);
        put16(&mut extra, zip64.len() as u16);
        extra.extend_from_slice(&zip64);
    }
    put_timestamp(&mut extra, r.unix_mtime);
    let mut h = Vec::with_capacity(46 + r.name.len() + extra.len());
    put32(&mut h, CENTRAL_HEADER);
    put16(&mut h, VERSION_MADE_BY);
    put16(&mut h, VERSION_NEEDED);
    put16(&mut h, r.flags);
    put16(&mut h, 0); // method: STORE
    put16(&mut h, r.dos_time);
    put16(&mut h, r.dos_date);
    put32(&mut h, r.crc);
    put32(&mut h, size32 as u32);
    put32(&mut h, size32 as u32);
    put16(&mut h, r.name.len() as u16);
    put16(&mut h, extra.len() as u16);
    put16(&mut h, 0); // comment length
    put16(&mut h, 0); // disk where the entry starts
    put16(&mut h, 0); // internal attributes
    put32(&mut h, r.external_attrs);
    put32(&mut h, offset32 as u32);
    h.extend_from_slice(&r.name);
    h.extend_from_slice(&extra);
    h
}

/// "Extended timestamp" (0x5455) with the modification time only.
fn put_timestamp(extra: &mut Vec<u8>, mtime: i32) {
    put16(extra, 0x5455);
    put16(extra, 5);
    extra.push(1); // flags: mtime present
    extra.extend_from_slice(&mtime.to_le_bytes());
}

/// The caller already makes names safe; this is the last line before bytes leave, so a bug
/// upstream becomes an error here rather than a zip that extracts outside its folder.
fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(bad_name(name, "is empty"));
    }
    if name[0] == b'/' {
        return Err(bad_name(name, "is absolute"));
    }
    if name.contains(&0) || name.contains(&b'\\') {
        return Err(bad_name(name, "contains a NUL byte or a backslash"));
    }
    if name.split(|&b| b == b'/').any(|c| c.is_empty() || c == b"." || c == b"..") {
        return Err(bad_name(name, "has an empty, '.' or '..' component"));
    }
    Ok(())
}

fn bad_name(name: &[u8], why: &str) -> Error {
    Error::Io(format!("zip: refused the entry name {:?}: it {why}", String::from_utf8_lossy(name)))
}

const WRITE_FAILED: &str = "an earlier write failed";

fn misuse(what: &str, why: &str) -> Error {
    Error::internal(format!("zip: {what} refused: {why}"))
}

/// MS-DOS (date, time) for seconds since the epoch, clamped to the years DOS dates can hold
/// (1980..=2107); the time has 2-second steps. DOS times have no time zone: UTC is as good a
/// guess as any, and `unzip` takes the exact time from the extended timestamp anyway.
fn dos_date_time(secs: i64) -> (u16, u16) {
    const FIRST: i64 = 315_532_800; // 1980-01-01T00:00:00Z
    const LAST: i64 = 4_354_819_199; // 2107-12-31T23:59:59Z
    let secs = secs.clamp(FIRST, LAST);
    let (y, m, d, rem) = crate::browse::fs::civil(secs);
    let date = (y - 1980) << 9 | m << 5 | d;
    let time = (rem / 3600) << 11 | (rem % 3600 / 60) << 5 | (rem % 60 / 2);
    (date as u16, time as u16)
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

#[cfg(test)]
mod tests;
