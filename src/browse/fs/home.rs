//! dom0's home as a browsable index of its inner tar (no file data kept).

use super::*;
use crate::error::{Cut, Limit};
/// dom0's home (an inner tar tree, `dom0-home/<user>/…`) as a browsable index of entries: no
/// file data is kept. Paths are shown as in dom0: `dom0-home/user/x` is `/home/user/x`.
/// Symbolic links are listed with their target and never followed; a hard link is listed as
/// the file it links to.
#[derive(Debug, Default, Clone)]
pub struct TarIndex {
    entries: std::collections::BTreeMap<Vec<u8>, Entry>,
    /// path → the path a hard link points to.
    links: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    /// path → where a file's bytes lie in the tar stream (for reading from a saved tar).
    files: std::collections::BTreeMap<Vec<u8>, Location>,
}

/// Where a file's stored bytes lie in a tar stream.
#[derive(Debug, Clone)]
pub(super) struct Location {
    data_start: u64,
    size: u64,
    /// Sparse map `(offset, len)` of the real file; stored back to back from `data_start`.
    map: Option<Vec<(u64, u64)>>,
}

/// dom0's home holds at most this many entries (a hostile tar of tiny members must not grow
/// the index without bound; a real home folder stays far below).
pub const MAX_HOME_ENTRIES: usize = 5_000_000;

impl TarIndex {
    pub fn new() -> TarIndex {
        TarIndex::default()
    }

    /// `dom0-home/user/x/` (or `./dom0-home/…`) → `/home/user/x`; `None` outside `dom0-home/`
    /// or with `.`/`..`/empty components.
    pub fn path_of(tar_name: &[u8]) -> Option<Vec<u8>> {
        let mut p = tar_name;
        while let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        }
        let p = p.strip_suffix(b"/").unwrap_or(p);
        let rest = p.strip_prefix(b"dom0-home/")?;
        if rest.split(|&b| b == b'/').any(|c| c.is_empty() || c == b"." || c == b"..") {
            return None;
        }
        Some([b"/home/".as_slice(), rest].concat())
    }

    fn dir(path: &[u8]) -> Entry {
        Entry {
            name: path.rsplit(|&b| b == b'/').next().unwrap_or_default().to_vec(),
            path: path.to_vec(),
            kind: Kind::Dir,
            size: 0,
            mtime: 0,
            mode: 0o755,
            target: None,
            error: None,
        }
    }

    /// Records one tar entry (and any folder above it the tar did not list).
    pub fn add(&mut self, e: &crate::format::inner_tar::Entry) {
        use crate::format::inner_tar::Kind as T;
        let Some(path) = TarIndex::path_of(&e.path) else { return };
        let mut at = 0;
        while let Some(i) = path[at + 1..].iter().position(|&b| b == b'/') {
            at += 1 + i;
            self.entries.entry(path[..at].to_vec()).or_insert_with(|| TarIndex::dir(&path[..at]));
        }
        self.entries.entry(b"/".to_vec()).or_insert_with(|| TarIndex::dir(b"/"));
        let mut entry = TarIndex::dir(&path);
        entry.mode = (e.mode & 0o7777) as u16;
        entry.mtime = e.mtime;
        match e.kind {
            T::Dir => {}
            T::File => {
                entry.kind = Kind::File;
                entry.size = e.size;
                self.files.insert(path.clone(), Location { data_start: e.data_start, size: e.size, map: e.map.clone() });
            }
            T::Symlink => {
                entry.kind = Kind::Symlink;
                entry.size = e.link.len() as u64;
                entry.target = Some(e.link.clone());
            }
            T::HardLink => {
                entry.kind = Kind::File;
                match TarIndex::path_of(&e.link).and_then(|t| self.entries.get(&t).map(|te| (t, te.size))) {
                    Some((t, size)) => {
                        entry.size = size;
                        self.links.insert(path.clone(), t);
                    }
                    None => entry.error = Some(Error::NotFound { what: format!("{} (the file this hard link points to)", lossy(&e.link)) }),
                }
            }
            T::Other(_) => entry.kind = Kind::Other,
        }
        self.entries.insert(path, entry);
    }

    /// The path a hard link at `path` points to.
    pub fn hard_link(&self, path: &[u8]) -> Option<&[u8]> {
        self.links.get(path).map(|v| v.as_slice())
    }

    pub fn stat(&self, path: &[u8]) -> Result<Entry> {
        let path = normalize(path);
        self.entries.get(&path).cloned().ok_or(Error::NotFound { what: shown(&path) })
    }

    /// The entries directly in the folder `path`, sorted by name.
    pub fn list(&self, path: &[u8]) -> Result<Listing> {
        let dir = self.stat(path)?;
        if dir.kind != Kind::Dir {
            return Err(Error::NotFound { what: format!("{} (not a folder)", shown(&dir.path)) });
        }
        let prefix = if dir.path == b"/" { b"/".to_vec() } else { [dir.path.as_slice(), b"/"].concat() };
        let entries = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, _)| p.len() > prefix.len() && !p[prefix.len()..].contains(&b'/'))
            .map(|(_, e)| e.clone())
            .collect();
        Ok(Listing { entries, errors: Vec::new() })
    }

    /// Indexes a saved tar of dom0's home (what the page downloads as `dom0-home-<user>.tar`)
    /// reading only its headers: each member's data is hopped over.
    pub fn index_stream(src: &dyn ReadAt) -> Result<TarIndex> {
        const HOME_TAR: &str = "the home folder's tar";
        let mut tar = crate::format::inner_tar::InnerTar::new();
        let mut index = TarIndex::new();
        let mut block = [0u8; 512];
        let mut pos = 0u64;
        while !tar.ended() && pos < src.len() {
            if src.len() - pos < 512 {
                return Err(Error::truncated(crate::error::Location::file(HOME_TAR, pos), Cut::HomeTar { file: false }));
            }
            src.read_at(pos, &mut block)?;
            pos += 512;
            let before = index.entries.len();
            let mut seen = Seen { index: &mut index, stored: None };
            tar.feed(HOME_TAR, &block, &mut seen)?;
            if let Some((data_start, stored)) = seen.stored.filter(|&(_, n)| n > 0) {
                let padded = stored.div_ceil(512) * 512;
                let end = data_start.checked_add(padded).filter(|&e| e <= src.len()).ok_or_else(|| {
                    Error::truncated(crate::error::Location::file(HOME_TAR, data_start), Cut::HomeTar { file: true })
                })?;
                tar.skip(HOME_TAR, padded, &mut NoData, &mut |_, _| {})?;
                pos = end;
            }
            if index.entries.len() > MAX_HOME_ENTRIES && index.entries.len() > before {
                return Err(Error::over_limit(HOME_TAR, Limit::HomeEntries, index.entries.len() as u64, MAX_HOME_ENTRIES as u64));
            }
        }
        Ok(index)
    }

    /// Opens the file at `path` (a hard link as the file it points to) for reading from `src`.
    pub fn open_file(&self, path: &[u8]) -> Result<TarFile> {
        let path = normalize(path);
        let target = self.links.get(&path).cloned().unwrap_or(path);
        let loc = self.files.get(&target).cloned().ok_or(Error::NotFound { what: format!("{} (not a file)", shown(&target)) })?;
        Ok(TarFile { loc, pos: 0 })
    }

    /// Walks the folder at `path` (its entries after it, sorted by path); `visit` returns
    /// whether to go into a folder.
    pub fn walk(&self, path: &[u8], visit: &mut dyn FnMut(Walked<'_>) -> Result<bool>) -> Result<()> {
        let dir = self.stat(path)?;
        let prefix = if dir.path == b"/" { b"/".to_vec() } else { [dir.path.as_slice(), b"/"].concat() };
        let mut skip: Option<Vec<u8>> = None;
        for (p, e) in self.entries.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)) {
            if p.len() == prefix.len() || skip.as_ref().is_some_and(|s| p.starts_with(s)) {
                continue;
            }
            let rel: Vec<Vec<u8>> = p[prefix.len()..].split(|&b| b == b'/').map(|c| c.to_vec()).collect();
            if !visit(Walked { rel: &rel, entry: e })? && e.kind == Kind::Dir {
                skip = Some([p.as_slice(), b"/"].concat());
            }
        }
        Ok(())
    }
}

/// Records the entry of one header block, and where its data starts.
pub(super) struct Seen<'a> {
    index: &'a mut TarIndex,
    stored: Option<(u64, u64)>,
}

impl crate::format::inner_tar::Visitor for Seen<'_> {
    fn entry(&mut self, entry: &crate::format::inner_tar::Entry) -> Result<()> {
        self.index.add(entry);
        self.stored = Some((entry.data_start, entry.stored));
        Ok(())
    }
    fn data(&mut self, _offset: u64, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }
    fn end_entry(&mut self) -> Result<()> {
        Ok(())
    }
}

pub(super) struct NoData;

impl crate::format::inner_tar::Visitor for NoData {
    fn entry(&mut self, _entry: &crate::format::inner_tar::Entry) -> Result<()> {
        Ok(())
    }
    fn data(&mut self, _offset: u64, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }
    fn end_entry(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A file of a saved tar being read in pieces; holes read as zeros.
pub struct TarFile {
    loc: Location,
    pos: u64,
}

impl TarFile {
    pub fn size(&self) -> u64 {
        self.loc.size
    }

    /// Fills as much of `buf` as the file has left (0 at the end), reading `src`.
    pub fn read(&mut self, src: &dyn ReadAt, buf: &mut [u8]) -> Result<usize> {
        let n = (self.loc.size - self.pos).min(buf.len() as u64) as usize;
        let buf = &mut buf[..n];
        buf.fill(0);
        let whole = [(0, self.loc.size)];
        let runs = self.loc.map.as_deref().unwrap_or(&whole);
        let mut stored_at = self.loc.data_start;
        for &(off, len) in runs {
            let (s, e) = (off.max(self.pos), (off + len).min(self.pos + n as u64));
            if s < e {
                let dst = &mut buf[(s - self.pos) as usize..(e - self.pos) as usize];
                src.read_at(stored_at + (s - off), dst)?;
            }
            stored_at += len;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl crate::format::inner_tar::Visitor for TarIndex {
    fn entry(&mut self, entry: &crate::format::inner_tar::Entry) -> Result<()> {
        self.add(entry);
        Ok(())
    }
    fn data(&mut self, _offset: u64, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }
    fn end_entry(&mut self) -> Result<()> {
        Ok(())
    }
}
