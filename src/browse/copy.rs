//! Copying out of a browsed tree to disk (`get`): one file, or a folder's whole tree, from an
//! ext4 image or from dom0's home, through the one safe tree writer (`output::tree`). A file
//! or folder that fails is reported and the copy goes on with the rest.

use super::fs::{self, Entry, Fs, Kind, TarIndex};
use crate::error::{Error, Result};
use crate::format::inner_tar::{self, Visitor};
use crate::output::tree::{self, TreeWriter};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What a copy wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct Copied {
    pub files: u64,
    /// File bytes (holes included in the count, not on disk).
    pub bytes: u64,
    /// Devices, fifos, sockets: not copied.
    pub skipped: u64,
}

/// Where a file copied to `dest` goes: into `dest` if it is a folder, else `dest` itself.
pub fn file_destination(dest: &Path, entry: &Entry) -> PathBuf {
    match std::fs::symlink_metadata(dest) {
        Ok(md) if md.is_dir() => dest.join(OsStr::from_bytes(&fs::safe_name(&entry.name))),
        _ => dest.to_path_buf(),
    }
}

/// Copies the file `path` of `fs` (links followed inside the filesystem) to `dest`, a new file;
/// returns its size.
pub fn copy_file(fs: &Fs, path: &[u8], dest: &Path, entry: &Entry) -> Result<u64> {
    let (mut tree, name) = single(dest)?;
    write_file(fs, path, &mut tree, &[&name], entry)
}

/// Sets permission bits and modification time, best effort (a file is complete without them).
fn set_meta(path: &Path, e: &Entry) {
    if e.mode != 0 {
        let _ = tree::set_meta(path, u32::from(e.mode), e.mtime.max(0));
    }
}

/// The writer and components for a single destination path `dest` (`get` of one file).
fn single(dest: &Path) -> Result<(TreeWriter, Vec<u8>)> {
    let name = dest.file_name().ok_or_else(|| Error::Io(format!("{} names no file", dest.display())))?;
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok((TreeWriter::new(parent), name.as_bytes().to_vec()))
}

/// Writes one file of the filesystem at `comps` below `tree`'s root: created new (never
/// overwriting, never through a link), streamed in pieces, all-zero pieces left as holes.
/// A failed file is removed.
fn write_file(fs: &Fs, src: &[u8], tree: &mut TreeWriter, comps: &[&[u8]], e: &Entry) -> Result<u64> {
    let name = fs::lossy(src);
    let (file, dest) = tree.file(&name, comps).map_err(|c| c.into_io())?;
    let r = fs.read_file(src, &mut |at, piece| {
        if piece.iter().all(|&b| b == 0) {
            return Ok(());
        }
        file.write_all_at(piece, at).map_err(|err| tree::io_err("write", &dest, err))
    });
    let r = r.and_then(|size| file.set_len(size).map(|_| size).map_err(|err| tree::io_err("write", &dest, err)));
    match r {
        Ok(size) => {
            drop(file);
            set_meta(&dest, e);
            Ok(size)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&dest);
            Err(err)
        }
    }
}

/// Copies the folder `path`'s tree under `dest/` (created if missing; an existing `dest` must
/// be a real folder) through the safe tree writer; entries whose folder could not be created
/// are left out (already reported), symbolic links are created verbatim and never followed.
pub fn copy_tree(fs: &Fs, path: &[u8], dest: &Path, on_error: &mut dyn FnMut(Error)) -> Result<Copied> {
    let mut out = TreeWriter::new(dest);
    out.folders(&dest.display().to_string(), &[])?;
    let mut made: HashSet<Vec<Vec<u8>>> = HashSet::from([Vec::new()]);
    let mut dirs: Vec<(PathBuf, Entry)> = Vec::new();
    let (mut files, mut bytes, mut skipped) = (0u64, 0u64, 0u64);
    fs.walk(path, &mut |w| {
        let e = w.entry;
        if let Some(err) = &e.error {
            on_error(err.clone());
            return Ok(false);
        }
        let Some((_, parent)) = w.rel.split_last() else { return Ok(false) };
        if !made.contains(parent) {
            return Ok(false); // its folder could not be created: already reported
        }
        let safe: Vec<Vec<u8>> = w.rel.iter().map(|c| fs::safe_name(c)).collect();
        let comps: Vec<&[u8]> = safe.iter().map(Vec::as_slice).collect();
        let name = fs::lossy(&e.path);
        match e.kind {
            Kind::Dir => match out.folders(&name, &comps) {
                Ok(p) => {
                    made.insert(w.rel.to_vec());
                    dirs.push((p, e.clone()));
                    Ok(true)
                }
                Err(err) => {
                    on_error(err);
                    Ok(false)
                }
            },
            Kind::File => {
                match write_file(fs, &e.path, &mut out, &comps, e) {
                    Ok(n) => {
                        files += 1;
                        bytes += n;
                    }
                    Err(err) => on_error(err),
                }
                Ok(false)
            }
            Kind::Symlink => {
                if let Err(err) = out.symlink(&name, &comps, e.target.as_deref().unwrap_or_default()) {
                    on_error(err.into_io());
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
    Ok(Copied { files, bytes, skipped })
}

/// Writes the selected file, or the selected folder's tree, of dom0's home as the inner tar
/// goes by, through the safe tree writer: only in folders this run created, hard links only
/// to files written in this run, holes kept.
pub struct HomeCopy {
    /// `/home/user/x`: the file, or the folder whose tree goes under `dest`.
    select: Vec<u8>,
    pub dest: PathBuf,
    pub tree: bool,
    out: TreeWriter,
    /// For a single file: its name in `out`'s root.
    single: Vec<u8>,
    made: HashSet<Vec<u8>>,
    written: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    cur: Option<(File, PathBuf, Entry)>,
    dirs: Vec<(PathBuf, Entry)>,
    pub files: u64,
    pub bytes: u64,
    /// What failed, in order (the copy went on past each).
    pub errors: Vec<Error>,
}

impl HomeCopy {
    /// `select`: the file (`tree` false, written to `dest`) or folder (`tree`, its tree under
    /// `dest/`, created if missing) to copy, as `/home/<user>/…`.
    pub fn new(select: &[u8], dest: PathBuf, tree: bool) -> Result<HomeCopy> {
        let (mut out, single) = if tree { (TreeWriter::new(&dest), Vec::new()) } else { single(&dest)? };
        if tree {
            out.folders(&dest.display().to_string(), &[])?;
        }
        Ok(HomeCopy {
            select: select.to_vec(),
            dest,
            tree,
            out,
            single,
            made: HashSet::from([select.to_vec()]),
            written: Default::default(),
            cur: None,
            dirs: Vec::new(),
            files: 0,
            bytes: 0,
            errors: Vec::new(),
        })
    }

    /// Ends the file being written, then applies folder modes and times (deepest first).
    pub fn finish(&mut self) {
        self.close();
        for (p, e) in self.dirs.iter().rev() {
            set_meta(p, e);
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
                Err(err) => self.errors.push(tree::io_err("write", &out, err)),
            }
        }
    }

    /// Where `path` goes below `out`'s root, if it is selected and its folder was created.
    fn target(&self, path: &[u8]) -> Option<Vec<Vec<u8>>> {
        if !self.tree {
            return (path == self.select.as_slice()).then(|| vec![self.single.clone()]);
        }
        let rel = if self.select == b"/" { path.strip_prefix(b"/")? } else { path.strip_prefix(self.select.as_slice())?.strip_prefix(b"/")? };
        let parent = &path[..path.len() - rel.rsplit(|&b| b == b'/').next().unwrap_or_default().len() - 1];
        let parent = if parent.is_empty() { b"/".as_slice() } else { parent };
        if !self.made.contains(parent) {
            return None;
        }
        Some(rel.split(|&b| b == b'/').map(fs::safe_name).collect())
    }
}

impl Visitor for HomeCopy {
    fn entry(&mut self, t: &inner_tar::Entry) -> Result<()> {
        self.close();
        let Some(path) = TarIndex::path_of(&t.path) else { return Ok(()) };
        let Some(safe) = self.target(&path) else { return Ok(()) };
        let comps: Vec<&[u8]> = safe.iter().map(Vec::as_slice).collect();
        let mut index = TarIndex::new();
        index.add(t);
        let Ok(e) = index.stat(&path) else { return Ok(()) };
        let name = fs::lossy(&path);
        match t.kind {
            inner_tar::Kind::Dir => match self.out.folders(&name, &comps) {
                Ok(out) => {
                    self.made.insert(path);
                    self.dirs.push((out, e));
                }
                Err(err) => self.errors.push(err),
            },
            inner_tar::Kind::File => match self.out.file(&name, &comps) {
                Ok((f, out)) => {
                    self.written.insert(path, safe.clone());
                    self.cur = Some((f, out, e));
                }
                Err(err) => self.errors.push(err.into_io()),
            },
            inner_tar::Kind::Symlink => {
                if let Err(err) = self.out.symlink(&name, &comps, &t.link) {
                    self.errors.push(err.into_io());
                }
            }
            inner_tar::Kind::HardLink => {
                let linked = TarIndex::path_of(&t.link).and_then(|l| self.written.get(&l).cloned());
                match linked {
                    Some(to) => {
                        let to: Vec<&[u8]> = to.iter().map(Vec::as_slice).collect();
                        match self.out.hard_link(&name, &comps, &to) {
                            Ok(_) => self.files += 1,
                            Err(err) => self.errors.push(err.into_io()),
                        }
                    }
                    None => self.errors.push(Error::NotFound {
                        what: format!("{} (a hard link to {}, which is outside what was asked for: get it by that name)", fs::lossy(&path), fs::lossy(&t.link)),
                    }),
                }
            }
            inner_tar::Kind::Other(_) => {}
        }
        Ok(())
    }

    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        if let Some((file, out, _)) = &self.cur {
            if !bytes.iter().all(|&b| b == 0) {
                if let Err(err) = file.write_all_at(bytes, offset) {
                    let err = tree::io_err("write", out, err);
                    let _ = std::fs::remove_file(out);
                    self.cur = None;
                    self.errors.push(err);
                    return Ok(());
                }
            }
            self.bytes += bytes.len() as u64;
        }
        Ok(())
    }

    fn end_entry(&mut self) -> Result<()> {
        self.close();
        Ok(())
    }
}
