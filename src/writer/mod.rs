//! A backup writer that produces what `qvm-backup` produces (FORMAT.md §2–§6), byte layout
//! included: for property tests, fuzz seeds and negative tests. Native only (salts come from
//! the OS); everything is built in memory.
//!
//! ```text
//! outer   one `tar -cO --posix` archive per member, each padded to 10240 bytes       §2.1
//! header  backup-header (key order of BackupHeader.save) + its `scrypt enc` copy      §3.1, §4
//! chunks  (compressed) inner stream split at chunk_size, `.000`, `.001`, … `.1000`   §2.3
//!         plus an empty last chunk when the stream is an exact multiple
//! inner   Qubes tarwriter PAX sparse 1.0 (LVM volumes)                               §6.3
//!         GNU tar 1.34 `--format=gnu --sparse`: 'S', '0', '5', '2', 'L', 'K'         §6.4
//! ```

use crate::format::container;
use crate::format::decompress::Compression;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

pub(super) const BLOCK: usize = 512;
/// GNU tar's default record: 20 blocks.
pub(super) const RECORD: usize = 10240;
/// `self.chunk_size = 100 * 1024 * 1024` in core-admin `Backup.__init__`.
pub const QUBES_CHUNK_SIZE: usize = 100 * 1024 * 1024;
/// Filesystem block the GNU-tar path sees through SEEK_DATA/SEEK_HOLE (ext4, xfs, btrfs).
pub(super) const FS_BLOCK: u64 = 4096;

/// How a volume's sparse tar member is written (FORMAT.md §6.1: both occur in real R4 backups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SparseEncoding {
    /// `qubes.tarwriter` (LVM thin volumes): pax `GNU.sparse.*` 1.0, map found by scanning
    /// 512-byte blocks for non-zero content, no record padding.
    Pax10,
    /// GNU tar 1.34 `--sparse --format=gnu` (file and reflink pools): old-sparse `'S'` header, map
    /// = allocated 4096-byte filesystem blocks (what SEEK_DATA reports), a plain `'0'` member when
    /// the image has no hole.
    GnuOld,
}

/// A sparse volume: `runs` of bytes at offsets, zeros elsewhere. Runs must not overlap and must
/// end within `size`; they are the allocated extents of the file (the GNU tar path stores them
/// as they are, zero bytes included; the tarwriter path rescans them for zero blocks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    pub size: u64,
    pub runs: Vec<(u64, Vec<u8>)>,
}

impl Image {
    /// The whole image as bytes (for tests comparing restored files; mind the size).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; usize::try_from(self.size).expect("image fits in memory")];
        for (off, data) in &self.runs {
            out[*off as usize..*off as usize + data.len()].copy_from_slice(data);
        }
        out
    }

    /// Bytes `[off, off+len)`, zeros where no run is.
    pub fn read(&self, off: u64, len: u64) -> Vec<u8> {
        let mut out = vec![0u8; len as usize];
        let end = off + len;
        for (roff, data) in &self.runs {
            let rend = roff + data.len() as u64;
            if rend <= off || *roff >= end {
                continue;
            }
            let from = off.max(*roff);
            let to = end.min(rend);
            out[(from - off) as usize..(to - off) as usize]
                .copy_from_slice(&data[(from - roff) as usize..(to - roff) as usize]);
        }
        out
    }

    fn sorted_runs(&self) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> =
            self.runs.iter().filter(|(_, d)| !d.is_empty()).map(|(o, d)| (*o, d.len() as u64)).collect();
        runs.sort();
        for w in runs.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "image runs overlap at {}", w[1].0);
        }
        if let Some((o, l)) = runs.last() {
            assert!(o + l <= self.size, "image run ends past the image size");
        }
        runs
    }
}

/// One entry of a dom0 home tree, path relative to `/home/<user>` (`"Documents/a.txt"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HomeEntry {
    Dir(String),
    File(String, Vec<u8>),
    /// Path and target as stored on disk; a relative target starting with the user name gets
    /// `dom0-home/` prepended, like Qubes' unscoped `--xform` does (FORMAT.md §6.4).
    Symlink(String, String),
}

pub(super) enum Member {
    /// An inner tar stream: compressed, chunked and encrypted at `finish`.
    Stream {
        path: String,
        tar: Vec<u8>,
    },
    Raw {
        name: String,
        data: Vec<u8>,
    },
}

/// Builds a format-4 backup in memory. Members come out in call order after the two header
/// members; call `qubes_xml` first to match Qubes (§2.2).
pub struct BackupWriter {
    passphrase: Vec<u8>,
    backup_id: String,
    compression: Compression,
    chunk_size: usize,
    log_n: u8,
    members: Vec<Member>,
}

impl BackupWriter {
    /// `Compression::None` writes `compressed=False` (and still `compression-filter=gzip`).
    pub fn new(passphrase: &[u8], backup_id: &str, compression: Compression) -> Self {
        BackupWriter {
            passphrase: passphrase.to_vec(),
            backup_id: backup_id.to_string(),
            compression,
            chunk_size: QUBES_CHUNK_SIZE,
            log_n: 10,
            members: Vec::new(),
        }
    }

    /// Plaintext bytes per chunk (Qubes: 100 MiB). Tests use tiny sizes.
    pub fn chunk_size(mut self, n: usize) -> Self {
        assert!(n > 0, "chunk size must be positive");
        self.chunk_size = n;
        self
    }

    /// scrypt N = 2^log_n (r = 8, p = 1) for every container; Qubes' `scrypt enc` picks ~18–21.
    pub fn scrypt_log_n(mut self, log_n: u8) -> Self {
        self.log_n = log_n;
        self
    }

    /// `qubes.xml.000.enc`: GNU tar member `qubes.xml` (§6.5).
    pub fn qubes_xml(&mut self, xml: &[u8]) {
        self.file("", "qubes.xml", xml);
    }

    /// `<subdir><name>` (`vm5/` + `private.img`) as a sparse volume.
    pub fn volume(&mut self, subdir: &str, name: &str, image: &Image, enc: SparseEncoding) {
        let path = format!("{subdir}{name}");
        let tar = match enc {
            SparseEncoding::Pax10 => pax10_tar(&path, image),
            SparseEncoding::GnuOld => gnu_sparse_tar(&path, image, now().0),
        };
        self.members.push(Member::Stream { path, tar });
    }

    /// A small regular file through the GNU tar path (`firewall.xml`, `notes.txt`, `empty`).
    pub fn file(&mut self, subdir: &str, name: &str, bytes: &[u8]) {
        let path = format!("{subdir}{name}");
        let tar = gnu_file_tar(&path, bytes);
        self.members.push(Member::Stream { path, tar });
    }

    /// `dom0-home/<user>`: the home directory, then `entries` in the given order (GNU tar uses
    /// readdir order; list parents before children).
    pub fn home(&mut self, user: &str, entries: &[HomeEntry]) {
        let base = format!("dom0-home/{user}");
        let t = now().0;
        let mut tar = Vec::new();
        gnu_member(&mut tar, &format!("{base}/"), &GnuEntry::home(0o700, 0, t, b'5'));
        for e in entries {
            match e {
                HomeEntry::Dir(p) => {
                    gnu_member(&mut tar, &format!("{base}/{p}/"), &GnuEntry::home(0o755, 0, t, b'5'));
                }
                HomeEntry::File(p, data) => {
                    gnu_member(&mut tar, &format!("{base}/{p}"), &GnuEntry::home(0o644, data.len() as u64, t, b'0'));
                    tar.extend_from_slice(data);
                    pad_to(&mut tar, BLOCK);
                }
                HomeEntry::Symlink(p, target) => {
                    // `--xform=s:^<user>:dom0-home/\0:` applies to link targets too.
                    let target = match target.strip_prefix(user) {
                        Some(rest) => format!("dom0-home/{user}{rest}"),
                        None => target.clone(),
                    };
                    let mut ent = GnuEntry::home(0o777, 0, t, b'2');
                    ent.linkname = target.into_bytes();
                    gnu_member(&mut tar, &format!("{base}/{p}"), &ent);
                }
            }
        }
        gnu_finish(&mut tar);
        self.members.push(Member::Stream { path: base, tar });
    }

    /// `path` stored with `tar` as its inner stream, as given (a damaged one, for negative tests).
    pub fn stream(&mut self, path: &str, tar: Vec<u8>) {
        self.members.push(Member::Stream { path: path.to_string(), tar });
    }

    /// An arbitrary outer member (name and bytes as given), for negative tests.
    pub fn raw_member(&mut self, name: &str, data: &[u8]) {
        self.members.push(Member::Raw { name: name.to_string(), data: data.to_vec() });
    }

    /// The exact `backup-header` text this writer emits (§3.1).
    pub fn header_text(&self) -> String {
        format!(
            "version=4\nencrypted=True\ncompressed={}\ncompression-filter={}\nhmac-algorithm=scrypt\nbackup-id={}\n",
            if self.compression == Compression::None { "False" } else { "True" },
            filter_name(self.compression),
            self.backup_id
        )
    }

    /// The whole backup file.
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        let header = self.header_text().into_bytes();
        let mut hmac_pass = b"backup-header!".to_vec();
        hmac_pass.extend_from_slice(&self.passphrase);
        let hmac = container::seal(&hmac_pass, &header, self.log_n, 8, 1, salt());
        outer_member(&mut out, "backup-header", &header);
        outer_member(&mut out, "backup-header.hmac", &hmac);
        for m in &self.members {
            match m {
                Member::Raw { name, data } => outer_member(&mut out, name, data),
                Member::Stream { path, tar } => {
                    let stream = compress(self.compression, tar);
                    // handle_streams stops at exactly chunk_size without probing for EOF, so an
                    // exact positive multiple gets one more, empty, chunk (§2.3).
                    let count = stream.len() / self.chunk_size + 1;
                    for i in 0..count {
                        let piece = &stream
                            [(i * self.chunk_size).min(stream.len())..((i + 1) * self.chunk_size).min(stream.len())];
                        let rel = format!("{path}.{i:03}");
                        let mut pass = format!("{}!{rel}!", self.backup_id).into_bytes();
                        pass.extend_from_slice(&self.passphrase);
                        let enc = container::seal(&pass, piece, self.log_n, 8, 1, salt());
                        outer_member(&mut out, &format!("{rel}.enc"), &enc);
                    }
                }
            }
        }
        out
    }
}

/// The `compression-filter` value; `gzip` also when uncompressed (Qubes' default filter).
pub(super) fn filter_name(c: Compression) -> &'static str {
    match c {
        Compression::None | Compression::Gzip => "gzip",
        Compression::Bzip2 => "bzip2",
        Compression::Xz => "xz",
        Compression::Lzma => "lzma",
        Compression::Zstd => "zstd",
    }
}

/// Compresses like the default command-line tools (gzip -6, bzip2 -9, xz -6, lzma -6; zstd at
/// ruzstd's fastest level, the only one it implements).
pub fn compress(c: Compression, data: &[u8]) -> Vec<u8> {
    match c {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(data).expect("in memory");
            e.finish().expect("in memory")
        }
        Compression::Bzip2 => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            e.write_all(data).expect("in memory");
            e.finish().expect("in memory")
        }
        Compression::Xz => {
            let mut e =
                lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(6)).expect("xz options");
            e.write_all(data).expect("in memory");
            e.finish().expect("in memory")
        }
        Compression::Lzma => {
            // `lzma` (xz --format=lzma): 13-byte header with unknown size, end marker.
            let opts = lzma_rust2::LzmaOptions::with_preset(6);
            let mut e = lzma_rust2::LzmaWriter::new_use_header(Vec::new(), &opts, None).expect("lzma options");
            e.write_all(data).expect("in memory");
            e.finish().expect("in memory")
        }
        Compression::Zstd => ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest),
    }
}

pub(super) fn salt() -> [u8; 32] {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).expect("OS randomness");
    s
}

/// Seconds and nanoseconds since the epoch.
pub(super) fn now() -> (u64, u32) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

pub(super) fn pad_to(buf: &mut Vec<u8>, n: usize) {
    let rem = buf.len() % n;
    if rem != 0 {
        buf.resize(buf.len() + n - rem, 0);
    }
}

/// `dst` ← `src`, truncated, NUL-filled (tar string fields).
pub(super) fn put_str(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
}

/// Octal in `field.len()-1` digits plus NUL (every writer here).
pub(super) fn put_octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    assert!(s.len() == digits, "{v} does not fit {digits} octal digits");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

/// GNU tar `to_chars`: octal when it fits, else base-256 (0x80, then big-endian).
pub(super) fn put_gnu_num(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    if digits >= 22 || v < 1u64 << (3 * digits) {
        put_octal(field, v);
    } else {
        field.fill(0);
        field[0] = 0x80;
        let be = v.to_be_bytes();
        let n = field.len();
        field[n - 8..].copy_from_slice(&be);
    }
}

/// Checksum as both GNU tar and Python tarfile write it: six octal digits, NUL, space.
pub(super) fn put_checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    h[154] = 0;
    h[155] = b' ';
}

/// PAX records are written the one way the page's archive writes them.
pub(super) use crate::output::archive::pax_record;

/// One regular file as GNU tar archives it.
fn gnu_file_tar(path: &str, bytes: &[u8]) -> Vec<u8> {
    let mut tar = Vec::new();
    gnu_member(&mut tar, path, &GnuEntry::file(0o644, bytes.len() as u64, now().0, b'0'));
    tar.extend_from_slice(bytes);
    pad_to(&mut tar, BLOCK);
    gnu_finish(&mut tar);
    tar
}

mod gnu;
mod legacy;
mod outer;
pub use legacy::{openssl_enc, LegacyWriter};
mod tarwriter;
use gnu::*;
use outer::*;
pub use gnu::gnu_seek_sparse_map;
pub use tarwriter::tarwriter_sparse_map;
use tarwriter::*;

#[cfg(test)]
mod tests;
