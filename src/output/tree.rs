//! The one safe way to write a tree of files from a backup: dom0's home (`extract`), a folder
//! or file taken out of an image or the home (`get`). Whatever the caller, the same rules:
//!
//! - every path is a list of components below `root`, each checked by the caller to be one
//!   plain name;
//! - a parent must be a real folder (never a symbolic link, never a file); a missing one is
//!   created (0700);
//! - files are created new (`O_EXCL|O_NOFOLLOW`, 0600): nothing is ever overwritten, nothing is
//!   written through a link;
//! - symbolic links are created verbatim and never followed;
//! - hard links only to a regular file reached through real folders;
//! - modes and times are applied at the end (folders deepest first, so a read-only folder can
//!   still be filled).
//!
//! Callers pick what a failure means for them (`extract` stops at the first one, `get` reports
//! each and goes on) and what a name that exists already is (`unsafe-path` inside a backup's
//! own tree, `io` for a destination the user named).

use crate::error::{Error, Result};
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// Writes below one root folder.
pub struct TreeWriter {
    root: PathBuf,
    root_ready: bool,
    /// Folders whose mode and time are applied by [`TreeWriter::finish`].
    dirs: Vec<(PathBuf, u32, i64)>,
}

/// A failure to create something, before the caller gives it its class.
pub enum CreateError {
    /// The name exists already (nothing was touched).
    Exists(PathBuf),
    /// Anything else, classed already (`unsafe-path` for a link on the way, `io`).
    Other(Error),
}

impl CreateError {
    /// `Exists` as `io` (a destination the user named).
    pub fn into_io(self) -> Error {
        match self {
            CreateError::Exists(p) => Error::Io(format!("{} already exists; nothing was overwritten", p.display())),
            CreateError::Other(e) => e,
        }
    }

    /// `Exists` as `unsafe-path` (a name the backup itself gives twice).
    pub fn into_unsafe(self, name: &str) -> Error {
        match self {
            CreateError::Exists(_) => Error::unsafe_path(name, "it already exists in the output folder"),
            CreateError::Other(e) => e,
        }
    }
}

impl From<Error> for CreateError {
    fn from(e: Error) -> CreateError {
        CreateError::Other(e)
    }
}

fn created<T>(path: &Path, r: std::io::Result<T>) -> Result<T, CreateError> {
    r.map_err(|e| if e.kind() == ErrorKind::AlreadyExists { CreateError::Exists(path.to_path_buf()) } else { io_err("create", path, e).into() })
}

impl TreeWriter {
    /// `root` is created (with its parents) on first use.
    pub fn new(root: &Path) -> TreeWriter {
        TreeWriter { root: root.to_path_buf(), root_ready: false, dirs: Vec::new() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn ensure_root(&mut self) -> Result<()> {
        if !self.root_ready {
            match fs::symlink_metadata(&self.root) {
                Ok(md) if md.is_dir() => {}
                Ok(_) => return Err(Error::Io(format!("{} exists and is not a folder", self.root.display()))),
                Err(e) if e.kind() == ErrorKind::NotFound => fs::create_dir_all(&self.root).map_err(|e| io_err("create", &self.root, e))?,
                Err(e) => return Err(io_err("inspect", &self.root, e)),
            }
            self.root_ready = true;
        }
        Ok(())
    }

    /// Walks (and creates) `comps` as real folders below the root; a symbolic link or a file on
    /// the way is refused. `name` names the entry in errors.
    pub fn folders(&mut self, name: &str, comps: &[&[u8]]) -> Result<PathBuf> {
        self.ensure_root()?;
        let mut p = self.root.clone();
        for c in comps {
            p.push(OsStr::from_bytes(c));
            match fs::symlink_metadata(&p) {
                Ok(md) if md.file_type().is_dir() => {}
                Ok(md) if md.file_type().is_symlink() => return Err(Error::unsafe_path(name, "a parent folder is a symbolic link")),
                Ok(_) => return Err(Error::unsafe_path(name, "a parent is not a folder")),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    DirBuilder::new().mode(0o700).create(&p).map_err(|e| io_err("create", &p, e))?;
                }
                Err(e) => return Err(io_err("inspect", &p, e)),
            }
        }
        Ok(p)
    }

    /// Creates the folder `comps` (its parents as by [`TreeWriter::folders`]); its `mode` and
    /// `mtime` are applied by [`TreeWriter::finish`]. An existing real folder is taken as is.
    pub fn folder(&mut self, name: &str, comps: &[&[u8]], mode: u32, mtime: i64) -> Result<PathBuf> {
        let p = self.folders(name, comps)?;
        self.dirs.push((p.clone(), mode, mtime));
        Ok(p)
    }

    /// Creates a new, empty file at `comps` (0600, `O_EXCL|O_NOFOLLOW`).
    pub fn file(&mut self, name: &str, comps: &[&[u8]]) -> Result<(File, PathBuf), CreateError> {
        let (last, parents) = comps.split_last().ok_or_else(|| Error::unsafe_path(name, "empty name"))?;
        let mut path = self.folders(name, parents)?;
        path.push(OsStr::from_bytes(last));
        let file = created(&path, OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&path))?;
        Ok((file, path))
    }

    /// Creates a symbolic link at `comps` pointing to `target`, verbatim (never followed).
    pub fn symlink(&mut self, name: &str, comps: &[&[u8]], target: &[u8]) -> Result<PathBuf, CreateError> {
        if target.is_empty() || target.contains(&0) {
            return Err(Error::unsafe_path(name, "symbolic link with an empty or NUL target").into());
        }
        let (last, parents) = comps.split_last().ok_or_else(|| Error::unsafe_path(name, "empty name"))?;
        let mut path = self.folders(name, parents)?;
        path.push(OsStr::from_bytes(last));
        created(&path, std::os::unix::fs::symlink(OsStr::from_bytes(target), &path))?;
        Ok(path)
    }

    /// Creates a hard link at `comps` to the regular file `to` (components below the root, reached
    /// through real folders only). link(2) never follows a symbolic link at its source.
    pub fn hard_link(&mut self, name: &str, comps: &[&[u8]], to: &[&[u8]]) -> Result<PathBuf, CreateError> {
        let mut src = self.root.clone();
        for (i, c) in to.iter().enumerate() {
            src.push(OsStr::from_bytes(c));
            let md = fs::symlink_metadata(&src).map_err(|_| Error::unsafe_path(name, "hard link to a file that was not extracted"))?;
            let ok = if i + 1 == to.len() { md.file_type().is_file() } else { md.file_type().is_dir() };
            if !ok {
                return Err(Error::unsafe_path(name, "hard link through or to something that is not a file").into());
            }
        }
        let (last, parents) = comps.split_last().ok_or_else(|| Error::unsafe_path(name, "empty name"))?;
        let mut path = self.folders(name, parents)?;
        path.push(OsStr::from_bytes(last));
        created(&path, fs::hard_link(&src, &path))?;
        Ok(path)
    }

    /// Applies the folders' modes and times, deepest first; a folder that is no longer a real
    /// folder (replaced meanwhile) is refused.
    pub fn finish(&mut self) -> Result<()> {
        while let Some((path, mode, mtime)) = self.dirs.pop() {
            match fs::symlink_metadata(&path) {
                Ok(md) if md.file_type().is_dir() => set_meta(&path, mode, mtime)?,
                _ => return Err(Error::unsafe_path(path.display().to_string(), "a folder was replaced while restoring")),
            }
        }
        Ok(())
    }
}

/// Sets permission bits (`mode & 0o777`) and the modification time of `path` (a real file or
/// folder, never a link); times beyond the year 36812 are left alone.
pub fn set_meta(path: &Path, mode: u32, mtime: i64) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o777)).map_err(|e| io_err("set the mode of", path, e))?;
    set_mtime(&File::open(path).map_err(|e| io_err("open", path, e))?, path, mtime)
}

/// Sets the modification time of an open file.
pub fn set_mtime(file: &File, path: &Path, mtime: i64) -> Result<()> {
    let t = if mtime >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(mtime as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(mtime.unsigned_abs()))
    };
    if let Some(t) = t.filter(|t| *t < SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40)) {
        file.set_modified(t).map_err(|e| io_err("set the time of", path, e))?;
    }
    Ok(())
}
