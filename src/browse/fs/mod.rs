//! Browses the filesystem inside a restored volume, never mounting anything: `private.img` is a
//! bare ext4; `root.img` is a GPT (or MBR) disk whose Linux partition holds ext4.
//!
//! Reads go through [`ReadAt`] (a [`crate::output::image::SparseImage`] in memory, later a browser
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

mod ext4;
mod home;
mod partitions;
pub use ext4::*;
pub use home::*;
pub use partitions::*;

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

pub use crate::output::names::safe_name;

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
mod tests;
