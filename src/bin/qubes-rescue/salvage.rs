//! `extract --salvage`: a damaged volume is restored as far as it can be, under a name nobody
//! mistakes for a clean restore (`<name>.salvaged`), with the lost byte ranges of the image
//! beside it (`<name>.salvage.json`). A clean volume keeps its normal name.

use qubes_rescue::error::Error;
use qubes_rescue::restore::{self, Backup, FileReport, Progress, StoredFile, Target};
use qubes_rescue::output::sink::SparseFile;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p: OsString = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// Restores `file` into `path` in salvage mode. Clean: committed under `path`, Ok. Damaged:
/// `<path>.salvaged` and `<path>.salvage.json` are written (unless nothing could be placed), a
/// line saying so is printed, and the damage is returned (its class is the exit code).
pub fn volume(
    backup: &Backup<std::fs::File>,
    file: &StoredFile,
    path: &Path,
    label: &str,
    workers: usize,
    keep_partial: bool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<FileReport, Error> {
    let (salvaged, json) = restore::plan::salvage_names("");
    let (salvaged, json) = (with_suffix(path, &salvaged), with_suffix(path, &json));
    for p in [&salvaged, &json] {
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(Error::Io(format!("{} already exists; choose another output folder or remove it first", p.display())));
        }
    }
    let mut sink = SparseFile::create(path)?;
    let s = match restore::salvage_file(backup, file, Target::Volume(Box::new(&mut sink)), workers, progress) {
        Ok(s) => s,
        Err(e) => {
            sink.abort(keep_partial);
            return Err(e);
        }
    };
    let Some(damage) = s.damage else {
        sink.commit()?;
        return Ok(s.report);
    };
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
    if !s.found {
        sink.abort(keep_partial);
        println!("{label}: nothing could be salvaged (the damage is at the start of the stream, where the image's layout is stored)");
        return Err(damage);
    }
    // Flush the `.partial` file, then give it the `.salvaged` name without ever replacing a file
    // (a hard link fails if the name exists), then write the report beside it.
    let partial = sink.partial_path().to_path_buf();
    sink.abort(true);
    std::fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(|e| io("flush", &partial, e))?;
    std::fs::hard_link(&partial, &salvaged).map_err(|e| io("create", &salvaged, e))?;
    std::fs::remove_file(&partial).map_err(|e| io("remove", &partial, e))?;
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(&json).map_err(|e| io("create", &json, e))?;
    out.write_all(restore::plan::salvage_report_json(&s.lost).as_bytes()).map_err(|e| io("write", &json, e))?;
    let lost: u64 = s.lost.iter().map(|(a, b)| b - a).sum();
    println!(
        "{label}: SALVAGED, not a clean restore: {} of its {}-byte image lost in {} range(s), left as zeros; see {} and {}",
        lost,
        s.report.size,
        s.lost.len(),
        salvaged.display(),
        json.display()
    );
    Err(damage)
}
