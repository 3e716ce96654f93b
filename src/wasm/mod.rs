//! The browser adapter: a thin wasm-bindgen layer over the core, used by the page's workers.
//!
//! - The coordinator worker opens the backup through a [`ReadAt`] over a JS `Blob`/`File`
//!   (`File.slice` + `FileReaderSync`, synchronous in workers), lists qubes and files, and runs
//!   one [`FileRestore`] per recovered file ([`Restorer`]), whose sink calls back into JS.
//! - Chunk workers open chunks through [`ChunkOpener`] (KDF, header MAC, whole-file MAC,
//!   decryption; the passphrase reaches each worker once).
//! - [`BackupHandle::plan_json`] decides what a restore does (files, names, worker plan,
//!   report order); the page's JS only follows it.
//!
//! Every error reaches JS as an object `{class, message}`: `class` is [`Error::class`], and
//! `message` the core's one-sentence `Display`.

use crate::format::container::Limits;
use crate::error::{Check, Cut, Error, Location, Result};
use crate::read_at::ReadAt;
use crate::restore::{Authenticated, Backup, Early, EarlyChunk, FileKind, FileReport, FileRestore, Indexed, StoredFile, Target, WorkerPlan};
use crate::output::sink::VolumeSink;
use js_sys::{Function, Object, Reflect, Uint8Array};
use serde_json::json;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use web_sys::{Blob, FileReaderSync};

mod archive;
mod browse;
mod chunk;
mod lanes;
pub use browse::{Browser, FileStream, ZipStream};
pub use chunk::{ChunkKdf, ChunkKeys, ChunkOpener};
pub use lanes::{kdf_lane, kdf_warm_up};
pub use archive::{archive_by_default, archive_end, archive_folder, archive_member, private_window_risk};

pub(crate) fn to_js(e: Error) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"class".into(), &e.class().into());
    let _ = Reflect::set(&o, &"message".into(), &e.to_string().into());
    o.into()
}

/// A JS exception as a core error: a sink that failed (quota, disk) or a read that failed.
fn js_io(what: &str, e: JsValue) -> Error {
    let name = Reflect::get(&e, &"name".into()).ok().and_then(|m| m.as_string()).unwrap_or_default();
    let detail = Reflect::get(&e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| if name.is_empty() { "no details".into() } else { name.clone() });
    let what = if what.is_empty() { String::new() } else { format!("{what}: ") };
    match name.as_str() {
        // The page's sinks throw this with a whole sentence (what did not fit, what to do).
        "QuotaExceededError" if detail.contains(';') => Error::Io(detail),
        "QuotaExceededError" => Error::Io(format!("{what}the browser ran out of storage space ({detail}); free disk space, or restore fewer qubes at once")),
        "NotReadableError" | "NotFoundError" => Error::Io(format!(
            "{what}the backup file could not be read ({detail}); it may have been moved, changed or unplugged: pick it again"
        )),
        _ => Error::Io(format!("{what}{detail}")),
    }
}

/// The page's KDF cap: `max_kdf_memory` bytes (a wasm32 instance tops out at 4 GiB).
pub(crate) fn limits(max_kdf_memory: f64) -> Limits {
    let mut l = Limits::default();
    if max_kdf_memory.is_finite() && max_kdf_memory > 0.0 {
        l.max_kdf_memory = max_kdf_memory as u64;
    }
    l
}

/// The `{class, message}` of an exception thrown by the page's own JS (a read that failed, a
/// full disk): the same sentences as when the core meets it.
#[wasm_bindgen]
pub fn page_error(name: &str, message: &str, context: &str) -> JsValue {
    let e = Object::new();
    let _ = Reflect::set(&e, &"name".into(), &name.into());
    let _ = Reflect::set(&e, &"message".into(), &message.into());
    to_js(js_io(context, e.into()))
}

/// The sentence for a trap of a wasm instance (the core cannot be called after it, so the page
/// takes it once at start): `{detail}` and `{context}` are filled in by the page.
#[wasm_bindgen]
pub fn trap_sentence() -> String {
    "the restorer stopped on an internal error ({detail}) while {context}; the browser may have run out of memory: \
     close other tabs and try again, or restore fewer qubes at once"
        .into()
}

// ------------------------------------------------------------------------------------- input

/// Random access to a `Blob` (a picked `File`, or the demo backup) in a worker.
///
/// Each `FileReaderSync` call costs milliseconds whatever its size, and indexing reads a few
/// small headers per member, so small reads go through a read-ahead window.
pub struct BlobSource {
    blob: Blob,
    len: u64,
    reader: FileReaderSync,
    window: RefCell<(u64, Vec<u8>)>,
}

/// Reads up to this size are served from (and refill) the window.
const WINDOW: u64 = 64 * 1024;

impl BlobSource {
    pub fn new(blob: Blob) -> Result<BlobSource> {
        let reader = FileReaderSync::new().map_err(|e| js_io("FileReaderSync (this must run in a worker)", e))?;
        Ok(BlobSource { len: blob.size() as u64, blob, reader, window: RefCell::new((0, Vec::new())) })
    }

    fn read_direct(&self, offset: u64, end: u64, buf: &mut [u8]) -> Result<()> {
        let slice = self
            .blob
            .slice_with_f64_and_f64(offset as f64, end as f64)
            .map_err(|e| js_io("reading the backup", e))?;
        let data = self.reader.read_as_array_buffer(&slice).map_err(|e| js_io("reading the backup", e))?;
        let data = Uint8Array::new(&data);
        if data.length() as usize != buf.len() {
            return Err(Error::truncated(
                Location::file("backup file", offset),
                Cut::Changed { read: data.length() as u64, want: buf.len() as u64 },
            ));
        }
        data.copy_to(buf);
        Ok(())
    }
}

impl ReadAt for BlobSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64).filter(|&e| e <= self.len).ok_or_else(|| {
            Error::truncated("backup file", Cut::Read { want: buf.len() as u64, at: offset, len: self.len })
        })?;
        if buf.is_empty() {
            return Ok(());
        }
        if buf.len() as u64 > WINDOW {
            return self.read_direct(offset, end, buf);
        }
        let mut window = self.window.borrow_mut();
        let (start, data) = &mut *window;
        if offset < *start || end > *start + data.len() as u64 {
            let wend = (offset + WINDOW).min(self.len);
            data.resize((wend - offset) as usize, 0);
            self.read_direct(offset, wend, data)?;
            *start = offset;
        }
        let at = (offset - *start) as usize;
        buf.copy_from_slice(&data[at..at + buf.len()]);
        Ok(())
    }
}

// ------------------------------------------------------------------------------------- output

/// A sink implemented in JS: an object with `set_len(len: number)` and
/// `write(offset: number, bytes: Uint8Array)`. `bytes` is a view into wasm memory, valid only
/// during the call: JS copies it (or writes it) before returning.
struct JsSink {
    this: JsValue,
    set_len: Function,
    write: Function,
}

impl JsSink {
    fn new(this: JsValue) -> Result<JsSink> {
        let method = |name: &str| -> Result<Function> {
            Reflect::get(&this, &name.into())
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok())
                .ok_or_else(|| Error::internal(format!("the output has no {name}() method")))
        };
        Ok(JsSink { set_len: method("set_len")?, write: method("write")?, this })
    }
}

impl VolumeSink for JsSink {
    fn set_len(&mut self, len: u64) -> Result<()> {
        self.set_len.call1(&self.this, &JsValue::from_f64(len as f64)).map_err(|e| js_io("writing the output", e))?;
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        // SAFETY: the view is used by JS only during this call, and nothing allocates in Rust meanwhile.
        let view = unsafe { Uint8Array::view(data) };
        self.write.call2(&self.this, &JsValue::from_f64(offset as f64), &view).map_err(|e| js_io("writing the output", e))?;
        Ok(())
    }
}

// ------------------------------------------------------------------------------------- backup

/// An opened backup (header verified, qubes listed), owned by the coordinator worker.
#[wasm_bindgen]
pub struct BackupHandle {
    backup: Backup<BlobSource>,
}

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::Volume => "volume",
        FileKind::Small => "small",
        FileKind::Home => "home",
    }
}

#[wasm_bindgen]
impl BackupHandle {
    /// The passphrase, to hand to each chunk worker once ([`ChunkOpener::new`]).
    pub fn worker_secret(&self) -> Vec<u8> {
        self.backup.passphrase().to_vec()
    }

    /// The qubes as JSON: `[{name, class, label, label_color, template, backup_path, size, volumes}]`.
    pub fn qubes_json(&self) -> String {
        serde_json::to_string(self.backup.qubes()).unwrap_or_else(|_| "[]".into())
    }

    /// The compressor named by the verified header (`gzip`, `zstd`, ...).
    pub fn compression(&self) -> String {
        self.backup.compressor().to_string()
    }

    /// The backup format (4, 3 or 2).
    pub fn format(&self) -> u32 {
        self.backup.header().version
    }

    /// What the format does not guarantee (formats 3 and 2), for the page to say; else undefined.
    pub fn format_note(&self) -> Option<String> {
        self.backup.format_note().map(str::to_string)
    }

    /// The backup's id, from the authenticated header: chunk workers derive each chunk's
    /// passphrase from it ([`ChunkOpener::new`]).
    pub fn backup_id(&self) -> String {
        self.backup.header().backup_id.clone()
    }

    /// What restoring `qubes` (a JSON array of names) does, as JSON:
    /// `{workers, window, kdf_memory, qubes: [{qube, listing: {class, message} | null,
    /// missing: [{class, message}], files: [{path, name, kind, download, placeholder,
    /// chunks: [{name, offset, size}]}]}]}`. Files are restored in this order; a qube's
    /// `listing` failure (then no files) and `missing` ones are reported after its files.
    /// `pool`: chunk workers the page can run; `memory_budget`: bytes their KDFs may use at once.
    pub fn plan_json(&self, qubes: &str, salvage: bool, pool: u32, memory_budget: f64) -> Result<String, JsValue> {
        let names: Vec<String> =
            serde_json::from_str(qubes).map_err(|e| to_js(Error::internal(format!("qube list: {e}"))))?;
        let plan = self.backup.plan(&names, salvage);
        let first = plan.iter().flat_map(|q| &q.files).map(|f| &f.file).find(|f| !f.chunks.is_empty());
        let budget = if memory_budget.is_finite() && memory_budget > 0.0 { memory_budget as u64 } else { crate::restore::DEFAULT_MEMORY_BUDGET };
        let workers = match first {
            Some(f) => self.backup.worker_plan(f, pool as usize, budget),
            None => WorkerPlan::new(0, 0, pool as usize, budget),
        };
        let err = |e: &Error| json!({ "class": e.class(), "message": e.to_string() });
        let qubes: Vec<_> = plan
            .iter()
            .map(|q| {
                let files: Vec<_> = q
                    .files
                    .iter()
                    .map(|p| {
                        let f = &p.file;
                        let chunks: Vec<_> = f.chunks.iter().map(|c| json!({ "name": c.name, "offset": c.offset, "size": c.size })).collect();
                        json!({ "path": f.path, "name": f.name, "kind": kind_name(f.kind), "download": p.download,
                                "placeholder": p.placeholder, "chunks": chunks })
                    })
                    .collect();
                json!({ "qube": q.qube, "files": files, "listing": q.listing.as_ref().map(err),
                        "missing": q.missing.iter().map(err).collect::<Vec<_>>() })
            })
            .collect();
        // Formats 3 and 2 have no KDF per piece: the pieces are read and opened right here
        // ([`BackupHandle::restore_here`]), not by the chunk workers.
        let here = self.backup.legacy().is_some();
        Ok(json!({ "workers": workers.workers, "window": workers.window, "kdf_memory": workers.kdf_memory, "qubes": qubes,
                   "here": here }).to_string())
    }

    /// The names a salvaged download and its report are saved under, and the report itself:
    /// `{image, report, json}` (see `restore::plan::salvage_report_json`).
    pub fn salvage_outputs(download: &str, lost: &[f64]) -> JsValue {
        let ranges: Vec<(u64, u64)> = lost.chunks_exact(2).map(|r| (r[0] as u64, r[1] as u64)).collect();
        let (image, report) = crate::restore::plan::salvage_names(download);
        let o = Object::new();
        let _ = Reflect::set(&o, &"image".into(), &image.into());
        let _ = Reflect::set(&o, &"report".into(), &report.into());
        let _ = Reflect::set(&o, &"json".into(), &crate::restore::plan::salvage_report_json(&ranges).into());
        o.into()
    }

    /// Starts restoring the file `path` of `qube`. `verify_only`: decode and check, keep nothing;
    /// otherwise `sink` (see `JsSink`) receives a volume's data runs, or dom0's home as one tar.
    /// `salvage`: a damaged volume keeps what can be read (see [`Restorer::push_lost`]).
    pub fn restorer(&self, qube: &str, path: &str, verify_only: bool, sink: JsValue, salvage: bool) -> Result<Restorer, JsValue> {
        let files = if salvage { self.backup.salvage_files(qube) } else { self.backup.files(qube) };
        let files = files.map_err(to_js)?;
        let file: &StoredFile = files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| to_js(Error::NotFound { what: format!("{path} of qube {qube}") }))?;
        let target = if verify_only {
            Target::Verify
        } else {
            let sink: Box<dyn VolumeSink> = Box::new(JsSink::new(sink).map_err(to_js)?);
            match file.kind {
                FileKind::Home => Target::Raw(sink),
                FileKind::Volume | FileKind::Small => Target::Volume(sink),
            }
        };
        let restore = FileRestore::new(file, self.backup.compression(), target);
        Ok(Restorer { inner: Some(if salvage { restore.salvage() } else { restore }) })
    }

    /// Restores the file `path` of `qube` right here, chunk workers bypassed: every file of a
    /// format 3 or 2 backup (`plan_json`'s `here`; `on_piece(n)` after each piece), and a small
    /// "file" that turned out to be a folder (R4.0's `apps.templates`), saved with `raw` as its
    /// tar stream (one KDF per chunk in this worker). `sink` null: verify only. Returns the
    /// report like [`Restorer::finish`].
    pub fn restore_here(&self, qube: &str, path: &str, raw: bool, sink: JsValue, on_piece: Option<Function>) -> Result<JsValue, JsValue> {
        let files = self.backup.files(qube).map_err(to_js)?;
        let file = files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| to_js(Error::NotFound { what: format!("{path} of qube {qube}") }))?;
        let target = if sink.is_null() || sink.is_undefined() {
            Target::Verify
        } else {
            let sink: Box<dyn VolumeSink> = Box::new(JsSink::new(sink).map_err(to_js)?);
            match file.kind {
                _ if raw => Target::Raw(sink),
                FileKind::Home => Target::Raw(sink),
                FileKind::Volume | FileKind::Small => Target::Volume(sink),
            }
        };
        if let Some(legacy) = self.backup.legacy() {
            let mut on_piece = |n: usize| {
                if let Some(f) = &on_piece {
                    let _ = f.call1(&JsValue::NULL, &JsValue::from_f64(n as f64));
                }
            };
            return self.backup.restore_pieces(legacy, file, target, &mut on_piece).map(report).map_err(to_js);
        }
        let mut restore = FileRestore::new(file, self.backup.compression(), target);
        for chunk in &file.chunks {
            let plaintext = self.backup.open_chunk(chunk).map_err(to_js)?;
            restore.push(&plaintext).map_err(to_js)?;
        }
        restore.finish().map(report).map_err(to_js)
    }
}

/// Opening in stages, so that the page overlaps the two KDFs of Open: the coordinator runs the
/// header's KDF ([`PendingBackup::authenticate`]) while a chunk worker opens qubes.xml's first
/// chunk ([`PendingBackup::early_chunk`]). The chunk's plaintext (its MAC already checked by the
/// worker) is used only after the header is proven, and only under the id the header proves.
#[wasm_bindgen]
pub struct PendingBackup {
    indexed: Option<Indexed<BlobSource>>,
    /// A format 3 or 2 backup, indexed: it opens in one step ([`PendingBackup::open_legacy`]).
    legacy: Option<(BlobSource, Vec<crate::format::outer::Member>)>,
    header_work: Option<crate::format::container::LaneWork>,
    authenticated: Option<Authenticated<BlobSource>>,
    early: Option<EarlyChunk>,
    limits: Limits,
}

#[wasm_bindgen]
impl PendingBackup {
    /// Indexes the backup (headers only); nothing is authenticated yet.
    pub fn index(blob: Blob, max_kdf_memory: f64) -> Result<PendingBackup, JsValue> {
        let src = BlobSource::new(blob).map_err(to_js)?;
        let members = crate::format::outer::index(&src).map_err(to_js)?;
        let (indexed, legacy) = if crate::format::legacy::is_legacy(&src, &members) {
            (None, Some((src, members)))
        } else {
            (Some(Indexed::from_members(src, members).map_err(to_js)?), None)
        };
        Ok(PendingBackup { indexed, legacy, header_work: None, authenticated: None, early: None, limits: limits(max_kdf_memory) })
    }

    /// A format 3 or 2 backup (Qubes R2, R3.x): no scrypt, it opens with [`PendingBackup::open_legacy`].
    pub fn is_legacy(&self) -> bool {
        self.legacy.is_some()
    }

    /// Opens a format 3 or 2 backup: its header HMAC (a wrong passphrase is thrown here), then
    /// qubes.xml.
    pub fn open_legacy(&mut self, passphrase: &[u8]) -> Result<BackupHandle, JsValue> {
        let (src, members) = self.legacy.take().ok_or_else(|| to_js(Error::internal("open_legacy on a format 4 backup")))?;
        Ok(BackupHandle { backup: Backup::open_legacy(src, members, passphrase, &self.limits).map_err(to_js)? })
    }

    /// qubes.xml's first chunk for a chunk worker to open beside the header's KDF:
    /// `{name, offset, size, backup_id}` (`backup_id` unauthenticated: the worker's
    /// `ChunkOpener` binds it), or null when it is opened the usual way.
    pub fn early_chunk(&mut self) -> JsValue {
        let Some(chunk) = self.indexed.as_ref().and_then(|i| i.early_qubes_xml(&self.limits)) else { return JsValue::NULL };
        let o = Object::new();
        let _ = Reflect::set(&o, &"name".into(), &chunk.member.name.clone().into());
        let _ = Reflect::set(&o, &"offset".into(), &JsValue::from_f64(chunk.member.offset as f64));
        let _ = Reflect::set(&o, &"size".into(), &JsValue::from_f64(chunk.member.size as f64));
        let _ = Reflect::set(&o, &"backup_id".into(), &chunk.backup_id.clone().into());
        self.early = Some(chunk);
        o.into()
    }

    /// The header's KDF: a wrong passphrase throws `{class: "wrong-passphrase"}` here.
    pub fn authenticate(&mut self, passphrase: &[u8]) -> Result<(), JsValue> {
        let indexed = self.indexed.take().ok_or_else(|| to_js(Error::internal("authenticate twice")))?;
        self.authenticated = Some(indexed.authenticate(passphrase, &self.limits).map_err(to_js)?);
        Ok(())
    }

    /// The header's KDF as lanes for the page's workers (`{logN, r, lanes, workers}`, see
    /// `wasm::lanes`); its parameters are checked first (`unsafe-params` is thrown here).
    pub fn header_lanes(&mut self, passphrase: &[u8], pool: usize, memory_budget: f64) -> Result<JsValue, JsValue> {
        let indexed = self.indexed.as_ref().ok_or_else(|| to_js(Error::internal("header lanes after authenticate")))?;
        let work = indexed.header_lanes(passphrase, &self.limits).map_err(to_js)?;
        let js = lanes::lanes_js(&work);
        let workers = lanes::lane_workers(&work, pool, memory_budget, &self.limits);
        let _ = Reflect::set(&js, &"workers".into(), &JsValue::from(workers as u32));
        self.header_work = Some(work);
        Ok(js)
    }

    /// [`PendingBackup::authenticate`] with the header's lanes run by the workers (in lane order).
    pub fn authenticate_lanes(&mut self, passphrase: &[u8], outs: js_sys::Array) -> Result<(), JsValue> {
        let mut work = self.header_work.take().ok_or_else(|| to_js(Error::internal("lanes back before header_lanes")))?;
        lanes::join(&mut work, &outs).map_err(to_js)?;
        let indexed = self.indexed.take().ok_or_else(|| to_js(Error::internal("authenticate twice")))?;
        self.authenticated = Some(indexed.authenticate_lanes(passphrase, &work, &self.limits).map_err(to_js)?);
        work.lanes.fill(0);
        Ok(())
    }

    /// Reads qubes.xml: `early_plaintext` is qubes.xml's first chunk as the worker opened it
    /// (undefined: it is opened here).
    pub fn finish(&mut self, early_plaintext: Option<Vec<u8>>) -> Result<BackupHandle, JsValue> {
        let authenticated = self.authenticated.take().ok_or_else(|| to_js(Error::internal("finish before authenticate")))?;
        let early = match (self.early.take(), early_plaintext) {
            (Some(chunk), Some(plaintext)) => Some((chunk, Ok(Early::Plaintext(plaintext)))),
            _ => None,
        };
        Ok(BackupHandle { backup: authenticated.read_qubes_xml(early).map_err(to_js)? })
    }
}

/// `{size, stored, tree}` for JS.
fn report(r: FileReport) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"size".into(), &JsValue::from_f64(r.size as f64));
    let _ = Reflect::set(&o, &"stored".into(), &JsValue::from_f64(r.stored as f64));
    let _ = Reflect::set(&o, &"tree".into(), &JsValue::from_bool(r.tree));
    o.into()
}

/// One file being restored: verified chunk plaintexts are pushed in order, then `finish`.
#[wasm_bindgen]
pub struct Restorer {
    inner: Option<FileRestore<'static>>,
}

#[wasm_bindgen]
impl Restorer {
    /// Feeds the verified plaintext of the next chunk.
    pub fn push(&mut self, plaintext: &[u8]) -> Result<(), JsValue> {
        let r = self.inner.as_mut().ok_or_else(|| to_js(Error::internal("push after finish")))?;
        r.push(plaintext).map_err(to_js)
    }

    /// Feeds a slice of a chunk's verified plaintext: `chunk_start` for its first slice (then
    /// the next chunk begins), in order.
    pub fn push_slice(&mut self, plaintext: &[u8], chunk_start: bool) -> Result<(), JsValue> {
        let r = self.inner.as_mut().ok_or_else(|| to_js(Error::internal("push after finish")))?;
        if chunk_start {
            r.next_chunk().map_err(to_js)?;
        }
        r.push_more(plaintext).map_err(to_js)
    }

    /// Salvage mode: the next chunk is unusable (its MAC failed, or it could not be read);
    /// `plaintext_len` is its plaintext length (member size − 128), negative if unknown.
    pub fn push_lost(&mut self, plaintext_len: f64, member: &str) -> Result<(), JsValue> {
        let r = self.inner.as_mut().ok_or_else(|| to_js(Error::internal("push after finish")))?;
        let len = (plaintext_len >= 0.0).then_some(plaintext_len as u64);
        r.push_lost(len, Error::tampered(member, Check::Salvage)).map_err(to_js)
    }

    /// Salvage mode: whether later chunks can still add anything (false once the stream is lost).
    pub fn wants_more(&self) -> bool {
        self.inner.as_ref().is_some_and(|r| r.wants_more())
    }

    /// Salvage mode's end: `{size, stored, tree, lost: [[start, end], …], found, damage:
    /// {class, message} | null}`; `found` false: nothing could be salvaged.
    pub fn finish_salvage(&mut self) -> Result<JsValue, JsValue> {
        let r = self.inner.take().ok_or_else(|| to_js(Error::internal("finish twice")))?;
        let s = r.finish_salvage().map_err(to_js)?;
        let o = report(s.report);
        let lost = js_sys::Array::new();
        for (a, b) in &s.lost {
            lost.push(&js_sys::Array::of2(&JsValue::from_f64(*a as f64), &JsValue::from_f64(*b as f64)));
        }
        let _ = Reflect::set(&o, &"lost".into(), &lost);
        let _ = Reflect::set(&o, &"found".into(), &JsValue::from_bool(s.found));
        let damage = s.damage.map(to_js).unwrap_or(JsValue::NULL);
        let _ = Reflect::set(&o, &"damage".into(), &damage);
        Ok(o)
    }

    /// Ends the stream (decompressor and inner tar must be complete): `{size, stored, tree}`;
    /// `tree`: the file was a folder, checked but not written (see `BackupHandle::restore_here`).
    pub fn finish(&mut self) -> Result<JsValue, JsValue> {
        let r = self.inner.take().ok_or_else(|| to_js(Error::internal("finish twice")))?;
        r.finish().map(report).map_err(to_js)
    }
}
