//! Ties the layers together: open a backup (index → header → qubes.xml), find a qube's
//! stored files (chunk sequences), and restore one file through the push pipeline
//! verified chunk → decompress → inner tar → sink.



mod pipeline;
pub use pipeline::*;
pub mod plan;
pub use plan::{QubePlan, PlannedFile, WorkerPlan, DEFAULT_MEMORY_BUDGET};
mod legacy;
#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

pub use crate::format::chunks::{chunk_error, FileKind, StoredFile, MAX_MISSING_CHUNKS};
use crate::format::chunks::{self, sequences};
use crate::format::container::{self, Limits};
use crate::format::decompress::Compression;
use crate::error::{Check, Cut, Error, Limit, Result};
use crate::format::header::{self, BackupHeader};
use crate::format::outer::{self, find_one, Member};
use crate::format::qubes_xml::{self, Qube};
use crate::read_at::ReadAt;
use crate::output::sink::MemorySink;

/// `backup-header` and its copy are tiny; Qubes caps the copy at 4096 bytes.
const MAX_HEADER: u64 = 4096;
/// Qubes fetches `qubes.xml.000.enc` with a 1 MiB budget.
const MAX_QUBES_XML: u64 = 1 << 20;

/// An opened backup: header verified, qubes listed. Nothing else is read yet.
pub struct Backup<R: ReadAt> {
    src: Source<R>,
    members: Vec<Member>,
    header: BackupHeader,
    compression: Compression,
    qubes: Vec<Qube>,
    passphrase: Vec<u8>,
    limits: Limits,
    complete: bool,
}

/// The backup file; a format 3 or 2 backup's is held by its reader ([`LegacyBackup`]).
enum Source<R: ReadAt> {
    V4(R),
    Legacy(Box<crate::format::legacy::LegacyBackup<R>>),
}

impl<R: ReadAt> Source<R> {
    fn get(&self) -> &R {
        match self {
            Source::V4(src) => src,
            Source::Legacy(b) => b.source(),
        }
    }
}


/// Open, stage 1: the outer archive indexed and the header members read; nothing is
/// authenticated yet. Stage 2 is [`Indexed::authenticate`], stage 3 [`Authenticated::read_qubes_xml`];
/// [`Backup::open`] runs them in a row. They are apart so that qubes.xml's KDF can run beside
/// the header's (a thread natively, a chunk worker in the page).
pub struct Indexed<R: ReadAt> {
    src: R,
    members: Vec<Member>,
    outer_header: Vec<u8>,
    copy: Vec<u8>,
}

/// The first chunk of qubes.xml, to open beside the header's KDF: `backup_id` is read from the
/// unauthenticated header, so what it opens may be used only once the header is proven (a
/// forged id only yields keys that fail).
pub struct EarlyChunk {
    pub member: Member,
    pub backup_id: String,
    /// Its scrypt header, parameters checked against the caps.
    pub header: container::Header,
    pub kdf_memory: u64,
}

/// What was done early for qubes.xml's first chunk.
pub enum Early {
    /// Its keys (natively: the chunk is read and opened with them).
    Keys(container::Keys),
    /// Its plaintext, opened and MAC-checked elsewhere (the page's chunk worker).
    Plaintext(Vec<u8>),
}

impl<R: ReadAt> Indexed<R> {
    /// Indexes the outer archive (headers only) and reads the two header members.
    pub fn index(src: R) -> Result<Indexed<R>> {
        let members = outer::index(&src)?;
        Indexed::from_members(src, members)
    }

    pub(crate) fn from_members(src: R, members: Vec<Member>) -> Result<Indexed<R>> {
        let header_member = find_one(&members, "backup-header")?.ok_or_else(|| Error::not_a_backup("it has no backup-header"))?;
        let copy_member = find_one(&members, "backup-header.hmac")?
            .ok_or_else(|| Error::truncated("backup-header.hmac", Cut::Missing))?;
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
            return Err(Error::tampered("backup-header.hmac", Check::ScryptMagic));
        }
        Ok(Indexed { src, members, outer_header, copy })
    }

    /// qubes.xml's first chunk, when it can be opened early: it exists whole, its scrypt header
    /// (96 bytes, the only chunk bytes read before the passphrase is proven) parses, and its
    /// parameters pass the caps. `None`: open it the usual way, after the header.
    pub fn early_qubes_xml(&self, limits: &Limits) -> Option<EarlyChunk> {
        let backup_id = header::parse(&self.outer_header).ok()?.backup_id;
        let chunk = self.members.iter().find(|m| m.name == "qubes.xml.000.enc")?;
        let parsed = chunks::scrypt_head(&self.src, chunk)?;
        parsed.check(&chunk.name, limits).ok()?;
        let kdf_memory = parsed.kdf_plan(limits)?.memory;
        Some(EarlyChunk { member: chunk.clone(), backup_id, header: parsed, kdf_memory })
    }

    /// Authenticates `backup-header` (one KDF: a wrong passphrase is reported here, before any
    /// chunk is read) and parses it.
    pub fn authenticate(self, passphrase: &[u8], limits: &Limits) -> Result<Authenticated<R>> {
        let header = container::Header::parse(HEADER_COPY, &self.copy)?;
        let keys = container::derive_keys(HEADER_COPY, &header_passphrase(passphrase), &header, limits)?;
        self.authenticated_by(&keys, passphrase, limits)
    }

    /// The header's KDF as lanes, to run elsewhere (the page's workers): the parameters are
    /// checked before anything is allocated. Then [`Indexed::authenticate_lanes`].
    pub fn header_lanes(&self, passphrase: &[u8], limits: &Limits) -> Result<container::LaneWork> {
        let header = container::Header::parse(HEADER_COPY, &self.copy)?;
        container::begin_kdf(HEADER_COPY, &header_passphrase(passphrase), &header, limits)
    }

    /// [`Indexed::authenticate`] with the lanes of [`Indexed::header_lanes`] run elsewhere.
    pub fn authenticate_lanes(self, passphrase: &[u8], work: &container::LaneWork, limits: &Limits) -> Result<Authenticated<R>> {
        let header = container::Header::parse(HEADER_COPY, &self.copy)?;
        let keys = container::keys_from_lanes(HEADER_COPY, &header_passphrase(passphrase), &header, work)?;
        self.authenticated_by(&keys, passphrase, limits)
    }

    fn authenticated_by(self, keys: &container::Keys, passphrase: &[u8], limits: &Limits) -> Result<Authenticated<R>> {
        let authentic = container::open_with(HEADER_COPY, keys, self.copy)?;
        if authentic != self.outer_header {
            return Err(Error::tampered("backup-header", Check::HeaderCopy));
        }
        let header = header::parse(&authentic)?;
        let compression = Compression::from_header(header.compressed, header.compression_filter.as_deref())?;
        let complete = outer::ends_cleanly(&self.src, &self.members);
        let (src, members) = (self.src, self.members);
        let src = Source::V4(src);
        Ok(Authenticated(Backup { src, members, header, compression, qubes: Vec::new(), passphrase: passphrase.to_vec(), limits: *limits, complete }))
    }
}

const HEADER_COPY: &str = "backup-header.hmac";

/// The header's container is bound to its name (FORMAT.md §4).
fn header_passphrase(passphrase: &[u8]) -> Vec<u8> {
    [b"backup-header!".as_slice(), passphrase].concat()
}

/// Open, stage 2 done: the header is proven; qubes.xml is next.
pub struct Authenticated<R: ReadAt>(Backup<R>);

impl<R: ReadAt> Authenticated<R> {
    /// The backup id from the authenticated header.
    pub fn backup_id(&self) -> &str {
        &self.0.header.backup_id
    }

    /// Reads qubes.xml and lists the qubes. `early`: what was done beside the header's KDF for
    /// the chunk it names, used only if it names qubes.xml's first chunk under this backup's
    /// proven id; anything else (or a failed early attempt) is opened the usual way.
    pub fn read_qubes_xml(self, early: Option<(EarlyChunk, Result<Early>)>) -> Result<Backup<R>> {
        let mut backup = self.0;
        let early = early.filter(|(c, _)| c.backup_id == backup.header.backup_id).map(|(c, r)| (c.member.name, r));
        backup.qubes = backup.qubes_from_xml(early)?;
        Ok(backup)
    }
}

impl<R: ReadAt> Backup<R> {
    /// Indexes the outer archive, authenticates `backup-header` (one KDF: a wrong
    /// passphrase is reported here, before any chunk is touched) and lists the qubes.
    /// Natively, qubes.xml's KDF runs on a thread beside the header's.
    /// Formats 3 and 2 (Qubes R2, R3.x) open here too (see `restore/legacy.rs`).
    pub fn open(src: R, passphrase: &[u8], limits: &Limits) -> Result<Backup<R>> {
        let members = outer::index(&src)?;
        if crate::format::legacy::is_legacy(&src, &members) {
            return Backup::open_legacy(src, members, passphrase, limits);
        }
        let indexed = Indexed::from_members(src, members)?;
        let early = indexed.early_qubes_xml(limits).and_then(|c| early_keys(c, passphrase, limits));
        let authenticated = indexed.authenticate(passphrase, limits)?;
        let early = early.and_then(|(c, job)| Some((c, job.join().ok()?.map(Early::Keys))));
        authenticated.read_qubes_xml(early)
    }

    /// `early`: qubes.xml's first chunk's keys or plaintext, from beside the header's KDF.
    fn qubes_from_xml(&self, early: Option<(String, Result<Early>)>) -> Result<Vec<Qube>> {
        // Qubes reads only `qubes.xml.000.enc`; a qubes.xml split over several (small)
        // chunks is accepted too, within the same 1 MiB budget.
        let file = sequences(&self.members, "qubes.xml", Some(FileKind::Small))?
            .pop()
            .ok_or_else(|| Error::truncated("qubes.xml.000.enc", Cut::Missing))?;
        if file.encrypted_size() > MAX_QUBES_XML {
            return Err(Error::over_limit("qubes.xml", Limit::QubesXml, file.encrypted_size(), MAX_QUBES_XML));
        }
        let mut xml = MemorySink::with_cap(qubes_xml::MAX_XML);
        let mut restore = FileRestore::new(&file, self.compression, Target::Volume(Box::new(&mut xml)));
        let mut early = early;
        for chunk in &file.chunks {
            let plaintext = match early.take() {
                // The early KDF is only a head start: if it failed in any way (out of memory
                // beside the header's KDF, say), the chunk is opened again the usual way, which
                // reports its own error.
                Some((name, Ok(Early::Keys(keys)))) if name == chunk.name => {
                    let bytes = chunk.read(self.source(), outer::MAX_MEMBER)?;
                    container::open_with(&chunk.name, &keys, bytes).map_err(chunk_error)?
                }
                Some((name, Ok(Early::Plaintext(plaintext)))) if name == chunk.name => plaintext,
                _ => self.open_chunk(chunk)?,
            };
            restore.push(&plaintext)?;
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

    /// The passphrase the backup was opened with (the page hands it to its chunk workers).
    pub fn passphrase(&self) -> &[u8] {
        &self.passphrase
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn source(&self) -> &R {
        self.src.get()
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
        chunks::chunk_passphrase(&self.header.backup_id, &chunk.name, &self.passphrase)
    }

    /// Reads one chunk, authenticates it whole and decrypts it.
    pub fn open_chunk(&self, chunk: &Member) -> Result<Vec<u8>> {
        let bytes = chunk.read(self.source(), outer::MAX_MEMBER)?;
        container::open(&chunk.name, &self.chunk_passphrase(chunk), bytes, &self.limits).map_err(chunk_error)
    }

    /// The qube's stored files in backup order, each a contiguous chunk sequence
    /// `.000, .001, …` with no gap or duplicate and equal-sized non-final chunks.
    pub fn files(&self, qube: &str) -> Result<Vec<StoredFile>> {
        if let Some(legacy) = self.legacy() {
            return Ok(legacy.files(qube)?.iter().map(|f| f.stored_file()).collect());
        }
        self.stored_files(qube, false)
    }

    /// Like [`Backup::files`], but a file missing chunks in the middle of its sequence is kept,
    /// with [`StoredFile::missing`] naming them (salvage mode restores around the gap; a plain
    /// restore of such a file fails with the same `tampered` error `files` gives).
    pub fn salvage_files(&self, qube: &str) -> Result<Vec<StoredFile>> {
        if self.legacy().is_some() {
            return Err(legacy::no_salvage());
        }
        self.stored_files(qube, true)
    }

    fn stored_files(&self, qube: &str, gaps: bool) -> Result<Vec<StoredFile>> {
        let qube = self.qube(qube)?;
        let path = qube.backup_path.trim_end_matches('/');
        if path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(Error::unsafe_path(&qube.backup_path, "a backup-path must be a plain relative path"));
        }
        let whole = (qube.class == "AdminVM").then_some(FileKind::Home);
        if gaps { chunks::sequences_with_gaps(&self.members, path, whole) } else { sequences(&self.members, path, whole) }
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
            .map(|v| Error::truncated(format!("{}/{v}", q.backup_path.trim_end_matches('/')), Cut::NotHeld))
            .collect();
        if files.is_empty() && missing.is_empty() {
            missing.push(Error::truncated(&q.backup_path, Cut::QubeNotHeld(qube.to_string())));
        }
        Ok(missing)
    }

    /// The backup file ends with a complete archive (false: it was cut short, and
    /// files after the cut are missing whole).
    pub fn complete(&self) -> bool {
        self.complete
    }
}

/// Starts deriving the keys of qubes.xml's first chunk on a thread of its own, when two KDFs
/// fit (two cores, and twice the KDF memory within the default budget); `None` otherwise.
#[cfg(not(target_arch = "wasm32"))]
fn early_keys(
    chunk: EarlyChunk,
    passphrase: &[u8],
    limits: &Limits,
) -> Option<(EarlyChunk, std::thread::JoinHandle<Result<container::Keys>>)> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 || chunk.kdf_memory.saturating_mul(2) > plan::DEFAULT_MEMORY_BUDGET {
        return None;
    }
    let pass = chunks::chunk_passphrase(&chunk.backup_id, &chunk.member.name, passphrase);
    let (name, limits) = (chunk.member.name.clone(), *limits);
    let header = chunk.header.clone();
    let job = std::thread::Builder::new()
        .name("qubes.xml KDF".into())
        .spawn(move || container::derive_keys(&name, &pass, &header, &limits))
        .ok()?;
    Some((chunk, job))
}

/// The page runs one KDF per worker; its coordinator has no threads (it hands the chunk to a
/// chunk worker instead: `wasm::PendingBackup`).
#[cfg(target_arch = "wasm32")]
fn early_keys(
    _: EarlyChunk,
    _: &[u8],
    _: &Limits,
) -> Option<(EarlyChunk, std::thread::JoinHandle<Result<container::Keys>>)> {
    None
}
