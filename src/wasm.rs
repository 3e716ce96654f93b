//! The browser adapter: a thin wasm-bindgen layer over the core, used by the page's workers.
//!
//! - The coordinator worker opens the backup through a [`ReadAt`] over a JS `Blob`/`File`
//!   (`File.slice` + `FileReaderSync`, synchronous in workers), lists qubes and files, and runs
//!   one [`FileRestore`] per recovered file ([`Restorer`]), whose sink calls back into JS.
//! - Chunk workers call [`derive_keys`] (KDF + header MAC) and, when WebCrypto is unusable,
//!   [`verify`] and [`apply_keystream`].
//!
//! Every error reaches JS as an object `{class, message}`: `class` is [`Error::class`], and
//! `message` the core's one-sentence `Display`.

use crate::container::{self, Header, Keys, Limits};
use crate::error::{Error, Result};
use crate::read_at::ReadAt;
use crate::restore::{Backup, FileKind, FileReport, FileRestore, StoredFile, Target};
use crate::sink::VolumeSink;
use js_sys::{Function, Object, Reflect, Uint8Array};
use serde_json::json;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use web_sys::{Blob, FileReaderSync};

mod browse;
pub use browse::{Browser, FileStream, ZipStream};

fn to_js(e: Error) -> JsValue {
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
    match name.as_str() {
        // The page's sinks throw this with a whole sentence (what did not fit, what to do).
        "QuotaExceededError" if detail.contains(';') => Error::Io(detail),
        "QuotaExceededError" => Error::Io(format!("{what}: the browser ran out of storage space ({detail}); free disk space, or restore fewer qubes at once")),
        "NotReadableError" | "NotFoundError" => Error::Io(format!(
            "{what}: the backup file could not be read ({detail}); it may have been moved, changed or unplugged: pick it again"
        )),
        _ => Error::Io(format!("{what}: {detail}")),
    }
}

/// The page's KDF cap: `max_kdf_memory` bytes (a wasm32 instance tops out at 4 GiB).
fn limits(max_kdf_memory: f64) -> Limits {
    let mut l = Limits::default();
    if max_kdf_memory.is_finite() && max_kdf_memory > 0.0 {
        l.max_kdf_memory = max_kdf_memory as u64;
    }
    l
}

fn keys_from(bytes: &[u8]) -> Result<Keys> {
    if bytes.len() != 64 {
        return Err(Error::Io(format!("internal: keys are 64 bytes, got {}", bytes.len())));
    }
    let mut k = Keys { enc: [0; 32], hmac: [0; 32] };
    k.enc.copy_from_slice(&bytes[..32]);
    k.hmac.copy_from_slice(&bytes[32..]);
    Ok(k)
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
                "backup file",
                format!("read {} of {} bytes at offset {offset}; it changed since it was picked", data.length(), buf.len()),
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
            Error::truncated("backup file", format!("wanted {} bytes at offset {offset}, the file has {}", buf.len(), self.len))
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
                .ok_or_else(|| Error::Io(format!("internal: the output has no {name}() method")))
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
    /// Indexes the backup, verifies its header with `passphrase` (one KDF; a wrong passphrase
    /// throws `{class: "wrong-passphrase"}`) and reads `qubes.xml`.
    pub fn open(blob: Blob, passphrase: &[u8], max_kdf_memory: f64) -> Result<BackupHandle, JsValue> {
        let src = BlobSource::new(blob).map_err(to_js)?;
        let backup = Backup::open(src, passphrase, &limits(max_kdf_memory)).map_err(to_js)?;
        Ok(BackupHandle { backup })
    }

    /// The qubes as JSON: `[{name, class, label, label_color, template, backup_path, size, volumes}]`.
    pub fn qubes_json(&self) -> String {
        serde_json::to_string(self.backup.qubes()).unwrap_or_else(|_| "[]".into())
    }

    /// The compressor named by the verified header (`gzip`, `zstd`, ...).
    pub fn compression(&self) -> String {
        self.backup.compression().name().to_string()
    }

    /// A qube's stored files as JSON: `[{path, name, kind: "volume"|"small"|"home",
    /// chunks: [{name, offset, size, pass: [bytes]}]}]`; `pass` is the chunk's scrypt passphrase.
    /// `salvage`: chunk sequences with gaps are listed too (the missing chunks are lost).
    pub fn files_json(&self, qube: &str, salvage: bool) -> Result<String, JsValue> {
        let files = if salvage { self.backup.salvage_files(qube) } else { self.backup.files(qube) };
        let files = files.map_err(to_js)?;
        let list: Vec<_> = files
            .iter()
            .map(|f| {
                let chunks: Vec<_> = f
                    .chunks
                    .iter()
                    .map(|c| json!({ "name": c.name, "offset": c.offset, "size": c.size, "pass": self.backup.chunk_passphrase(c) }))
                    .collect();
                json!({ "path": f.path, "name": f.name, "kind": kind_name(f.kind), "chunks": chunks })
            })
            .collect();
        Ok(serde_json::Value::Array(list).to_string())
    }

    /// What qubes.xml promises for `qube` but the backup lacks (a volume, or every file), as JSON
    /// `[{class, message}]`: each is a `truncated` error to report after the qube's other files.
    pub fn missing_json(&self, qube: &str) -> Result<String, JsValue> {
        let files = self.backup.files(qube).map_err(to_js)?;
        let missing = self.backup.missing(qube, &files).map_err(to_js)?;
        let list: Vec<_> = missing.iter().map(|e| json!({ "class": e.class(), "message": e.to_string() })).collect();
        Ok(serde_json::Value::Array(list).to_string())
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

    /// Restores the file `path` of `qube` right here, chunk workers bypassed (one KDF per chunk in
    /// this worker): for a small "file" that turned out to be a folder (R4.0's `apps.templates`),
    /// saved with `raw` as its tar stream. Returns the report like [`Restorer::finish`].
    pub fn restore_here(&self, qube: &str, path: &str, raw: bool, sink: JsValue) -> Result<JsValue, JsValue> {
        let files = self.backup.files(qube).map_err(to_js)?;
        let file = files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| to_js(Error::NotFound { what: format!("{path} of qube {qube}") }))?;
        let sink: Box<dyn VolumeSink> = Box::new(JsSink::new(sink).map_err(to_js)?);
        let target = if raw { Target::Raw(sink) } else { Target::Volume(sink) };
        let mut restore = FileRestore::new(file, self.backup.compression(), target);
        for chunk in &file.chunks {
            let plaintext = self.backup.open_chunk(chunk).map_err(to_js)?;
            restore.push(&plaintext).map_err(to_js)?;
        }
        restore.finish().map(report).map_err(to_js)
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
        let r = self.inner.as_mut().ok_or_else(|| to_js(Error::Io("internal: push after finish".into())))?;
        r.push(plaintext).map_err(to_js)
    }

    /// Salvage mode: the next chunk is unusable (its MAC failed, or it could not be read);
    /// `plaintext_len` is its plaintext length (member size − 128), negative if unknown.
    pub fn push_lost(&mut self, plaintext_len: f64, member: &str) -> Result<(), JsValue> {
        let r = self.inner.as_mut().ok_or_else(|| to_js(Error::Io("internal: push after finish".into())))?;
        let len = (plaintext_len >= 0.0).then_some(plaintext_len as u64);
        r.push_lost(len, Error::tampered(member, "salvage")).map_err(to_js)
    }

    /// Salvage mode: whether later chunks can still add anything (false once the stream is lost).
    pub fn wants_more(&self) -> bool {
        self.inner.as_ref().is_some_and(|r| r.wants_more())
    }

    /// Salvage mode's end: `{size, stored, tree, lost: [[start, end], …], found, damage:
    /// {class, message} | null}`; `found` false: nothing could be salvaged.
    pub fn finish_salvage(&mut self) -> Result<JsValue, JsValue> {
        let r = self.inner.take().ok_or_else(|| to_js(Error::Io("internal: finish twice".into())))?;
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
        let r = self.inner.take().ok_or_else(|| to_js(Error::Io("internal: finish twice".into())))?;
        r.finish().map(report).map_err(to_js)
    }
}

// ------------------------------------------------------------------------------------- chunks

/// Parses a chunk's header (its first 128 bytes, or all of it if shorter), checks the scrypt
/// parameters against `max_kdf_memory`, runs the KDF and checks the header MAC.
/// Returns the 64 key bytes (AES key, then HMAC key).
#[wasm_bindgen]
pub fn derive_keys(member: &str, passphrase: &[u8], header: &[u8], max_kdf_memory: f64) -> Result<Vec<u8>, JsValue> {
    let parsed = Header::parse(member, header).map_err(to_js)?;
    let keys = container::derive_keys(member, passphrase, &parsed, &limits(max_kdf_memory)).map_err(to_js)?;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&keys.enc);
    out.extend_from_slice(&keys.hmac);
    Ok(out)
}

/// Checks the whole-container MAC (`bytes` is the complete `.enc` member).
#[wasm_bindgen]
pub fn verify(member: &str, keys: &[u8], bytes: &[u8]) -> Result<(), JsValue> {
    container::verify(member, &keys_from(keys).map_err(to_js)?, bytes).map_err(to_js)
}

/// AES-256-CTR from counter 0, in place (`data` is the ciphertext between header and MAC).
#[wasm_bindgen]
pub fn apply_keystream(keys: &[u8], data: &mut [u8]) -> Result<(), JsValue> {
    container::apply_keystream(&keys_from(keys).map_err(to_js)?, data);
    Ok(())
}
