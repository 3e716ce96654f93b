//! `ls` and `get`: single files out of a qube's volume, without mounting anything and without
//! writing the image to disk. The volume is restored into a [`SparseImage`] in memory (about
//! its data, not its size), its filesystem browsed with `qubes_rescue::fs`, and files are
//! streamed to the destination in pieces (holes stay holes).

use super::{report, Args};
use qubes_rescue::error::Error;
use qubes_rescue::fs::{self, Entry, Fs, Kind, Listing, TarIndex};
use qubes_rescue::inner_tar::{self, Visitor};
use qubes_rescue::image::SparseImage;
use qubes_rescue::restore::{self, Backup, FileKind, Target};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Checks `ls`/`get` arguments before the passphrase is asked for.
pub fn check(args: &Args) -> Result<(), String> {
    let n = args.qubes.len();
    match args.command.as_str() {
        "ls" if n == 0 || n > 2 => Err("ls takes QUBE[/VOLUME] [PATH]".into()),
        "get" if n != 2 => Err("get takes QUBE[/VOLUME] PATH".into()),
        "get" if args.out.is_none() => Err("get needs -o DEST".into()),
        _ if args.qubes.get(1).is_some_and(|p| !p.starts_with('/')) => Err("PATH must be absolute (start with /)".into()),
        _ => Ok(()),
    }
}

/// Runs `ls` or `get` on an opened backup; returns the exit code.
pub fn run(backup: &Backup<File>, args: &Args) -> u8 {
    match browse(backup, args) {
        Ok(first_error) => first_error.map_or(0, |e| e.exit_code() as u8),
        Err(e) => {
            report(&e);
            e.exit_code() as u8
        }
    }
}

/// `Ok(Some(e))`: done, but some entries failed (already reported).
fn browse(backup: &Backup<File>, args: &Args) -> Result<Option<Error>, Error> {
    let spec = &args.qubes[0];
    let (qube, volume) = spec.split_once('/').unwrap_or((spec.as_str(), "private.img"));
    let path = args.qubes.get(1).map_or(b"/".to_vec(), |p| fs::normalize(p.as_bytes()));
    let q = backup.qube(qube)?;
    if q.class == "AdminVM" {
        return home(backup, args, qube, spec.split_once('/').map(|(_, v)| v), &path);
    }
    let files = backup.files(qube)?;
    let file = files.iter().find(|f| f.name == volume && f.kind == FileKind::Volume).ok_or_else(|| Error::NotFound {
        what: format!(
            "volume {volume} of {qube} (it has: {})",
            files.iter().filter(|f| f.kind == FileKind::Volume).map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    })?;
    let img = restore_volume(backup, file, &format!("{qube}/{volume}"))?;
    let fs = Fs::open(img, args.partition).map_err(|e| in_volume(e, qube, volume))?;
    let label = format!("{qube}/{volume}");
    if let (Some(p), true) = (&fs.partition, std::io::stderr().is_terminal()) {
        let all: Vec<String> = fs.partitions.iter().map(|p| format!("{} {}{}", p.number, p.kind, if p.ext4 { " (ext4)" } else { "" })).collect();
        eprintln!("{label}: partition {} ({} {:?}); partitions: {}; --partition N picks another", p.number, p.kind, p.name, all.join(", "));
    }
    if args.command == "ls" {
        ls(&fs, &path, args.json).map_err(|e| in_volume(e, qube, volume))
    } else {
        let dest = args.out.as_deref().expect("checked");
        get(&fs, &path, dest, &label).map_err(|e| in_volume(e, qube, volume))
    }
}

/// "`/x` does not exist in this backup" → "work/private.img:/x does not exist …".
fn in_volume(e: Error, qube: &str, volume: &str) -> Error {
    match e {
        Error::NotFound { what } if what.starts_with('/') => Error::NotFound { what: format!("{qube}/{volume}:{what}") },
        Error::Io(msg) if msg.starts_with('/') => Error::Io(format!("{qube}/{volume}:{msg}")),
        other => other,
    }
}

fn restore_volume(backup: &Backup<File>, file: &restore::StoredFile, label: &str) -> Result<SparseImage, Error> {
    let workers = restore::worker_count(backup, file, 8 << 30);
    let mut img = SparseImage::new();
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut progress = |p: &restore::Progress| {
        if tty {
            eprint!("\r\x1b[K{label}: restoring into memory, {}/{} chunks", p.chunks_done, p.chunks_total);
            let _ = std::io::stderr().flush();
        }
    };
    let r = restore::restore_file(backup, file, Target::Volume(Box::new(&mut img)), workers, &mut progress);
    if tty {
        eprint!("\r\x1b[K");
        eprintln!("{label}: {} of data in memory ({:.1} s)", super::human(img.stored()), started.elapsed().as_secs_f64());
    }
    r?;
    Ok(img)
}

fn line(e: &Entry) -> String {
    let mut s = format!("{:<7} {:>12} {} {}", e.kind.as_str(), e.size, fs::iso_time(e.mtime), fs::lossy(&e.name));
    if let Some(t) = &e.target {
        s.push_str(" -> ");
        s.push_str(&fs::lossy(t));
    }
    s
}

fn json(e: &Entry) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": String::from_utf8_lossy(&e.name),
        "path": String::from_utf8_lossy(&e.path),
        "type": e.kind.as_str(),
        "size": e.size,
        "mtime": e.mtime,
        "mode": format!("{:04o}", e.mode),
    });
    if std::str::from_utf8(&e.name).is_err() {
        v["name_hex"] = e.name.iter().map(|b| format!("{b:02x}")).collect::<String>().into();
    }
    if let Some(t) = &e.target {
        v["target"] = String::from_utf8_lossy(t).into();
    }
    if let Some(err) = &e.error {
        v["error"] = serde_json::json!({"class": err.class(), "message": err.to_string()});
    }
    v
}

/// What `ls` needs of a tree: an ext4 filesystem, or dom0's home index.
trait Tree {
    fn stat(&self, path: &[u8]) -> Result<Entry, Error>;
    /// Symbolic links followed (inside the tree), or not at all.
    fn resolve(&self, path: &[u8]) -> Result<Kind, Error>;
    fn list(&self, path: &[u8]) -> Result<Listing, Error>;
}

impl Tree for Fs {
    fn stat(&self, path: &[u8]) -> Result<Entry, Error> {
        Fs::stat(self, path)
    }
    fn resolve(&self, path: &[u8]) -> Result<Kind, Error> {
        Fs::resolve(self, path)
    }
    fn list(&self, path: &[u8]) -> Result<Listing, Error> {
        Fs::list(self, path)
    }
}

impl Tree for TarIndex {
    fn stat(&self, path: &[u8]) -> Result<Entry, Error> {
        TarIndex::stat(self, path)
    }
    fn resolve(&self, path: &[u8]) -> Result<Kind, Error> {
        TarIndex::stat(self, path).map(|e| e.kind)
    }
    fn list(&self, path: &[u8]) -> Result<Listing, Error> {
        TarIndex::list(self, path)
    }
}

fn ls(fs: &dyn Tree, path: &[u8], as_json: bool) -> Result<Option<Error>, Error> {
    // A folder (links on the way followed) lists its entries; anything else, even a
    // dangling symbolic link, is listed as itself.
    let (entries, errors) = match fs.resolve(path) {
        Ok(Kind::Dir) => {
            let l = fs.list(path)?;
            (l.entries, l.errors)
        }
        Ok(_) => (vec![fs.stat(path)?], Vec::new()),
        Err(e) => (vec![fs.stat(path).map_err(|_| e)?], Vec::new()),
    };
    let mut first: Option<Error> = None;
    for e in entries.iter().filter_map(|e| e.error.as_ref()).chain(&errors) {
        report(e);
        first.get_or_insert_with(|| e.clone());
    }
    let mut out = std::io::stdout().lock();
    let written = if as_json {
        writeln!(out, "{}", serde_json::to_string_pretty(&entries.iter().map(json).collect::<Vec<_>>()).expect("plain data"))
    } else {
        entries.iter().try_for_each(|e| writeln!(out, "{}", line(e)))
    };
    written.map_err(|e| Error::Io(format!("writing the listing: {e}")))?;
    Ok(first)
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// Sets permission bits and modification time, best effort.
fn set_meta(path: &Path, e: &Entry) {
    if e.mode != 0 {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(u32::from(e.mode) & 0o777));
    }
    if let Ok(f) = File::open(path) {
        let t = if e.mtime >= 0 { UNIX_EPOCH + Duration::from_secs(e.mtime as u64) } else { UNIX_EPOCH };
        let _ = f.set_modified(t);
    }
}

/// Writes one file: created new (never overwriting, never through a symlink), streamed in
/// pieces, all-zero pieces left as holes. A failed file is removed.
fn write_file(fs: &Fs, src: &[u8], dest: &Path, e: &Entry) -> Result<u64, Error> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(dest)
        .map_err(|err| if err.kind() == ErrorKind::AlreadyExists { Error::Io(format!("{} already exists; nothing was overwritten", dest.display())) } else { io_err("create", dest, err) })?;
    let r = fs.read_file(src, &mut |at, piece| {
        if piece.iter().all(|&b| b == 0) {
            return Ok(());
        }
        file.write_all_at(piece, at).map_err(|err| io_err("write", dest, err))
    });
    let r = r.and_then(|size| file.set_len(size).map(|_| size).map_err(|err| io_err("write", dest, err)));
    match r {
        Ok(size) => {
            drop(file);
            set_meta(dest, e);
            Ok(size)
        }
        Err(err) => {
            let _ = std::fs::remove_file(dest);
            Err(err)
        }
    }
}

fn get(fs: &Fs, path: &[u8], dest: &Path, label: &str) -> Result<Option<Error>, Error> {
    let started = Instant::now();
    match fs.resolve(path)? {
        Kind::File => {
            // A symbolic link is followed inside the filesystem: the target's mode and time.
            let entry = fs.stat_follow(path)?;
            let md = std::fs::symlink_metadata(dest);
            let dest = match md {
                Ok(md) if md.is_dir() => dest.join(OsStr::from_bytes(&fs::safe_name(&entry.name))),
                _ => dest.to_path_buf(),
            };
            let size = write_file(fs, path, &dest, &entry)?;
            println!("{label}:{} → {}: {}, {:.1} s", fs::lossy(path), dest.display(), super::human(size), started.elapsed().as_secs_f64());
            Ok(None)
        }
        Kind::Dir => tree(fs, path, dest, label, started),
        Kind::Symlink | Kind::Other => Err(Error::unsupported(format!("{} is a special file (device, fifo or socket); it holds no data", fs::lossy(path)))),
    }
}

fn fail(e: Error, first: &mut Option<Error>) {
    report(&e);
    first.get_or_insert(e);
}

/// Writes the folder `path`'s tree under `dest/` (created if missing; an existing `dest` must
/// be a real folder). Only folders this run created are written into, so nothing lands
/// outside `dest` even if names repeat in a damaged filesystem; symbolic links are created
/// verbatim and never followed.
fn tree(fs: &Fs, path: &[u8], dest: &Path, label: &str, started: Instant) -> Result<Option<Error>, Error> {
    match std::fs::symlink_metadata(dest) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => return Err(Error::Io(format!("{} exists and is not a folder", dest.display()))),
        Err(e) if e.kind() == ErrorKind::NotFound => std::fs::create_dir_all(dest).map_err(|e| io_err("create", dest, e))?,
        Err(e) => return Err(io_err("inspect", dest, e)),
    }
    let mut made: HashSet<Vec<Vec<u8>>> = HashSet::from([Vec::new()]);
    let mut dirs: Vec<(PathBuf, Entry)> = Vec::new();
    let (mut files, mut bytes, mut skipped) = (0u64, 0u64, 0u64);
    let mut first: Option<Error> = None;
    fs.walk(path, &mut |w| {
        let e = w.entry;
        if let Some(err) = &e.error {
            fail(err.clone(), &mut first);
            return Ok(false);
        }
        let Some((_, parent)) = w.rel.split_last() else { return Ok(false) };
        if !made.contains(parent) {
            return Ok(false); // its folder could not be created: already reported
        }
        let mut out = dest.to_path_buf();
        for c in w.rel {
            out.push(OsStr::from_bytes(&fs::safe_name(c)));
        }
        match e.kind {
            Kind::Dir => match DirBuilder::new().mode(0o700).create(&out) {
                Ok(()) => {
                    made.insert(w.rel.to_vec());
                    dirs.push((out, e.clone()));
                    Ok(true)
                }
                Err(err) => {
                    fail(io_err("create", &out, err), &mut first);
                    Ok(false)
                }
            },
            Kind::File => {
                match write_file(fs, &e.path, &out, e) {
                    Ok(n) => {
                        files += 1;
                        bytes += n;
                    }
                    Err(err) => fail(err, &mut first),
                }
                Ok(false)
            }
            Kind::Symlink => {
                let target = e.target.as_deref().unwrap_or_default();
                if let Err(err) = std::os::unix::fs::symlink(OsStr::from_bytes(target), &out) {
                    fail(io_err("create the symbolic link", &out, err), &mut first);
                }
                Ok(false)
            }
            Kind::Other => {
                skipped += 1;
                Ok(false)
            }
        }
    })?;
    // Folder modes and times last (deepest first), so a read-only folder could be filled.
    for (p, e) in dirs.iter().rev() {
        set_meta(p, e);
    }
    if skipped > 0 {
        eprintln!("qubes-rescue: skipped {skipped} special files (devices, fifos, sockets)");
    }
    println!(
        "{label}:{} → {}/: {files} files, {}, {:.1} s",
        fs::lossy(path),
        dest.display(),
        super::human(bytes),
        started.elapsed().as_secs_f64()
    );
    Ok(first)
}

/// dom0's home: indexed from its inner tar (entries only), then, for `get`, restored a second
/// time with only the selected file or folder written. Paths are `/home/<user>/…`.
fn home(backup: &Backup<File>, args: &Args, qube: &str, volume: Option<&str>, path: &[u8]) -> Result<Option<Error>, Error> {
    if volume.is_some_and(|v| v != "home") {
        return Err(Error::NotFound { what: format!("volume {} of {qube} (dom0 has only its home: {qube} or {qube}/home)", volume.unwrap_or_default()) });
    }
    let files = backup.files(qube)?;
    let homes: Vec<_> = files.iter().filter(|f| f.kind == FileKind::Home).collect();
    let mut index = TarIndex::new();
    for f in &homes {
        let workers = restore::worker_count(backup, f, 8 << 30);
        restore::restore_file(backup, f, Target::Tree(Box::new(&mut index)), workers, &mut |_| {})?;
    }
    let shown = |e: Error| match e {
        Error::NotFound { what } if what.starts_with('/') => Error::NotFound { what: format!("{qube}:{what}") },
        other => other,
    };
    if args.command == "ls" {
        return ls(&index, path, args.json).map_err(shown);
    }
    let started = Instant::now();
    let entry = index.stat(path).map_err(shown)?;
    let dest = args.out.as_deref().expect("checked");
    let mut get = match entry.kind {
        Kind::File => {
            let dest = match std::fs::symlink_metadata(dest) {
                Ok(md) if md.is_dir() => dest.join(OsStr::from_bytes(&fs::safe_name(&entry.name))),
                _ => dest.to_path_buf(),
            };
            let source = index.hard_link(&entry.path).map_or(entry.path.clone(), |t| t.to_vec());
            HomeGet::new(&source, dest, false)
        }
        Kind::Dir => {
            match std::fs::symlink_metadata(dest) {
                Ok(md) if md.is_dir() => {}
                Ok(_) => return Err(Error::Io(format!("{} exists and is not a folder", dest.display()))),
                Err(_) => std::fs::create_dir_all(dest).map_err(|e| io_err("create", dest, e))?,
            }
            HomeGet::new(&entry.path, dest.to_path_buf(), true)
        }
        Kind::Symlink => {
            return Err(Error::unsupported(format!(
                "{qube}:{} is a symbolic link to {}; get its target",
                fs::lossy(&entry.path),
                fs::lossy(entry.target.as_deref().unwrap_or_default())
            )))
        }
        Kind::Other => return Err(Error::unsupported(format!("{} is a special file (device, fifo or socket)", fs::lossy(&entry.path)))),
    };
    for f in &homes {
        let workers = restore::worker_count(backup, f, 8 << 30);
        restore::restore_file(backup, f, Target::Tree(Box::new(&mut get)), workers, &mut |_| {})?;
    }
    get.close();
    for (p, e) in get.dirs.iter().rev() {
        set_meta(p, e);
    }
    if !get.tree && get.files == 0 && get.first.is_none() {
        return Err(Error::truncated(qube, format!("{} is listed but its data never came", fs::lossy(path))));
    }
    println!(
        "{qube}:{} → {}{}: {} files, {}, {:.1} s",
        fs::lossy(path),
        get.dest.display(),
        if get.tree { "/" } else { "" },
        get.files,
        super::human(get.bytes),
        started.elapsed().as_secs_f64()
    );
    Ok(get.first)
}

/// Writes the selected file, or the selected folder's tree, of dom0's home as the inner tar
/// goes by: files created new (`O_EXCL|O_NOFOLLOW`), only in folders this run created,
/// symbolic links verbatim, hard links only to files written in this run, holes kept.
struct HomeGet {
    /// `/home/user/x`: the file, or the folder whose tree goes under `dest`.
    select: Vec<u8>,
    dest: PathBuf,
    tree: bool,
    made: HashSet<Vec<u8>>,
    written: std::collections::HashMap<Vec<u8>, PathBuf>,
    cur: Option<(File, PathBuf, Entry)>,
    dirs: Vec<(PathBuf, Entry)>,
    files: u64,
    bytes: u64,
    first: Option<Error>,
}

impl HomeGet {
    fn new(select: &[u8], dest: PathBuf, tree: bool) -> HomeGet {
        HomeGet {
            select: select.to_vec(),
            dest,
            tree,
            made: HashSet::from([select.to_vec()]),
            written: Default::default(),
            cur: None,
            dirs: Vec::new(),
            files: 0,
            bytes: 0,
            first: None,
        }
    }

    fn close(&mut self) {
        if let Some((file, out, e)) = self.cur.take() {
            match file.set_len(e.size) {
                Ok(()) => {
                    drop(file);
                    set_meta(&out, &e);
                    self.files += 1;
                }
                Err(err) => fail(io_err("write", &out, err), &mut self.first),
            }
        }
    }

    /// Where `path` goes, if it is selected and its folder was created.
    fn target(&self, path: &[u8]) -> Option<PathBuf> {
        if !self.tree {
            return (path == self.select.as_slice()).then(|| self.dest.clone());
        }
        let rel = if self.select == b"/" { path.strip_prefix(b"/")? } else { path.strip_prefix(self.select.as_slice())?.strip_prefix(b"/")? };
        let parent = &path[..path.len() - rel.rsplit(|&b| b == b'/').next().unwrap_or_default().len() - 1];
        let parent = if parent.is_empty() { b"/".as_slice() } else { parent };
        if !self.made.contains(parent) {
            return None;
        }
        let mut out = self.dest.clone();
        for c in rel.split(|&b| b == b'/') {
            out.push(OsStr::from_bytes(&fs::safe_name(c)));
        }
        Some(out)
    }
}

impl Visitor for HomeGet {
    fn entry(&mut self, t: &inner_tar::Entry) -> qubes_rescue::Result<()> {
        self.close();
        let Some(path) = TarIndex::path_of(&t.path) else { return Ok(()) };
        let Some(out) = self.target(&path) else { return Ok(()) };
        let mut index = TarIndex::new();
        index.add(t);
        let Ok(e) = index.stat(&path) else { return Ok(()) };
        match t.kind {
            inner_tar::Kind::Dir => match DirBuilder::new().mode(0o700).create(&out) {
                Ok(()) => {
                    self.made.insert(path);
                    self.dirs.push((out, e));
                }
                Err(err) => fail(io_err("create", &out, err), &mut self.first),
            },
            inner_tar::Kind::File => {
                let opened = OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).mode(0o600).open(&out);
                match opened {
                    Ok(f) => {
                        self.written.insert(path, out.clone());
                        self.cur = Some((f, out, e));
                    }
                    Err(err) => fail(io_err("create", &out, err), &mut self.first),
                }
            }
            inner_tar::Kind::Symlink => {
                if let Err(err) = std::os::unix::fs::symlink(OsStr::from_bytes(&t.link), &out) {
                    fail(io_err("create the symbolic link", &out, err), &mut self.first);
                }
            }
            inner_tar::Kind::HardLink => {
                let linked = TarIndex::path_of(&t.link).and_then(|l| self.written.get(&l).cloned());
                match linked {
                    Some(src) => match std::fs::hard_link(&src, &out) {
                        Ok(()) => self.files += 1,
                        Err(err) => fail(io_err("create the hard link", &out, err), &mut self.first),
                    },
                    None => fail(
                        Error::NotFound { what: format!("{} (a hard link to {}, which is outside what was asked for: get it by that name)", fs::lossy(&path), fs::lossy(&t.link)) },
                        &mut self.first,
                    ),
                }
            }
            inner_tar::Kind::Other(_) => {}
        }
        Ok(())
    }

    fn data(&mut self, offset: u64, bytes: &[u8]) -> qubes_rescue::Result<()> {
        if let Some((file, out, _)) = &self.cur {
            if !bytes.iter().all(|&b| b == 0) {
                if let Err(err) = file.write_all_at(bytes, offset) {
                    let err = io_err("write", out, err);
                    let _ = std::fs::remove_file(out);
                    self.cur = None;
                    fail(err, &mut self.first);
                    return Ok(());
                }
            }
            self.bytes += bytes.len() as u64;
        }
        Ok(())
    }

    fn end_entry(&mut self) -> qubes_rescue::Result<()> {
        self.close();
        Ok(())
    }
}
