//! Ties the layers together: open a backup (index → header → qubes.xml), find a qube's
//! stored files (chunk sequences), and restore one file through the push pipeline
//! verified chunk → decompress → inner tar → sink.

use crate::container::{self, Limits};
use crate::decompress::{self, Compression, Decoder};
use crate::error::{Error, Result};
use crate::header::{self, BackupHeader};
use crate::inner_tar::{Entry, InnerTar, Kind, Visitor};
use crate::outer::{self, Member};
use crate::qubes_xml::{self, Qube};
use crate::read_at::ReadAt;
use crate::sink::{MemorySink, VolumeSink};

/// `backup-header` and its copy are tiny; Qubes caps the copy at 4096 bytes.
const MAX_HEADER: u64 = 4096;
/// Qubes fetches `qubes.xml.000.enc` with a 1 MiB budget.
const MAX_QUBES_XML: u64 = 1 << 20;
/// The first chunk index after `missing[p]` that is not missing. `missing` is ascending and
/// unique, so `missing[j] - j` never decreases and is constant along a run: binary search finds
/// the run's end (a long run costs log n per chunk, not n).
fn next_present(missing: &[usize], p: usize) -> usize {
    let key = missing[p] - p;
    let (mut lo, mut hi) = (p, missing.len());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if missing[mid] - mid == key {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    missing[lo] + 1
}

/// Salvage follows a sequence past at most this many missing chunks (10 TiB at Qubes' 100 MiB).
pub const MAX_MISSING_CHUNKS: usize = 100_000;

/// An opened backup: header verified, qubes listed. Nothing else is read yet.
pub struct Backup<R: ReadAt> {
    src: R,
    members: Vec<Member>,
    header: BackupHeader,
    compression: Compression,
    qubes: Vec<Qube>,
    passphrase: Vec<u8>,
    limits: Limits,
    complete: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A volume image (`private.img`, `root.img`): one sparse member.
    Volume,
    /// Any other single file (`firewall.xml`, `notes.txt`, ...).
    Small,
    /// dom0's home folder: a whole tree.
    Home,
}

/// One file as stored in the backup: its chunk sequence, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    /// `vm5/private.img`, or `dom0-home/user`: also the inner tar member's name.
    pub path: String,
    /// `private.img`, or the user name for dom0's home.
    pub name: String,
    pub kind: FileKind,
    /// The chunks present, in sequence order.
    pub chunks: Vec<Member>,
    /// Sequence indices of chunks missing between present ones, ascending. Always empty from
    /// [`Backup::files`] (a gap is refused there); [`Backup::salvage_files`] keeps such files so
    /// that salvage can restore around the gap.
    pub missing: Vec<usize>,
}

impl StoredFile {
    pub fn encrypted_size(&self) -> u64 {
        self.chunks.iter().map(|c| c.size).sum()
    }
}

/// What a restored file turned out to be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileReport {
    /// Real size (a sparse image's full length; for a tree, the bytes of its files).
    pub size: u64,
    /// Bytes actually stored (data runs).
    pub stored: u64,
    /// Decompressed bytes of the inner tar stream.
    pub stream: u64,
    /// The file turned out to be a folder (only its checks ran).
    pub tree: bool,
}

fn find_one<'m>(members: &'m [Member], name: &str) -> Result<Option<&'m Member>> {
    let mut found = members.iter().filter(|m| m.name == name);
    let first = found.next();
    if found.next().is_some() {
        return Err(Error::tampered(name, "uniqueness (the member appears twice)"));
    }
    Ok(first)
}

/// `vm5/private.img.012.enc` → (`vm5/private.img`, 12); the index is `%03d`, so
/// it has three digits, or more without a leading zero (`.999` → `.1000`).
fn split_chunk_name(name: &str) -> Option<(&str, usize)> {
    let stem = name.strip_suffix(".enc")?;
    let (base, digits) = stem.rsplit_once('.')?;
    let canonical = digits.len() >= 3 && digits.bytes().all(|b| b.is_ascii_digit()) && (digits.len() == 3 || !digits.starts_with('0'));
    if !canonical || base.is_empty() {
        return None;
    }
    Some((base, digits.parse().ok()?))
}

/// The passphrase was already proven right by `backup-header`, so a chunk whose
/// header MAC fails was altered, renamed, or comes from another file or backup: say
/// so, instead of the misleading "passphrase is incorrect" `scrypt dec` prints.
pub fn chunk_error(e: Error) -> Error {
    match e {
        Error::WrongPassphrase { member } => {
            Error::tampered(member, "scrypt header MAC (the chunk was altered, renamed, or belongs to another file or backup)")
        }
        other => other,
    }
}

/// Groups the chunks stored under `path` into files, each a contiguous sequence
/// `.000, .001, …` with no gap or duplicate and equal-sized non-final chunks.
/// `whole`: the chunks of `path` itself form one file of that kind (dom0's home,
/// qubes.xml); otherwise every `path/<name>.NNN.enc` is a file of the folder `path`.
pub fn sequences(members: &[Member], path: &str, whole: Option<FileKind>) -> Result<Vec<StoredFile>> {
    group(members, path, whole, false)
}

/// Like [`sequences`], but a chunk missing between present ones (a dropped or unreadable
/// member) is recorded in [`StoredFile::missing`] instead of refused. Duplicates, odd names and
/// unequal sizes are still refused. For salvage: the restore reports the gap as the same
/// `tampered` damage and, for an uncompressed stream, restores what follows it.
pub fn sequences_with_gaps(members: &[Member], path: &str, whole: Option<FileKind>) -> Result<Vec<StoredFile>> {
    group(members, path, whole, true)
}

fn group(members: &[Member], path: &str, whole: Option<FileKind>, gaps: bool) -> Result<Vec<StoredFile>> {
    let mut files: Vec<StoredFile> = Vec::new();
    let mut indices: Vec<Vec<usize>> = Vec::new();
    for m in members {
        let ours = match m.name.strip_prefix(path) {
            Some(rest) if whole.is_some() => rest.starts_with('.'),
            Some(rest) => rest.strip_prefix('/').is_some_and(|r| !r.contains('/')),
            None => false,
        };
        if !ours {
            continue; // another qube's, or not listed in qubes.xml: never touched
        }
        let (base, index) = split_chunk_name(&m.name)
            .filter(|(b, _)| if whole.is_some() { *b == path } else { b.len() > path.len() + 1 })
            .ok_or_else(|| Error::tampered(&m.name, "member name (format 4 chunks are named <file>.NNN.enc)"))?;
        let at = match files.iter().position(|f| f.path == base) {
            Some(at) => at,
            None => {
                let name = base.rsplit('/').next().unwrap_or(base).to_string();
                let kind = if let Some(kind) = whole {
                    kind
                } else if name.ends_with(".img") {
                    FileKind::Volume
                } else {
                    FileKind::Small
                };
                files.push(StoredFile { path: base.to_string(), name, kind, chunks: Vec::new(), missing: Vec::new() });
                indices.push(Vec::new());
                files.len() - 1
            }
        };
        files[at].chunks.push(m.clone());
        indices[at].push(index);
    }
    for (file, idx) in files.iter_mut().zip(indices) {
        let mut order: Vec<(usize, Member)> = idx.into_iter().zip(file.chunks.drain(..)).collect();
        order.sort_by_key(|(i, _)| *i);
        let mut want = 0;
        for (got, m) in &order {
            if *got < want {
                return Err(Error::tampered(&m.name, "chunk sequence (duplicate chunk)"));
            }
            if *got > want {
                if !gaps {
                    return Err(Error::tampered(&m.name, format!("chunk sequence (chunk .{want:03} is missing before it)")));
                }
                // A hostile name (`.99999999999.enc`) must not make us list billions of chunks.
                if file.missing.len() + (got - want) > MAX_MISSING_CHUNKS {
                    return Err(Error::tampered(&m.name, format!("chunk sequence (more than {MAX_MISSING_CHUNKS} chunks missing before it)")));
                }
                file.missing.extend(want..*got);
            }
            want = got + 1;
        }
        file.chunks = order.into_iter().map(|(_, m)| m).collect();
        let first = file.chunks[0].size;
        let non_final = &file.chunks[..file.chunks.len() - 1];
        if let Some(odd) = non_final.iter().find(|c| c.size != first) {
            return Err(Error::tampered(&odd.name, "chunk sequence (chunks of one file have one size)"));
        }
        // No chunk exceeds 100 MiB + 128 bytes: `outer::index` refused larger members already.
    }
    Ok(files)
}

impl<R: ReadAt> Backup<R> {
    /// Indexes the outer archive, authenticates `backup-header` (one KDF: a wrong
    /// passphrase is reported here, before any chunk is touched) and lists the qubes.
    pub fn open(src: R, passphrase: &[u8], limits: &Limits) -> Result<Backup<R>> {
        let members = outer::index(&src)?;
        let header_member = find_one(&members, "backup-header")?.ok_or_else(|| Error::not_a_backup("it has no backup-header"))?;
        let copy_member = find_one(&members, "backup-header.hmac")?
            .ok_or_else(|| Error::truncated("backup-header.hmac", "missing from the backup"))?;
        let outer_header = header_member.read(&src, MAX_HEADER)?;
        let copy = copy_member.read(&src, MAX_HEADER)?;
        if !copy.starts_with(b"scrypt") {
            // Formats 2 and 3 keep an openssl HMAC text here. The version is read from
            // the unauthenticated header only to say so; nothing is restored from it.
            let text = String::from_utf8_lossy(&outer_header);
            if !text.contains("version=4") {
                return Err(Error::unsupported(
                    "backup format 3 or older (Qubes R2/R3.x); this tool restores format 4 (Qubes R4.0 and later)",
                ));
            }
            return Err(Error::tampered("backup-header.hmac", "scrypt container magic"));
        }
        let header_passphrase = [b"backup-header!".as_slice(), passphrase].concat();
        let authentic = container::open("backup-header.hmac", &header_passphrase, copy, limits)?;
        if authentic != outer_header {
            return Err(Error::tampered("backup-header", "comparison with its authenticated copy"));
        }
        let header = header::parse(&authentic)?;
        let compression = Compression::from_header(header.compressed, header.compression_filter.as_deref())?;
        let complete = outer::ends_cleanly(&src, &members);
        let mut backup =
            Backup { src, members, header, compression, qubes: Vec::new(), passphrase: passphrase.to_vec(), limits: *limits, complete };
        backup.qubes = backup.read_qubes_xml()?;
        Ok(backup)
    }

    fn read_qubes_xml(&self) -> Result<Vec<Qube>> {
        // Qubes reads only `qubes.xml.000.enc`; a qubes.xml split over several (small)
        // chunks is accepted too, within the same 1 MiB budget.
        let file = sequences(&self.members, "qubes.xml", Some(FileKind::Small))?
            .pop()
            .ok_or_else(|| Error::truncated("qubes.xml.000.enc", "missing from the backup"))?;
        if file.encrypted_size() > MAX_QUBES_XML {
            return Err(Error::unsupported(format!("a qubes.xml of {} bytes (Qubes reads at most 1 MiB)", file.encrypted_size())));
        }
        let mut xml = MemorySink::with_cap(qubes_xml::MAX_XML);
        let mut restore = FileRestore::new(&file, self.compression, Target::Volume(Box::new(&mut xml)));
        for chunk in &file.chunks {
            restore.push(&self.open_chunk(chunk)?)?;
        }
        restore.finish()?;
        qubes_xml::parse(&xml.data)
    }

    pub fn header(&self) -> &BackupHeader {
        &self.header
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn source(&self) -> &R {
        &self.src
    }

    /// The qubes in this backup; dom0's home is the qube named `dom0`.
    pub fn qubes(&self) -> &[Qube] {
        &self.qubes
    }

    pub fn qube(&self, name: &str) -> Result<&Qube> {
        self.qubes.iter().find(|q| q.name == name).ok_or_else(|| Error::NotFound { what: format!("qube {name}") })
    }

    /// `backup_id!vm5/private.img.000!passphrase`: binds a chunk to its backup, file and place.
    pub fn chunk_passphrase(&self, chunk: &Member) -> Vec<u8> {
        let stem = chunk.name.strip_suffix(".enc").unwrap_or(&chunk.name);
        [self.header.backup_id.as_bytes(), b"!", stem.as_bytes(), b"!", &self.passphrase].concat()
    }

    /// Reads one chunk, authenticates it whole and decrypts it.
    pub fn open_chunk(&self, chunk: &Member) -> Result<Vec<u8>> {
        let bytes = chunk.read(&self.src, outer::MAX_MEMBER)?;
        container::open(&chunk.name, &self.chunk_passphrase(chunk), bytes, &self.limits).map_err(chunk_error)
    }

    /// The qube's stored files in backup order, each a contiguous chunk sequence
    /// `.000, .001, …` with no gap or duplicate and equal-sized non-final chunks.
    pub fn files(&self, qube: &str) -> Result<Vec<StoredFile>> {
        self.stored_files(qube, false)
    }

    /// Like [`Backup::files`], but a file missing chunks in the middle of its sequence is kept,
    /// with [`StoredFile::missing`] naming them (salvage mode restores around the gap; a plain
    /// restore of such a file fails with the same `tampered` error `files` gives).
    pub fn salvage_files(&self, qube: &str) -> Result<Vec<StoredFile>> {
        self.stored_files(qube, true)
    }

    fn stored_files(&self, qube: &str, gaps: bool) -> Result<Vec<StoredFile>> {
        let qube = self.qube(qube)?;
        let path = qube.backup_path.trim_end_matches('/');
        if path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(Error::unsafe_path(&qube.backup_path, "a backup-path must be a plain relative path"));
        }
        let whole = (qube.class == "AdminVM").then_some(FileKind::Home);
        group(&self.members, path, whole, gaps)
    }

    /// What qubes.xml promises for `qube` but the backup does not hold: its saved
    /// volumes, or anything at all (Qubes stores at least an `empty` file per qube).
    /// A backup cut short loses its last files whole, and this is how that shows.
    pub fn missing(&self, qube: &str, files: &[StoredFile]) -> Result<Vec<Error>> {
        let q = self.qube(qube)?;
        let mut missing: Vec<Error> = q
            .volumes
            .iter()
            .filter(|v| !files.iter().any(|f| &f.name == *v))
            .map(|v| Error::truncated(format!("{}{v}", q.backup_path.trim_end_matches('/').to_string() + "/"), "qubes.xml lists it, the backup does not hold it"))
            .collect();
        if files.is_empty() && missing.is_empty() {
            missing.push(Error::truncated(&q.backup_path, format!("qubes.xml lists {qube}, the backup holds none of its files")));
        }
        Ok(missing)
    }

    /// The backup file ends with a complete archive (false: it was cut short, and
    /// files after the cut are missing whole).
    pub fn complete(&self) -> bool {
        self.complete
    }
}

/// Where one file's restored bytes go.
pub enum Target<'a> {
    /// A single member (volume or small file): `set_len(real size)`, then data runs.
    Volume(Box<dyn VolumeSink + 'a>),
    /// The decompressed inner tar stream itself (dom0 home as one `.tar`), still fully checked.
    Raw(Box<dyn VolumeSink + 'a>),
    /// A tree: every entry of dom0's home, paths already checked to stay under the home.
    Tree(Box<dyn Visitor + 'a>),
    /// Decode and check everything, keep nothing.
    Verify,
}

impl<T: VolumeSink + ?Sized> VolumeSink for &mut T {
    fn set_len(&mut self, len: u64) -> Result<()> {
        (**self).set_len(len)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        (**self).write_at(offset, data)
    }
}

impl<V: Visitor + ?Sized> Visitor for &mut V {
    fn entry(&mut self, entry: &Entry) -> Result<()> {
        (**self).entry(entry)
    }
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        (**self).data(offset, bytes)
    }
    fn end_entry(&mut self) -> Result<()> {
        (**self).end_entry()
    }
}

/// Checks what the inner tar holds against what the outer name promised.
enum Member_<'a> {
    /// Exactly one regular file named `expect`.
    Single { expect: String, sink: Option<Box<dyn VolumeSink + 'a>>, seen: bool },
    /// Entries under `prefix` only.
    Tree { prefix: String, inner: Option<Box<dyn Visitor + 'a>> },
}

fn clean(path: &[u8]) -> String {
    let text = String::from_utf8_lossy(path);
    text.strip_prefix("./").unwrap_or(&text).trim_end_matches('/').to_string()
}

fn under(prefix: &str, path: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|r| r.starts_with('/'))
}

struct Check<'a> {
    member: Member_<'a>,
    report: FileReport,
}

impl Visitor for Check<'_> {
    fn entry(&mut self, entry: &Entry) -> Result<()> {
        let path = clean(&entry.path);
        match &mut self.member {
            Member_::Single { expect, sink, seen } => {
                if *seen {
                    return Err(Error::tampered("", format!("inner tar (a second member {path:?})")));
                }
                if path == *expect && entry.kind == Kind::Dir {
                    // A small "file" that is a folder (R4.0's `apps.templates`): check it as
                    // a tree; a single-file sink gets nothing, and the report says so.
                    self.member = Member_::Tree { prefix: path, inner: None };
                    self.report.tree = true;
                    return Ok(());
                }
                if path != *expect || entry.kind != Kind::File {
                    return Err(Error::tampered("", format!("inner tar (holds {path:?}, expected the file {expect:?})")));
                }
                *seen = true;
                self.report.size = entry.size;
                self.report.stored = entry.stored;
                if let Some(sink) = sink {
                    sink.set_len(entry.size)?;
                }
                Ok(())
            }
            Member_::Tree { prefix, inner } => {
                if path.split('/').any(|c| c == "..") || path.starts_with('/') || !under(prefix, &path) {
                    return Err(Error::unsafe_path(path, format!("dom0 home entries must stay under {prefix}")));
                }
                if entry.kind == Kind::File {
                    self.report.size += entry.size;
                    self.report.stored += entry.stored;
                }
                match inner {
                    Some(v) => v.entry(entry),
                    None => Ok(()),
                }
            }
        }
    }

    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        match &mut self.member {
            Member_::Single { sink: Some(sink), .. } => sink.write_at(offset, bytes),
            Member_::Tree { inner: Some(v), .. } => v.data(offset, bytes),
            _ => Ok(()),
        }
    }

    fn end_entry(&mut self) -> Result<()> {
        match &mut self.member {
            Member_::Tree { inner: Some(v), .. } => v.end_entry(),
            _ => Ok(()),
        }
    }
}

/// Restores one stored file from its verified chunks, pushed in order. Push-based so
/// that the page's coordinator (which never blocks) and the CLI share it.
pub struct FileRestore<'a> {
    path: String,
    decoder: Box<dyn Decoder>,
    tar: InnerTar,
    check: Check<'a>,
    raw: Option<Box<dyn VolumeSink + 'a>>,
    chunk: String,
    chunks_pushed: usize,
    /// Every chunk of the sequence by index, missing ones included (so messages name them).
    chunk_names: Vec<String>,
    /// Indices of chunks missing from the backup not yet passed ([`StoredFile::missing`]).
    missing: Vec<usize>,
    missing_passed: usize,
    /// Plaintext length of a missing chunk: every chunk but the final one has the size of
    /// chunk .000 (a missing chunk is never final: a present one follows it).
    missing_len: Option<u64>,
    compression: Compression,
    salvage: Option<SalvageState>,
}

/// Salvage mode's bookkeeping (see [`FileRestore::salvage`]).
#[derive(Default)]
struct SalvageState {
    /// Image ranges `[start, end)` whose bytes are unknown, ascending.
    lost: Vec<(u64, u64)>,
    /// The first damage met.
    damage: Option<Error>,
    /// The stream cannot be followed any more: later chunks contribute nothing.
    broken: bool,
}

impl SalvageState {
    fn add(&mut self, start: u64, len: u64) {
        add_range(&mut self.lost, start, start.saturating_add(len));
    }
}

/// Adds `[start, end)` to sorted disjoint ranges, merging what touches or overlaps.
fn add_range(ranges: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    if start >= end {
        return;
    }
    let at = ranges.partition_point(|r| r.1 < start);
    let mut merged = (start, end);
    let mut upto = at;
    while upto < ranges.len() && ranges[upto].0 <= merged.1 {
        merged = (merged.0.min(ranges[upto].0), merged.1.max(ranges[upto].1));
        upto += 1;
    }
    ranges.splice(at..upto, [merged]);
}

/// What a salvage restore recovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvaged {
    pub report: FileReport,
    /// Byte ranges `[start, end)` of the image that could not be restored (left as zeros),
    /// ascending, adjacent ranges merged. Holes the authenticated sparse map declares are
    /// known zeros and are not listed.
    pub lost: Vec<(u64, u64)>,
    /// The first damage met (what the exit code and the message report); `None`: the file
    /// restored cleanly and `lost` is empty.
    pub damage: Option<Error>,
    /// The member's header and sparse map were read, so the image's size and layout are known.
    /// False: nothing could be salvaged (the damage hit the start of the stream).
    pub found: bool,
}

impl<'a> FileRestore<'a> {
    pub fn new(file: &StoredFile, compression: Compression, target: Target<'a>) -> FileRestore<'a> {
        let expect = file.path.clone();
        let (member, raw) = match target {
            Target::Tree(v) => (Member_::Tree { prefix: expect, inner: Some(v) }, None),
            Target::Raw(sink) if file.kind != FileKind::Volume => (Member_::Tree { prefix: expect, inner: None }, Some(sink)),
            Target::Raw(sink) => (Member_::Single { expect, sink: None, seen: false }, Some(sink)),
            Target::Volume(sink) => (Member_::Single { expect, sink: Some(sink), seen: false }, None),
            Target::Verify if file.kind == FileKind::Volume => (Member_::Single { expect, sink: None, seen: false }, None),
            Target::Verify => (Member_::Tree { prefix: expect, inner: None }, None),
        };
        FileRestore {
            path: file.path.clone(),
            decoder: decompress::decoder(compression),
            tar: InnerTar::new(),
            check: Check { member, report: FileReport::default() },
            raw,
            chunk: String::new(),
            chunks_pushed: 0,
            chunk_names: {
                let mut present = file.chunks.iter();
                (0..file.chunks.len() + file.missing.len())
                    .map(|i| {
                        if file.missing.binary_search(&i).is_ok() {
                            format!("{}.{i:03}.enc", file.path)
                        } else {
                            present.next().map_or_else(|| file.path.clone(), |c| c.name.clone())
                        }
                    })
                    .collect()
            },
            missing: file.missing.clone(),
            missing_passed: 0,
            missing_len: match file.chunks.as_slice() {
                [first, _, ..] => first.size.checked_sub(container::OVERHEAD as u64),
                _ => None,
            },
            compression,
            salvage: None,
        }
    }

    /// Salvage mode: damage no longer stops the restore. A lost chunk ([`FileRestore::push_lost`])
    /// or a stream error is recorded; for an uncompressed stream the inner tar goes on after a
    /// lost chunk (its stream position is known, and the sparse map places what follows), for a
    /// compressed one everything after the damage is lost. Only sink errors still fail.
    /// End with [`FileRestore::finish_salvage`].
    pub fn salvage(mut self) -> Self {
        self.salvage = Some(SalvageState::default());
        self
    }

    /// Salvage mode: whether later chunks can still contribute (false once the stream is lost:
    /// the caller may stop reading and decrypting chunks).
    pub fn wants_more(&self) -> bool {
        self.salvage.as_ref().is_none_or(|s| !s.broken)
    }

    /// Image ranges lost so far (salvage mode), ascending and merged.
    pub fn lost_ranges(&self) -> &[(u64, u64)] {
        self.salvage.as_ref().map_or(&[], |s| &s.lost)
    }

    /// Salvage mode: the next chunk is unusable (`why`: its MAC failed, it could not be read).
    /// `plaintext_len` is its plaintext length (member size − 128), known from the outer index;
    /// `None` if unknown. Nothing of the chunk is used. Outside salvage mode returns `why`.
    pub fn push_lost(&mut self, plaintext_len: Option<u64>, why: Error) -> Result<()> {
        self.pass_gap()?;
        self.lose(plaintext_len, why)
    }

    /// Chunks missing from the backup just before the next one ([`StoredFile::missing`]) are
    /// the `tampered` damage a strict listing reports; in salvage mode they are lost like an
    /// unusable chunk, so an uncompressed stream is followed past them.
    fn pass_gap(&mut self) -> Result<()> {
        // `missing` is ascending: passed chunks are counted off its front.
        while self.missing.get(self.missing_passed) == Some(&self.chunks_pushed) {
            let i = self.missing[self.missing_passed];
            let next = next_present(&self.missing, self.missing_passed);
            self.missing_passed += 1;
            let after = self.chunk_names.get(next).cloned().unwrap_or_else(|| self.path.clone());
            let why = Error::tampered(after, format!("chunk sequence (chunk .{i:03} is missing before it)"));
            self.lose(self.missing_len, why)?;
        }
        Ok(())
    }

    /// The next chunk of the sequence contributes nothing (see [`FileRestore::push_lost`]).
    fn lose(&mut self, plaintext_len: Option<u64>, why: Error) -> Result<()> {
        self.chunk = self.chunk_names.get(self.chunks_pushed).cloned().unwrap_or_else(|| self.path.clone());
        self.chunks_pushed += 1;
        let Some(s) = self.salvage.as_mut() else { return Err(why) };
        s.damage.get_or_insert(why);
        if s.broken {
            return Ok(());
        }
        let (tar, check) = (&mut self.tar, &mut self.check);
        let synced = match plaintext_len {
            Some(len) if self.compression == Compression::None => {
                check.report.stream += len;
                let r = tar.skip(len, check, &mut |o, l| s.add(o, l));
                if let Err(e) = &r {
                    if matches!(e, Error::Io(_)) {
                        return r.map(|_| ());
                    }
                }
                r.unwrap_or(false)
            }
            _ => false,
        };
        if !synced {
            s.broken = true;
            tar.give_up(&mut |o, l| s.add(o, l));
        }
        Ok(())
    }

    /// Salvage mode: a stream error is damage, recorded, and the rest of the member is lost;
    /// a sink error (I/O) still fails.
    fn absorb(&mut self, r: Result<()>) -> Result<()> {
        let (Some(s), Err(e)) = (self.salvage.as_mut(), &r) else { return r };
        if matches!(e, Error::Io(_)) {
            return r;
        }
        s.damage.get_or_insert_with(|| e.clone());
        if !s.broken {
            s.broken = true;
            self.tar.give_up(&mut |o, l| s.add(o, l));
        }
        Ok(())
    }

    /// Feeds the verified plaintext of the next chunk.
    pub fn push(&mut self, plaintext: &[u8]) -> Result<()> {
        self.pass_gap()?;
        self.chunk = self.chunk_names.get(self.chunks_pushed).cloned().unwrap_or_else(|| self.path.clone());
        self.chunks_pushed += 1;
        if !self.wants_more() {
            return Ok(());
        }
        let r = self.feed(plaintext);
        self.absorb(r)
    }

    fn feed(&mut self, plaintext: &[u8]) -> Result<()> {
        let (tar, check, raw) = (&mut self.tar, &mut self.check, &mut self.raw);
        let mut stream = check.report.stream;
        let result = self.decoder.feed(plaintext, &mut |out: &[u8]| take_decoded(out, raw, &mut stream, tar, check));
        check.report.stream = stream;
        result.map_err(|e| e.in_member(&self.chunk))
    }

    /// Salvage mode's end: like [`FileRestore::finish`], but damage (a stream that ends early,
    /// a lost chunk) is reported in [`Salvaged`] rather than failing; only sink errors fail.
    pub fn finish_salvage(mut self) -> Result<Salvaged> {
        if self.salvage.is_none() {
            self.salvage = Some(SalvageState::default());
        }
        if self.wants_more() {
            let r = self.end_stream();
            self.absorb(r)?;
        }
        let found = match &self.check.member {
            Member_::Single { seen, .. } => *seen,
            Member_::Tree { .. } => true,
        };
        let s = self.salvage.take().unwrap_or_default();
        let mut report = self.check.report;
        if !found {
            report.size = 0;
        }
        let lost = if found { s.lost } else { Vec::new() };
        Ok(Salvaged { report, lost, damage: s.damage, found })
    }

    /// Ends the stream: the compressor and the inner tar must both be complete.
    pub fn finish(mut self) -> Result<FileReport> {
        self.end_stream()?;
        Ok(self.check.report)
    }

    fn end_stream(&mut self) -> Result<()> {
        let last = self.chunk_names.last().cloned().unwrap_or_else(|| self.path.clone());
        let (tar, check, raw) = (&mut self.tar, &mut self.check, &mut self.raw);
        let mut stream = check.report.stream;
        self.decoder
            .finish(&mut |out: &[u8]| take_decoded(out, raw, &mut stream, tar, check))
            .map_err(|e| e.in_member(&last))?;
        check.report.stream = stream;
        tar.finish(check).map_err(|e| e.in_member(&last))?;
        if let Member_::Single { seen: false, expect, .. } = &check.member {
            return Err(Error::truncated(&last, format!("the stream holds no {expect}")));
        }
        if let Some(raw) = raw.as_mut() {
            raw.set_len(stream)?;
        }
        Ok(())
    }
}

/// Decompressed bytes go to the raw sink (if any) at their stream offset, then to the inner tar.
fn take_decoded<'a>(
    out: &[u8],
    raw: &mut Option<Box<dyn VolumeSink + 'a>>,
    stream: &mut u64,
    tar: &mut InnerTar,
    check: &mut Check<'a>,
) -> Result<()> {
    if let Some(raw) = raw.as_mut() {
        raw.write_at(*stream, out)?;
    }
    *stream += out.len() as u64;
    tar.feed(out, check)
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};

    /// Where a file's restore stands, for progress displays.
    #[derive(Clone, Debug)]
    pub struct Progress {
        pub chunks_done: usize,
        pub chunks_total: usize,
        /// Encrypted bytes processed so far, and in all.
        pub bytes_done: u64,
        pub bytes_total: u64,
    }

    /// How many chunk workers fit: one KDF each (128·r·N bytes) plus a chunk buffer,
    /// within `memory_budget`, and no more than the CPUs.
    pub fn worker_count<R: ReadAt>(backup: &Backup<R>, file: &StoredFile, memory_budget: u64) -> usize {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mut head = [0u8; container::HEADER_LEN];
        let kdf = file
            .chunks
            .first()
            .filter(|c| c.size as usize >= container::HEADER_LEN && !c.cut)
            .and_then(|c| backup.source().read_at(c.offset, &mut head).ok())
            .and_then(|_| container::Header::parse("", &head).ok())
            .map(|h| h.kdf_memory())
            .unwrap_or(1 << 30);
        let per_worker = kdf.saturating_add(2 * file.chunks.first().map_or(0, |c| c.size));
        (memory_budget / per_worker.max(1)).clamp(1, cpus as u64) as usize
    }

    /// Restores one file: chunks are opened (KDF, MAC, decryption) by `workers` threads
    /// in parallel and pushed in order; at most `workers + 1` chunks wait in memory.
    pub fn restore_file<R: ReadAt + Sync>(
        backup: &Backup<R>,
        file: &StoredFile,
        target: Target<'_>,
        workers: usize,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<FileReport> {
        let mut restore = FileRestore::new(file, backup.compression(), target);
        each_chunk(backup, file, workers, progress, &mut |_, opened| {
            restore.push(&opened?)?;
            Ok(true)
        })?;
        restore.finish()
    }

    /// Like [`restore_file`] in salvage mode ([`FileRestore::salvage`]): a chunk that cannot be
    /// opened (MAC, read error, cut short) contributes nothing and is reported lost; everything
    /// that can be placed is restored. Fails only when the sink fails.
    pub fn salvage_file<R: ReadAt + Sync>(
        backup: &Backup<R>,
        file: &StoredFile,
        target: Target<'_>,
        workers: usize,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Salvaged> {
        let mut restore = FileRestore::new(file, backup.compression(), target).salvage();
        each_chunk(backup, file, workers, progress, &mut |i, opened| {
            match opened {
                Ok(plaintext) => restore.push(&plaintext)?,
                Err(e) => {
                    let len = file.chunks[i].size.checked_sub(container::OVERHEAD as u64);
                    restore.push_lost(len, e)?
                }
            }
            Ok(restore.wants_more())
        })?;
        restore.finish_salvage()
    }

    /// Opens the chunks of `file` on `workers` threads and hands them to `each` in order
    /// (`each` returns false to stop early).
    fn each_chunk<R: ReadAt + Sync>(
        backup: &Backup<R>,
        file: &StoredFile,
        workers: usize,
        progress: &mut dyn FnMut(&Progress),
        each: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<bool>,
    ) -> Result<()> {
        let total = file.chunks.len();
        let window = workers + 1;
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let state = (Mutex::new((0usize, BTreeMap::<usize, Result<Vec<u8>>>::new())), Condvar::new());
        let mut p = Progress { chunks_done: 0, chunks_total: total, bytes_done: 0, bytes_total: file.encrypted_size() };
        progress(&p);
        std::thread::scope(|s| {
            for _ in 0..workers.max(1) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total || stop.load(Ordering::SeqCst) {
                        return;
                    }
                    {
                        let (lock, cv) = &state;
                        let mut g = lock.lock().unwrap();
                        while i >= g.0 + window && !stop.load(Ordering::SeqCst) {
                            g = cv.wait(g).unwrap();
                        }
                    }
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let opened = backup.open_chunk(&file.chunks[i]);
                    let (lock, cv) = &state;
                    lock.lock().unwrap().1.insert(i, opened);
                    cv.notify_all();
                });
            }
            let result: Result<()> = (|| {
                for i in 0..total {
                    let opened = {
                        let (lock, cv) = &state;
                        let mut g = lock.lock().unwrap();
                        loop {
                            if let Some(r) = g.1.remove(&i) {
                                break r;
                            }
                            g = cv.wait(g).unwrap();
                        }
                    };
                    let more = each(i, opened)?;
                    let (lock, cv) = &state;
                    lock.lock().unwrap().0 = i + 1;
                    cv.notify_all();
                    p.chunks_done = i + 1;
                    p.bytes_done += file.chunks[i].size;
                    progress(&p);
                    if !more {
                        break;
                    }
                }
                Ok(())
            })();
            stop.store(true, Ordering::SeqCst);
            state.1.notify_all();
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_ranges_are_kept_sorted_and_merged() {
        let mut r = Vec::new();
        for (a, b) in [(10, 20), (30, 40), (20, 25), (0, 5), (5, 10), (35, 50), (60, 60), (24, 31)] {
            add_range(&mut r, a, b);
        }
        assert_eq!(r, vec![(0, 50)]);
        add_range(&mut r, 70, 80);
        add_range(&mut r, 51, 52);
        assert_eq!(r, vec![(0, 50), (51, 52), (70, 80)]);
    }

    #[test]
    fn a_gap_is_refused_by_the_strict_listing_and_recorded_by_the_salvage_one() {
        let m = |name: &str, size| Member { name: name.into(), offset: 0, size, cut: false };
        let members = [m("vm5/a.img.000.enc", 228), m("vm5/a.img.002.enc", 228), m("vm5/a.img.005.enc", 140)];
        let e = sequences(&members, "vm5", None).unwrap_err();
        assert_eq!(e, Error::tampered("vm5/a.img.002.enc", "chunk sequence (chunk .001 is missing before it)"));
        let files = sequences_with_gaps(&members, "vm5", None).unwrap();
        assert_eq!(files[0].missing, [1, 3, 4]);
        assert_eq!(files[0].chunks.len(), 3);
        // still refused: a duplicate, and present non-final chunks of different sizes
        let dup = [m("vm5/a.img.000.enc", 228), m("vm5/a.img.002.enc", 228), m("vm5/a.img.002.enc", 228)];
        assert!(sequences_with_gaps(&dup, "vm5", None).is_err());
        let odd = [m("vm5/a.img.000.enc", 228), m("vm5/a.img.002.enc", 200), m("vm5/a.img.003.enc", 10)];
        assert!(sequences_with_gaps(&odd, "vm5", None).is_err());
    }

    #[test]
    fn runs_of_missing_chunks_end_where_a_present_one_follows() {
        let missing = [1, 3, 4, 5, 9];
        let got: Vec<usize> = (0..missing.len()).map(|p| next_present(&missing, p)).collect();
        assert_eq!(got, [2, 6, 6, 6, 10]);
        let long: Vec<usize> = (7..7 + MAX_MISSING_CHUNKS).collect();
        assert_eq!(next_present(&long, 0), 7 + MAX_MISSING_CHUNKS);
    }

    /// Found by fuzz/chunk_sequence (a CI timeout): one chunk named `.230193.enc` made the gap
    /// listing enumerate every index before it; a huge index must be refused at once.
    #[test]
    fn a_gap_of_absurd_length_is_refused() {
        let m = |name: &str| Member { name: name.into(), offset: 0, size: 640, cut: false };
        let members = [m("vm5/a.img.000.enc"), m("vm5/a.img.99999999999.enc")];
        let e = sequences_with_gaps(&members, "vm5", None).unwrap_err();
        assert_eq!(e.class(), "tampered");
        assert!(e.to_string().contains("more than 100000 chunks missing"), "{e}");
        let ok = [m("vm5/a.img.000.enc"), m("vm5/a.img.5000.enc")];
        assert_eq!(sequences_with_gaps(&ok, "vm5", None).unwrap()[0].missing.len(), 4999);
    }

    #[test]
    fn chunk_names_follow_qubes_numbering() {
        assert_eq!(split_chunk_name("vm5/private.img.000.enc"), Some(("vm5/private.img", 0)));
        assert_eq!(split_chunk_name("vm5/private.img.999.enc"), Some(("vm5/private.img", 999)));
        assert_eq!(split_chunk_name("vm5/private.img.1000.enc"), Some(("vm5/private.img", 1000)));
        assert_eq!(split_chunk_name("vm5/private.img.0001.enc"), None);
        assert_eq!(split_chunk_name("vm5/private.img.01.enc"), None);
        assert_eq!(split_chunk_name("vm5/private.img.000"), None);
        assert_eq!(split_chunk_name(".000.enc"), None);
    }
}
