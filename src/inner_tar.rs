//! The tar stream inside each backed-up file (FORMAT.md §6.3–§6.5), parsed by push.
//!
//! The pipeline hands over decompressed bytes piece by piece (any size, down to one byte) and
//! the page runs in wasm32 where nothing may block, so this is a state machine: [`InnerTar::feed`]
//! consumes what it is given and calls a [`Visitor`] for every member.
//!
//! Sparse members are never expanded: only the stored data runs reach [`Visitor::data`], at their
//! offset in the real file, ascending, at most 1 MiB per call. Holes are never delivered, so a
//! 50 GiB volume with 1 MiB of data costs 1 MiB of work. Supported encodings:
//! * GNU old sparse `'S'` (§6.4): 4 map entries in the header, extension blocks of 21, realsize at 483;
//! * PAX sparse 1.0 (§6.3, Qubes `tarwriter` and `tar --format=posix --sparse`): map as decimal lines
//!   at the start of the data area, NUL-padded to 512, then the runs;
//! * PAX sparse 0.0 / 0.1 (`GNU.sparse.offset`/`numbytes`, `GNU.sparse.map`), cheap to accept.
//!
//! Every number, size and map is checked before it is trusted or allocated for; nothing panics.

use crate::error::{Error, Result};

const BLOCK: usize = 512;
/// Largest pax extended header accepted (Qubes' are ~150 bytes).
const MAX_PAX: u64 = 1 << 20;
/// Largest GNU `'L'`/`'K'` long name accepted.
const MAX_LONG_NAME: u64 = 64 << 10;
/// Most sparse map entries accepted for one member (16 bytes each in memory).
pub const MAX_SPARSE_ENTRIES: usize = 1 << 23;
/// Largest slice handed to [`Visitor::data`] in one call.
pub const MAX_DATA_CALL: usize = 1 << 20;
/// Most zero bytes accepted after the end-of-archive marker (GNU tar pads to 10240).
const MAX_TRAILING: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
    /// Devices, fifos, anything else: the typeflag byte.
    Other(u8),
}

#[derive(Clone, Debug)]
pub struct Entry {
    /// Real name as stored (pax `path`, GNU `L` long name or `GNU.sparse.name` applied).
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Symlink / hardlink target (pax `linkpath`, GNU `K`).
    pub link: Vec<u8>,
    /// Real (expanded) size of a file: `realsize` for sparse members.
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    /// Bytes actually stored (sum of the sparse map, or `size` for plain files).
    pub stored: u64,
    /// Offset in the tar stream of the first stored byte (after the headers and any PAX 1.0
    /// map): with `map`, what lets a browser read a file straight out of a saved tar.
    pub data_start: u64,
    /// The validated sparse map `(offset, size)`; `None` for a contiguous member.
    pub map: Option<Vec<(u64, u64)>>,
}

/// Receives the members of an inner tar stream in order.
pub trait Visitor {
    fn entry(&mut self, entry: &Entry) -> Result<()>;
    /// File data at `offset` of the real file, ascending; holes are never delivered.
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()>;
    fn end_entry(&mut self) -> Result<()>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExtKind {
    Pax,
    Global,
    LongName,
    LongLink,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Collecting a 512-byte header block.
    Header,
    /// Collecting the body of a pax / GNU long-name pseudo member, then `pad` bytes.
    Ext { kind: ExtKind, left: u64, pad: u64 },
    /// Collecting a GNU old-sparse extension block.
    OldSparseExt,
    /// Collecting PAX 1.0 map blocks; `left` = stored bytes of the member not yet consumed.
    SparseMap { left: u64 },
    /// Member data: `left` stored bytes, then `pad` bytes of block padding.
    Data { left: u64, pad: u64, deliver: bool },
    /// Block padding after a member (the member is complete).
    Pad { left: u64 },
    /// Two zero blocks seen: only zero padding may follow.
    Ended { trailing: u64 },
}

/// Extended header values waiting for the member header they describe.
#[derive(Default)]
struct Pending {
    any: bool,
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    mtime: Option<i64>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    sparse_major: Option<u64>,
    sparse_minor: Option<u64>,
    sparse_name: Option<Vec<u8>>,
    sparse_realsize: Option<u64>,
    /// 0.0 (`offset`/`numbytes` pairs) or 0.1 (`map`) map from the pax header.
    sparse_map: Option<Vec<(u64, u64)>>,
    sparse_offset: Option<u64>,
    sparse_numblocks: Option<u64>,
}

/// The member being read.
struct Member {
    entry: Entry,
    /// Sparse map `(offset, size)`; `None` for a contiguous member.
    map: Option<Vec<(u64, u64)>>,
    run: usize,
    run_done: u64,
    /// Next offset for a contiguous member.
    pos: u64,
    /// Stored bytes (old sparse: the ustar size) — for the extension-block path.
    stored: u64,
}

/// Incremental parser of the PAX 1.0 map text.
#[derive(Default)]
struct MapText {
    count: Option<u64>,
    numbers: u64,
    acc: u64,
    digits: u32,
    offset: u64,
}

/// Push parser of one inner tar stream.
pub struct InnerTar {
    state: State,
    blk: [u8; BLOCK],
    blk_len: usize,
    ext: Vec<u8>,
    pending: Pending,
    member: Option<Member>,
    map_text: MapText,
    zero_blocks: u8,
    entries: u64,
    failed: Option<Error>,
    /// Stream bytes consumed so far (kept current around each header/map block).
    pos: u64,
}

fn tampered(check: &str) -> Error {
    Error::tampered("", check)
}

fn map_err() -> Error {
    tampered("inner tar sparse map")
}

/// Bytes up to the first NUL.
fn cstr(f: &[u8]) -> &[u8] {
    match f.iter().position(|&b| b == 0) {
        Some(i) => &f[..i],
        None => f,
    }
}

/// Padding that brings `n` to a multiple of 512.
fn pad_of(n: u64) -> u64 {
    (BLOCK as u64 - n % BLOCK as u64) % BLOCK as u64
}

/// An unsigned numeric header field: octal (NUL/space terminated) or GNU base-256.
/// Negative values and values above `i64::MAX` are refused.
fn num(f: &[u8]) -> Result<u64> {
    let bad = || tampered("inner tar header number");
    if f.is_empty() {
        return Ok(0);
    }
    if f[0] & 0x80 != 0 {
        if f[0] & 0x40 != 0 {
            return Err(bad());
        }
        let mut v = (f[0] & 0x3f) as u64;
        for &b in &f[1..] {
            if v >> 55 != 0 {
                return Err(bad());
            }
            v = (v << 8) | b as u64;
        }
        if v > i64::MAX as u64 {
            return Err(bad());
        }
        return Ok(v);
    }
    let mut i = 0;
    while i < f.len() && f[i] == b' ' {
        i += 1;
    }
    let mut v: u64 = 0;
    while i < f.len() && (b'0'..=b'7').contains(&f[i]) {
        if v > (i64::MAX as u64) >> 3 {
            return Err(bad());
        }
        v = (v << 3) | (f[i] - b'0') as u64;
        i += 1;
    }
    if i < f.len() && f[i] != 0 && f[i] != b' ' {
        return Err(bad());
    }
    Ok(v)
}

/// A signed numeric field (mtime): octal or base-256 two's complement.
fn num_signed(f: &[u8]) -> Result<i64> {
    if !f.is_empty() && f[0] & 0x80 != 0 && f[0] & 0x40 != 0 {
        let mut acc: i128 = -1;
        for (i, &b) in f.iter().enumerate() {
            if i < f.len().saturating_sub(15) {
                // more than 120 bits: only sign bytes allowed
                if b != 0xff {
                    return Err(tampered("inner tar header number"));
                }
                continue;
            }
            acc = (acc << 8) | b as i128;
        }
        return i64::try_from(acc).map_err(|_| tampered("inner tar header number"));
    }
    Ok(num(f)? as i64)
}

/// A decimal number from a pax record or a PAX 1.0 map (no sign, no spaces).
fn dec(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    if n > i64::MAX as u64 {
        return None;
    }
    Some(n)
}

/// pax `mtime`: `[-]seconds[.fraction]`, the fraction dropped.
fn pax_time(v: &[u8]) -> Option<i64> {
    let (neg, v) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        _ => (false, v),
    };
    let int = match v.iter().position(|&b| b == b'.') {
        Some(i) => {
            if !v[i + 1..].iter().all(|b| b.is_ascii_digit()) {
                return None;
            }
            &v[..i]
        }
        None => v,
    };
    let n = dec(int)? as i64;
    Some(if neg { -n } else { n })
}

/// Checks a sparse map: sorted, non-overlapping, each run inside `realsize`, sizes summing to `stored`.
fn check_map(map: &[(u64, u64)], realsize: u64, stored: u64) -> Result<()> {
    if map.len() > MAX_SPARSE_ENTRIES {
        return Err(map_err());
    }
    let mut end = 0u64;
    let mut sum = 0u64;
    for &(off, len) in map {
        let run_end = off.checked_add(len).ok_or_else(map_err)?;
        if off < end || run_end > realsize {
            return Err(map_err());
        }
        end = run_end;
        sum = sum.checked_add(len).ok_or_else(map_err)?;
    }
    if sum != stored {
        return Err(map_err());
    }
    Ok(())
}

fn push_run(map: &mut Vec<(u64, u64)>, off: u64, len: u64) -> Result<()> {
    if map.len() >= MAX_SPARSE_ENTRIES {
        return Err(map_err());
    }
    map.push((off, len));
    Ok(())
}

impl InnerTar {
    pub fn new() -> InnerTar {
        InnerTar {
            state: State::Header,
            blk: [0; BLOCK],
            blk_len: 0,
            ext: Vec::new(),
            pending: Pending::default(),
            member: None,
            map_text: MapText::default(),
            zero_blocks: 0,
            entries: 0,
            failed: None,
            pos: 0,
        }
    }

    /// True once the end-of-archive marker (two zero blocks) has been read.
    pub fn ended(&self) -> bool {
        matches!(self.state, State::Ended { .. })
    }

    /// Members reported to the visitor so far (pax/GNU pseudo members not counted).
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The validated sparse map `(offset, size)` of the member being delivered (between
    /// [`Visitor::entry`] and [`Visitor::end_entry`]); `None` for a contiguous member.
    pub fn sparse_map(&self) -> Option<&[(u64, u64)]> {
        self.member.as_ref().and_then(|m| m.map.as_deref())
    }

    pub fn feed(&mut self, data: &[u8], v: &mut dyn Visitor) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.feed_inner(data, v);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// Ends the stream: Ok at a member boundary (with or without the end marker: Qubes'
    /// `tarwriter` stops after its one member), `Truncated` inside a member, header or map.
    pub fn finish(&mut self, _v: &mut dyn Visitor) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = match self.state {
            State::Ended { .. } => Ok(()),
            State::Header | State::Pad { .. } => {
                if self.blk[..self.blk_len].iter().any(|&b| b != 0) {
                    Err(Error::truncated("", "inner tar ends inside a header"))
                } else if self.pending.any {
                    Err(Error::truncated("", "inner tar ends after an extended header"))
                } else {
                    Ok(())
                }
            }
            State::Ext { .. } => Err(Error::truncated("", "inner tar ends inside an extended header")),
            State::OldSparseExt | State::SparseMap { .. } | State::Data { .. } => {
                let path = self
                    .member
                    .as_ref()
                    .map(|m| String::from_utf8_lossy(&m.entry.path).into_owned())
                    .unwrap_or_default();
                Err(Error::truncated("", format!("inner tar ends inside {path}")))
            }
        };
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// Appends input to the block buffer; true when a whole block is there.
    fn fill_block(&mut self, data: &mut &[u8]) -> bool {
        let n = (BLOCK - self.blk_len).min(data.len());
        self.blk[self.blk_len..self.blk_len + n].copy_from_slice(&data[..n]);
        self.blk_len += n;
        self.pos += n as u64;
        *data = &data[n..];
        if self.blk_len == BLOCK {
            self.blk_len = 0;
            true
        } else {
            false
        }
    }

    fn after_pad(pad: u64) -> State {
        if pad == 0 {
            State::Header
        } else {
            State::Pad { left: pad }
        }
    }

    fn feed_inner(&mut self, mut data: &[u8], v: &mut dyn Visitor) -> Result<()> {
        while !data.is_empty() {
            match self.state {
                State::Header => {
                    if self.fill_block(&mut data) {
                        self.on_header(v)?;
                    }
                }
                State::OldSparseExt => {
                    if self.fill_block(&mut data) {
                        self.on_old_sparse_ext(v)?;
                    }
                }
                State::SparseMap { left } => {
                    if self.fill_block(&mut data) {
                        self.on_map_block(left, v)?;
                    }
                }
                State::Ext { kind, left, pad } => {
                    let n = (left.min(data.len() as u64)) as usize;
                    if kind != ExtKind::Global {
                        self.ext.extend_from_slice(&data[..n]);
                    }
                    data = &data[n..];
                    self.pos += n as u64;
                    let left = left - n as u64;
                    if left == 0 {
                        self.on_ext_done(kind)?;
                        self.state = Self::after_pad(pad);
                    } else {
                        self.state = State::Ext { kind, left, pad };
                    }
                }
                State::Data { left, pad, deliver } => {
                    let n = (left.min(data.len() as u64)) as usize;
                    if deliver {
                        self.deliver(&data[..n], v)?;
                    }
                    data = &data[n..];
                    self.pos += n as u64;
                    let left = left - n as u64;
                    if left == 0 {
                        self.end_member(pad, v)?;
                    } else {
                        self.state = State::Data { left, pad, deliver };
                    }
                }
                State::Pad { left } => {
                    let n = (left.min(data.len() as u64)) as usize;
                    data = &data[n..];
                    self.pos += n as u64;
                    let left = left - n as u64;
                    self.state = Self::after_pad(left);
                }
                State::Ended { trailing } => {
                    if data.iter().any(|&b| b != 0) {
                        return Err(tampered("data after the end of the inner tar"));
                    }
                    let trailing = trailing.saturating_add(data.len() as u64);
                    if trailing > MAX_TRAILING {
                        return Err(tampered("data after the end of the inner tar"));
                    }
                    self.state = State::Ended { trailing };
                    self.pos += data.len() as u64;
                    data = &[];
                }
            }
        }
        Ok(())
    }

    fn end_member(&mut self, pad: u64, v: &mut dyn Visitor) -> Result<()> {
        self.member = None;
        self.state = Self::after_pad(pad);
        v.end_entry()
    }

    /// Hands stored bytes to the visitor at their real offsets, ≤ 1 MiB per call.
    fn deliver(&mut self, mut bytes: &[u8], v: &mut dyn Visitor) -> Result<()> {
        let m = match self.member.as_mut() {
            Some(m) => m,
            None => return Ok(()),
        };
        while !bytes.is_empty() {
            let (offset, room) = match &m.map {
                None => (m.pos, u64::MAX),
                Some(map) => {
                    while m.run < map.len() && m.run_done == map[m.run].1 {
                        m.run += 1;
                        m.run_done = 0;
                    }
                    // The map was checked to sum to the stored size: a run is always left.
                    let (off, len) = *map.get(m.run).ok_or_else(map_err)?;
                    (off + m.run_done, len - m.run_done)
                }
            };
            let n = (bytes.len().min(MAX_DATA_CALL) as u64).min(room) as usize;
            v.data(offset, &bytes[..n])?;
            match m.map {
                None => m.pos += n as u64,
                Some(_) => m.run_done += n as u64,
            }
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Salvage: `n` bytes of the stream are lost (a chunk that failed its MAC, in a stream that
    /// is not compressed, so the position of what follows is known). Inside member data the map
    /// places every lost stored byte, reported as `(offset, len)` of the real file through `lost`,
    /// and parsing goes on after the gap: returns true. A gap over a header, an extended header or
    /// a sparse map cannot be crossed: returns false, and the caller should [`InnerTar::give_up`].
    pub fn skip(&mut self, mut n: u64, v: &mut dyn Visitor, lost: &mut dyn FnMut(u64, u64)) -> Result<bool> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while n > 0 {
            match self.state {
                State::Data { left, pad, deliver } => {
                    let k = n.min(left);
                    if deliver {
                        self.lose(k, lost);
                    }
                    n -= k;
                    self.pos += k;
                    if k == left {
                        self.end_member(pad, v)?;
                    } else {
                        self.state = State::Data { left: left - k, pad, deliver };
                    }
                }
                State::Pad { left } => {
                    let k = n.min(left);
                    n -= k;
                    self.pos += k;
                    self.state = Self::after_pad(left - k);
                }
                State::Ended { trailing } => {
                    self.state = State::Ended { trailing: trailing.saturating_add(n) };
                    self.pos += n;
                    n = 0;
                }
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Salvage: the stream cannot be followed from here on. Reports (through `lost`) what the
    /// member being delivered has not delivered yet: the rest of its map (holes the map declares
    /// are known zeros, not lost). A member whose map was not read to its end was never reported
    /// to the visitor, so nothing of it can be placed and nothing is reported. Afterwards
    /// [`InnerTar::feed`] and [`InnerTar::finish`] fail.
    pub fn give_up(&mut self, lost: &mut dyn FnMut(u64, u64)) {
        if let State::Data { left, deliver: true, .. } = self.state {
            self.lose(left, lost);
        }
        self.member = None;
        if self.failed.is_none() {
            self.failed = Some(Error::truncated("", "inner tar: the stream was lost before this point"));
        }
    }

    /// Advances over `n` stored bytes of the current member without delivering them, reporting
    /// where they belong in the real file.
    fn lose(&mut self, mut n: u64, lost: &mut dyn FnMut(u64, u64)) {
        let Some(m) = self.member.as_mut() else { return };
        match &m.map {
            None => {
                if n > 0 {
                    lost(m.pos, n);
                }
                m.pos += n;
            }
            Some(map) => {
                while n > 0 {
                    while m.run < map.len() && m.run_done == map[m.run].1 {
                        m.run += 1;
                        m.run_done = 0;
                    }
                    // The map sums to the stored size, so a run is always left.
                    let Some(&(off, len)) = map.get(m.run) else { return };
                    let k = n.min(len - m.run_done);
                    lost(off + m.run_done, k);
                    m.run_done += k;
                    n -= k;
                }
            }
        }
    }

    fn on_ext_done(&mut self, kind: ExtKind) -> Result<()> {
        let body = std::mem::take(&mut self.ext);
        match kind {
            ExtKind::Global => {}
            ExtKind::Pax => {
                self.pending.any = true;
                self.parse_pax(&body)?;
            }
            ExtKind::LongName => {
                self.pending.any = true;
                self.pending.long_name = Some(cstr(&body).to_vec());
            }
            ExtKind::LongLink => {
                self.pending.any = true;
                self.pending.long_link = Some(cstr(&body).to_vec());
            }
        }
        Ok(())
    }

    fn parse_pax(&mut self, buf: &[u8]) -> Result<()> {
        let bad = || tampered("inner tar pax header");
        let mut p = 0;
        while p < buf.len() {
            if buf[p..].iter().all(|&b| b == 0) {
                break;
            }
            let rest = &buf[p..];
            let sp = rest.iter().take(21).position(|&b| b == b' ').ok_or_else(bad)?;
            let len = dec(&rest[..sp]).ok_or_else(bad)? as usize;
            if len < sp + 3 || len > rest.len() || rest[len - 1] != b'\n' {
                return Err(bad());
            }
            let rec = &rest[sp + 1..len - 1];
            let eq = rec.iter().position(|&b| b == b'=').ok_or_else(bad)?;
            self.pax_record(&rec[..eq], &rec[eq + 1..])?;
            p += len;
        }
        Ok(())
    }

    fn pax_record(&mut self, key: &[u8], val: &[u8]) -> Result<()> {
        let bad = || tampered("inner tar pax header");
        let pend = &mut self.pending;
        let opt = |v: &[u8]| if v.is_empty() { None } else { Some(v.to_vec()) };
        match key {
            b"path" => pend.path = opt(val),
            b"linkpath" => pend.link = opt(val),
            b"size" => pend.size = if val.is_empty() { None } else { Some(dec(val).ok_or_else(bad)?) },
            b"mtime" => pend.mtime = if val.is_empty() { None } else { Some(pax_time(val).ok_or_else(bad)?) },
            b"GNU.sparse.major" => pend.sparse_major = Some(dec(val).ok_or_else(map_err)?),
            b"GNU.sparse.minor" => pend.sparse_minor = Some(dec(val).ok_or_else(map_err)?),
            b"GNU.sparse.name" => pend.sparse_name = opt(val),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => {
                pend.sparse_realsize = Some(dec(val).ok_or_else(map_err)?)
            }
            b"GNU.sparse.numblocks" => pend.sparse_numblocks = Some(dec(val).ok_or_else(map_err)?),
            b"GNU.sparse.offset" => pend.sparse_offset = Some(dec(val).ok_or_else(map_err)?),
            b"GNU.sparse.numbytes" => {
                let off = pend.sparse_offset.take().ok_or_else(map_err)?;
                let len = dec(val).ok_or_else(map_err)?;
                push_run(pend.sparse_map.get_or_insert_with(Vec::new), off, len)?;
            }
            b"GNU.sparse.map" => {
                let map = pend.sparse_map.get_or_insert_with(Vec::new);
                map.clear();
                if !val.is_empty() {
                    let mut it = val.split(|&b| b == b',');
                    while let Some(o) = it.next() {
                        let l = it.next().ok_or_else(map_err)?;
                        push_run(map, dec(o).ok_or_else(map_err)?, dec(l).ok_or_else(map_err)?)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_header(&mut self, v: &mut dyn Visitor) -> Result<()> {
        let h = self.blk;
        if h.iter().all(|&b| b == 0) {
            if self.pending.any {
                return Err(tampered("inner tar extended header without a member"));
            }
            self.zero_blocks += 1;
            if self.zero_blocks >= 2 {
                self.state = State::Ended { trailing: 0 };
            }
            return Ok(());
        }
        // A lone zero block followed by a header is tolerated, as GNU tar does.
        self.zero_blocks = 0;

        let stored_sum = num(&h[148..156]).map_err(|_| tampered("inner tar header checksum"))?;
        let mut unsigned: u64 = 0;
        let mut signed: i64 = 0;
        for (i, &b) in h.iter().enumerate() {
            let b = if (148..156).contains(&i) { b' ' } else { b };
            unsigned += b as u64;
            signed += b as i8 as i64;
        }
        if stored_sum != unsigned && stored_sum as i64 != signed {
            return Err(tampered("inner tar header checksum"));
        }

        let flag = h[156];
        let size = num(&h[124..136])?;
        let pad = pad_of(size);
        match flag {
            b'x' | b'g' | b'L' | b'K' => {
                let (kind, cap, what) = match flag {
                    b'x' => (ExtKind::Pax, MAX_PAX, "inner tar pax header size"),
                    b'g' => (ExtKind::Global, MAX_PAX, "inner tar pax header size"),
                    b'L' => (ExtKind::LongName, MAX_LONG_NAME, "inner tar long name size"),
                    _ => (ExtKind::LongLink, MAX_LONG_NAME, "inner tar long name size"),
                };
                if size > cap {
                    return Err(tampered(what));
                }
                self.ext.clear();
                if size == 0 {
                    self.on_ext_done(kind)?;
                    self.state = State::Header;
                } else {
                    self.state = State::Ext { kind, left: size, pad };
                }
                return Ok(());
            }
            _ => {}
        }

        // A real member: apply the pending extended headers.
        let pend = std::mem::take(&mut self.pending);
        let name = if &h[257..263] == b"ustar\0" && h[345] != 0 {
            let mut n = cstr(&h[345..500]).to_vec();
            n.push(b'/');
            n.extend_from_slice(cstr(&h[0..100]));
            n
        } else {
            cstr(&h[0..100]).to_vec()
        };
        let kind = match flag {
            b'0' | 0 | b'7' | b'S' => Kind::File,
            b'5' => Kind::Dir,
            b'2' => Kind::Symlink,
            b'1' => Kind::HardLink,
            other => Kind::Other(other),
        };
        let path = pend.sparse_name.clone().or(pend.path).or(pend.long_name).unwrap_or(name);
        let link = pend.link.or(pend.long_link).unwrap_or_else(|| cstr(&h[157..257]).to_vec());
        let mode = (num(&h[100..108])? & 0o7777) as u32;
        let mtime = match pend.mtime {
            Some(t) => t,
            None => num_signed(&h[136..148])?,
        };
        let size = pend.size.unwrap_or(size);
        let pad = pad_of(size);
        let entry = Entry { path, kind, link, size, mode, mtime, stored: size, data_start: 0, map: None };
        let mut member = Member { entry, map: None, run: 0, run_done: 0, pos: 0, stored: size };

        if flag == b'S' {
            let realsize = num(&h[483..495])?;
            let mut map = Vec::new();
            let finished = Self::old_sparse_entries(&h[386..482], &mut map)?;
            member.entry.size = realsize;
            member.map = Some(map);
            self.member = Some(member);
            if h[482] != 0 {
                if finished {
                    return Err(map_err());
                }
                self.state = State::OldSparseExt;
                return Ok(());
            }
            return self.start_sparse_data(v);
        }

        if member.entry.kind == Kind::File && pend.sparse_major == Some(1) {
            if pend.sparse_minor.unwrap_or(0) != 0 {
                return Err(Error::unsupported(format!(
                    "GNU sparse format 1.{} in an inner tar",
                    pend.sparse_minor.unwrap_or(0)
                )));
            }
            member.entry.size = pend.sparse_realsize.ok_or_else(map_err)?;
            member.map = Some(Vec::new());
            self.member = Some(member);
            self.map_text = MapText::default();
            self.state = State::SparseMap { left: size };
            return Ok(());
        }
        if let Some(major) = pend.sparse_major {
            if major > 1 && member.entry.kind == Kind::File {
                return Err(Error::unsupported(format!("GNU sparse format {major}.x in an inner tar")));
            }
        }

        if member.entry.kind == Kind::File && pend.sparse_map.is_some() {
            // PAX sparse 0.0 / 0.1: the map came in the pax header, the data area holds the runs.
            if pend.sparse_offset.is_some() {
                return Err(map_err());
            }
            let map = pend.sparse_map.unwrap_or_default();
            if let Some(nb) = pend.sparse_numblocks {
                if nb != map.len() as u64 {
                    return Err(map_err());
                }
            }
            let realsize = pend.sparse_realsize.ok_or_else(map_err)?;
            check_map(&map, realsize, size)?;
            member.entry.size = realsize;
            member.map = Some(map);
            self.member = Some(member);
            return self.start_data(size, pad, true, v);
        }

        let deliver = member.entry.kind == Kind::File;
        self.member = Some(member);
        self.start_data(size, pad, deliver, v)
    }

    /// Reports the member and enters its data (or ends it at once when empty).
    fn start_data(&mut self, stored: u64, pad: u64, deliver: bool, v: &mut dyn Visitor) -> Result<()> {
        self.entries += 1;
        if let Some(m) = self.member.as_mut() {
            m.entry.stored = stored;
            m.entry.data_start = self.pos;
            m.entry.map = m.map.clone();
            v.entry(&m.entry)?;
        }
        if stored == 0 {
            self.end_member(pad, v)
        } else {
            self.state = State::Data { left: stored, pad, deliver };
            Ok(())
        }
    }

    /// Reads up to `entries.len() / 24` old-sparse entries; true if an empty entry ended the map.
    fn old_sparse_entries(entries: &[u8], map: &mut Vec<(u64, u64)>) -> Result<bool> {
        for e in entries.chunks_exact(24) {
            if e[12] == 0 {
                return Ok(true);
            }
            let off = num(&e[..12]).map_err(|_| map_err())?;
            let len = num(&e[12..]).map_err(|_| map_err())?;
            push_run(map, off, len)?;
        }
        Ok(false)
    }

    fn on_old_sparse_ext(&mut self, v: &mut dyn Visitor) -> Result<()> {
        let h = self.blk;
        let m = self.member.as_mut().ok_or_else(map_err)?;
        let map = m.map.as_mut().ok_or_else(map_err)?;
        let finished = Self::old_sparse_entries(&h[..504], map)?;
        if h[504] != 0 {
            if finished {
                return Err(map_err());
            }
            return Ok(());
        }
        self.start_sparse_data(v)
    }

    /// Old sparse map complete: validate it against realsize and the stored size, then data.
    fn start_sparse_data(&mut self, v: &mut dyn Visitor) -> Result<()> {
        let m = self.member.as_ref().ok_or_else(map_err)?;
        let stored = m.stored;
        check_map(m.map.as_deref().unwrap_or(&[]), m.entry.size, stored)?;
        self.start_data(stored, pad_of(stored), true, v)
    }

    /// One block of PAX 1.0 map text.
    fn on_map_block(&mut self, left: u64, v: &mut dyn Visitor) -> Result<()> {
        if left < BLOCK as u64 {
            return Err(map_err());
        }
        let left = left - BLOCK as u64;
        let h = self.blk;
        let t = &mut self.map_text;
        let m = self.member.as_mut().ok_or_else(map_err)?;
        let map = m.map.as_mut().ok_or_else(map_err)?;
        let mut done = false;
        for &b in h.iter() {
            match b {
                b'0'..=b'9' => {
                    t.acc = t
                        .acc
                        .checked_mul(10)
                        .and_then(|a| a.checked_add((b - b'0') as u64))
                        .filter(|&a| a <= i64::MAX as u64)
                        .ok_or_else(map_err)?;
                    t.digits += 1;
                }
                b'\n' if t.digits > 0 => {
                    let n = t.acc;
                    t.acc = 0;
                    t.digits = 0;
                    match t.count {
                        None => {
                            if n > MAX_SPARSE_ENTRIES as u64 {
                                return Err(map_err());
                            }
                            t.count = Some(n);
                        }
                        Some(_) => {
                            if t.numbers % 2 == 0 {
                                t.offset = n;
                            } else {
                                push_run(map, t.offset, n)?;
                            }
                            t.numbers += 1;
                        }
                    }
                }
                _ => return Err(map_err()),
            }
            if let Some(c) = t.count {
                if t.numbers == 2 * c {
                    done = true;
                    break;
                }
            }
        }
        if !done {
            self.state = State::SparseMap { left };
            return Ok(());
        }
        check_map(map, m.entry.size, left)?;
        self.start_data(left, pad_of(left), true, v)
    }
}

impl Default for InnerTar {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// One member as the visitor saw it: data runs merged when adjacent.
    #[derive(Debug)]
    pub struct Got {
        pub entry: Entry,
        pub runs: Vec<(u64, Vec<u8>)>,
        pub ended: bool,
    }

    #[derive(Default, Debug)]
    pub struct Collect {
        pub got: Vec<Got>,
    }

    impl Visitor for Collect {
        fn entry(&mut self, e: &Entry) -> Result<()> {
            assert!(self.got.last().is_none_or(|g| g.ended), "entry before end_entry");
            self.got.push(Got { entry: e.clone(), runs: Vec::new(), ended: false });
            Ok(())
        }
        fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
            assert!(!bytes.is_empty() && bytes.len() <= MAX_DATA_CALL);
            let g = self.got.last_mut().expect("data before entry");
            assert!(!g.ended);
            assert!(offset + bytes.len() as u64 <= g.entry.size, "data beyond the real size");
            match g.runs.last_mut() {
                Some((o, d)) if *o + d.len() as u64 == offset => d.extend_from_slice(bytes),
                Some((o, d)) => {
                    assert!(offset > *o + d.len() as u64, "offsets not ascending");
                    g.runs.push((offset, bytes.to_vec()));
                }
                None => g.runs.push((offset, bytes.to_vec())),
            }
            Ok(())
        }
        fn end_entry(&mut self) -> Result<()> {
            let g = self.got.last_mut().expect("end before entry");
            assert!(!g.ended);
            g.ended = true;
            Ok(())
        }
    }

    impl Got {
        /// Bytes `[off, off+len)` of the real file as delivered (holes read as zeros).
        pub fn read(&self, off: u64, len: usize) -> Vec<u8> {
            let mut out = vec![0u8; len];
            for (o, d) in &self.runs {
                let (s, e) = ((*o).max(off), (*o + d.len() as u64).min(off + len as u64));
                if s < e {
                    out[(s - off) as usize..(e - off) as usize]
                        .copy_from_slice(&d[(s - o) as usize..(e - o) as usize]);
                }
            }
            out
        }
        pub fn delivered(&self) -> u64 {
            self.runs.iter().map(|(_, d)| d.len() as u64).sum()
        }
    }

    pub fn parse(bytes: &[u8], piece: usize) -> Result<Collect> {
        let mut t = InnerTar::new();
        let mut c = Collect::default();
        for p in bytes.chunks(piece.max(1)) {
            t.feed(p, &mut c)?;
        }
        t.finish(&mut c)?;
        Ok(c)
    }

    pub fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("qr-innertar-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Runs GNU tar with `args` in `cwd`, returns the archive it writes to stdout.
    pub fn gnu_tar(cwd: &Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new("tar").current_dir(cwd).args(args).arg("-f").arg("-").output().unwrap();
        assert!(out.status.success(), "tar failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// A header block with a valid checksum. `posix` selects `ustar\000` over the GNU magic.
    pub fn header(name: &[u8], flag: u8, size: u64, link: &[u8], posix: bool) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0001750\0");
        h[116..124].copy_from_slice(b"0001750\0");
        if size < 1 << 33 {
            h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        } else {
            h[124] = 0x80;
            h[128..136].copy_from_slice(&size.to_be_bytes());
        }
        h[136..148].copy_from_slice(b"14020476400\0");
        h[156] = flag;
        h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        if posix {
            h[257..265].copy_from_slice(b"ustar\x0000");
        } else {
            h[257..265].copy_from_slice(b"ustar  \0");
        }
        fix_checksum(&mut h);
        h
    }

    pub fn fix_checksum(h: &mut [u8]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h[..512].iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    pub fn pad(v: &mut Vec<u8>) {
        while v.len() % 512 != 0 {
            v.push(0);
        }
    }

    /// One pax record `"<len> key=value\n"`.
    pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
        let body = [b" ", key.as_bytes(), b"=", value, b"\n"].concat();
        let mut len = body.len() + 1;
        while format!("{len}").len() + body.len() != len {
            len += 1;
        }
        [format!("{len}").into_bytes(), body].concat()
    }

    pub fn pax_header(records: &[u8]) -> Vec<u8> {
        let mut v = header(b"././@PaxHeader", b'x', records.len() as u64, b"", true).to_vec();
        v.extend_from_slice(records);
        pad(&mut v);
        v
    }

    /// Exactly what Qubes `tarwriter` (FORMAT.md §6.3) writes for one volume, given the map and the
    /// volume bytes: pax `x` header, ustar header `<dir>/GNUSparseFile.<pid>/<base>`, NUL-padded map
    /// text, runs (last one unpadded), 1024 zero bytes.
    pub fn tarwriter(
        name: &str,
        realsize: u64,
        map: &[(u64, u64)],
        volume: &dyn Fn(u64, u64) -> Vec<u8>,
    ) -> Vec<u8> {
        let mut text = format!("{}\n", map.len());
        for (o, s) in map {
            text += &format!("{o}\n{s}\n");
        }
        let mut maptext = text.into_bytes();
        pad(&mut maptext);
        let stored = maptext.len() as u64 + map.iter().map(|m| m.1).sum::<u64>();
        let mut rec = Vec::new();
        rec.extend(pax_record("GNU.sparse.major", b"1"));
        rec.extend(pax_record("GNU.sparse.minor", b"0"));
        rec.extend(pax_record("GNU.sparse.name", name.as_bytes()));
        rec.extend(pax_record("GNU.sparse.realsize", realsize.to_string().as_bytes()));
        let ustar_size = if stored >= 1 << 33 {
            rec.extend(pax_record("size", stored.to_string().as_bytes()));
            0
        } else {
            stored
        };
        let mut out = pax_header(&rec);
        let (dir, base) = name.rsplit_once('/').unwrap();
        let mut h =
            header(format!("{dir}/GNUSparseFile.22006/{base}").as_bytes(), b'0', ustar_size, b"", true);
        h[136..148].copy_from_slice(b"00000000000\0");
        fix_checksum(&mut h);
        out.extend_from_slice(&h);
        out.extend(maptext);
        for &(o, s) in map {
            out.extend(volume(o, s));
        }
        out.extend([0u8; 1024]);
        out
    }

    fn qubes_volume(off: u64, len: u64) -> Vec<u8> {
        (off..off + len).map(|i| (i % 251) as u8 | 1).collect()
    }

    const QUBES_MAP: [(u64, u64); 3] = [(1048576, 512), (41943040, 3072), (67108864, 0)];

    const PIECES: [usize; 4] = [1, 511, 65536, usize::MAX];

    #[test]
    fn qubes_tarwriter_member_restores_only_its_runs() {
        let tar = tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume);
        assert_eq!(tar.len(), 6656, "FORMAT.md §11: total 6656 bytes");
        for piece in PIECES {
            let c = parse(&tar, piece).unwrap();
            assert_eq!(c.got.len(), 1);
            let g = &c.got[0];
            assert!(g.ended);
            assert_eq!(g.entry.path, b"vm5/private.img");
            assert_eq!(g.entry.kind, Kind::File);
            assert_eq!(g.entry.size, 67108864);
            assert_eq!(g.entry.stored, 3584);
            assert_eq!(g.runs.len(), 2);
            assert_eq!(g.runs[0], (1048576, qubes_volume(1048576, 512)));
            assert_eq!(g.runs[1], (41943040, qubes_volume(41943040, 3072)));
        }
    }

    #[test]
    fn qubes_tarwriter_member_is_what_gnu_tar_extracts() {
        let dir = tmpdir("tw-gnu");
        let tar = tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume);
        std::fs::write(dir.join("a.tar"), &tar).unwrap();
        let st = Command::new("tar").current_dir(&dir).args(["-xf", "a.tar"]).status().unwrap();
        assert!(st.success());
        let f = std::fs::File::open(dir.join("vm5/private.img")).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 67108864);
        let g = &parse(&tar, 4096).unwrap().got[0];
        for off in [0u64, 1048576 - 512, 1048576, 41943040 - 100, 41943040, 67108864 - 4096] {
            let mut buf = vec![0; 4096];
            f.read_exact_at(&mut buf, off).unwrap();
            assert_eq!(buf, g.read(off, 4096), "at {off}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unpadded_last_run_and_missing_end_marker_are_accepted() {
        let mut tar = tarwriter("vm1/x.img", 1000, &[(0, 100), (900, 100)], &qubes_volume);
        let c = parse(&tar, 7).unwrap();
        assert_eq!(
            c.got[0].read(0, 1000),
            [qubes_volume(0, 100), vec![0; 800], qubes_volume(900, 100)].concat()
        );
        // Stream cut right after the member (no end marker, no padding): still complete.
        tar.truncate(tar.len() - 1024);
        let c = parse(&tar, 1).unwrap();
        assert!(c.got[0].ended);
        assert_eq!(c.got[0].delivered(), 200);
    }

    #[test]
    fn stored_size_over_8_gib_comes_from_the_pax_size_record() {
        let realsize = 9u64 << 30;
        let map = [(4096u64, (8u64 << 30) + 512), (realsize, 0)];
        let head_len = 512 * 4; // pax header + records + ustar header + map
        let tar = tarwriter("vm7/root.img", realsize, &map, &|_, _| vec![0xAB; 1 << 20]);
        let tar = &tar[..head_len + (1 << 20)];
        assert_eq!(&tar[1024 + 124..1024 + 136], b"00000000000\0", "ustar size field is 0");
        let mut t = InnerTar::new();
        let mut c = Collect::default();
        t.feed(tar, &mut c).unwrap();
        let g = &c.got[0];
        assert_eq!((g.entry.size, g.entry.stored), (realsize, (8 << 30) + 512));
        assert_eq!(t.sparse_map().unwrap(), &map[..]);
        assert_eq!(g.runs, vec![(4096, vec![0xAB; 1 << 20])]);
        let e = t.finish(&mut c).unwrap_err();
        assert_eq!(e, Error::truncated("", "inner tar ends inside vm7/root.img"));
    }

    /// Sparse test file: a patchwork of short writes, some past 8 GiB.
    fn sparse_source(dir: &Path, name: &str, size: u64) -> (PathBuf, Vec<(u64, Vec<u8>)>) {
        let path = dir.join(name);
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(size).unwrap();
        let mut writes = Vec::new();
        for i in 0..30u64 {
            let off = i * (256 << 10) + 1000 * i;
            writes.push((off, (0..100 + 37 * i).map(|j| (j * 7 + i) as u8 | 0x80).collect::<Vec<u8>>()));
        }
        if size > 8 << 30 {
            writes.push(((8 << 30) + 12345, b"WORLD beyond 8 GiB".to_vec()));
            writes.push((size - 10, b"0123456789".to_vec()));
        }
        for (o, d) in &writes {
            f.write_all_at(d, *o).unwrap();
        }
        (path, writes)
    }

    fn check_sparse(g: &Got, src: &Path, writes: &[(u64, Vec<u8>)], size: u64) {
        assert!(g.ended);
        assert_eq!(g.entry.kind, Kind::File);
        assert_eq!(g.entry.size, size);
        assert_eq!(g.entry.stored, g.delivered());
        let f = std::fs::File::open(src).unwrap();
        for (o, d) in &g.runs {
            let mut buf = vec![0; d.len()];
            f.read_exact_at(&mut buf, *o).unwrap();
            assert!(buf == *d, "run at {o} differs from the source");
        }
        for (o, d) in writes {
            assert_eq!(&g.read(*o, d.len()), d, "write at {o} not restored");
        }
        assert!(g.delivered() < 1 << 20, "holes were delivered");
    }

    #[test]
    fn gnu_old_sparse_over_8_gib_with_extension_blocks_restores_exactly() {
        let dir = tmpdir("gnu-sparse");
        let size = 9u64 << 30;
        let (src, writes) = sparse_source(&dir, "big.img", size);
        std::fs::write(dir.join("small.txt"), b"hello\n").unwrap();
        let tar = gnu_tar(&dir, &["--format=gnu", "--sparse", "-c", "big.img", "small.txt"]);
        assert_eq!(tar[156], b'S');
        assert_eq!(tar[482], 1, "extension blocks present");
        assert_eq!(tar[483], 0x80, "realsize in base-256");
        for piece in PIECES {
            let c = parse(&tar, piece).unwrap();
            assert_eq!(c.got.len(), 2);
            assert_eq!(c.got[0].entry.path, b"big.img");
            check_sparse(&c.got[0], &src, &writes, size);
            assert_eq!(c.got[1].entry.path, b"small.txt");
            assert_eq!(c.got[1].runs, vec![(0, b"hello\n".to_vec())]);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn posix_sparse_1_0_0_1_and_0_0_from_gnu_tar_restore_exactly() {
        let dir = tmpdir("posix-sparse");
        let size = 9u64 << 30;
        let (src, writes) = sparse_source(&dir, "big.img", size);
        for version in ["1.0", "0.1", "0.0"] {
            let v = format!("--sparse-version={version}");
            let tar = gnu_tar(&dir, &["--format=posix", "--sparse", &v, "-c", "big.img"]);
            for piece in PIECES {
                let c = parse(&tar, piece).unwrap_or_else(|e| panic!("{version}: {e}"));
                assert_eq!(c.got.len(), 1);
                assert_eq!(c.got[0].entry.path, b"big.img", "{version}");
                check_sparse(&c.got[0], &src, &writes, size);
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A tree with every member type Qubes' dom0-home may hold.
    pub fn plain_tree(dir: &Path) -> String {
        let long = "n".repeat(150);
        std::fs::create_dir_all(dir.join("user/sub")).unwrap();
        std::fs::write(dir.join("user/file.txt"), b"file contents\n").unwrap();
        std::fs::write(dir.join("user/empty"), b"").unwrap();
        std::fs::write(dir.join(format!("user/sub/{long}")), vec![0x5a; 70000]).unwrap();
        std::os::unix::fs::symlink("file.txt", dir.join("user/link")).unwrap();
        std::os::unix::fs::symlink(format!("sub/{long}"), dir.join("user/longlink")).unwrap();
        std::fs::hard_link(dir.join("user/file.txt"), dir.join("user/hard")).unwrap();
        let st = Command::new("touch")
            .args(["-h", "-d", "@1600000000"])
            .current_dir(dir)
            .args(["user/file.txt", "user/empty", "user/link"])
            .status()
            .unwrap();
        assert!(st.success());
        let st = Command::new("chmod").args(["0640", "user/file.txt"]).current_dir(dir).status().unwrap();
        assert!(st.success());
        long
    }

    #[test]
    fn plain_members_long_names_links_and_dirs_in_gnu_and_posix_formats() {
        let dir = tmpdir("plain");
        let long = plain_tree(&dir);
        for format in ["--format=gnu", "--format=posix", "--format=ustar", "--format=oldgnu"] {
            let args = [format, "-c", "--sort=name", "user"];
            let out = Command::new("tar").current_dir(&dir).args(args).arg("-f").arg("-").output().unwrap();
            if !out.status.success() {
                // ustar cannot hold the 150-byte name: expected.
                assert_eq!(format, "--format=ustar");
                continue;
            }
            let tar = out.stdout;
            for piece in PIECES {
                let c = parse(&tar, piece).unwrap();
                let find = |p: &str| {
                    c.got
                        .iter()
                        .find(|g| g.entry.path == p.as_bytes())
                        .unwrap_or_else(|| panic!("{format}: {p} missing"))
                };
                assert_eq!(find("user/").entry.kind, Kind::Dir);
                let f = find("user/file.txt");
                assert_eq!(
                    (f.entry.kind.clone(), f.entry.mode, f.entry.mtime),
                    (Kind::File, 0o640, 1600000000)
                );
                assert_eq!(f.runs, vec![(0, b"file contents\n".to_vec())]);
                let e = find("user/empty");
                assert_eq!((e.entry.size, e.runs.len(), e.ended), (0, 0, true));
                let l = find(&format!("user/sub/{long}"));
                assert_eq!((l.entry.size, l.runs.clone()), (70000, vec![(0, vec![0x5a; 70000])]));
                let s = find("user/link");
                assert_eq!(
                    (s.entry.kind.clone(), s.entry.link.as_slice()),
                    (Kind::Symlink, &b"file.txt"[..])
                );
                let s = find("user/longlink");
                assert_eq!(s.entry.link, format!("sub/{long}").as_bytes());
                let h = find("user/hard");
                assert_eq!(
                    (h.entry.kind.clone(), h.entry.link.as_slice()),
                    (Kind::HardLink, &b"user/file.txt"[..])
                );
                assert!(h.runs.is_empty());
                assert!(c.got.iter().all(|g| g.ended));
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn class(r: Result<Collect>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.class(),
        }
    }

    #[test]
    fn bad_header_checksum_is_tampered() {
        let mut tar = tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume);
        tar[1024 + 3] ^= 1;
        for piece in PIECES {
            assert_eq!(parse(&tar, piece).unwrap_err(), Error::tampered("", "inner tar header checksum"));
        }
    }

    #[test]
    fn signed_header_checksum_is_accepted() {
        let mut h = header(b"caf\xe9", b'0', 0, b"", false);
        h[148..156].copy_from_slice(b"        ");
        let sum: i64 = h.iter().map(|&b| b as i8 as i64).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let c = parse(&[&h[..], &[0u8; 1024][..]].concat(), 512).unwrap();
        assert_eq!(c.got[0].entry.path, b"caf\xe9");
    }

    #[test]
    fn bad_sparse_maps_are_tampered() {
        let cases: [(u64, &[(u64, u64)]); 4] = [
            (1 << 20, &[(4096, 512), (0, 512)]), // unsorted
            (1 << 20, &[(0, 1024), (512, 512)]), // overlapping
            (1000, &[(0, 512), (900, 512)]),     // past realsize
            (u64::MAX >> 1, &[(u64::MAX >> 2, u64::MAX >> 2), (u64::MAX >> 1, 1)]), // overflow
        ];
        for (realsize, map) in cases {
            let tar = tarwriter("vm1/x.img", realsize, map, &|_, l| vec![1; l.min(4096) as usize]);
            assert_eq!(parse(&tar, 100).unwrap_err(), Error::tampered("", "inner tar sparse map"), "{map:?}");
        }
        // Σ runs ≠ stored size: the ustar size claims one block less than the map needs.
        let mut tar = tarwriter("vm1/x.img", 1 << 20, &[(0, 1024)], &|_, l| vec![1; l as usize]);
        tar[1024 + 124..1024 + 136].copy_from_slice(format!("{:011o}\0", 1024).as_bytes());
        fix_checksum(&mut tar[1024..1536]);
        assert_eq!(parse(&tar, 512).unwrap_err(), Error::tampered("", "inner tar sparse map"));
        // Map text that is not decimal lines, and a count beyond the cap.
        for text in [&b"1\n0x10\n5\n"[..], b"2\n0\n", b"99999999999\n", b"1\n\n5\n"] {
            let mut tar = tarwriter("vm1/x.img", 1 << 20, &[(0, 512)], &|_, l| vec![1; l as usize]);
            tar[1536..2048].fill(0);
            tar[1536..1536 + text.len()].copy_from_slice(text);
            let e = parse(&tar, 512).unwrap_err();
            assert!(e.class() == "tampered" || e.class() == "truncated", "{text:?}: {e}");
        }
    }

    #[test]
    fn old_sparse_realsize_below_the_map_is_tampered() {
        let dir = tmpdir("old-bad");
        let (_, _) = sparse_source(&dir, "s.img", 16 << 20);
        let mut tar = gnu_tar(&dir, &["--format=gnu", "--sparse", "-c", "s.img"]);
        assert_eq!(tar[156], b'S');
        tar[483..495].copy_from_slice(b"00000001000\0");
        fix_checksum(&mut tar[..512]);
        assert_eq!(parse(&tar, 512).unwrap_err(), Error::tampered("", "inner tar sparse map"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn base_256_numbers_negative_or_over_63_bits_are_tampered() {
        assert_eq!(num(&[0x80, 0, 0, 0, 0, 0, 0, 2, 0x80, 0, 0, 0]).unwrap(), 10 << 30);
        assert!(num(&[0xff; 12]).is_err());
        assert!(num(&[0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(num(b"0000000000x\0").is_err());
        assert_eq!(num(b"   17 \0\0\0\0\0\0").unwrap(), 15);
        assert_eq!(num_signed(&[0xff; 12]).unwrap(), -1);
        for bad in [[0xffu8; 12], [0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0]] {
            let mut h = header(b"f", b'0', 0, b"", false);
            h[124..136].copy_from_slice(&bad);
            fix_checksum(&mut h);
            let e = parse(&[&h[..], &[0u8; 1024][..]].concat(), 1).unwrap_err();
            assert_eq!(e, Error::tampered("", "inner tar header number"));
        }
    }

    #[test]
    fn pax_records_with_a_bad_length_are_tampered() {
        for rec in [&b"99 path=x\n"[..], b"5 path=x\n", b"x path=x\n", b"10 pathxxx\n", b"9 path=xy"] {
            let mut tar = pax_header(rec);
            tar.extend_from_slice(&header(b"f", b'0', 0, b"", true));
            tar.extend_from_slice(&[0; 1024]);
            assert_eq!(parse(&tar, 3).unwrap_err(), Error::tampered("", "inner tar pax header"), "{rec:?}");
        }
        // A huge declared pax size is refused before anything is allocated.
        let h = header(b"././@PaxHeader", b'x', 1 << 40, b"", true);
        let e = parse(&h, 512).unwrap_err();
        assert_eq!(e, Error::tampered("", "inner tar pax header size"));
        let h = header(b"././@LongLink", b'L', 1 << 20, b"", false);
        assert_eq!(parse(&h, 512).unwrap_err().class(), "tampered");
    }

    #[test]
    fn data_after_the_end_marker_is_tampered_but_zero_padding_is_not() {
        let tar = tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume);
        let mut padded = tar.clone();
        padded.extend(vec![0u8; 10240]);
        assert!(parse(&padded, 1000).is_ok());
        let mut t = InnerTar::new();
        t.feed(&padded, &mut Collect::default()).unwrap();
        assert!(t.ended());
        let mut bad = padded.clone();
        bad.push(b'x');
        assert_eq!(
            parse(&bad, 1000).unwrap_err(),
            Error::tampered("", "data after the end of the inner tar")
        );
        let mut long = tar.clone();
        long.extend(vec![0u8; 2 << 20]);
        assert_eq!(parse(&long, 1 << 16).unwrap_err().class(), "tampered");
    }

    #[test]
    fn every_truncation_is_reported_or_lands_on_a_member_boundary() {
        let tar = tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume);
        let data_end = tar.len() - 1024;
        for cut in 0..tar.len() {
            let r = parse(&tar[..cut], 509);
            if cut == 0 || cut >= data_end {
                assert!(r.is_ok(), "cut {cut}: {:?}", r.err());
            } else {
                let e = r.unwrap_err();
                assert_eq!(e.class(), "truncated", "cut {cut}: {e}");
                if cut > 2048 {
                    assert_eq!(e, Error::truncated("", "inner tar ends inside vm5/private.img"));
                }
            }
        }
        let dir = tmpdir("trunc");
        plain_tree(&dir);
        let tar = gnu_tar(&dir, &["--format=gnu", "-c", "user"]);
        for cut in (0..tar.len()).step_by(97) {
            let c = class(parse(&tar[..cut], 4096));
            assert!(c == "ok" || c == "truncated", "cut {cut}: {c}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Feeds `tar` with `[..a]`, loses `[a..b)`, feeds `[b..]`; returns what was delivered and lost.
    fn salvage_parse(tar: &[u8], a: usize, b: usize) -> (Collect, Vec<(u64, u64)>, bool) {
        let mut t = InnerTar::new();
        let mut c = Collect::default();
        let mut lost = Vec::new();
        t.feed(&tar[..a], &mut c).unwrap();
        let synced = t.skip((b - a) as u64, &mut c, &mut |o, l| lost.push((o, l))).unwrap();
        if synced {
            t.feed(&tar[b..], &mut c).unwrap();
            t.finish(&mut c).unwrap();
        } else {
            t.give_up(&mut |o, l| lost.push((o, l)));
            assert!(t.feed(&tar[b..], &mut c).is_err() || b == tar.len());
        }
        (c, lost, synced)
    }

    #[test]
    fn a_gap_in_member_data_is_mapped_through_the_sparse_map_and_parsing_goes_on() {
        let map = [(0u64, 1536u64), (8192, 512), (20000, 1000), (40000, 0)];
        let tar = tarwriter("vm1/x.img", 40000, &map, &qubes_volume);
        let data_start = 1536 + 512; // pax header + records, ustar header, one block of map text
        // Stored byte k of the data area lands at image offset place(k).
        let place = |k: u64| {
            let mut base = 0;
            for &(o, l) in &map {
                if k < base + l {
                    return o + (k - base);
                }
                base += l;
            }
            unreachable!()
        };
        for (a, b) in [(data_start, data_start + 100), (data_start + 1500, data_start + 2100), (data_start + 2047, data_start + 3048)] {
            let (c, lost, synced) = salvage_parse(&tar, a, b);
            assert!(synced);
            let g = &c.got[0];
            assert!(g.ended);
            // lost + delivered = exactly the stored bytes, each once, where the map puts them
            let mut want = Vec::new();
            for k in (a - data_start) as u64..(b - data_start) as u64 {
                want.push(place(k));
            }
            let got: Vec<u64> = lost.iter().flat_map(|&(o, l)| o..o + l).collect();
            assert_eq!(got, want, "gap {a}..{b}");
            assert_eq!(g.delivered() + got.len() as u64, 3048);
            for (o, d) in &g.runs {
                assert_eq!(*d, qubes_volume(*o, d.len() as u64));
            }
        }
    }

    /// Found by fuzzing (inner_tar, gap mode): `give_up` inside a sparse map reported ranges of a
    /// member the visitor had never been told about, outside the size of the last entry it saw.
    #[test]
    fn give_up_inside_a_sparse_map_reports_nothing_for_the_unannounced_member() {
        let tar = tarwriter("vm1/x.img", 40000, &[(0, 1536), (30000, 512)], &qubes_volume);
        let (c, lost, synced) = salvage_parse(&tar, 1600, 1700);
        assert!(!synced);
        assert!(c.got.is_empty(), "nothing is delivered without the map");
        assert_eq!(lost, vec![], "the member was never announced: nothing of it can be placed");
        let mut two = tarwriter("vm1/a.img", 1024, &[(0, 512)], &qubes_volume);
        two.truncate(two.len() - 1024);
        let second = tarwriter("vm1/x.img", 1 << 40, &[(0, 1536)], &qubes_volume);
        two.extend_from_slice(&second[..1600]);
        let mut t = InnerTar::new();
        let mut c = Collect::default();
        t.feed(&two, &mut c).unwrap();
        let mut lost = Vec::new();
        t.give_up(&mut |o, l| lost.push((o, l)));
        assert_eq!((c.got.len(), lost), (1, vec![]));
    }

    #[test]
    fn a_gap_after_the_data_loses_only_the_rest_of_the_member() {
        let tar = tarwriter("vm1/x.img", 40000, &[(0, 1536), (30000, 512)], &qubes_volume);
        // A gap from the data into the end marker: the rest of the member is lost, nothing else
        // (the stream cannot be followed past a lost header, but the member was complete).
        let (c, lost, synced) = salvage_parse(&tar, 2048 + 1000, tar.len() - 10);
        assert!(!synced);
        assert!(c.got[0].ended);
        assert_eq!(lost, vec![(1000, 536), (30000, 512)]);
        assert_eq!(c.got[0].delivered(), 1000);
        // give_up in the middle of the data: the undelivered rest of the map is lost.
        let mut t = InnerTar::new();
        let mut c = Collect::default();
        t.feed(&tar[..2048 + 1600], &mut c).unwrap();
        let mut lost = Vec::new();
        t.give_up(&mut |o, l| lost.push((o, l)));
        assert_eq!(lost, vec![(30000 + 64, 512 - 64)]);
        assert!(t.finish(&mut c).is_err());
    }

    /// `data_start` and `map` locate every stored byte in the raw stream: reading a file back
    /// through them gives what the parser delivered (the page browses dom0's home tar this way).
    #[test]
    fn data_start_and_map_locate_each_member_in_the_stream() {
        let dir = tmpdir("locate");
        plain_tree(&dir);
        let (_, _) = sparse_source(&dir, "s.img", 16 << 20);
        let inputs = [
            tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume),
            gnu_tar(&dir, &["--format=gnu", "--sparse", "-c", "s.img", "user"]),
            gnu_tar(&dir, &["--format=posix", "--sparse", "-c", "s.img", "user"]),
            gnu_tar(&dir, &["--format=posix", "--sparse", "--sparse-version=0.1", "-c", "s.img"]),
        ];
        for (i, input) in inputs.iter().enumerate() {
            for piece in [1, 511, 4096, usize::MAX] {
                let c = parse(input, piece).unwrap();
                let mut files = 0;
                for g in c.got.iter().filter(|g| g.entry.kind == Kind::File) {
                    files += 1;
                    let e = &g.entry;
                    let stored = &input[e.data_start as usize..(e.data_start + e.stored) as usize];
                    let runs = e.map.clone().unwrap_or_else(|| vec![(0, e.size)]);
                    let mut at = 0usize;
                    for (off, len) in runs {
                        let want = g.read(off, len as usize);
                        assert_eq!(&stored[at..at + len as usize], &want[..], "input {i}, piece {piece}, {}", String::from_utf8_lossy(&e.path));
                        at += len as usize;
                    }
                    assert_eq!(at as u64, e.stored);
                }
                assert!(files >= 1, "input {i} has files");
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn random_corruption_never_panics() {
        let dir = tmpdir("fuzz");
        plain_tree(&dir);
        let (_, _) = sparse_source(&dir, "s.img", 16 << 20);
        let inputs = [
            tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume),
            gnu_tar(&dir, &["--format=gnu", "--sparse", "-c", "s.img", "user"]),
            gnu_tar(&dir, &["--format=posix", "--sparse", "-c", "s.img", "user"]),
        ];
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for input in &inputs {
            for _ in 0..400 {
                let mut t = input.clone();
                for _ in 0..1 + rnd() % 4 {
                    let i = (rnd() % t.len() as u64) as usize;
                    t[i] = rnd() as u8;
                }
                // keep headers plausible so the corruption reaches past the checksum
                for blk in t.chunks_mut(512) {
                    if blk.len() == 512 && (&blk[257..262] == b"ustar") && rnd() % 2 == 0 {
                        fix_checksum(blk);
                    }
                }
                let cut = (rnd() % (t.len() as u64 + 1)) as usize;
                let _ = parse(&t[..cut], 1 + (rnd() % 3000) as usize);
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
