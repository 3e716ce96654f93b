//! Ties the layers together: open a backup (index → header → qubes.xml), find a qube's
//! stored files (chunk sequences), and restore one file through the push pipeline
//! verified chunk → decompress → inner tar → sink.



mod pipeline;
pub use pipeline::*;
pub mod plan;
pub use plan::{QubePlan, PlannedFile, WorkerPlan, DEFAULT_MEMORY_BUDGET};
#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

pub use crate::format::chunks::{chunk_error, FileKind, StoredFile, MAX_MISSING_CHUNKS};
use crate::format::chunks::{self, sequences};
use crate::format::container::{self, Limits};
use crate::format::decompress::Compression;
use crate::error::{Error, Result};
use crate::format::header::{self, BackupHeader};
use crate::format::outer::{self, Member};
use crate::format::qubes_xml::{self, Qube};
use crate::read_at::ReadAt;
use crate::output::sink::MemorySink;

/// `backup-header` and its copy are tiny; Qubes caps the copy at 4096 bytes.
const MAX_HEADER: u64 = 4096;
/// Qubes fetches `qubes.xml.000.enc` with a 1 MiB budget.
const MAX_QUBES_XML: u64 = 1 << 20;

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

fn find_one<'m>(members: &'m [Member], name: &str) -> Result<Option<&'m Member>> {
    let mut found = members.iter().filter(|m| m.name == name);
    let first = found.next();
    if found.next().is_some() {
        return Err(Error::tampered(name, "uniqueness (the member appears twice)"));
    }
    Ok(first)
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
        // qubes.xml's KDF starts now, beside the header's (two cores, two KDFs): only its
        // scrypt header is read, its parameters are capped before anything is allocated, and
        // its keys are used only once backup-header is proven (they bind the backup id read
        // here, unauthenticated, so a forged id only yields keys that fail).
        let early = early_qubes_xml_keys(&src, &members, &outer_header, passphrase, limits);
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
        let early = early.and_then(|(name, job)| Some((name, job.join().ok()?)));
        backup.qubes = backup.read_qubes_xml(early)?;
        Ok(backup)
    }

    /// `early`: the keys of qubes.xml's first chunk, derived while the header was checked.
    fn read_qubes_xml(&self, early: Option<(String, Result<container::Keys>)>) -> Result<Vec<Qube>> {
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
        let mut early = early;
        for chunk in &file.chunks {
            let plaintext = match early.take() {
                // The early KDF is only a head start: if it failed in any way (out of memory
                // beside the header's KDF, say), the chunk is opened again the usual way, which
                // reports its own error.
                Some((name, Ok(keys))) if name == chunk.name => {
                    let bytes = chunk.read(&self.src, outer::MAX_MEMBER)?;
                    container::open_with(&chunk.name, &keys, bytes).map_err(chunk_error)?
                }
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
        chunks::chunk_passphrase(&self.header.backup_id, &chunk.name, &self.passphrase)
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

/// Starts deriving the keys of `qubes.xml.000.enc` on a thread of its own, when two KDFs fit
/// (two cores, and twice the KDF memory within the default budget). Anything unusual (no
/// such chunk, an unparsable header, parameters over the caps) starts nothing: the sequential
/// path then reports it in its usual order, after the header.
#[cfg(not(target_arch = "wasm32"))]
fn early_qubes_xml_keys<R: ReadAt>(
    src: &R,
    members: &[Member],
    outer_header: &[u8],
    passphrase: &[u8],
    limits: &Limits,
) -> Option<(String, std::thread::JoinHandle<Result<container::Keys>>)> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let backup_id = header::parse(outer_header).ok()?.backup_id;
    let chunk = members.iter().find(|m| m.name == "qubes.xml.000.enc" && !m.cut)?;
    let mut head = [0u8; container::HEADER_LEN];
    if chunk.size < container::OVERHEAD as u64 || src.read_at(chunk.offset, &mut head).is_err() {
        return None;
    }
    let parsed = container::Header::parse(&chunk.name, &head).ok()?;
    parsed.check(&chunk.name, limits).ok()?;
    let memory = parsed.kdf_plan(limits)?.memory;
    if cpus < 2 || memory.saturating_mul(2) > plan::DEFAULT_MEMORY_BUDGET {
        return None;
    }
    let pass = chunks::chunk_passphrase(&backup_id, &chunk.name, passphrase);
    let (name, limits) = (chunk.name.clone(), *limits);
    let job = std::thread::Builder::new()
        .name("qubes.xml KDF".into())
        .spawn(move || container::derive_keys(&name, &pass, &parsed, &limits))
        .ok()?;
    Some((chunk.name.clone(), job))
}

/// The page runs one KDF per worker; its coordinator has no threads.
#[cfg(target_arch = "wasm32")]
fn early_qubes_xml_keys<R: ReadAt>(
    _: &R,
    _: &[Member],
    _: &[u8],
    _: &[u8],
    _: &Limits,
) -> Option<(String, std::thread::JoinHandle<Result<container::Keys>>)> {
    None
}
