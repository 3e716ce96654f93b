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

use crate::error::{Check, Cut, Error, Fault, Limit, Location, Result, Step, TarEnd, TarFault};
use crate::format::tar::{self, cstr, decimal as dec, pad_of, BLOCK};

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
    failed: Option<Fault>,
    /// Stream bytes consumed so far (kept current around each header/map block).
    pos: u64,
    /// Where a fault found now lies in the stream: the start of the block or record being parsed.
    mark: u64,
}

fn tampered(fault: TarFault) -> Fault {
    Fault::Tampered(Check::InnerTar(fault))
}

fn map_err() -> Fault {
    tampered(TarFault::SparseMap)
}

/// A header number that did not parse (see [`tar::number`]) is damage.
fn header_number<T>(n: Option<T>) -> Step<T> {
    n.ok_or_else(|| tampered(TarFault::HeaderNumber))
}

/// An unsigned numeric field outside the named ones (sparse map entries, GNU realsize).
fn num(f: &[u8]) -> Step<u64> {
    header_number(tar::number(f))
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
            mark: 0,
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

    /// Parses the next bytes of the stream; `at` names the member they came from, for errors.
    pub fn feed(&mut self, at: &str, data: &[u8], v: &mut dyn Visitor) -> Result<()> {
        self.replay(at)?;
        let r = self.feed_inner(data, v);
        self.place(at, r)
    }

    /// A failed reader stays failed: its state is half-updated (see decompress's `Sticky`).
    fn replay(&self, at: &str) -> Result<()> {
        match &self.failed {
            Some(f) => Err(f.clone().at(Location::stream(at, self.pos))),
            None => Ok(()),
        }
    }

    fn place<T>(&mut self, at: &str, r: Step<T>) -> Result<T> {
        r.map_err(|f| {
            let e = f.at(Location::stream(at, self.mark));
            self.failed = Some(Fault::Placed(e.clone()));
            e
        })
    }

    /// Ends the stream: Ok at a member boundary (with or without the end marker: Qubes'
    /// `tarwriter` stops after its one member), `Truncated` inside a member, header or map.
    pub fn finish(&mut self, at: &str, _v: &mut dyn Visitor) -> Result<()> {
        self.replay(at)?;
        self.mark = self.pos;
        let r = match self.state {
            State::Ended { .. } => Ok(()),
            State::Header | State::Pad { .. } => {
                if self.blk[..self.blk_len].iter().any(|&b| b != 0) {
                    Err(Fault::Truncated(Cut::InnerTar(TarEnd::Header)))
                } else if self.pending.any {
                    Err(Fault::Truncated(Cut::InnerTar(TarEnd::AfterExtended)))
                } else {
                    Ok(())
                }
            }
            State::Ext { .. } => Err(Fault::Truncated(Cut::InnerTar(TarEnd::Extended))),
            State::OldSparseExt | State::SparseMap { .. } | State::Data { .. } => {
                let path = self
                    .member
                    .as_ref()
                    .map(|m| String::from_utf8_lossy(&m.entry.path).into_owned())
                    .unwrap_or_default();
                Err(Fault::Truncated(Cut::InnerTar(TarEnd::Member(path))))
            }
        };
        self.place(at, r)
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
            self.mark = self.pos - BLOCK as u64;
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

    fn feed_inner(&mut self, mut data: &[u8], v: &mut dyn Visitor) -> Step<()> {
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
                    self.mark = self.pos - (self.ext.len() as u64).min(self.pos);
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
                    if let Some(i) = data.iter().position(|&b| b != 0) {
                        self.mark = self.pos + i as u64;
                        return Err(tampered(TarFault::DataAfterEnd));
                    }
                    let trailing = trailing.saturating_add(data.len() as u64);
                    if trailing > MAX_TRAILING {
                        return Err(tampered(TarFault::DataAfterEnd));
                    }
                    self.state = State::Ended { trailing };
                    self.pos += data.len() as u64;
                    data = &[];
                }
            }
        }
        Ok(())
    }

    fn end_member(&mut self, pad: u64, v: &mut dyn Visitor) -> Step<()> {
        self.member = None;
        self.state = Self::after_pad(pad);
        Ok(v.end_entry()?)
    }

    /// Hands stored bytes to the visitor at their real offsets, ≤ 1 MiB per call.
    fn deliver(&mut self, mut bytes: &[u8], v: &mut dyn Visitor) -> Step<()> {
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
    pub fn skip(&mut self, at: &str, n: u64, v: &mut dyn Visitor, lost: &mut dyn FnMut(u64, u64)) -> Result<bool> {
        self.replay(at)?;
        let r = self.skip_inner(n, v, lost);
        self.place(at, r)
    }

    fn skip_inner(&mut self, mut n: u64, v: &mut dyn Visitor, lost: &mut dyn FnMut(u64, u64)) -> Step<bool> {
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
            self.failed = Some(Fault::Truncated(Cut::InnerTar(TarEnd::Lost)));
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
}

impl Default for InnerTar {
    fn default() -> Self {
        Self::new()
    }
}

mod header;
mod pax;
mod sparse;
use sparse::{check_map, push_run};

#[cfg(test)]
pub(crate) mod tests;
