//! Formats 3 (Qubes R2 final … R3.2) and 2 (R2 beta), read layer by layer (FORMAT.md §9):
//!
//! `outer` (the same concatenated tars as format 4) → [`pieces`] (`X.NNN` + `X.NNN.hmac`) →
//! [`hmac_text`] (HMAC-<alg>(passphrase, piece), checked before a byte of the piece is used) →
//! [`openssl_cbc`] (`openssl enc -aes-256-cbc`, one stream per file in format 3, per volume in
//! format 2) → `decompress` → [`multivolume`] (format 2 only: GNU multi-volume tar joined back)
//! → the inner tar stream, which `format::inner_tar` reads as for format 4.
//!
//! [`LegacyBackup::open`] authenticates `backup-header` (a wrong passphrase is reported there,
//! before any piece is read), parses it ([`header`]) and reads qubes.xml ([`qubes_xml`]).
//! [`LegacyBackup::files`] lists a qube's stored files; [`LegacyBackup::stream`] yields one
//! file's inner tar stream, **decrypted and decompressed**, piece by piece: each piece is read
//! whole (at most 100 MiB), its HMAC proven, and only then decrypted, so the consumer never
//! sees a byte that was not authenticated. Its shape matches `restore::FileRestore::push`
//! (give it `Compression::None`: the bytes are already decompressed).
//!
//! ```no_run
//! use qubes_rescue::format::legacy::LegacyBackup;
//! let file = std::fs::File::open("qubes-backup-2016-08-04T101500")?;
//! let backup = LegacyBackup::open(file, b"the passphrase")?;
//! for qube in backup.qubes() {
//!     for stored in backup.files(&qube.name)? {
//!         let mut stream = backup.stream(&stored);
//!         while stream.next_piece(&mut |_inner_tar_bytes| Ok(()))? {}
//!     }
//! }
//! # Ok::<(), qubes_rescue::Error>(())
//! ```

pub mod header;
pub mod hmac_text;
pub mod multivolume;
pub mod openssl_cbc;
pub mod pieces;
pub mod qubes_xml;
mod stream;

pub use header::LegacyHeader;
pub use hmac_text::HmacAlgorithm;
pub use pieces::{Piece, PieceFile};
pub use qubes_xml::LegacyQube;
pub use stream::FileStream;

use crate::error::{Check, Cut, Error, Result, TarFault};
use crate::format::chunks::{FileKind, StoredFile};
use crate::format::inner_tar::{Entry, InnerTar, Kind, Visitor};
use crate::format::outer::{self, find_one, Member};
use crate::read_at::ReadAt;

/// Qubes fetches qubes.xml with a 1 MiB budget; its pieces together may not exceed it.
const MAX_QUBES_XML_PIECES: u64 = 1 << 20;


/// Whether indexed members look like format 3 or 2: `backup-header.hmac` is an openssl text
/// (format 4 keeps a scrypt container there), or there is no header but a `qubes.xml.000`
/// with its `.hmac` (R2-beta3). Reads at most 6 bytes; nothing is authenticated.
pub fn is_legacy(src: &(impl ReadAt + ?Sized), members: &[Member]) -> bool {
    let named = |n: &str| members.iter().find(|m| m.name == n);
    match named("backup-header.hmac") {
        Some(m) => {
            let mut magic = [0u8; 6];
            !(m.size >= 6 && src.read_at(m.offset, &mut magic).is_ok() && &magic == b"scrypt")
        }
        None => named("backup-header").is_none() && named("qubes.xml.000").is_some() && named("qubes.xml.000.hmac").is_some(),
    }
}

/// One file as stored: its pieces and what they hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyFile {
    /// `vm5/private.img`, `vm1/.` (a template's whole folder), `dom0-home/user`: the outer base,
    /// and the inner tar member's name (or the top of its tree).
    pub path: String,
    /// `private.img`, `.`, or the user name for dom0's home.
    pub name: String,
    /// `Volume` for `*.img`, `Home` for a tree (dom0's home, a template's folder `vmN/.`),
    /// `Small` otherwise (`apps`/`kernels` folders turn out to be trees in the inner tar).
    pub kind: FileKind,
    pub pieces: Vec<Piece>,
}

impl LegacyFile {
    /// As the format 4 pipeline takes it (`restore::FileRestore::new`): its pieces as chunks.
    pub fn stored_file(&self) -> StoredFile {
        StoredFile {
            path: self.path.clone(),
            name: self.name.clone(),
            kind: self.kind,
            chunks: self.pieces.iter().map(|p| p.data.clone()).collect(),
            missing: Vec::new(),
        }
    }

    pub fn stored_size(&self) -> u64 {
        self.pieces.iter().map(|p| p.data.size).sum()
    }
}

/// An opened format 3 or 2 backup: header authenticated, qubes listed.
pub struct LegacyBackup<R: ReadAt> {
    src: R,
    header: LegacyHeader,
    passphrase: Vec<u8>,
    files: Vec<PieceFile>,
    qubes: Vec<LegacyQube>,
    complete: bool,
}

/// Reads a piece and proves its HMAC; only then are its bytes returned.
fn verified_piece(src: &(impl ReadAt + ?Sized), piece: &Piece, algorithm: HmacAlgorithm, passphrase: &[u8]) -> Result<Vec<u8>> {
    // The piece first: a backup cut inside it is reported on it, not on its missing `.hmac`.
    let bytes = piece.data.read(src, outer::MAX_MEMBER)?;
    let hmac = piece.hmac.as_ref().ok_or_else(|| Error::truncated(format!("{}.hmac", piece.data.name), Cut::Missing))?;
    let text = hmac.read(src, hmac_text::MAX_HMAC_TEXT)?;
    let tag = hmac_text::parse(&text, &hmac.name)?;
    if !hmac_text::verify(algorithm, passphrase, &bytes, &tag) {
        // The passphrase was proven by the header (or qubes.xml's first piece): this piece was
        // altered, or its HMAC text was.
        return Err(Error::tampered(&piece.data.name, Check::PieceMac(algorithm.name())));
    }
    Ok(bytes)
}

impl<R: ReadAt> LegacyBackup<R> {
    /// Indexes the outer archive, authenticates `backup-header` and lists the qubes.
    pub fn open(src: R, passphrase: &[u8]) -> Result<LegacyBackup<R>> {
        let members = outer::index(&src)?;
        LegacyBackup::from_index(src, members, passphrase)
    }

    /// As [`LegacyBackup::open`], from an index already made (`outer::index`).
    pub fn from_index(src: R, members: Vec<Member>, passphrase: &[u8]) -> Result<LegacyBackup<R>> {
        let header_member = find_one(&members, "backup-header")?;
        let hmac_member = find_one(&members, "backup-header.hmac")?;
        let header = match (header_member, hmac_member) {
            (Some(h), Some(m)) => authenticate_header(&src, h, m, passphrase)?,
            (Some(_), None) => return Err(Error::truncated("backup-header.hmac", Cut::Missing)),
            (None, Some(_)) => return Err(Error::truncated("backup-header", Cut::Missing)),
            (None, None) => headerless(&src, &members, passphrase)?,
        };
        let files = pieces::group(&members)?;
        let complete = outer::ends_cleanly(&src, &members);
        let mut backup = LegacyBackup { src, header, passphrase: passphrase.to_vec(), files, qubes: Vec::new(), complete };
        backup.qubes = backup.read_qubes_xml()?;
        Ok(backup)
    }

    fn read_qubes_xml(&self) -> Result<Vec<LegacyQube>> {
        let file = self
            .files
            .iter()
            .find(|f| f.base == "qubes.xml")
            .ok_or_else(|| Error::truncated("qubes.xml.000", Cut::Missing))?;
        let file = LegacyFile { path: file.base.clone(), name: file.base.clone(), kind: FileKind::Small, pieces: file.pieces.clone() };
        if file.stored_size() > MAX_QUBES_XML_PIECES {
            return Err(Error::unsupported(format!("a qubes.xml of {} bytes stored (Qubes reads at most 1 MiB)", file.stored_size())));
        }
        let mut tar = InnerTar::new();
        let mut xml = OneFile { at: String::new(), name: "qubes.xml", data: Vec::new(), cap: crate::format::qubes_xml::MAX_XML, seen: false };
        let last = file.pieces.last().map(|p| p.data.name.clone()).unwrap_or_default();
        let mut stream = self.stream(&file);
        loop {
            let at = stream.piece_name().to_string();
            xml.at.clone_from(&at);
            if !stream.next_piece(&mut |b| tar.feed(&at, b, &mut xml))? {
                break;
            }
        }
        tar.finish(&last, &mut xml)?;
        if !xml.seen {
            return Err(Error::truncated(&last, Cut::NoMember("qubes.xml".into())));
        }
        qubes_xml::parse(&xml.data)
    }

    /// The backup file.
    pub fn source(&self) -> &R {
        &self.src
    }

    pub fn header(&self) -> &LegacyHeader {
        &self.header
    }

    /// The qubes whose data is in the backup, in qubes.xml's order.
    pub fn qubes(&self) -> &[LegacyQube] {
        &self.qubes
    }

    /// Whether the backup file ends with a whole archive (not cut short).
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Every stored file (qubes.xml included), in backup order.
    pub fn all_files(&self) -> &[PieceFile] {
        &self.files
    }

    /// The stored files of one qube: the piece files under its `backup_path` (whole path
    /// components, so `vm5` never takes `vm50/…`), in backup order.
    pub fn files(&self, qube: &str) -> Result<Vec<LegacyFile>> {
        let q = self.qubes.iter().find(|q| q.name == qube).ok_or_else(|| Error::NotFound { what: format!("qube {qube}") })?;
        let mut out = Vec::new();
        for f in self.files.iter().filter(|f| pieces::under(&q.backup_path, &f.base)) {
            let (name, kind) = if q.class == "AdminVM" {
                if f.base != q.backup_path {
                    return Err(Error::tampered(&f.pieces[0].data.name, Check::Name("dom0's home is one file".into())));
                }
                let user = q.backup_path.rsplit('/').next().unwrap_or_default();
                (user.to_string(), FileKind::Home)
            } else {
                let rest = &f.base[q.backup_path.len()..];
                let name = rest.strip_prefix('/').unwrap_or(rest);
                if name.is_empty() || name.contains('/') || name == ".." {
                    return Err(Error::tampered(&f.pieces[0].data.name, Check::Name(format!("not a file of {}'s folder", q.name))));
                }
                let kind = if name == "." {
                    FileKind::Home
                } else if name.ends_with(".img") {
                    FileKind::Volume
                } else {
                    FileKind::Small
                };
                (name.to_string(), kind)
            };
            out.push(LegacyFile { path: f.base.clone(), name, kind, pieces: f.pieces.clone() });
        }
        Ok(out)
    }

    /// Reads one piece and proves its HMAC (for a runner that reads pieces on threads): the
    /// bytes as stored (ciphertext when encrypted), to hand to [`FileStream::push_verified`].
    pub fn read_piece(&self, piece: &Piece) -> Result<Vec<u8>> {
        verified_piece(&self.src, piece, self.header.hmac_algorithm, &self.passphrase)
    }

    /// One file's inner tar stream, piece by piece.
    pub fn stream<'b>(&'b self, file: &LegacyFile) -> FileStream<'b, R> {
        FileStream::new(self, file.pieces.clone())
    }
}

/// `backup-header` and its HMAC: the first thing checked, so a mismatch means a wrong
/// passphrase (Qubes says "wrong passphrase or corrupted"). Every algorithm is tried, the one
/// the header names first, as Qubes' restore does; the header must then name the one that
/// matched.
fn authenticate_header(src: &(impl ReadAt + ?Sized), h: &Member, m: &Member, passphrase: &[u8]) -> Result<LegacyHeader> {
    let bytes = h.read(src, header::MAX_HEADER)?;
    let text = m.read(src, hmac_text::MAX_HMAC_TEXT)?;
    let tag = hmac_text::parse(&text, &m.name)?;
    let claimed = header::claimed_hmac_algorithm(&bytes);
    let order = claimed.into_iter().chain(HmacAlgorithm::ALL.into_iter().filter(|a| Some(*a) != claimed));
    let matched = order.filter(|a| a.tag_len() == tag.len()).find(|a| hmac_text::verify(*a, passphrase, &bytes, &tag));
    let Some(matched) = matched else {
        return Err(header::unsupported_claim(&bytes).unwrap_or(Error::WrongPassphrase { member: "backup-header".to_string() }));
    };
    let parsed = header::parse(&bytes)?;
    if parsed.hmac_algorithm != matched {
        return Err(Error::tampered(
            "backup-header",
            Check::BackupHeader(format!("hmac-algorithm (it names {}, its HMAC is {})", parsed.hmac_algorithm.name(), matched.name())),
        ));
    }
    Ok(parsed)
}

/// An R2-beta3 backup has no header: Qubes assumed format 2 with SHA1. The first piece of
/// qubes.xml is then the first thing checked (so a mismatch means a wrong passphrase), and its
/// authenticated bytes say whether the volumes are encrypted (`Salted__`) or gzipped.
fn headerless(src: &(impl ReadAt + ?Sized), members: &[Member], passphrase: &[u8]) -> Result<LegacyHeader> {
    let data = find_one(members, "qubes.xml.000")?.ok_or_else(|| Error::not_a_backup("it has no backup-header and no qubes.xml.000"))?;
    let hmac = find_one(members, "qubes.xml.000.hmac")?.ok_or_else(|| Error::truncated("qubes.xml.000.hmac", Cut::Missing))?;
    let piece = Piece { data: data.clone(), hmac: Some(hmac.clone()) };
    let bytes = verified_piece(src, &piece, HmacAlgorithm::Sha1, passphrase).map_err(|e| match e {
        Error::Tampered { at, check: Check::PieceMac(_) } => Error::WrongPassphrase { member: at.member },
        other => other,
    })?;
    header::headerless(bytes.starts_with(b"Salted__"), bytes.starts_with(&[0x1f, 0x8b]))
}

/// Collects the one member `name` of an inner tar (qubes.xml), capped.
struct OneFile<'a> {
    /// The piece being read, for errors.
    at: String,
    name: &'a str,
    data: Vec<u8>,
    cap: u64,
    seen: bool,
}

impl Visitor for OneFile<'_> {
    fn entry(&mut self, entry: &Entry) -> Result<()> {
        let path = String::from_utf8_lossy(&entry.path);
        if self.seen || path.strip_prefix("./").unwrap_or(&path) != self.name || entry.kind != Kind::File {
            return Err(Error::tampered(&self.at, Check::InnerTar(TarFault::Unexpected { found: path.into_owned(), expected: self.name.into() })));
        }
        if entry.size > self.cap {
            return Err(Error::unsupported(format!("a {} of {} bytes (at most {})", self.name, entry.size, self.cap)));
        }
        self.seen = true;
        self.data = vec![0; entry.size as usize];
        Ok(())
    }

    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let end = offset.checked_add(bytes.len() as u64).filter(|&e| e <= self.data.len() as u64);
        let end = end.ok_or_else(|| Error::tampered(&self.at, Check::InnerTar(TarFault::BeyondSize(self.name.into()))))?;
        self.data[offset as usize..end as usize].copy_from_slice(bytes);
        Ok(())
    }

    fn end_entry(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
