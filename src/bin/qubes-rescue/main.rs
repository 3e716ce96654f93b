//! The `qubes-rescue` command: thin argument parsing, passphrase input, progress and
//! exit codes around the library. Everything else is the core.

use qubes_rescue::format::container::Limits;
use qubes_rescue::error::Error;
use qubes_rescue::restore::{self, Backup, FileKind, StoredFile, Target};
use qubes_rescue::output::sink::{HomeTree, SparseFile};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

mod browse;
mod cli;
mod progress;
mod salvage;

use cli::Args;

fn read_passphrase(args: &Args) -> Result<Vec<u8>, Error> {
    let text = if let Some(file) = &args.passphrase_file {
        let mut raw = Vec::new();
        let read = if file == "-" {
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut raw)
        } else {
            std::fs::File::open(file).and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut raw))
        };
        read.map_err(|e| Error::Io(format!("reading the passphrase from {file}: {e}")))?;
        raw
    } else if let Some(p) = std::env::var_os("QUBES_RESCUE_PASSPHRASE") {
        p.into_encoded_bytes()
    } else {
        rpassword::prompt_password("Backup passphrase: ")
            .map_err(|e| Error::Io(format!("no passphrase: give --passphrase-file or set QUBES_RESCUE_PASSPHRASE ({e})")))?
            .into_bytes()
    };
    // Like `scrypt` itself (which Qubes typed it into): the passphrase ends at the first CR or LF.
    let end = text.iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(text.len());
    Ok(text[..end].to_vec())
}

fn report(e: &Error) {
    eprintln!("qubes-rescue: error[{}]: {e}", e.class());
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", units[u]) }
}

fn list(backup: &Backup<std::fs::File>, json: bool) -> Result<(), Error> {
    if json {
        println!("{}", serde_json::to_string_pretty(backup.qubes()).expect("plain data"));
        return Ok(());
    }
    let h = backup.header();
    println!("backup {} (format {}, {})", h.backup_id, h.version, backup.compressor());
    if let Some(note) = backup.format_note() {
        println!("note: {note}");
    }
    println!("{:<24} {:<13} {:<8} {:<20} {:>10}  VOLUMES", "QUBE", "CLASS", "LABEL", "TEMPLATE", "SIZE");
    for q in backup.qubes() {
        println!(
            "{:<24} {:<13} {:<8} {:<20} {:>10}  {}",
            q.name,
            q.class,
            q.label.as_deref().unwrap_or("-"),
            q.template.as_deref().unwrap_or("-"),
            human(q.size),
            if q.class == "AdminVM" { "home".to_string() } else { q.volumes.join(" ") }
        );
    }
    Ok(())
}

struct Ctx<'a> {
    backup: &'a Backup<std::fs::File>,
    args: &'a Args,
    memory_budget: u64,
}

impl Ctx<'_> {
    /// Restores (or, without `out`, verifies) one stored file.
    fn file(&self, qube: &str, file: &StoredFile, out: Option<&Path>) -> Result<String, Error> {
        let workers = self.args.workers.unwrap_or_else(|| restore::worker_count(self.backup, file, self.memory_budget));
        let label = format!("{qube}/{}", file.name);
        let started = Instant::now();
        let bar = progress::Bar::new(&label, if out.is_some() { "restoring" } else { "verifying" });
        let mut progress = |p: &restore::Progress| bar.update(p);
        let result = match (out, file.kind) {
            (None, _) => restore::restore_file(self.backup, file, Target::Verify, workers, &mut progress),
            (Some(dir), FileKind::Home) => self.tree(file, &dir.join(restore::plan::tree_folder(file)), workers, &mut progress),
            (Some(dir), FileKind::Volume) if self.args.salvage => {
                salvage::volume(self.backup, file, &dir.join(qubes_rescue::output::names::safe_component(&file.name)?), &label, workers, self.args.keep_partial, &mut progress)
            }
            (Some(dir), _) => {
                let path = dir.join(qubes_rescue::output::names::safe_component(&file.name)?);
                let mut sink = SparseFile::create(&path)?;
                match restore::restore_file(self.backup, file, Target::Volume(Box::new(&mut sink)), workers, &mut progress) {
                    Ok(r) if r.tree => {
                        // A small "file" that is a folder (R4.0's `apps.templates`): extract it as a tree.
                        sink.abort(false);
                        self.tree(file, dir, workers, &mut progress)
                    }
                    Ok(r) => sink.commit().map(|_| r),
                    Err(e) => {
                        sink.abort(self.args.keep_partial);
                        Err(e)
                    }
                }
            }
        };
        drop(bar);
        let r = result?;
        let secs = started.elapsed().as_secs_f64();
        Ok(match file.kind {
            FileKind::Volume => format!("{label}: {} image, {} of data, {secs:.1} s", human(r.size), human(r.stored)),
            FileKind::Home => match restore::plan::tree_folder(file) {
                "" => format!("{qube}/: {} in files, {secs:.1} s", human(r.size)),
                dir => format!("{qube}/{dir}/{}: {} in files, {secs:.1} s", file.name, human(r.size)),
            },
            FileKind::Small => format!("{label}: {}", human(r.size)),
        })
    }

    /// Extracts a tree (dom0's home, or a folder) under `root` with HomeTree, which never
    /// writes outside `root`: `dom0-home/user/...` lands in `root/user/...`.
    fn tree(&self, file: &StoredFile, root: &Path, workers: usize, progress: &mut dyn FnMut(&restore::Progress)) -> Result<restore::FileReport, Error> {
        std::fs::create_dir_all(root).map_err(|e| Error::Io(format!("creating {}: {e}", root.display())))?;
        let mut tree = HomeTree::new(root, &file.path);
        let r = restore::restore_file(self.backup, file, Target::Tree(Box::new(&mut tree)), workers, progress)
            .and_then(|r| tree.finish().map(|_| r));
        if !tree.skipped.is_empty() {
            eprintln!("qubes-rescue: {}: skipped {} special files (devices, fifos): {}", file.path, tree.skipped.len(), tree.skipped.join(", "));
        }
        r
    }

    /// Restores every file of one qube; returns the first failure after trying them all.
    fn qube(&self, name: &str) -> Result<(), Error> {
        // Salvage lists chunk sequences with gaps too: a missing middle chunk is lost like a
        // damaged one (and still reported), instead of refusing the whole volume.
        let files = if self.args.salvage { self.backup.salvage_files(name) } else { self.backup.files(name) };
        let files = files.inspect_err(report)?;
        let dir = match &self.args.out {
            Some(out) => {
                let dir = out.join(qubes_rescue::output::names::safe_component(name).inspect_err(report)?);
                std::fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("creating {}: {e}", dir.display()))).inspect_err(report)?;
                Some(dir)
            }
            None => None,
        };
        let mut first: Option<Error> = None;
        for file in &files {
            let out = dir.as_deref();
            match self.file(name, file, out) {
                Ok(line) => println!("{line}{}", if dir.is_none() { " — verified" } else { "" }),
                Err(e) => {
                    report(&e);
                    first.get_or_insert(e);
                }
            }
        }
        for e in self.backup.missing(name, &files)? {
            report(&e);
            first.get_or_insert(e);
        }
        first.map_or(Ok(()), Err)
    }
}

/// Opens the backup and runs the command; returns the exit code. Every error is
/// reported where it happens, so a failing qube does not hide the others.
fn run(args: &Args) -> u8 {
    let fail = |e: Error| {
        report(&e);
        e.exit_code() as u8
    };
    let file = match std::fs::File::open(&args.backup) {
        Ok(f) => f,
        Err(e) => return fail(Error::Io(format!("opening {}: {e}", args.backup.display()))),
    };
    let passphrase = match read_passphrase(args) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let limits = Limits { max_kdf_memory: args.max_kdf_memory, ..Limits::default() };
    let backup = match Backup::open(file, &passphrase, &limits) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    if !backup.complete() {
        eprintln!("qubes-rescue: warning: the backup file does not end with a complete archive; it was probably cut short, and its last files are missing");
    }
    if args.command == "ls" || args.command == "get" {
        return browse::run(&backup, args);
    }
    if args.command == "list" {
        return list(&backup, args.json).map_or_else(fail, |_| 0);
    }
    let names: Vec<String> =
        if args.qubes.is_empty() { backup.qubes().iter().map(|q| q.name.clone()).collect() } else { args.qubes.clone() };
    if let Some(e) = names.iter().find_map(|n| backup.qube(n).err()) {
        return fail(e);
    }
    let ctx = Ctx { backup: &backup, args, memory_budget: restore::DEFAULT_MEMORY_BUDGET };
    let mut code = 0;
    for name in &names {
        if let Err(e) = ctx.qube(name) {
            if code == 0 {
                code = e.exit_code() as u8;
            }
        }
    }
    code
}

fn main() -> ExitCode {
    ExitCode::from(run(&cli::parse()))
}
