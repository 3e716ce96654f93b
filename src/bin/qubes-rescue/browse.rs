//! `ls` and `get`: single files out of a qube's volume, without mounting anything and without
//! writing the image to disk. The volume is restored into a [`SparseImage`] in memory (about
//! its data, not its size), its filesystem browsed with `qubes_rescue::browse::fs`, and files are
//! streamed to the destination in pieces (holes stay holes).

use super::{report, Args};
use qubes_rescue::error::{Cut, Error};
use qubes_rescue::browse::copy::{self, HomeCopy};
use qubes_rescue::browse::fs::{self, Entry, Fs, Kind, TarIndex};
use qubes_rescue::browse::Tree;
use qubes_rescue::output::image::SparseImage;
use qubes_rescue::restore::{self, Backup, FileKind, Target};
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

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
    let workers = restore::worker_count(backup, file, restore::DEFAULT_MEMORY_BUDGET);
    let mut img = SparseImage::new();
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let bar = super::progress::Bar::new(label, "restoring into memory");
    let r = restore::restore_file(backup, file, Target::Volume(Box::new(&mut img)), workers, &mut |p| bar.update(p));
    drop(bar);
    if tty {
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

fn get(fs: &Fs, path: &[u8], dest: &Path, label: &str) -> Result<Option<Error>, Error> {
    let started = Instant::now();
    match fs.resolve(path)? {
        Kind::File => {
            // A symbolic link is followed inside the filesystem: the target's mode and time.
            let entry = fs.stat_follow(path)?;
            let dest = copy::file_destination(dest, &entry);
            let size = copy::copy_file(fs, path, &dest, &entry)?;
            println!("{label}:{} → {}: {}, {:.1} s", fs::lossy(path), dest.display(), super::human(size), started.elapsed().as_secs_f64());
            Ok(None)
        }
        Kind::Dir => {
            let mut first: Option<Error> = None;
            let c = copy::copy_tree(fs, path, dest, &mut |e| fail(e, &mut first))?;
            if c.skipped > 0 {
                eprintln!("qubes-rescue: skipped {} special files (devices, fifos, sockets)", c.skipped);
            }
            println!(
                "{label}:{} → {}/: {} files, {}, {:.1} s",
                fs::lossy(path),
                dest.display(),
                c.files,
                super::human(c.bytes),
                started.elapsed().as_secs_f64()
            );
            Ok(first)
        }
        Kind::Symlink | Kind::Other => Err(Error::unsupported(format!("{} is a special file (device, fifo or socket); it holds no data", fs::lossy(path)))),
    }
}

fn fail(e: Error, first: &mut Option<Error>) {
    report(&e);
    first.get_or_insert(e);
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
        let workers = restore::worker_count(backup, f, restore::DEFAULT_MEMORY_BUDGET);
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
            let dest = copy::file_destination(dest, &entry);
            let source = index.hard_link(&entry.path).map_or(entry.path.clone(), |t| t.to_vec());
            HomeCopy::new(&source, dest, false)?
        }
        Kind::Dir => {
            HomeCopy::new(&entry.path, dest.to_path_buf(), true)?
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
        let workers = restore::worker_count(backup, f, restore::DEFAULT_MEMORY_BUDGET);
        restore::restore_file(backup, f, Target::Tree(Box::new(&mut get)), workers, &mut |_| {})?;
    }
    get.finish();
    let mut first: Option<Error> = None;
    for e in std::mem::take(&mut get.errors) {
        fail(e, &mut first);
    }
    if !get.tree && get.files == 0 && first.is_none() {
        return Err(Error::truncated(qube, Cut::NeverCame(fs::lossy(path).to_string())));
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
    Ok(first)
}

