//! The page's file browser: the filesystem inside a restored volume (or dom0's home tar), read
//! in a worker straight from the Blob/File the restore produced. `fs.rs` does the reading;
//! this is its JS face plus two pull-style streams (one file, one folder as a `.zip`) so the
//! worker can await between pieces: progress, cancel, and output that is never held whole.
//!
//! Paths cross to JS as raw bytes (`Uint8Array`) and come back as JSON with `path` (lossy
//! UTF-8, for showing and `data-path`) and, only when the bytes are not UTF-8, `raw`.

use super::{js_io, to_js};
use crate::error::{Error, Result};
use crate::browse::fs::{self, Entry, FileReader, Fs, Kind, LostWatch, TarFile, TarIndex};
use crate::read_at::ReadAt;
use crate::output::zip::ZipWriter;
use js_sys::Uint8Array;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{Blob, FileReaderSync};

/// A page of the image cache. ext4 reads blocks (1–4 KiB) scattered over metadata and
/// sequential over file data; each `FileReaderSync` call costs about a millisecond whatever
/// its size, so reads go through a few cached pages.
const PAGE: u64 = 256 * 1024;
const PAGES: usize = 16;

/// A restored volume (or home tar) as a `ReadAt`: `Blob.slice` through `FileReaderSync`, with
/// a small LRU of pages.
struct ImageSource {
    blob: Blob,
    len: u64,
    reader: FileReaderSync,
    /// (page number, bytes), most recently used last.
    pages: RefCell<Vec<(u64, Vec<u8>)>>,
}

impl ImageSource {
    fn new(blob: Blob) -> Result<ImageSource> {
        let reader = FileReaderSync::new().map_err(|e| js_io("FileReaderSync (this must run in a worker)", e))?;
        Ok(ImageSource { len: blob.size() as u64, blob, reader, pages: RefCell::new(Vec::new()) })
    }

    /// Copies `dst.len()` bytes at `from` within page `n` out of the cache (filling it first).
    fn copy_from_page(&self, n: u64, from: usize, dst: &mut [u8]) -> Result<()> {
        let mut pages = self.pages.borrow_mut();
        let i = match pages.iter().position(|(p, _)| *p == n) {
            Some(i) => i,
            None => {
                let (start, end) = (n * PAGE, ((n + 1) * PAGE).min(self.len));
                let slice = self.blob.slice_with_f64_and_f64(start as f64, end as f64).map_err(|e| js_io("reading the restored image", e))?;
                let data = self.reader.read_as_array_buffer(&slice).map_err(|e| js_io("reading the restored image", e))?;
                let data = Uint8Array::new(&data).to_vec();
                if data.len() as u64 != end - start {
                    return Err(Error::Io("the restored image changed while it was being read; restore the qube again".into()));
                }
                if pages.len() == PAGES {
                    pages.remove(0);
                }
                pages.push((n, data));
                pages.len() - 1
            }
        };
        // Most recently used last.
        let page = pages.remove(i);
        dst.copy_from_slice(&page.1[from..from + dst.len()]);
        pages.push(page);
        Ok(())
    }
}

impl ReadAt for ImageSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64).filter(|&e| e <= self.len).ok_or_else(|| {
            Error::Io(format!("the filesystem reads {} bytes at {offset}, past the end of the image ({} bytes)", buf.len(), self.len))
        })?;
        // Big reads (file data in 1 MiB pieces) go straight to the Blob.
        if buf.len() as u64 >= PAGE {
            let slice = self.blob.slice_with_f64_and_f64(offset as f64, end as f64).map_err(|e| js_io("reading the restored image", e))?;
            let data = self.reader.read_as_array_buffer(&slice).map_err(|e| js_io("reading the restored image", e))?;
            let data = Uint8Array::new(&data);
            if data.length() as usize != buf.len() {
                return Err(Error::Io("the restored image changed while it was being read; restore the qube again".into()));
            }
            data.copy_to(buf);
            return Ok(());
        }
        let mut at = offset;
        while at < end {
            let n = at / PAGE;
            let from = (at - n * PAGE) as usize;
            let take = ((end - at) as usize).min(PAGE as usize - from);
            let dst = (at - offset) as usize;
            self.copy_from_page(n, from, &mut buf[dst..dst + take])?;
            at += take as u64;
        }
        Ok(())
    }
}

/// `Rc` so that the tree and its open files share one source.
struct Shared(Rc<ImageSource>);

impl ReadAt for Shared {
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.0.read_at(offset, buf)
    }
}

enum Tree {
    Ext4(Fs),
    Home { index: TarIndex, src: Rc<ImageSource> },
}

enum Open {
    Ext4(FileReader),
    Tar(TarFile, Rc<ImageSource>),
}

impl Open {
    fn size(&self) -> u64 {
        match self {
            Open::Ext4(f) => f.size(),
            Open::Tar(f, _) => f.size(),
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        match self {
            Open::Ext4(f) => f.read(buf),
            Open::Tar(f, src) => f.read(src.as_ref(), buf),
        }
    }
}

impl Tree {
    /// The tree as the browsing rules see it (links, listings, walks).
    fn files(&self) -> &dyn crate::browse::Tree {
        match self {
            Tree::Ext4(fs) => fs,
            Tree::Home { index, .. } => index,
        }
    }
    fn open(&self, path: &[u8]) -> Result<Open> {
        match self {
            Tree::Ext4(fs) => fs.open_file(path).map(Open::Ext4),
            Tree::Home { index, src } => index.open_file(path).map(|f| Open::Tar(f, src.clone())),
        }
    }
}

fn err_json(e: &Error) -> Value {
    json!({ "class": e.class(), "message": e.to_string() })
}

/// `path` (lossy, for showing) and `raw` (the bytes) when they differ.
fn path_fields(o: &mut serde_json::Map<String, Value>, key: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            o.insert(key.into(), s.into());
        }
        Err(_) => {
            o.insert(key.into(), fs::lossy(bytes).into());
            o.insert(format!("{key}_raw"), bytes.to_vec().into());
        }
    }
}

fn entry_json(e: &Entry) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("name".into(), fs::lossy(&e.name).into());
    path_fields(&mut o, "path", &e.path);
    o.insert("download".into(), crate::output::names::download_name(&e.name).into());
    o.insert("type".into(), e.kind.as_str().into());
    o.insert("size".into(), e.size.into());
    o.insert("mtime".into(), e.mtime.into());
    o.insert("mode".into(), format!("{:04o}", e.mode).into());
    o.insert("target".into(), e.target.as_deref().map(fs::lossy).into());
    o.insert("error".into(), e.error.as_ref().map(err_json).unwrap_or(Value::Null));
    Value::Object(o)
}

fn lost_ranges(json: &str) -> Result<Vec<(u64, u64)>> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(json).map_err(|e| Error::internal(format!("lost ranges: {e}")))
}

/// A browsable restored volume (or dom0's home), owned by the browse worker.
#[wasm_bindgen]
pub struct Browser {
    tree: Rc<Tree>,
    hit: Rc<Cell<bool>>,
    info: Value,
}

#[wasm_bindgen]
impl Browser {
    /// Opens the ext4 filesystem of a restored image: a bare ext4 (`private.img`), or on a
    /// GPT/MBR disk (`root.img`) partition `partition` (1-based; by default the Linux one).
    /// `lost_json`: the salvage report's `[[start, end], …]` (or empty): files reading
    /// those ranges are flagged.
    pub fn open_image(blob: Blob, partition: Option<u32>, lost_json: &str) -> Result<Browser, JsValue> {
        let hit = Rc::new(Cell::new(false));
        let src = Shared(Rc::new(ImageSource::new(blob).map_err(to_js)?));
        let lost = lost_ranges(lost_json).map_err(to_js)?;
        let fs = Fs::open(LostWatch { inner: src, lost, hit: hit.clone() }, partition).map_err(to_js)?;
        let part = |p: &fs::Partition| {
            json!({ "number": p.number, "start": p.start, "size": p.size, "kind": p.kind, "name": p.name, "linux": p.linux, "ext4": p.ext4 })
        };
        let info = json!({
            "kind": "ext4",
            "root": "/",
            "partition": fs.partition.as_ref().map(part),
            "partitions": fs.partitions.iter().map(part).collect::<Vec<_>>(),
        });
        Ok(Browser { tree: Rc::new(Tree::Ext4(fs)), hit, info })
    }

    /// Opens dom0's home from its saved tar (`dom0-home-<user>.tar`), reading only headers.
    pub fn open_home(blob: Blob) -> Result<Browser, JsValue> {
        let hit = Rc::new(Cell::new(false));
        let src = Rc::new(ImageSource::new(blob).map_err(to_js)?);
        let index = TarIndex::index_stream(src.as_ref()).map_err(to_js)?;
        let root = if index.stat(b"/home").is_ok() { "/home" } else { "/" };
        let info = json!({ "kind": "home", "root": root, "partition": null, "partitions": [] });
        Ok(Browser { tree: Rc::new(Tree::Home { index, src }), hit, info })
    }

    /// `{kind: "ext4"|"home", root, partition, partitions: [{number, start, size, kind, name, linux, ext4}]}`.
    pub fn info_json(&self) -> String {
        self.info.to_string()
    }

    /// The folder at `path` (links on the way followed): `{path, entries: [entry], errors:
    /// [{class, message}]}`; an entry is `{name, path, path_raw?, download, type, size, mtime,
    /// mode, target, error}`.
    pub fn list_json(&self, path: &[u8]) -> Result<String, JsValue> {
        let dir = self.tree.files().stat_follow(path).map_err(to_js)?;
        if dir.kind != Kind::Dir {
            return Err(to_js(Error::NotFound { what: format!("{} (not a folder)", fs::lossy(path)) }));
        }
        let listing = self.tree.files().list(path).map_err(to_js)?;
        let mut o = serde_json::Map::new();
        path_fields(&mut o, "path", &fs::normalize(path));
        o.insert("entries".into(), listing.entries.iter().map(entry_json).collect::<Vec<_>>().into());
        o.insert("errors".into(), listing.errors.iter().map(err_json).collect::<Vec<_>>().into());
        Ok(Value::Object(o).to_string())
    }

    /// The entry at `path`: itself (`follow` false), or where its symbolic links lead.
    pub fn stat_json(&self, path: &[u8], follow: bool) -> Result<String, JsValue> {
        let e = if follow { self.tree.files().stat_follow(path) } else { self.tree.files().stat(path) };
        Ok(entry_json(&e.map_err(to_js)?).to_string())
    }

    /// A salvaged image: the files directly in the folder `path` that read lost bytes, checked
    /// by reading them, up to `budget` bytes in all (see `Fs::lost_files`):
    /// `{lost: [path], unchecked: [path]}` (paths as in `list_json`).
    pub fn lost_json(&self, path: &[u8], budget: f64) -> Result<String, JsValue> {
        let Tree::Ext4(fs) = self.tree.as_ref() else { return Ok(json!({ "lost": [], "unchecked": [] }).to_string()) };
        let (lost, unchecked) = fs.lost_files(path, &self.hit, budget.max(0.0) as u64).map_err(to_js)?;
        let paths = |v: Vec<Entry>| v.iter().map(|e| fs::lossy(&e.path)).collect::<Vec<_>>();
        Ok(json!({ "lost": paths(lost), "unchecked": paths(unchecked) }).to_string())
    }

    /// Opens the file at `path` (links followed inside the filesystem) for reading in pieces.
    pub fn open_file(&self, path: &[u8]) -> Result<FileStream, JsValue> {
        let file = self.tree.open(path).map_err(to_js)?;
        self.hit.set(false);
        Ok(FileStream { file, hit: self.hit.clone(), done: 0, path: path.to_vec() })
    }

    /// The folder at `path` as one `.zip` stream (see [`ZipStream`]).
    pub fn zip(&self, path: &[u8]) -> Result<ZipStream, JsValue> {
        ZipStream::new(self.tree.clone(), self.hit.clone(), path).map_err(to_js)
    }
}

/// One file being read: `read` until it returns an empty array.
#[wasm_bindgen]
pub struct FileStream {
    file: Open,
    hit: Rc<Cell<bool>>,
    done: u64,
    path: Vec<u8>,
}

#[wasm_bindgen]
impl FileStream {
    pub fn size(&self) -> f64 {
        self.file.size() as f64
    }

    /// The next piece, at most `max` bytes (capped at 1 MiB); empty at the end.
    pub fn read(&mut self, max: usize) -> Result<Vec<u8>, JsValue> {
        let mut buf = vec![0u8; max.clamp(1, fs::PIECE)];
        let n = self.file.read(&mut buf).map_err(to_js)?;
        buf.truncate(n);
        self.done += n as u64;
        if n == 0 && self.done < self.file.size() {
            return Err(to_js(Error::Io(format!("{} ended after {} of {} bytes", fs::lossy(&self.path), self.done, self.file.size()))));
        }
        Ok(buf)
    }

    /// Whether any byte read so far came from a range a salvaged image lost (zeros there).
    pub fn lost(&self) -> bool {
        self.hit.get()
    }
}

/// A folder as a `.zip` (stored, not compressed; see `zip.rs`), produced piece by piece:
/// `next` until it returns an empty array. Symbolic links and special files are left out
/// (listed in `skipped`); an entry that cannot be read is left out or cut short and listed
/// in `errors`, and the archive goes on.
#[wasm_bindgen]
pub struct ZipStream {
    tree: Rc<Tree>,
    hit: Rc<Cell<bool>>,
    /// (name in the archive, entry), in walk order.
    plan: Vec<(Vec<u8>, Entry)>,
    next: usize,
    current: Option<(Open, Vec<u8>)>,
    zip: ZipWriter,
    finished: bool,
    files: u32,
    bytes: u64,
    total: u64,
    errors: Vec<Value>,
    skipped: Vec<String>,
    lost: Vec<String>,
}

impl ZipStream {
    fn new(tree: Rc<Tree>, hit: Rc<Cell<bool>>, path: &[u8]) -> Result<ZipStream> {
        let dir = tree.files().stat_follow(path)?;
        if dir.kind != Kind::Dir {
            return Err(Error::NotFound { what: format!("{} (not a folder)", fs::lossy(path)) });
        }
        let top = match fs::normalize(path).rsplit(|&b| b == b'/').next() {
            Some(n) if !n.is_empty() => fs::safe_name(n),
            _ => b"root".to_vec(),
        };
        let mut plan = vec![(top.clone(), dir)];
        let mut errors = Vec::new();
        let mut total = 0u64;
        tree.files().walk(path, &mut |w| {
            let mut name = top.clone();
            for c in w.rel {
                name.push(b'/');
                name.extend_from_slice(&fs::safe_name(c));
            }
            if let Some(e) = &w.entry.error {
                errors.push(json!({ "path": fs::lossy(&w.entry.path), "class": e.class(), "message": e.to_string() }));
                return Ok(false);
            }
            if w.entry.kind == Kind::File {
                total += w.entry.size;
            }
            plan.push((name, w.entry.clone()));
            Ok(true)
        })?;
        Ok(ZipStream {
            tree,
            hit,
            plan,
            next: 0,
            current: None,
            zip: ZipWriter::new(),
            finished: false,
            files: 0,
            bytes: 0,
            total,
            errors,
            skipped: Vec::new(),
            lost: Vec::new(),
        })
    }

    fn fail(&mut self, e: &Entry, err: Error) {
        self.errors.push(json!({ "path": fs::lossy(&e.path), "class": err.class(), "message": err.to_string() }));
    }

    /// Appends about `max` bytes of the archive to `out` (less at the end).
    fn fill(&mut self, out: &mut Vec<u8>, max: usize) -> Result<()> {
        while out.len() < max && !self.finished {
            let room = max - out.len();
            let mut push = |b: &[u8]| -> Result<()> {
                out.extend_from_slice(b);
                Ok(())
            };
            if let Some((mut file, name)) = self.current.take() {
                let mut buf = vec![0u8; room.clamp(4096, fs::PIECE)];
                match file.read(&mut buf) {
                    Ok(0) => {
                        if self.hit.get() {
                            self.lost.push(fs::lossy(&name));
                        }
                        self.files += 1;
                        self.zip.end_file(&mut push)?;
                    }
                    Ok(n) => {
                        self.bytes += n as u64;
                        self.zip.file_data(&buf[..n], &mut push)?;
                        self.current = Some((file, name));
                    }
                    Err(err) => {
                        // Cut short: the entry ends with what was read (its CRC matches that).
                        let e = self.plan[self.next - 1].1.clone();
                        self.fail(&e, err);
                        self.zip.end_file(&mut push)?;
                    }
                }
                continue;
            }
            let Some((name, e)) = self.plan.get(self.next).cloned() else {
                self.zip.finish(&mut push)?;
                self.finished = true;
                break;
            };
            self.next += 1;
            match e.kind {
                Kind::Dir => self.zip.add_dir(&name, e.mtime, e.mode, &mut push)?,
                Kind::File => match self.tree.open(&e.path) {
                    Ok(file) => {
                        self.hit.set(false);
                        self.zip.start_file(&name, e.mtime, e.mode, &mut push)?;
                        self.current = Some((file, name));
                    }
                    Err(err) => self.fail(&e, err),
                },
                Kind::Symlink | Kind::Other => self.skipped.push(fs::lossy(&e.path)),
            }
        }
        Ok(())
    }
}

#[wasm_bindgen]
impl ZipStream {
    /// The next piece of the archive (about `max` bytes); empty when it is complete.
    pub fn next(&mut self, max: usize) -> Result<Vec<u8>, JsValue> {
        let mut out = Vec::new();
        self.fill(&mut out, max.clamp(1, 4 * fs::PIECE)).map_err(to_js)?;
        Ok(out)
    }

    /// `{files, bytes, total, errors: [{path, class, message}], skipped: [path], lost: [name]}`.
    pub fn progress_json(&self) -> String {
        json!({ "files": self.files, "bytes": self.bytes, "total": self.total, "errors": self.errors,
            "skipped": self.skipped, "lost": self.lost })
        .to_string()
    }
}
