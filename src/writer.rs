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

use crate::container;
use crate::decompress::Compression;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

const BLOCK: usize = 512;
/// GNU tar's default record: 20 blocks.
const RECORD: usize = 10240;
/// `self.chunk_size = 100 * 1024 * 1024` in core-admin `Backup.__init__`.
pub const QUBES_CHUNK_SIZE: usize = 100 * 1024 * 1024;
/// Filesystem block the GNU-tar path sees through SEEK_DATA/SEEK_HOLE (ext4, xfs, btrfs).
const FS_BLOCK: u64 = 4096;

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

enum Member {
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
        let mut tar = Vec::new();
        gnu_member(&mut tar, &path, &GnuEntry::file(0o644, bytes.len() as u64, now().0, b'0'));
        tar.extend_from_slice(bytes);
        pad_to(&mut tar, BLOCK);
        gnu_finish(&mut tar);
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
fn filter_name(c: Compression) -> &'static str {
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

fn salt() -> [u8; 32] {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).expect("OS randomness");
    s
}

/// Seconds and nanoseconds since the epoch.
fn now() -> (u64, u32) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

fn pad_to(buf: &mut Vec<u8>, n: usize) {
    let rem = buf.len() % n;
    if rem != 0 {
        buf.resize(buf.len() + n - rem, 0);
    }
}

/// `dst` ← `src`, truncated, NUL-filled (tar string fields).
fn put_str(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
}

/// Octal in `field.len()-1` digits plus NUL (every writer here).
fn put_octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    assert!(s.len() == digits, "{v} does not fit {digits} octal digits");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

/// GNU tar `to_chars`: octal when it fits, else base-256 (0x80, then big-endian).
fn put_gnu_num(field: &mut [u8], v: u64) {
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
fn put_checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    h[154] = 0;
    h[155] = b' ';
}

/// `"<len> key=value\n"` where len counts the whole record, its own digits included.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let l = key.len() + value.len() + 3;
    let mut p = 0;
    loop {
        let n = l + p.to_string().len();
        if n == p {
            break;
        }
        p = n;
    }
    out.extend_from_slice(format!("{p} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

// ---------------------------------------------------------------------------------------------
// Outer layer: GNU tar 1.34 `tar -cO --posix -C <tmpdir> <name>` (§2.1)

/// GNU tar `code_timespec`: seconds, then `.` and the nanoseconds without trailing zeros.
fn timespec(sec: u64, ns: u32) -> String {
    if ns == 0 {
        return sec.to_string();
    }
    let frac = format!("{ns:09}");
    format!("{sec}.{}", frac.trim_end_matches('0'))
}

fn outer_member(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let start = out.len();
    let (sec, ns) = now();
    let ts = timespec(sec, ns);
    let mut records = Vec::new();
    if name.len() > 100 {
        pax_record(&mut records, "path", name.as_bytes());
    }
    if ns != 0 {
        pax_record(&mut records, "mtime", ts.as_bytes());
    }
    pax_record(&mut records, "atime", ts.as_bytes());
    pax_record(&mut records, "ctime", ts.as_bytes());
    // xheader_xhdr_name: "%d/PaxHeaders/%f", %d = dirname ("." for a top-level file).
    let (dir, base) = match name.rfind('/') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (".", name),
    };
    let xname = format!("{dir}/PaxHeaders/{base}");
    // start_private_header: mode 0644, uid/gid 0, the file's mtime, ustar magic, no names.
    let mut x = [0u8; BLOCK];
    put_str(&mut x[0..100], xname.as_bytes());
    put_octal(&mut x[100..108], 0o644);
    put_octal(&mut x[108..116], 0);
    put_octal(&mut x[116..124], 0);
    put_octal(&mut x[124..136], records.len() as u64);
    put_octal(&mut x[136..148], sec);
    x[156] = b'x';
    x[257..263].copy_from_slice(b"ustar\0");
    x[263..265].copy_from_slice(b"00");
    put_checksum(&mut x);
    out.extend_from_slice(&x);
    out.extend_from_slice(&records);
    pad_to(out, BLOCK);
    // The ustar header proper, POSIX flavour (devmajor/devminor written as 0).
    let mut h = [0u8; BLOCK];
    put_str(&mut h[0..100], name.as_bytes());
    put_octal(&mut h[100..108], 0o644);
    put_octal(&mut h[108..116], 0);
    put_octal(&mut h[116..124], 0);
    put_octal(&mut h[124..136], data.len() as u64);
    put_octal(&mut h[136..148], sec);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put_str(&mut h[265..297], b"root");
    put_str(&mut h[297..329], b"root");
    put_octal(&mut h[329..337], 0);
    put_octal(&mut h[337..345], 0);
    put_checksum(&mut h);
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    pad_to(out, BLOCK);
    out.resize(out.len() + 2 * BLOCK, 0);
    // Each `tar` run pads its own archive to a full record.
    let len = out.len() - start;
    out.resize(start + len.div_ceil(RECORD) * RECORD, 0);
}

// ---------------------------------------------------------------------------------------------
// Inner: Qubes tarwriter, PAX sparse 1.0 (§6.3)

/// `get_sparse_map`: maximal runs of non-zero 512-byte blocks; a trailing partial block is
/// always data (its slice never equals the 512-byte zero block); `(size, 0)` when the image
/// ends in zeros.
pub fn tarwriter_sparse_map(image: &Image) -> Vec<(u64, u64)> {
    let b = BLOCK as u64;
    let size = image.size;
    // Only blocks some run touches can be non-zero.
    let mut candidates: Vec<(u64, u64)> = Vec::new(); // block ranges [first, end)
    for (off, len) in image.sorted_runs() {
        let (first, end) = (off / b, (off + len).div_ceil(b));
        match candidates.last_mut() {
            Some(last) if last.1 >= first => last.1 = last.1.max(end),
            _ => candidates.push((first, end)),
        }
    }
    let full_blocks = size / b;
    let mut data_blocks: Vec<(u64, u64)> = Vec::new(); // byte ranges
    let mut push = |off: u64, len: u64| match data_blocks.last_mut() {
        Some(last) if last.0 + last.1 == off => last.1 += len,
        _ => data_blocks.push((off, len)),
    };
    for (first, end) in candidates {
        for blk in first..end.min(full_blocks) {
            if image.read(blk * b, b).iter().any(|&x| x != 0) {
                push(blk * b, b);
            }
        }
    }
    if size % b != 0 {
        push(full_blocks * b, size % b);
    }
    match data_blocks.last() {
        Some(&(o, l)) if o + l == size => {}
        _ => data_blocks.push((size, 0)),
    }
    data_blocks
}

/// Python `tarfile._create_header` as in current CPython (3.11.4+, R4.2/R4.3 dom0): device
/// fields of non-devices are left NUL (Python 3.8 of R4.1 wrote "0000000\0" there).
fn python_header(name: &str, mode: u32, size: u64, typeflag: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    put_str(&mut h[0..100], name.as_bytes());
    put_octal(&mut h[100..108], mode as u64);
    put_octal(&mut h[108..116], 0);
    put_octal(&mut h[116..124], 0);
    put_octal(&mut h[124..136], size);
    put_octal(&mut h[136..148], 0);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put_checksum(&mut h);
    h
}

/// The pax header, ustar header and NUL-padded map text of a tarwriter member.
fn pax10_headers(path: &str, map: &[(u64, u64)], pid: u32) -> Vec<u8> {
    let realsize = map.last().map_or(0, |&(o, l)| o + l);
    let mut map_txt = format!("{}\n", map.len());
    for (o, l) in map {
        map_txt.push_str(&format!("{o}\n{l}\n"));
    }
    let mut map_buf = map_txt.into_bytes();
    pad_to(&mut map_buf, BLOCK);
    let stored = map_buf.len() as u64 + map.iter().map(|&(_, l)| l).sum::<u64>();
    let mut records = Vec::new();
    pax_record(&mut records, "GNU.sparse.major", b"1");
    pax_record(&mut records, "GNU.sparse.minor", b"0");
    pax_record(&mut records, "GNU.sparse.name", path.as_bytes());
    pax_record(&mut records, "GNU.sparse.realsize", realsize.to_string().as_bytes());
    let ustar_size = if stored >= 1u64 << 33 {
        pax_record(&mut records, "size", stored.to_string().as_bytes());
        0
    } else {
        stored
    };
    let (dir, base) = match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    };
    let mut out = Vec::new();
    out.extend_from_slice(&python_header("././@PaxHeader", 0, records.len() as u64, b'x'));
    out.extend_from_slice(&records);
    pad_to(&mut out, BLOCK);
    out.extend_from_slice(&python_header(&format!("{dir}/GNUSparseFile.{pid}/{base}"), 0o644, ustar_size, b'0'));
    out.extend_from_slice(&map_buf);
    out
}

fn pax10_tar(path: &str, image: &Image) -> Vec<u8> {
    let map = tarwriter_sparse_map(image);
    let mut out = pax10_headers(path, &map, std::process::id());
    for &(o, l) in &map {
        out.extend_from_slice(&image.read(o, l));
    }
    // finalize(): two zero blocks, no padding of the last run nor of the archive.
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

// ---------------------------------------------------------------------------------------------
// Inner: GNU tar 1.34 --format=gnu (§6.4)

struct GnuEntry {
    mode: u32,
    uid: u64,
    gid: u64,
    uname: &'static [u8],
    gname: &'static [u8],
    size: u64,
    mtime: u64,
    typeflag: u8,
    linkname: Vec<u8>,
}

impl GnuEntry {
    /// A file read by root from a VM directory (`-C /var/lib/qubes/appvms/<vm>`).
    fn file(mode: u32, size: u64, mtime: u64, typeflag: u8) -> GnuEntry {
        GnuEntry { mode, uid: 0, gid: 0, uname: b"root", gname: b"root", size, mtime, typeflag, linkname: Vec::new() }
    }
    /// An entry of the dom0 user's home (uid 1000).
    fn home(mode: u32, size: u64, mtime: u64, typeflag: u8) -> GnuEntry {
        GnuEntry {
            mode,
            uid: 1000,
            gid: 1000,
            uname: b"user",
            gname: b"user",
            size,
            mtime,
            typeflag,
            linkname: Vec::new(),
        }
    }
}

/// `start_header` for the gnu format: `"ustar  \0"` magic, permission bits only, no device
/// numbers for non-devices, no atime/ctime.
fn gnu_header(name: &[u8], e: &GnuEntry) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    put_str(&mut h[0..100], name);
    put_gnu_num(&mut h[100..108], e.mode as u64);
    put_gnu_num(&mut h[108..116], e.uid);
    put_gnu_num(&mut h[116..124], e.gid);
    put_gnu_num(&mut h[124..136], e.size);
    put_gnu_num(&mut h[136..148], e.mtime);
    h[156] = e.typeflag;
    put_str(&mut h[157..257], &e.linkname);
    h[257..265].copy_from_slice(b"ustar  \0");
    put_str(&mut h[265..297], e.uname);
    put_str(&mut h[297..329], e.gname);
    h
}

/// `write_gnu_long_link`: a `././@LongLink` pseudo-member of type 'L' or 'K' holding the name
/// plus its NUL.
fn gnu_long_link(out: &mut Vec<u8>, value: &[u8], typeflag: u8) {
    let ent = GnuEntry::file(0o644, value.len() as u64 + 1, 0, typeflag);
    let mut h = gnu_header(b"././@LongLink", &ent);
    put_checksum(&mut h);
    out.extend_from_slice(&h);
    out.extend_from_slice(value);
    out.push(0);
    pad_to(out, BLOCK);
}

/// One header (with 'K'/'L' pseudo-members first when the link target or name exceeds 100 bytes).
fn gnu_member(out: &mut Vec<u8>, name: &str, e: &GnuEntry) {
    if e.linkname.len() > 100 {
        gnu_long_link(out, &e.linkname, b'K');
    }
    if name.len() > 100 {
        gnu_long_link(out, name.as_bytes(), b'L');
    }
    let mut h = gnu_header(name.as_bytes(), e);
    put_checksum(&mut h);
    out.extend_from_slice(&h);
}

/// `write_eot`: two zero blocks, then the record is filled.
fn gnu_finish(out: &mut Vec<u8>) {
    out.resize(out.len() + 2 * BLOCK, 0);
    pad_to(out, RECORD);
}

/// The map `sparse_scan_file_seek` would find on a 4096-byte-block filesystem where exactly
/// the runs were written: runs widened to whole blocks, clipped at the size, merged, and then
/// **always** `(size, 0)`: the final SEEK_DATA at the end fails with ENXIO, which GNU tar
/// records as an empty last segment even when the file ends in data. `None` when nothing is a
/// hole (ST_IS_SPARSE false → a plain '0' member).
pub fn gnu_seek_sparse_map(image: &Image) -> Option<Vec<(u64, u64)>> {
    let mut map: Vec<(u64, u64)> = Vec::new();
    for (off, len) in image.sorted_runs() {
        let start = off / FS_BLOCK * FS_BLOCK;
        let end = ((off + len).div_ceil(FS_BLOCK) * FS_BLOCK).min(image.size);
        match map.last_mut() {
            Some(last) if last.0 + last.1 >= start => last.1 = end.max(last.0 + last.1) - last.0,
            _ => map.push((start, end - start)),
        }
    }
    let allocated: u64 = map.iter().map(|&(_, l)| l).sum();
    // ST_IS_SPARSE: fewer 512-byte blocks allocated than the size needs.
    if allocated.div_ceil(FS_BLOCK) * (FS_BLOCK / 512) >= image.size.div_ceil(512) {
        return None;
    }
    map.push((image.size, 0));
    Some(map)
}

fn put_sparse(field: &mut [u8], (off, len): (u64, u64)) {
    put_gnu_num(&mut field[0..12], off);
    put_gnu_num(&mut field[12..24], len);
}

/// `oldgnu_dump_header` + `sparse_dump_region` + `write_eot`.
fn gnu_sparse_tar(path: &str, image: &Image, mtime: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(map) = gnu_seek_sparse_map(image) else {
        gnu_member(&mut out, path, &GnuEntry::file(0o644, image.size, mtime, b'0'));
        out.extend_from_slice(&image.read(0, image.size));
        pad_to(&mut out, BLOCK);
        gnu_finish(&mut out);
        return out;
    };
    let stored: u64 = map.iter().map(|&(_, l)| l).sum();
    if path.len() > 100 {
        gnu_long_link(&mut out, path.as_bytes(), b'L');
    }
    let mut h = gnu_header(path.as_bytes(), &GnuEntry::file(0o644, stored, mtime, b'S'));
    for (i, &entry) in map.iter().take(4).enumerate() {
        put_sparse(&mut h[386 + 24 * i..410 + 24 * i], entry);
    }
    h[482] = (map.len() > 4) as u8;
    put_gnu_num(&mut h[483..495], image.size);
    put_checksum(&mut h);
    out.extend_from_slice(&h);
    let mut rest = &map[map.len().min(4)..];
    while !rest.is_empty() {
        let mut ext = [0u8; BLOCK];
        let n = rest.len().min(21);
        for (i, &entry) in rest[..n].iter().enumerate() {
            put_sparse(&mut ext[24 * i..24 * (i + 1)], entry);
        }
        rest = &rest[n..];
        ext[504] = (!rest.is_empty()) as u8;
        out.extend_from_slice(&ext);
    }
    // Each region is padded to 512 on its own (only the last can be unaligned here).
    for &(o, l) in &map {
        out.extend_from_slice(&image.read(o, l));
        pad_to(&mut out, BLOCK);
    }
    gnu_finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(size: u64, runs: &[(u64, &[u8])]) -> Image {
        Image { size, runs: runs.iter().map(|(o, d)| (*o, d.to_vec())).collect() }
    }

    #[test]
    fn tarwriter_map_turns_zero_blocks_inside_data_into_holes() {
        let mut run = vec![1u8; 2048];
        run[512..1024].fill(0);
        let map = tarwriter_sparse_map(&img(1 << 20, &[(4096, &run)]));
        assert_eq!(map, vec![(4096, 512), (5120, 1024), (1 << 20, 0)]);
    }

    #[test]
    fn tarwriter_map_of_a_zero_image_is_one_empty_entry() {
        assert_eq!(tarwriter_sparse_map(&img(8192, &[])), vec![(8192, 0)]);
        assert_eq!(tarwriter_sparse_map(&img(8192, &[(0, &[0; 100])])), vec![(8192, 0)]);
    }

    #[test]
    fn tarwriter_map_keeps_a_trailing_partial_block_as_data() {
        assert_eq!(tarwriter_sparse_map(&img(1000, &[])), vec![(512, 488)]);
    }

    #[test]
    fn tarwriter_map_has_no_final_entry_when_the_image_ends_in_data() {
        assert_eq!(tarwriter_sparse_map(&img(2048, &[(2000, &[9; 48])])), vec![(1536, 512)]);
    }

    #[test]
    fn stored_size_of_8_gib_moves_to_a_pax_size_record() {
        let map = [(0u64, 1u64 << 33), (1 << 34, 0)];
        let h = pax10_headers("vm5/private.img", &map, 42);
        let records = std::str::from_utf8(&h[512..1024]).unwrap().trim_end_matches('\0');
        assert_eq!(
            records,
            "22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n35 GNU.sparse.name=vm5/private.img\n\
             35 GNU.sparse.realsize=17179869184\n19 size=8589935104\n"
        );
        assert_eq!(&h[1024..1060], b"vm5/GNUSparseFile.42/private.img\0\0\0\0");
        assert_eq!(&h[1024 + 124..1024 + 136], b"00000000000\0");
    }

    #[test]
    fn gnu_numbers_switch_to_base_256_at_8_gib() {
        let mut f = [0u8; 12];
        put_gnu_num(&mut f, (1 << 33) - 1);
        assert_eq!(&f, b"77777777777\0");
        put_gnu_num(&mut f, 10 << 30);
        assert_eq!(f, [0x80, 0, 0, 0, 0, 0, 0, 2, 0x80, 0, 0, 0]);
    }

    #[test]
    fn gnu_map_widens_runs_to_filesystem_blocks_and_always_ends_with_an_empty_entry() {
        let map = gnu_seek_sparse_map(&img(1 << 20, &[(5000, &[1; 10]), (8190, &[0; 4])])).unwrap();
        assert_eq!(map, vec![(4096, 8192), (1 << 20, 0)]);
        let ends_in_data = gnu_seek_sparse_map(&img(1 << 20, &[((1 << 20) - 10, &[1; 10])])).unwrap();
        assert_eq!(ends_in_data, vec![((1 << 20) - 4096, 4096), (1 << 20, 0)]);
        assert_eq!(gnu_seek_sparse_map(&img(6000, &[(0, &[1; 6000])])), None);
    }

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        let mut r = Vec::new();
        pax_record(&mut r, "atime", b"1700000000.5");
        assert_eq!(r, b"22 atime=1700000000.5\n");
        let mut r = Vec::new();
        pax_record(&mut r, "k", &[b'v'; 95]); // 1+95+3 = 99, +2 digits = 101 → 3 digits → 102
        assert_eq!(&r[..4], b"102 ");
    }

    #[test]
    fn exact_multiple_stream_gets_an_empty_last_chunk_and_members_fill_records() {
        let mut w = BackupWriter::new(b"pw", "20240101T000000-1", Compression::None).chunk_size(10240).scrypt_log_n(4);
        w.file("vm5/", "firewall.xml", b"<firewall/>");
        let out = w.finish();
        // header, hmac, .000 (10240 B), .001 (empty): one record each except the full chunk.
        assert_eq!(out.len(), 10240 * 2 + 10240 * 2 + 10240);
        assert_eq!(&out[0..29], b"./PaxHeaders/backup-header\0\0\0");
    }
}
