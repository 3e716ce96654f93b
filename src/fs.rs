//! Browses the filesystem inside a restored volume, never mounting anything: `private.img` is a
//! bare ext4; `root.img` is a GPT (or MBR) disk whose Linux partition holds ext4.
//!
//! Reads go through [`ReadAt`] (a [`crate::image::SparseImage`] in memory, later a browser
//! `File` or OPFS handle in the page's worker), with `ext4-view` for ext4 and `gptman` /
//! `mbrman` for partition tables: all pure Rust, so the same code builds for wasm32.
//!
//! Promises: names are bytes (shown lossily, made safe by [`safe_name`] before they name
//! anything on disk); files are read in pieces of at most [`PIECE`] bytes, never whole; symbolic
//! links are resolved only inside this filesystem, at most 40 deep (ext4-view's limit);
//! a walk is bounded in depth and entries, so a corrupt filesystem cannot make it loop; a
//! damaged entry is reported on its own and the listing goes on.

use crate::error::{Error, Result};
use crate::read_at::ReadAt;
use ext4_view::{Ext4, Ext4Error, Ext4Read, Metadata, Path as ExtPath};
use std::io::{Read, Seek, SeekFrom};

/// The largest piece a file is read in (and handed on) at a time.
pub const PIECE: usize = 1 << 20;
/// A walk goes no deeper than this (real trees stay far below; a corrupt one could loop).
pub const MAX_DEPTH: usize = 256;
/// The longest symbolic link target read (Linux's PATH_MAX); a longer one is damage.
pub const MAX_LINK_TARGET: u64 = 4096;
/// A walk visits at most this many entries.
pub const MAX_WALK_ENTRIES: u64 = 50_000_000;
/// Path components one resolution may look up, links included (Linux's PATH_MAX is 4096 bytes).
pub const MAX_STEPS: usize = 4096;

/// GPT partition type "Linux filesystem" 0FC63DAF-8483-4772-8E79-3D69D8477DE4, as stored on disk.
const GPT_LINUX_FS: [u8; 16] = [0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4];
/// MBR partition type "Linux".
const MBR_LINUX: u8 = 0x83;
const EXT_MAGIC: u16 = 0xef53;

/// ext4 incompatible features ext4-view refuses, by their `mke2fs -O` names; unknown bits too.
const REFUSED_FEATURES: [(u32, &str); 8] = [
    (0x0001, "compression"),
    (0x0008, "journal_dev"),
    (0x0010, "meta_bg"),
    (0x0100, "mmp"),
    (0x0400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
];
/// Incompatible features ext4-view knows (the rest, e.g. casefold 0x20000, is refused).
const KNOWN_FEATURES: u32 = 0x1_ffdf;

/// What a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Devices, fifos, sockets: listed, never read or written.
    Other,
}

impl Kind {
    /// The name used by the CLI and JSON: `file`, `dir`, `symlink`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Other => "other",
        }
    }

    fn of(t: ext4_view::FileType) -> Kind {
        if t.is_regular_file() {
            Kind::File
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        }
    }
}

/// One entry of a listing (or a stat).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The raw name (bytes; show with [`lossy`], write with [`safe_name`]).
    pub name: Vec<u8>,
    /// Absolute path inside the filesystem, raw bytes.
    pub path: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
    /// Seconds since the epoch (UTC).
    pub mtime: i64,
    /// Permission bits (`0o7777`).
    pub mode: u16,
    /// A symbolic link's target, verbatim.
    pub target: Option<Vec<u8>>,
    /// This entry could not be read whole (damaged inode, unreadable link): what failed.
    pub error: Option<Error>,
}

/// A folder's entries sorted by name, and what stopped the listing early, if anything.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub errors: Vec<Error>,
}

/// A partition of a disk image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// 1-based, as `sgdisk -p` / `fdisk -l` number them.
    pub number: u32,
    /// Byte offset and length in the image.
    pub start: u64,
    pub size: u64,
    /// `Linux filesystem`, or the type GUID / MBR code.
    pub kind: String,
    /// The GPT partition name (empty for MBR).
    pub name: String,
    /// Typed as a Linux filesystem (GPT 0FC63DAF-…, MBR 0x83).
    pub linux: bool,
    /// Holds an ext2/3/4 superblock.
    pub ext4: bool,
}

/// Shown name: invalid UTF-8 replaced, control characters escaped (one entry stays one line).
pub fn lossy(name: &[u8]) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(name).chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A name safe to create in a folder, from raw bytes: no `/`, no NUL or other control
/// characters (each becomes `_`), never empty, `.` or `..`. Other bytes are kept as they are
/// (a non-UTF-8 name stays byte-exact on Linux); the page converts lossily on top.
pub fn safe_name(name: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = name.iter().map(|&b| if b == b'/' || b < 0x20 || b == 0x7f { b'_' } else { b }).collect();
    // Control characters beyond ASCII (U+0080–U+009F) in UTF-8 names.
    if let Ok(s) = std::str::from_utf8(&out) {
        if s.chars().any(|c| c.is_control()) {
            out = s.chars().map(|c| if c.is_control() { '_' } else { c }).collect::<String>().into_bytes();
        }
    }
    match out.as_slice() {
        b"" => b"_".to_vec(),
        b"." | b".." => [b"_".as_slice(), &out].concat(),
        _ => out,
    }
}

/// `std::io` access to a [`ReadAt`] for the partition-table crates.
struct Cursor<'a> {
    src: &'a dyn ReadAt,
    pos: u64,
}

impl Read for Cursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.src.len().saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        self.src.read_at(self.pos, &mut buf[..n]).map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Cursor<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.src.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}

fn has_ext_magic(src: &dyn ReadAt, start: u64) -> bool {
    let mut m = [0u8; 2];
    start.checked_add(1024 + 56).is_some_and(|at| src.read_at(at, &mut m).is_ok()) && u16::from_le_bytes(m) == EXT_MAGIC
}

fn guid_text(g: &[u8; 16]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}",
        u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        g[8],
        g[9],
        g[10..].iter().map(|b| format!("{b:02X}")).collect::<String>()
    )
}

/// A GPT partition type by its usual name, else its GUID.
fn gpt_kind(g: &[u8; 16]) -> String {
    let text = guid_text(g);
    let name = match text.as_str() {
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "Linux filesystem",
        "21686148-6449-6E6F-744E-656564454649" => "BIOS boot",
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "EFI system",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "Linux swap",
        "E6D6D379-F507-44C2-A23C-238F2A3DF928" => "Linux LVM",
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" => "Linux root (x86-64)",
        _ => return text,
    };
    name.to_string()
}

/// The partitions of a disk image, or `None` when it has no partition table (a bare
/// filesystem, like `private.img`).
pub fn partitions(src: &dyn ReadAt) -> Result<Option<Vec<Partition>>> {
    let mut sig = [0u8; 8];
    let gpt_at = [512u64, 4096].into_iter().find(|&at| src.read_at(at, &mut sig).is_ok() && &sig == b"EFI PART");
    if let Some(sector) = gpt_at {
        let gpt = gptman::GPT::read_from(&mut Cursor { src, pos: 0 }, sector)
            .map_err(|e| Error::Io(format!("the disk's GPT partition table is damaged ({e})")))?;
        let parts = gpt
            .iter()
            .filter(|(_, p)| p.is_used() && p.ending_lba >= p.starting_lba)
            .filter_map(|(n, p)| {
                let start = p.starting_lba.checked_mul(sector)?;
                let size = (p.ending_lba - p.starting_lba + 1).checked_mul(sector)?;
                let linux = p.partition_type_guid == GPT_LINUX_FS || gpt_kind(&p.partition_type_guid).starts_with("Linux root");
                Some(Partition {
                    number: n,
                    start,
                    size,
                    kind: gpt_kind(&p.partition_type_guid),
                    name: p.partition_name.as_str().to_string(),
                    linux,
                    ext4: has_ext_magic(src, start),
                })
            })
            .collect();
        return Ok(Some(parts));
    }
    let mut boot = [0u8; 2];
    let mbr = src.read_at(510, &mut boot).is_ok() && boot == [0x55, 0xaa] && !has_ext_magic(src, 0);
    if !mbr {
        return Ok(None);
    }
    // mbrman 0.6 panics (an unwrap in its alignment guess) when every used partition starts
    // at sector 0, where the MBR itself lies: no real disk has one, so it is damage.
    let mut entries = [0u8; 64];
    src.read_at(446, &mut entries)?;
    if let Some(i) = entries.chunks(16).position(|e| e[4] != 0 && e[8..12] == [0; 4]) {
        return Err(Error::Io(format!("the disk's MBR partition table is damaged (partition {} starts on the MBR itself)", i + 1)));
    }
    let table = mbrman::MBR::read_from(&mut Cursor { src, pos: 0 }, 512)
        .map_err(|e| Error::Io(format!("the disk's MBR partition table is damaged ({e})")))?;
    let parts = table
        .iter()
        .filter(|(_, p)| p.is_used() && p.sys != 0x05 && p.sys != 0x0f && p.sys != 0x85)
        .map(|(n, p)| {
            let start = u64::from(p.starting_lba) * 512;
            Partition {
                number: n as u32,
                start,
                size: u64::from(p.sectors) * 512,
                kind: if p.sys == MBR_LINUX { "Linux".into() } else { format!("type 0x{:02x}", p.sys) },
                name: String::new(),
                linux: p.sys == MBR_LINUX,
                ext4: has_ext_magic(src, start),
            }
        })
        .collect();
    Ok(Some(parts))
}

/// A byte window (a partition, or the whole image) as ext4-view's reader.
struct Window {
    src: Box<dyn ReadAt>,
    start: u64,
    len: u64,
}

impl Ext4Read for Window {
    fn read(&mut self, start_byte: u64, dst: &mut [u8]) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        let end = start_byte.checked_add(dst.len() as u64).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(Box::new(Error::Io(format!(
                "the filesystem reads {} bytes at {start_byte}, past the end of its {} bytes (the image is cut short)",
                dst.len(),
                self.len
            ))));
        }
        self.src.read_at(self.start + start_byte, dst).map_err(|e| Box::new(e) as _)
    }
}

/// Checks the superblock's feature flags before ext4-view sees them, to name what is refused.
/// Returns the filesystem's inode count (`s_inodes_count`).
fn check_features(w: &mut Window) -> Result<u64> {
    let mut sb = [0u8; 1024];
    w.read(1024, &mut sb).map_err(|_| Error::unsupported("no ext2/3/4 filesystem here (the image is too small)"))?;
    if u16::from_le_bytes([sb[56], sb[57]]) != EXT_MAGIC {
        return Err(Error::unsupported(
            "no ext2/3/4 filesystem here (only ext4 is browsed); `qubes-rescue extract` writes the raw image, which other tools can open",
        ));
    }
    // ext4-view sizes its block-group table from the superblock before reading it (and counts
    // `s_blocks_count_hi` even without the 64bit feature): a lying count made it try to
    // allocate 15 GB and abort (found by fuzz/fs_image). A filesystem never spans more than its
    // image, which bounds the table by the image's size.
    let le32 = |at: usize| u64::from(u32::from_le_bytes([sb[at], sb[at + 1], sb[at + 2], sb[at + 3]]));
    let blocks = le32(0x150) << 32 | le32(0x04);
    let log_block = le32(0x18);
    let fs_bytes = (log_block <= 6).then(|| blocks.checked_mul(1024 << log_block)).flatten();
    if le32(0x20) == 0 || fs_bytes.is_none_or(|n| n > w.len) {
        return Err(Error::Io(format!(
            "the ext4 superblock claims {blocks} blocks, more than the {}-byte image holds: the image is cut short or damaged; \
             `qubes-rescue extract` writes the raw image, which `e2fsck` can check on a copy",
            w.len
        )));
    }
    let incompat = u32::from_le_bytes([sb[0x60], sb[0x61], sb[0x62], sb[0x63]]);
    let mut refused: Vec<String> = REFUSED_FEATURES.iter().filter(|(bit, _)| incompat & bit != 0).map(|(_, n)| n.to_string()).collect();
    if incompat & 0x2_0000 != 0 {
        refused.push("casefold".into());
    }
    let unknown = incompat & !KNOWN_FEATURES & !0x2_0000;
    if unknown != 0 {
        refused.push(format!("unknown feature bits 0x{unknown:x}"));
    }
    if !refused.is_empty() {
        return Err(Error::unsupported(format!(
            "this ext4 filesystem uses {} which the file browser cannot read; `qubes-rescue extract` writes the raw image, \
             which Linux can mount (`mount -o loop,ro`) or `debugfs` can read",
            refused.join(", ")
        )));
    }
    Ok(le32(0x00))
}

/// What a path inside the filesystem is called in messages.
fn shown(path: &[u8]) -> String {
    lossy(path)
}

/// ext4-view's error for `path`, in our classes.
fn ext_err(path: &[u8], e: Ext4Error) -> Error {
    let p = shown(path);
    match e {
        // A component that is not a folder: the path does not exist either.
        Ext4Error::NotFound | Ext4Error::NotADirectory => Error::NotFound { what: p },
        Ext4Error::Incompatible(i) => Error::unsupported(format!(
            "{p}: {i} (the file browser cannot read this ext4 feature); `qubes-rescue extract` writes the raw image instead"
        )),
        Ext4Error::Encrypted => Error::unsupported(format!("{p} is encrypted (fscrypt)")),
        Ext4Error::Corrupt(c) => Error::Io(format!(
            "{p}: the filesystem is damaged ({c}); `qubes-rescue extract` the image and run `e2fsck` on a copy"
        )),
        Ext4Error::Io(e) => Error::Io(format!("{p}: reading the image failed ({e})")),
        Ext4Error::TooManySymlinks => Error::Io(format!("{p}: too many levels of symbolic links (a loop?)")),
        other => Error::Io(format!("{p}: {other}")),
    }
}

fn ext_path(path: &[u8]) -> Result<ExtPath<'_>> {
    if path.first() != Some(&b'/') {
        return Err(Error::Io(format!("{}: paths inside the filesystem start with /", shown(path))));
    }
    ExtPath::try_from(path).map_err(|e| Error::Io(format!("{}: not a valid path ({e})", shown(path))))
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// Components joined into an absolute path (`/` for none).
trait ConcatPath {
    fn concat_path(&self) -> Vec<u8>;
}

impl ConcatPath for [Vec<u8>] {
    fn concat_path(&self) -> Vec<u8> {
        if self.is_empty() {
            return b"/".to_vec();
        }
        self.iter().flat_map(|c| std::iter::once(b'/').chain(c.iter().copied())).collect()
    }
}

/// `/a/b/` → `/a/b`; `//x` → `/x`; `.` components dropped. `..` is kept (resolved by the
/// filesystem, which never goes above its root).
pub fn normalize(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".") {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// A salvaged image's reader: every read that touches one of the `lost` byte ranges (which
/// hold zeros, not data) raises `hit`, so a browser can tell which files read lost bytes.
pub struct LostWatch<R> {
    pub inner: R,
    pub lost: Vec<(u64, u64)>,
    pub hit: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: ReadAt> ReadAt for LostWatch<R> {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset.saturating_add(buf.len() as u64);
        if self.lost.iter().any(|&(s, e)| s < end && offset < e) {
            self.hit.set(true);
        }
        self.inner.read_at(offset, buf)
    }
}

/// One item of a walk: the entry, and its path relative to the walk's start, as components.
pub struct Walked<'a> {
    pub rel: &'a [Vec<u8>],
    pub entry: &'a Entry,
}

/// An ext4 filesystem inside an image (the whole image, or one partition of it).
pub struct Fs {
    ext4: Ext4,
    /// The partition browsed, when the image is a partitioned disk.
    pub partition: Option<Partition>,
    /// Every partition of the disk (empty for a bare filesystem).
    pub partitions: Vec<Partition>,
    /// The superblock's inode count: a sound filesystem holds at most this many folders, each
    /// under one name, so a walk entering more has met the same folder twice.
    inodes: u64,
    /// Path components ext4-view has been asked to resolve: the work a listing or walk costs,
    /// which tests bound (a path of depth d costs d lookups, each a folder search).
    resolved: std::cell::Cell<u64>,
}

impl Fs {
    /// `path` for ext4-view, counted in [`Fs::components_resolved`].
    fn at<'p>(&self, path: &'p [u8]) -> Result<ExtPath<'p>> {
        let p = ext_path(path)?;
        let depth = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).count() as u64;
        self.resolved.set(self.resolved.get().saturating_add(depth));
        Ok(p)
    }

    /// How many path components this filesystem has resolved so far.
    pub fn components_resolved(&self) -> u64 {
        self.resolved.get()
    }

    /// Opens the filesystem of `src`: a bare ext4, or on a partitioned disk the partition
    /// `number` (1-based), by default the first Linux-typed partition holding ext4 (else the
    /// first partition holding ext4).
    pub fn open<R: ReadAt + 'static>(src: R, number: Option<u32>) -> Result<Fs> {
        let parts = partitions(&src)?;
        let (partition, start, len) = match (&parts, number) {
            (None, None) => (None, 0, src.len()),
            (None, Some(n)) => {
                return Err(Error::NotFound { what: format!("partition {n} (this image is a bare filesystem, with no partition table)") })
            }
            (Some(parts), Some(n)) => {
                let p = parts.iter().find(|p| p.number == n).ok_or_else(|| Error::NotFound {
                    what: format!("partition {n} (the disk has {})", parts.iter().map(|p| p.number.to_string()).collect::<Vec<_>>().join(", ")),
                })?;
                (Some(p.clone()), p.start, p.size)
            }
            (Some(parts), None) => {
                let p = parts.iter().find(|p| p.linux && p.ext4).or_else(|| parts.iter().find(|p| p.ext4)).ok_or_else(|| {
                    Error::unsupported(format!(
                        "no ext4 partition on this disk (partitions: {}); `qubes-rescue extract` writes the raw image",
                        parts.iter().map(|p| format!("{} {}", p.number, p.kind)).collect::<Vec<_>>().join(", ")
                    ))
                })?;
                (Some(p.clone()), p.start, p.size)
            }
        };
        if start.checked_add(len).is_none_or(|e| e > src.len()) {
            return Err(Error::Io(format!("the partition at byte {start} ends past the end of the image ({} bytes)", src.len())));
        }
        let mut window = Window { src: Box::new(src), start, len };
        let inodes = check_features(&mut window)?;
        let ext4 = Ext4::load(Box::new(window)).map_err(|e| ext_err(b"/", e))?;
        Ok(Fs { ext4, partition, partitions: parts.unwrap_or_default(), inodes, resolved: Default::default() })
    }

    /// `path` with every symbolic link resolved here rather than by ext4-view, which reads a
    /// link's target whole, sized by its inode: a damaged link claiming 4 GiB made it allocate
    /// 4 GiB (found by fuzz/fs_image). Targets longer than [`MAX_LINK_TARGET`] are refused
    /// unread; at most 40 links are followed; `..` never climbs above the root. The last
    /// component is followed only with `follow_last`.
    ///
    /// ext4-view looks paths up from the root, so each step costs its depth: the result may be
    /// at most [`MAX_DEPTH`] deep and the walk at most [`MAX_STEPS`] steps (links of 4 KiB of
    /// `a/a/…` through a damaged folder loop would otherwise cost ~80 M lookups).
    fn real_path(&self, path: &[u8], follow_last: bool) -> Result<Vec<u8>> {
        let mut todo: Vec<Vec<u8>> = path.split(|&b| b == b'/').rev().map(|c| c.to_vec()).collect();
        let mut done: Vec<Vec<u8>> = Vec::new();
        let mut links = 0;
        let mut steps = 0;
        while let Some(c) = todo.pop() {
            match c.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            steps += 1;
            if steps > MAX_STEPS || done.len() >= MAX_DEPTH {
                return Err(Error::Io(format!(
                    "{}: the path leads over {MAX_DEPTH} folders deep or takes over {MAX_STEPS} steps to follow (a loop in a damaged filesystem?)",
                    shown(path)
                )));
            }
            let here = join(&done.concat_path(), &c);
            if todo.iter().all(|t| t.is_empty() || t == b".") && !follow_last {
                done.push(c);
                continue;
            }
            let md = self.ext4.symlink_metadata(self.at(&here)?).map_err(|e| ext_err(path, e))?;
            if !md.is_symlink() {
                done.push(c);
                continue;
            }
            links += 1;
            if links > 40 {
                return Err(Error::Io(format!("{}: too many levels of symbolic links (a loop?)", shown(path))));
            }
            let target = self.link_target(&here, &md)?;
            if target.first() == Some(&b'/') {
                done.clear();
            }
            todo.extend(target.split(|&b| b == b'/').rev().map(|t| t.to_vec()));
        }
        Ok(done.concat_path())
    }

    /// A symbolic link's target, refused unread when its inode claims more than a path can be.
    fn link_target(&self, path: &[u8], md: &Metadata) -> Result<Vec<u8>> {
        if md.len() > MAX_LINK_TARGET {
            return Err(Error::Io(format!(
                "{}: a symbolic link whose target would be {} bytes (at most {MAX_LINK_TARGET}): the filesystem is damaged",
                shown(path),
                md.len()
            )));
        }
        let t = self.ext4.read_link(self.at(path)?).map_err(|e| ext_err(path, e))?;
        Ok(t.as_ref().to_vec())
    }

    fn entry(&self, path: &[u8], name: &[u8], md: std::result::Result<Metadata, Ext4Error>, kind: Option<Kind>) -> Entry {
        let mut e = Entry {
            name: name.to_vec(),
            path: path.to_vec(),
            kind: kind.unwrap_or(Kind::Other),
            size: 0,
            mtime: 0,
            mode: 0,
            target: None,
            error: None,
        };
        match md {
            Ok(md) => {
                e.kind = Kind::of(md.file_type());
                e.size = md.len();
                e.mtime = md.modified().seconds();
                e.mode = md.mode();
                if e.kind == Kind::Symlink {
                    // `path`'s folder has no links in it here (see `real_path`).
                    match self.link_target(path, &md) {
                        Ok(t) => e.target = Some(t),
                        Err(err) => e.error = Some(err),
                    }
                }
            }
            Err(err) => e.error = Some(ext_err(path, err)),
        }
        e
    }

    /// The entry at `path` itself (a symbolic link as itself, with its target).
    pub fn stat(&self, path: &[u8]) -> Result<Entry> {
        let path = normalize(path);
        let real = self.real_path(&path, false)?;
        let md = self.ext4.symlink_metadata(self.at(&real)?).map_err(|e| ext_err(&path, e))?;
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or_default().to_vec();
        let mut e = self.entry(&real, &name, Ok(md), None);
        e.path = path;
        Ok(e)
    }

    /// The entry `path` leads to once symbolic links are followed (inside this filesystem
    /// only, at most 40); its name is still the last component of `path`.
    pub fn stat_follow(&self, path: &[u8]) -> Result<Entry> {
        let path = normalize(path);
        let real = self.real_path(&path, true)?;
        let md = self.ext4.symlink_metadata(self.at(&real)?).map_err(|e| ext_err(&path, e))?;
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or_default().to_vec();
        let mut e = self.entry(&real, &name, Ok(md), None);
        e.path = path;
        e.target = None;
        Ok(e)
    }

    /// What `path` is once symbolic links are followed (inside this filesystem only).
    pub fn resolve(&self, path: &[u8]) -> Result<Kind> {
        self.stat_follow(path).map(|e| e.kind)
    }

    /// The entries of the folder at `path` (symbolic links on the way followed), sorted by
    /// name, without `.` and `..`. A damaged entry carries its error; a damaged folder block
    /// ends the listing with what was read so far, and the error in `errors`.
    pub fn list(&self, path: &[u8]) -> Result<Listing> {
        let path = normalize(path);
        let real = self.real_path(&path, true)?;
        self.list_real(&path, &real)
    }

    /// [`Fs::list`] of the folder shown as `path` whose path without symbolic links is `real`.
    fn list_real(&self, path: &[u8], real: &[u8]) -> Result<Listing> {
        let rd = self.ext4.read_dir(self.at(real)?).map_err(|e| ext_err(path, e))?;
        let mut out = Listing::default();
        for item in rd {
            match item {
                Ok(de) => {
                    let name = de.file_name();
                    let name: &[u8] = name.as_ref();
                    if name == b"." || name == b".." {
                        continue;
                    }
                    let kind = de.file_type().ok().map(Kind::of);
                    let mut e = self.entry(&join(real, name), name, de.metadata(), kind);
                    e.path = join(path, name);
                    out.entries.push(e);
                }
                Err(e) => out.errors.push(ext_err(path, e)),
            }
        }
        out.entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Opens the file at `path` (symbolic links followed inside this filesystem) for reading
    /// in pieces.
    pub fn open_file(&self, path: &[u8]) -> Result<FileReader> {
        let path = normalize(path);
        let real = self.real_path(&path, true)?;
        let file = self.ext4.open(self.at(&real)?).map_err(|e| ext_err(&path, e))?;
        Ok(FileReader { size: file.metadata().len(), file, path })
    }

    /// Streams the file at `path` to `out` in pieces of at most [`PIECE`] bytes, as
    /// (offset, bytes); the caller may skip all-zero pieces to keep holes. Returns the size.
    pub fn read_file(&self, path: &[u8], out: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<u64> {
        let mut f = self.open_file(path)?;
        let mut buf = vec![0u8; PIECE.min(f.size() as usize).max(1)];
        let mut at = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(at);
            }
            out(at, &buf[..n])?;
            at += n as u64;
        }
    }

    /// Salvaged images: which files directly in the folder `path` read bytes from a lost range
    /// (`hit` is the flag of the image's [`LostWatch`]). Nothing records which blocks a file
    /// owns short of reading it (ext4-view keeps extents private), so each file is read whole,
    /// up to `budget` bytes in all: returns (files that touch lost bytes or cannot be read,
    /// files left unchecked).
    pub fn lost_files(&self, path: &[u8], hit: &std::cell::Cell<bool>, budget: u64) -> Result<(Vec<Entry>, Vec<Entry>)> {
        let (mut lost, mut unchecked) = (Vec::new(), Vec::new());
        let mut left = budget;
        for e in self.list(path)?.entries.into_iter().filter(|e| e.kind == Kind::File && e.error.is_none()) {
            if e.size > left {
                unchecked.push(e);
                continue;
            }
            left -= e.size;
            hit.set(false);
            let read = self.read_file(&e.path, &mut |_, _| Ok(()));
            if read.is_err() || hit.get() {
                lost.push(e);
            }
        }
        Ok((lost, unchecked))
    }

    /// Walks the folder at `path` depth first (a folder before its entries), never following
    /// symbolic links below it. Damaged entries and folders are handed to `visit` with their
    /// error, and the walk goes on; the walk stops (with an error) at [`MAX_DEPTH`] levels,
    /// [`MAX_WALK_ENTRIES`] entries, or on entering more folders than the filesystem has
    /// inodes. `visit` returns whether to go into a folder.
    pub fn walk(&self, path: &[u8], visit: &mut dyn FnMut(Walked<'_>) -> Result<bool>) -> Result<()> {
        let path = normalize(path);
        let real = self.real_path(&path, true)?;
        let mut budget = Budget { entries: MAX_WALK_ENTRIES, folders: self.inodes };
        self.walk_in(&path, &real, &mut Vec::new(), &mut budget, visit)
    }

    /// `real` is `dir` without symbolic links: the walk never follows one, so a folder's real
    /// path is its parent's plus its name. Resolving each folder's path afresh made a walk
    /// down a damaged filesystem's folder loop cost depth³ lookups (fuzz/fs_image: 10 s for a
    /// 768 KiB image).
    fn walk_in(&self, dir: &[u8], real: &[u8], rel: &mut Vec<Vec<u8>>, budget: &mut Budget, visit: &mut dyn FnMut(Walked<'_>) -> Result<bool>) -> Result<()> {
        let listing = match self.list_real(dir, real) {
            Ok(l) => l,
            Err(e) => Listing { entries: Vec::new(), errors: vec![e] },
        };
        for err in listing.errors {
            let entry = Entry {
                name: rel.last().cloned().unwrap_or_default(),
                path: dir.to_vec(),
                kind: Kind::Dir,
                size: 0,
                mtime: 0,
                mode: 0,
                target: None,
                error: Some(err),
            };
            // The folder itself, with what went wrong reading it.
            visit(Walked { rel, entry: &entry })?;
        }
        for entry in listing.entries {
            budget.entries = budget.entries.checked_sub(1).ok_or_else(|| Error::Io(format!("{}: more than {MAX_WALK_ENTRIES} entries; stopped", shown(dir))))?;
            rel.push(entry.name.clone());
            let descend = visit(Walked { rel, entry: &entry })?;
            if descend && entry.kind == Kind::Dir && entry.error.is_none() {
                if rel.len() >= MAX_DEPTH {
                    rel.pop();
                    return Err(Error::Io(format!("{}: folders nested over {MAX_DEPTH} deep (a loop in a damaged filesystem?)", shown(&entry.path))));
                }
                // ext4-view does not say which inode an entry names, so a folder reached under
                // two names (damage: ext4 never hard-links folders) is caught by count: a
                // damaged tree of 18 folders each naming the next twice walked 2^18 paths.
                budget.folders = budget.folders.checked_sub(1).ok_or_else(|| {
                    Error::Io(format!(
                        "{}: the walk has entered more folders than the filesystem's {} inodes: some folder is named more than once (a damaged filesystem); stopped",
                        shown(&entry.path),
                        self.inodes
                    ))
                })?;
                self.walk_in(&entry.path, &join(real, &entry.name), rel, budget, visit)?;
            }
            rel.pop();
        }
        Ok(())
    }
}

/// What a walk may still visit.
struct Budget {
    entries: u64,
    folders: u64,
}

/// dom0's home (an inner tar tree, `dom0-home/<user>/…`) as a browsable index of entries: no
/// file data is kept. Paths are shown as in dom0: `dom0-home/user/x` is `/home/user/x`.
/// Symbolic links are listed with their target and never followed; a hard link is listed as
/// the file it links to.
#[derive(Debug, Default, Clone)]
pub struct TarIndex {
    entries: std::collections::BTreeMap<Vec<u8>, Entry>,
    /// path → the path a hard link points to.
    links: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    /// path → where a file's bytes lie in the tar stream (for reading from a saved tar).
    files: std::collections::BTreeMap<Vec<u8>, Location>,
}

/// Where a file's stored bytes lie in a tar stream.
#[derive(Debug, Clone)]
struct Location {
    data_start: u64,
    size: u64,
    /// Sparse map `(offset, len)` of the real file; stored back to back from `data_start`.
    map: Option<Vec<(u64, u64)>>,
}

/// dom0's home holds at most this many entries (a hostile tar of tiny members must not grow
/// the index without bound; a real home folder stays far below).
pub const MAX_HOME_ENTRIES: usize = 5_000_000;

impl TarIndex {
    pub fn new() -> TarIndex {
        TarIndex::default()
    }

    /// `dom0-home/user/x/` (or `./dom0-home/…`) → `/home/user/x`; `None` outside `dom0-home/`
    /// or with `.`/`..`/empty components.
    pub fn path_of(tar_name: &[u8]) -> Option<Vec<u8>> {
        let mut p = tar_name;
        while let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        }
        let p = p.strip_suffix(b"/").unwrap_or(p);
        let rest = p.strip_prefix(b"dom0-home/")?;
        if rest.split(|&b| b == b'/').any(|c| c.is_empty() || c == b"." || c == b"..") {
            return None;
        }
        Some([b"/home/".as_slice(), rest].concat())
    }

    fn dir(path: &[u8]) -> Entry {
        Entry {
            name: path.rsplit(|&b| b == b'/').next().unwrap_or_default().to_vec(),
            path: path.to_vec(),
            kind: Kind::Dir,
            size: 0,
            mtime: 0,
            mode: 0o755,
            target: None,
            error: None,
        }
    }

    /// Records one tar entry (and any folder above it the tar did not list).
    pub fn add(&mut self, e: &crate::inner_tar::Entry) {
        use crate::inner_tar::Kind as T;
        let Some(path) = TarIndex::path_of(&e.path) else { return };
        let mut at = 0;
        while let Some(i) = path[at + 1..].iter().position(|&b| b == b'/') {
            at += 1 + i;
            self.entries.entry(path[..at].to_vec()).or_insert_with(|| TarIndex::dir(&path[..at]));
        }
        self.entries.entry(b"/".to_vec()).or_insert_with(|| TarIndex::dir(b"/"));
        let mut entry = TarIndex::dir(&path);
        entry.mode = (e.mode & 0o7777) as u16;
        entry.mtime = e.mtime;
        match e.kind {
            T::Dir => {}
            T::File => {
                entry.kind = Kind::File;
                entry.size = e.size;
                self.files.insert(path.clone(), Location { data_start: e.data_start, size: e.size, map: e.map.clone() });
            }
            T::Symlink => {
                entry.kind = Kind::Symlink;
                entry.size = e.link.len() as u64;
                entry.target = Some(e.link.clone());
            }
            T::HardLink => {
                entry.kind = Kind::File;
                match TarIndex::path_of(&e.link).and_then(|t| self.entries.get(&t).map(|te| (t, te.size))) {
                    Some((t, size)) => {
                        entry.size = size;
                        self.links.insert(path.clone(), t);
                    }
                    None => entry.error = Some(Error::NotFound { what: format!("{} (the file this hard link points to)", lossy(&e.link)) }),
                }
            }
            T::Other(_) => entry.kind = Kind::Other,
        }
        self.entries.insert(path, entry);
    }

    /// The path a hard link at `path` points to.
    pub fn hard_link(&self, path: &[u8]) -> Option<&[u8]> {
        self.links.get(path).map(|v| v.as_slice())
    }

    pub fn stat(&self, path: &[u8]) -> Result<Entry> {
        let path = normalize(path);
        self.entries.get(&path).cloned().ok_or(Error::NotFound { what: shown(&path) })
    }

    /// The entries directly in the folder `path`, sorted by name.
    pub fn list(&self, path: &[u8]) -> Result<Listing> {
        let dir = self.stat(path)?;
        if dir.kind != Kind::Dir {
            return Err(Error::NotFound { what: format!("{} (not a folder)", shown(&dir.path)) });
        }
        let prefix = if dir.path == b"/" { b"/".to_vec() } else { [dir.path.as_slice(), b"/"].concat() };
        let entries = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, _)| p.len() > prefix.len() && !p[prefix.len()..].contains(&b'/'))
            .map(|(_, e)| e.clone())
            .collect();
        Ok(Listing { entries, errors: Vec::new() })
    }

    /// Indexes a saved tar of dom0's home (what the page downloads as `dom0-home-<user>.tar`)
    /// reading only its headers: each member's data is hopped over.
    pub fn index_stream(src: &dyn ReadAt) -> Result<TarIndex> {
        let mut tar = crate::inner_tar::InnerTar::new();
        let mut index = TarIndex::new();
        let mut block = [0u8; 512];
        let mut pos = 0u64;
        while !tar.ended() && pos < src.len() {
            if src.len() - pos < 512 {
                return Err(Error::truncated("", "the home folder's tar ends inside a header"));
            }
            src.read_at(pos, &mut block)?;
            pos += 512;
            let before = index.entries.len();
            let mut seen = Seen { index: &mut index, stored: None };
            tar.feed(&block, &mut seen)?;
            if let Some((data_start, stored)) = seen.stored.filter(|&(_, n)| n > 0) {
                let padded = stored.div_ceil(512) * 512;
                let end = data_start.checked_add(padded).filter(|&e| e <= src.len()).ok_or_else(|| {
                    Error::truncated("", "the home folder's tar ends inside a file")
                })?;
                tar.skip(padded, &mut NoData, &mut |_, _| {})?;
                pos = end;
            }
            if index.entries.len() > MAX_HOME_ENTRIES && index.entries.len() > before {
                return Err(Error::unsupported(format!("a home folder of more than {MAX_HOME_ENTRIES} entries")));
            }
        }
        Ok(index)
    }

    /// Opens the file at `path` (a hard link as the file it points to) for reading from `src`.
    pub fn open_file(&self, path: &[u8]) -> Result<TarFile> {
        let path = normalize(path);
        let target = self.links.get(&path).cloned().unwrap_or(path);
        let loc = self.files.get(&target).cloned().ok_or(Error::NotFound { what: format!("{} (not a file)", shown(&target)) })?;
        Ok(TarFile { loc, pos: 0 })
    }

    /// Walks the folder at `path` (its entries after it, sorted by path); `visit` returns
    /// whether to go into a folder.
    pub fn walk(&self, path: &[u8], visit: &mut dyn FnMut(Walked<'_>) -> Result<bool>) -> Result<()> {
        let dir = self.stat(path)?;
        let prefix = if dir.path == b"/" { b"/".to_vec() } else { [dir.path.as_slice(), b"/"].concat() };
        let mut skip: Option<Vec<u8>> = None;
        for (p, e) in self.entries.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)) {
            if p.len() == prefix.len() || skip.as_ref().is_some_and(|s| p.starts_with(s)) {
                continue;
            }
            let rel: Vec<Vec<u8>> = p[prefix.len()..].split(|&b| b == b'/').map(|c| c.to_vec()).collect();
            if !visit(Walked { rel: &rel, entry: e })? && e.kind == Kind::Dir {
                skip = Some([p.as_slice(), b"/"].concat());
            }
        }
        Ok(())
    }
}

/// Records the entry of one header block, and where its data starts.
struct Seen<'a> {
    index: &'a mut TarIndex,
    stored: Option<(u64, u64)>,
}

impl crate::inner_tar::Visitor for Seen<'_> {
    fn entry(&mut self, entry: &crate::inner_tar::Entry) -> Result<()> {
        self.index.add(entry);
        self.stored = Some((entry.data_start, entry.stored));
        Ok(())
    }
    fn data(&mut self, _offset: u64, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }
    fn end_entry(&mut self) -> Result<()> {
        Ok(())
    }
}

struct NoData;

impl crate::inner_tar::Visitor for NoData {
    fn entry(&mut self, _entry: &crate::inner_tar::Entry) -> Result<()> {
        Ok(())
    }
    fn data(&mut self, _offset: u64, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }
    fn end_entry(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A file of a saved tar being read in pieces; holes read as zeros.
pub struct TarFile {
    loc: Location,
    pos: u64,
}

impl TarFile {
    pub fn size(&self) -> u64 {
        self.loc.size
    }

    /// Fills as much of `buf` as the file has left (0 at the end), reading `src`.
    pub fn read(&mut self, src: &dyn ReadAt, buf: &mut [u8]) -> Result<usize> {
        let n = (self.loc.size - self.pos).min(buf.len() as u64) as usize;
        let buf = &mut buf[..n];
        buf.fill(0);
        let whole = [(0, self.loc.size)];
        let runs = self.loc.map.as_deref().unwrap_or(&whole);
        let mut stored_at = self.loc.data_start;
        for &(off, len) in runs {
            let (s, e) = (off.max(self.pos), (off + len).min(self.pos + n as u64));
            if s < e {
                let dst = &mut buf[(s - self.pos) as usize..(e - self.pos) as usize];
                src.read_at(stored_at + (s - off), dst)?;
            }
            stored_at += len;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl crate::inner_tar::Visitor for TarIndex {
    fn entry(&mut self, entry: &crate::inner_tar::Entry) -> Result<()> {
        self.add(entry);
        Ok(())
    }
    fn data(&mut self, _offset: u64, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }
    fn end_entry(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A file being read in pieces.
pub struct FileReader {
    file: ext4_view::File,
    size: u64,
    path: Vec<u8>,
}

impl FileReader {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Fills as much of `buf` as the file has left (0 at the end); holes read as zeros.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            // ext4-view returns at most one block per call.
            let got = self.file.read_bytes(&mut buf[n..]).map_err(|e| ext_err(&self.path, e))?;
            if got == 0 {
                break;
            }
            n += got;
        }
        Ok(n)
    }
}

/// `2024-03-15T10:15:00Z` for seconds since the epoch (UTC, proleptic Gregorian).
pub fn iso_time(secs: i64) -> String {
    let (y, m, d, rem) = civil(secs);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// (year, month, day, seconds into the day) of seconds since the epoch, UTC.
pub fn civil(secs: i64) -> (i64, i64, i64, i64) {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe_from_raw_bytes() {
        assert_eq!(safe_name(b"a/b"), b"a_b");
        assert_eq!(safe_name(b".."), b"_..");
        assert_eq!(safe_name(b"."), b"_.");
        assert_eq!(safe_name(b""), b"_");
        assert_eq!(safe_name(b"line\nbreak\x7f"), b"line_break_");
        assert_eq!(safe_name(b"caf\xe9 \xff"), b"caf\xe9 \xff", "non-UTF-8 bytes are kept");
        assert_eq!(safe_name("a\u{85}b".as_bytes()), b"a_b");
        assert_eq!(lossy(b"a\nb\xff"), "a\\nb\u{fffd}");
    }

    #[test]
    fn gpt_types_read_as_sgdisk_prints_them() {
        assert_eq!(guid_text(&GPT_LINUX_FS), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
        assert_eq!(gpt_kind(&GPT_LINUX_FS), "Linux filesystem");
        assert_eq!(gpt_kind(&[0x11; 16]), "11111111-1111-1111-1111-111111111111");
    }

    #[test]
    fn dom0_home_paths_map_to_home_and_unsafe_names_are_dropped() {
        assert_eq!(TarIndex::path_of(b"dom0-home/user/a/").unwrap(), b"/home/user/a");
        assert_eq!(TarIndex::path_of(b"./dom0-home/user").unwrap(), b"/home/user");
        for bad in [&b"dom0-home/user/../x"[..], b"other/x", b"dom0-home//x", b"dom0-home/./x", b"dom0-home"] {
            assert_eq!(TarIndex::path_of(bad), None, "{}", lossy(bad));
        }
    }

    #[test]
    fn paths_normalize_and_times_print_in_utc() {
        assert_eq!(normalize(b"//a/./b/"), b"/a/b");
        assert_eq!(normalize(b""), b"/");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_710_497_700), "2024-03-15T10:15:00Z");
        assert_eq!(iso_time(-1), "1969-12-31T23:59:59Z");
        assert_eq!(iso_time(951_782_400), "2000-02-29T00:00:00Z");
    }

    /// A saved home tar (GNU and POSIX formats, long names, hard and symbolic links, a sparse
    /// file) is indexed from its headers, and each file reads back byte-exact from the tar.
    #[test]
    fn a_saved_home_tar_is_browsed_from_its_headers() {
        use crate::inner_tar::tests::{gnu_tar, plain_tree, tmpdir};
        let dir = tmpdir("fs-home");
        let long = plain_tree(&dir.join("dom0-home"));
        let mut sparse = vec![0u8; 3 << 20];
        sparse[1 << 20..(1 << 20) + 5].copy_from_slice(b"hello");
        std::fs::write(dir.join("dom0-home/user/sparse.img"), &sparse).unwrap();
        for format in ["--format=gnu", "--format=posix"] {
            let tar = gnu_tar(&dir, &[format, "--sparse", "-c", "--sort=name", "dom0-home"]);
            let index = TarIndex::index_stream(&tar).unwrap();
            let names: Vec<String> = index.list(b"/home/user").unwrap().entries.iter().map(|e| lossy(&e.name)).collect();
            assert_eq!(names, ["empty", "file.txt", "hard", "link", "longlink", "sparse.img", "sub"], "{format}");
            for (path, want) in [
                ("/home/user/file.txt".to_string(), b"file contents\n".to_vec()),
                ("/home/user/hard".into(), b"file contents\n".to_vec()),
                ("/home/user/empty".into(), Vec::new()),
                (format!("/home/user/sub/{long}"), vec![0x5a; 70000]),
                ("/home/user/sparse.img".into(), sparse.clone()),
            ] {
                let mut f = index.open_file(path.as_bytes()).unwrap();
                assert_eq!(f.size(), want.len() as u64);
                let mut got = Vec::new();
                let mut buf = vec![0u8; 4093];
                loop {
                    let n = f.read(&tar, &mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert!(got == want, "{format} {path}");
            }
            let mut walked = Vec::new();
            index.walk(b"/home/user", &mut |w| {
                walked.push(w.rel.iter().map(|c| lossy(c)).collect::<Vec<_>>().join("/"));
                Ok(true)
            }).unwrap();
            assert!(walked.contains(&format!("sub/{long}")) && walked.len() == 8, "{walked:?}");
            assert_eq!(index.open_file(b"/home/user/link").err().map(|e| e.class()), Some("not-found"));
            assert_eq!(TarIndex::index_stream(&tar[..tar.len() / 2].to_vec()).err().map(|e| e.class()), Some("truncated"));
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Found by fuzz/fs_image: a superblock claiming ~2^44 blocks made ext4-view allocate its
    /// group table (15 GB) before reading anything, and abort.
    #[test]
    fn a_superblock_claiming_more_blocks_than_the_image_holds_is_refused() {
        let mut img = vec![0u8; 1 << 16];
        let sb = &mut img[1024..2048];
        sb[0x04..0x08].copy_from_slice(&64u32.to_le_bytes()); // blocks (lo)
        sb[0x20..0x24].copy_from_slice(&8192u32.to_le_bytes()); // blocks per group
        sb[56..58].copy_from_slice(&EXT_MAGIC.to_le_bytes());
        sb[0x150..0x154].copy_from_slice(&0x0fffu32.to_le_bytes()); // blocks (hi), without 64bit
        let e = Fs::open(img.clone(), None).err().unwrap();
        assert_eq!(e.class(), "io");
        assert!(e.to_string().contains("more than the 65536-byte image holds"), "{e}");
        img[1024 + 0x150..1024 + 0x154].fill(0);
        img[1024 + 0x20..1024 + 0x24].fill(0);
        assert!(Fs::open(img, None).err().unwrap().to_string().contains("claims"), "zero blocks per group");
    }

    #[test]
    fn a_blank_image_is_no_filesystem_and_no_panic() {
        let img = vec![0u8; 1 << 16];
        assert_eq!(partitions(&img).unwrap(), None);
        let e = Fs::open(img, None).err().unwrap();
        assert_eq!(e.class(), "unsupported");
        let mut garbage = crate::image::SparseImage::new();
        crate::sink::VolumeSink::write_at(&mut garbage, 0, &(0..70000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<_>>()).unwrap();
        assert!(Fs::open(garbage, None).is_err());
    }
}
