//! dom0's home restored as a tree (`extract`): the inner tar `dom0-home/<user>/…` lands in
//! `out_root/<user>/…` through the one safe tree writer ([`TreeWriter`]). Every member name is
//! checked component by component first; the first unsafe one stops the restore.
//!
//! Note (FORMAT.md §6.4): GNU tar `--xform` rewrote relative symlink targets inside the home to
//! `dom0-home/<user>/…`; they are restored verbatim, as Qubes' own restore does.

use super::tree::{io_err, set_mtime, TreeWriter};
use crate::error::{Cut, Error, Limit, Result};
use crate::format::inner_tar::{Entry, Kind, Visitor};
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The longest dom0 home path extracted (Linux's PATH_MAX).
pub const MAX_HOME_PATH: usize = 4096;

struct OpenFile {
    file: File,
    path: PathBuf,
    key: Vec<u8>,
    size: u64,
    mode: u32,
    mtime: i64,
}

/// Extracts the dom0 home tree without ever writing outside `out_root`. Devices, fifos and
/// other special members are skipped and listed in `skipped`. Call [`HomeTree::finish`] after
/// the inner tar ends: it applies folder modes.
pub struct HomeTree {
    tree: TreeWriter,
    /// The home's path in the backup (`dom0-home/user`), for errors.
    name: String,
    prefix: Vec<Vec<u8>>,
    prefix_ok: bool,
    /// The prefix names a folder archived as itself (`vm1/.`).
    whole_folder: bool,
    /// The prefix is dom0's home (`dom0-home/<user>`).
    home: bool,
    cur: Option<OpenFile>,
    extracted: HashSet<Vec<u8>>,
    /// Members not restored (devices, fifos, …), with their type.
    pub skipped: Vec<String>,
    /// Regular files and hard links created.
    pub files: u64,
    /// File bytes written (holes not counted).
    pub bytes: u64,
    entries: u64,
}

impl HomeTree {
    /// `prefix` is the member name of the home, e.g. `dom0-home/user`; its last component is
    /// kept: `dom0-home/user/.bashrc` → `out_root/user/.bashrc`.
    pub fn new(out_root: &Path, prefix: &str) -> HomeTree {
        let mut comps: Vec<Vec<u8>> = Vec::new();
        let mut prefix_ok = !prefix.starts_with('/') && !prefix.contains('\0');
        for c in prefix.split('/') {
            match c {
                "" | "." => {}
                ".." => prefix_ok = false,
                c => comps.push(c.as_bytes().to_vec()),
            }
        }
        prefix_ok &= !comps.is_empty();
        let whole_folder = prefix.trim_end_matches('/').ends_with("/.");
        let home = prefix.starts_with("dom0-home/");
        HomeTree {
            tree: TreeWriter::new(out_root),
            name: prefix.to_string(),
            prefix: comps,
            prefix_ok,
            whole_folder,
            home,
            cur: None,
            extracted: HashSet::new(),
            skipped: Vec::new(),
            files: 0,
            bytes: 0,
            entries: 0,
        }
    }

    /// Applies folder modes (deepest first), once every member was extracted.
    pub fn finish(&mut self) -> Result<()> {
        if let Some(cur) = &self.cur {
            return Err(Error::truncated(&self.name, Cut::Incomplete(cur.path.display().to_string())));
        }
        self.tree.finish()
    }

    /// Checks a member name and returns its components below `out_root` (starting with `<user>`).
    fn components<'a>(&self, raw: &'a [u8]) -> Result<Vec<&'a [u8]>> {
        let name = String::from_utf8_lossy(raw).into_owned();
        let refuse = |why: &str| Err(Error::unsafe_path(name.clone(), why));
        if !self.prefix_ok {
            return refuse("the home folder name is not a safe relative name");
        }
        if raw.contains(&0) {
            return refuse("the name contains a NUL byte");
        }
        if raw.first() == Some(&b'/') {
            return refuse("absolute path");
        }
        let mut p = raw;
        while let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        }
        let p = p.strip_suffix(b"/").unwrap_or(p);
        if p.is_empty() {
            return refuse("empty name");
        }
        // GNU tar names a folder archived as itself `vm1/.` (a format 3 template's whole
        // folder: `vm1/./root.img`); `.` is that same folder, never a way out: dropped.
        let comps: Vec<&[u8]> = p.split(|&b| b == b'/').filter(|c| *c != b".").collect();
        for c in &comps {
            match *c {
                b"" => return refuse("empty path component"),
                b".." => return refuse("'..' path component"),
                _ => {}
            }
        }
        let n = self.prefix.len();
        if comps.len() < n || comps[..n].iter().zip(&self.prefix).any(|(a, b)| *a != b.as_slice()) {
            let prefix = self.prefix.iter().map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>();
            return refuse(&format!("outside {}", prefix.join("/")));
        }
        // dom0's home keeps its user name (`user/…`); a whole folder (`vm1/.`) lands in the
        // output folder itself.
        let keep = if self.whole_folder { n } else { n - 1 };
        Ok(comps[keep..].to_vec())
    }
}

fn key(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

impl Visitor for HomeTree {
    fn entry(&mut self, e: &Entry) -> Result<()> {
        let name = String::from_utf8_lossy(&e.path).into_owned();
        // Caps on what a hostile home tar can make us hold or create: Linux refuses longer
        // paths anyway (PATH_MAX), and a real home stays far below the entry count.
        if e.path.len() > MAX_HOME_PATH {
            return Err(Error::over_limit(&self.name, Limit::HomePath, e.path.len() as u64, MAX_HOME_PATH as u64));
        }
        self.entries += 1;
        if self.entries > crate::browse::fs::MAX_HOME_ENTRIES as u64 {
            return Err(Error::over_limit(&self.name, Limit::HomeEntries, self.entries, crate::browse::fs::MAX_HOME_ENTRIES as u64));
        }
        let comps = self.components(&e.path)?;
        if let Kind::Other(flag) = e.kind {
            let what = match flag {
                b'3' => "character device".to_string(),
                b'4' => "block device".to_string(),
                b'6' => "fifo".to_string(),
                f if f.is_ascii_graphic() => format!("type '{}'", f as char),
                f => format!("type {f}"),
            };
            self.skipped.push(format!("{name} ({what})"));
            return Ok(());
        }
        if e.kind == Kind::Dir {
            if comps.is_empty() {
                return Ok(()); // a whole folder's own entry: the output folder itself
            }
            self.tree.folder(&name, &comps, e.mode, e.mtime)?;
            return Ok(());
        }
        // dom0's home must be a folder (`user/…`); another stored tree (a folder or a link in
        // the place of a file, see `restore::pipeline`) may be one entry.
        if self.home && comps.len() < 2 {
            return Err(Error::unsafe_path(name, "the home itself must be a folder"));
        }
        match e.kind {
            Kind::File => {
                let (file, path) = self.tree.file(&name, &comps).map_err(|c| c.into_unsafe(&name))?;
                self.cur = Some(OpenFile { file, path, key: key(&comps), size: e.size, mode: e.mode, mtime: e.mtime });
            }
            Kind::Symlink => {
                self.tree.symlink(&name, &comps, &e.link).map_err(|c| c.into_unsafe(&name))?;
            }
            Kind::HardLink => {
                let target = self.components(&e.link)?;
                if !self.extracted.contains(&key(&target)) {
                    return Err(Error::unsafe_path(name, "hard link to a file that was not extracted"));
                }
                self.tree.hard_link(&name, &comps, &target).map_err(|c| c.into_unsafe(&name))?;
                self.files += 1;
            }
            Kind::Dir | Kind::Other(_) => {}
        }
        Ok(())
    }

    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        if let Some(cur) = &self.cur {
            cur.file.write_all_at(bytes, offset).map_err(|e| io_err("write", &cur.path, e))?;
            self.bytes += bytes.len() as u64;
        }
        Ok(())
    }

    fn end_entry(&mut self) -> Result<()> {
        let Some(cur) = self.cur.take() else { return Ok(()) };
        let f = &cur.file;
        f.set_len(cur.size).map_err(|e| io_err("resize", &cur.path, e))?;
        f.set_permissions(std::fs::Permissions::from_mode(cur.mode & 0o777)).map_err(|e| io_err("set the mode of", &cur.path, e))?;
        set_mtime(f, &cur.path, cur.mtime)?;
        self.extracted.insert(cur.key);
        self.files += 1;
        Ok(())
    }
}
