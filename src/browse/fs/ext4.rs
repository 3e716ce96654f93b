//! ext4 through ext4-view, with our own bounds: symbolic links resolved here (depth, steps,
//! target size), walks bounded in depth and entries, damaged entries reported one by one.

use super::*;
use ext4_view::{Ext4, Ext4Error, Ext4Read, Metadata, Path as ExtPath};
/// A byte window (a partition, or the whole image) as ext4-view's reader.
pub(super) struct Window {
    src: Box<dyn ReadAt>,
    start: u64,
    len: u64,
}

impl Ext4Read for Window {
    fn read(&mut self, start_byte: u64, dst: &mut [u8]) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        let end = start_byte.checked_add(dst.len() as u64).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(Box::new(Error::Io(format!(
                "the filesystem reads {} bytes at {start_byte}, past the end of its {} bytes (the image is cut short)",
                dst.len(),
                self.len
            ))));
        }
        self.src.read_at(self.start + start_byte, dst).map_err(|e| Box::new(e) as _)
    }
}

/// Checks the superblock's feature flags before ext4-view sees them, to name what is refused.
/// Returns the filesystem's inode count (`s_inodes_count`).
pub(super) fn check_features(w: &mut Window) -> Result<u64> {
    let mut sb = [0u8; 1024];
    w.read(1024, &mut sb).map_err(|_| Error::unsupported("no ext2/3/4 filesystem here (the image is too small)"))?;
    if u16::from_le_bytes([sb[56], sb[57]]) != EXT_MAGIC {
        return Err(Error::unsupported(
            "no ext2/3/4 filesystem here (only ext4 is browsed); `qubes-rescue extract` writes the raw image, which other tools can open",
        ));
    }
    // ext4-view sizes its block-group table from the superblock before reading it (and counts
    // `s_blocks_count_hi` even without the 64bit feature): a lying count made it try to
    // allocate 15 GB and abort (found by fuzz/fs_image). A filesystem never spans more than its
    // image, which bounds the table by the image's size.
    let le32 = |at: usize| u64::from(u32::from_le_bytes([sb[at], sb[at + 1], sb[at + 2], sb[at + 3]]));
    let blocks = le32(0x150) << 32 | le32(0x04);
    let log_block = le32(0x18);
    let fs_bytes = (log_block <= 6).then(|| blocks.checked_mul(1024 << log_block)).flatten();
    if le32(0x20) == 0 || fs_bytes.is_none_or(|n| n > w.len) {
        return Err(Error::Io(format!(
            "the ext4 superblock claims {blocks} blocks, more than the {}-byte image holds: the image is cut short or damaged; \
             `qubes-rescue extract` writes the raw image, which `e2fsck` can check on a copy",
            w.len
        )));
    }
    let incompat = u32::from_le_bytes([sb[0x60], sb[0x61], sb[0x62], sb[0x63]]);
    let mut refused: Vec<String> = REFUSED_FEATURES.iter().filter(|(bit, _)| incompat & bit != 0).map(|(_, n)| n.to_string()).collect();
    if incompat & 0x2_0000 != 0 {
        refused.push("casefold".into());
    }
    let unknown = incompat & !KNOWN_FEATURES & !0x2_0000;
    if unknown != 0 {
        refused.push(format!("unknown feature bits 0x{unknown:x}"));
    }
    if !refused.is_empty() {
        return Err(Error::unsupported(format!(
            "this ext4 filesystem uses {} which the file browser cannot read; `qubes-rescue extract` writes the raw image, \
             which Linux can mount (`mount -o loop,ro`) or `debugfs` can read",
            refused.join(", ")
        )));
    }
    Ok(le32(0x00))
}

/// What a path inside the filesystem is called in messages.
pub(super) fn shown(path: &[u8]) -> String {
    lossy(path)
}

/// ext4-view's error for `path`, in our classes.
pub(super) fn ext_err(path: &[u8], e: Ext4Error) -> Error {
    let p = shown(path);
    match e {
        // A component that is not a folder: the path does not exist either.
        Ext4Error::NotFound | Ext4Error::NotADirectory => Error::NotFound { what: p },
        Ext4Error::Incompatible(i) => Error::unsupported(format!(
            "{p}: {i} (the file browser cannot read this ext4 feature); `qubes-rescue extract` writes the raw image instead"
        )),
        Ext4Error::Encrypted => Error::unsupported(format!("{p} is encrypted (fscrypt)")),
        Ext4Error::Corrupt(c) => Error::Io(format!(
            "{p}: the filesystem is damaged ({c}); `qubes-rescue extract` the image and run `e2fsck` on a copy"
        )),
        Ext4Error::Io(e) => Error::Io(format!("{p}: reading the image failed ({e})")),
        Ext4Error::TooManySymlinks => Error::Io(format!("{p}: too many levels of symbolic links (a loop?)")),
        other => Error::Io(format!("{p}: {other}")),
    }
}

pub(super) fn ext_path(path: &[u8]) -> Result<ExtPath<'_>> {
    if path.first() != Some(&b'/') {
        return Err(Error::Io(format!("{}: paths inside the filesystem start with /", shown(path))));
    }
    ExtPath::try_from(path).map_err(|e| Error::Io(format!("{}: not a valid path ({e})", shown(path))))
}

pub(super) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// Components joined into an absolute path (`/` for none).
pub(super) trait ConcatPath {
    fn concat_path(&self) -> Vec<u8>;
}

impl ConcatPath for [Vec<u8>] {
    fn concat_path(&self) -> Vec<u8> {
        if self.is_empty() {
            return b"/".to_vec();
        }
        self.iter().flat_map(|c| std::iter::once(b'/').chain(c.iter().copied())).collect()
    }
}

/// `/a/b/` → `/a/b`; `//x` → `/x`; `.` components dropped. `..` is kept (resolved by the
/// filesystem, which never goes above its root).
pub fn normalize(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".") {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// A salvaged image's reader: every read that touches one of the `lost` byte ranges (which
/// hold zeros, not data) raises `hit`, so a browser can tell which files read lost bytes.
pub struct LostWatch<R> {
    pub inner: R,
    pub lost: Vec<(u64, u64)>,
    pub hit: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: ReadAt> ReadAt for LostWatch<R> {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset.saturating_add(buf.len() as u64);
        if self.lost.iter().any(|&(s, e)| s < end && offset < e) {
            self.hit.set(true);
        }
        self.inner.read_at(offset, buf)
    }
}

/// One item of a walk: the entry, and its path relative to the walk's start, as components.
pub struct Walked<'a> {
    pub rel: &'a [Vec<u8>],
    pub entry: &'a Entry,
}

/// An ext4 filesystem inside an image (the whole image, or one partition of it).
pub struct Fs {
    ext4: Ext4,
    /// The partition browsed, when the image is a partitioned disk.
    pub partition: Option<Partition>,
    /// Every partition of the disk (empty for a bare filesystem).
    pub partitions: Vec<Partition>,
    /// The superblock's inode count: a sound filesystem holds at most this many folders, each
    /// under one name, so a walk entering more has met the same folder twice.
    inodes: u64,
    /// Path components ext4-view has been asked to resolve: the work a listing or walk costs,
    /// which tests bound (a path of depth d costs d lookups, each a folder search).
    resolved: std::cell::Cell<u64>,
}

impl Fs {
    /// `path` for ext4-view, counted in [`Fs::components_resolved`].
    fn at<'p>(&self, path: &'p [u8]) -> Result<ExtPath<'p>> {
        let p = ext_path(path)?;
        let depth = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).count() as u64;
        self.resolved.set(self.resolved.get().saturating_add(depth));
        Ok(p)
    }

    /// How many path components this filesystem has resolved so far.
    pub fn components_resolved(&self) -> u64 {
        self.resolved.get()
    }

    /// Opens the filesystem of `src`: a bare ext4, or on a partitioned disk the partition
    /// `number` (1-based), by default the first Linux-typed partition holding ext4 (else the
    /// first partition holding ext4).
    pub fn open<R: ReadAt + 'static>(src: R, number: Option<u32>) -> Result<Fs> {
        let parts = partitions(&src)?;
        let (partition, start, len) = match (&parts, number) {
            (None, None) => (None, 0, src.len()),
            (None, Some(n)) => {
                return Err(Error::NotFound { what: format!("partition {n} (this image is a bare filesystem, with no partition table)") })
            }
            (Some(parts), Some(n)) => {
                let p = parts.iter().find(|p| p.number == n).ok_or_else(|| Error::NotFound {
                    what: format!("partition {n} (the disk has {})", parts.iter().map(|p| p.number.to_string()).collect::<Vec<_>>().join(", ")),
                })?;
                (Some(p.clone()), p.start, p.size)
            }
            (Some(parts), None) => {
                let p = parts.iter().find(|p| p.linux && p.ext4).or_else(|| parts.iter().find(|p| p.ext4)).ok_or_else(|| {
                    Error::unsupported(format!(
                        "no ext4 partition on this disk (partitions: {}); `qubes-rescue extract` writes the raw image",
                        parts.iter().map(|p| format!("{} {}", p.number, p.kind)).collect::<Vec<_>>().join(", ")
                    ))
                })?;
                (Some(p.clone()), p.start, p.size)
            }
        };
        if start.checked_add(len).is_none_or(|e| e > src.len()) {
            return Err(Error::Io(format!("the partition at byte {start} ends past the end of the image ({} bytes)", src.len())));
        }
        let mut window = Window { src: Box::new(src), start, len };
        let inodes = check_features(&mut window)?;
        let ext4 = Ext4::load(Box::new(window)).map_err(|e| ext_err(b"/", e))?;
        Ok(Fs { ext4, partition, partitions: parts.unwrap_or_default(), inodes, resolved: Default::default() })
    }

    /// `path` with every symbolic link resolved here rather than by ext4-view, which reads a
    /// link's target whole, sized by its inode: a damaged link claiming 4 GiB made it allocate
    /// 4 GiB (found by fuzz/fs_image). Targets longer than [`MAX_LINK_TARGET`] are refused
    /// unread; at most 40 links are followed; `..` never climbs above the root. The last
    /// component is followed only with `follow_last`.
    ///
    /// ext4-view looks paths up from the root, so each step costs its depth: the result may be
    /// at most [`MAX_DEPTH`] deep and the walk at most [`MAX_STEPS`] steps (links of 4 KiB of
    /// `a/a/…` through a damaged folder loop would otherwise cost ~80 M lookups).
    fn real_path(&self, path: &[u8], follow_last: bool) -> Result<Vec<u8>> {
        let mut todo: Vec<Vec<u8>> = path.split(|&b| b == b'/').rev().map(|c| c.to_vec()).collect();
        let mut done: Vec<Vec<u8>> = Vec::new();
        let mut links = 0;
        let mut steps = 0;
        while let Some(c) = todo.pop() {
            match c.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            steps += 1;
            if steps > MAX_STEPS || done.len() >= MAX_DEPTH {
                return Err(Error::Io(format!(
                    "{}: the path leads over {MAX_DEPTH} folders deep or takes over {MAX_STEPS} steps to follow (a loop in a damaged filesystem?)",
                    shown(path)
                )));
            }
            let here = join(&done.concat_path(), &c);
            if todo.iter().all(|t| t.is_empty() || t == b".") && !follow_last {
                done.push(c);
                continue;
            }
            let md = self.ext4.symlink_metadata(self.at(&here)?).map_err(|e| ext_err(path, e))?;
            if !md.is_symlink() {
                done.push(c);
                continue;
            }
            links += 1;
            if links > 40 {
                return Err(Error::Io(format!("{}: too many levels of symbolic links (a loop?)", shown(path))));
            }
            let target = self.link_target(&here, &md)?;
            if target.first() == Some(&b'/') {
                done.clear();
            }
            todo.extend(target.split(|&b| b == b'/').rev().map(|t| t.to_vec()));
        }
        Ok(done.concat_path())
    }

    /// A symbolic link's target, refused unread when its inode claims more than a path can be.
    fn link_target(&self, path: &[u8], md: &Metadata) -> Result<Vec<u8>> {
        if md.len() > MAX_LINK_TARGET {
            return Err(Error::Io(format!(
                "{}: a symbolic link whose target would be {} bytes (at most {MAX_LINK_TARGET}): the filesystem is damaged",
                shown(path),
                md.len()
            )));
        }
        let t = self.ext4.read_link(self.at(path)?).map_err(|e| ext_err(path, e))?;
        Ok(t.as_ref().to_vec())
    }

    fn entry(&self, path: &[u8], name: &[u8], md: std::result::Result<Metadata, Ext4Error>, kind: Option<Kind>) -> Entry {
        let mut e = Entry {
            name: name.to_vec(),
            path: path.to_vec(),
            kind: kind.unwrap_or(Kind::Other),
            size: 0,
            mtime: 0,
            mode: 0,
            target: None,
            error: None,
        };
        match md {
            Ok(md) => {
                e.kind = Kind::of(md.file_type());
                e.size = md.len();
                e.mtime = md.modified().seconds();
                e.mode = md.mode();
                if e.kind == Kind::Symlink {
                    // `path`'s folder has no links in it here (see `real_path`).
                    match self.link_target(path, &md) {
                        Ok(t) => e.target = Some(t),
                        Err(err) => e.error = Some(err),
                    }
                }
            }
            Err(err) => e.error = Some(ext_err(path, err)),
        }
        e
    }

    /// The entry at `path` itself (a symbolic link as itself, with its target).
    pub fn stat(&self, path: &[u8]) -> Result<Entry> {
        let path = normalize(path);
        let real = self.real_path(&path, false)?;
        let md = self.ext4.symlink_metadata(self.at(&real)?).map_err(|e| ext_err(&path, e))?;
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or_default().to_vec();
        let mut e = self.entry(&real, &name, Ok(md), None);
        e.path = path;
        Ok(e)
    }

    /// The entry `path` leads to once symbolic links are followed (inside this filesystem
    /// only, at most 40); its name is still the last component of `path`.
    pub fn stat_follow(&self, path: &[u8]) -> Result<Entry> {
        let path = normalize(path);
        let real = self.real_path(&path, true)?;
        let md = self.ext4.symlink_metadata(self.at(&real)?).map_err(|e| ext_err(&path, e))?;
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or_default().to_vec();
        let mut e = self.entry(&real, &name, Ok(md), None);
        e.path = path;
        e.target = None;
        Ok(e)
    }

    /// What `path` is once symbolic links are followed (inside this filesystem only).
    pub fn resolve(&self, path: &[u8]) -> Result<Kind> {
        self.stat_follow(path).map(|e| e.kind)
    }

    /// The entries of the folder at `path` (symbolic links on the way followed), sorted by
    /// name, without `.` and `..`. A damaged entry carries its error; a damaged folder block
    /// ends the listing with what was read so far, and the error in `errors`.
    pub fn list(&self, path: &[u8]) -> Result<Listing> {
        let path = normalize(path);
        let real = self.real_path(&path, true)?;
        self.list_real(&path, &real)
    }

    /// [`Fs::list`] of the folder shown as `path` whose path without symbolic links is `real`.
    fn list_real(&self, path: &[u8], real: &[u8]) -> Result<Listing> {
        let rd = self.ext4.read_dir(self.at(real)?).map_err(|e| ext_err(path, e))?;
        let mut out = Listing::default();
        for item in rd {
            match item {
                Ok(de) => {
                    let name = de.file_name();
                    let name: &[u8] = name.as_ref();
                    if name == b"." || name == b".." {
                        continue;
                    }
                    let kind = de.file_type().ok().map(Kind::of);
                    let mut e = self.entry(&join(real, name), name, de.metadata(), kind);
                    e.path = join(path, name);
                    out.entries.push(e);
                }
                Err(e) => out.errors.push(ext_err(path, e)),
            }
        }
        out.entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Opens the file at `path` (symbolic links followed inside this filesystem) for reading
    /// in pieces.
    pub fn open_file(&self, path: &[u8]) -> Result<FileReader> {
        let path = normalize(path);
        let real = self.real_path(&path, true)?;
        let file = self.ext4.open(self.at(&real)?).map_err(|e| ext_err(&path, e))?;
        Ok(FileReader { size: file.metadata().len(), file, path })
    }

    /// Streams the file at `path` to `out` in pieces of at most [`PIECE`] bytes, as
    /// (offset, bytes); the caller may skip all-zero pieces to keep holes. Returns the size.
    pub fn read_file(&self, path: &[u8], out: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<u64> {
        let mut f = self.open_file(path)?;
        let mut buf = vec![0u8; PIECE.min(f.size() as usize).max(1)];
        let mut at = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(at);
            }
            out(at, &buf[..n])?;
            at += n as u64;
        }
    }

    /// Salvaged images: which files directly in the folder `path` read bytes from a lost range
    /// (`hit` is the flag of the image's [`LostWatch`]). Nothing records which blocks a file
    /// owns short of reading it (ext4-view keeps extents private), so each file is read whole,
    /// up to `budget` bytes in all: returns (files that touch lost bytes or cannot be read,
    /// files left unchecked).
    pub fn lost_files(&self, path: &[u8], hit: &std::cell::Cell<bool>, budget: u64) -> Result<(Vec<Entry>, Vec<Entry>)> {
        let (mut lost, mut unchecked) = (Vec::new(), Vec::new());
        let mut left = budget;
        for e in self.list(path)?.entries.into_iter().filter(|e| e.kind == Kind::File && e.error.is_none()) {
            if e.size > left {
                unchecked.push(e);
                continue;
            }
            left -= e.size;
            hit.set(false);
            let read = self.read_file(&e.path, &mut |_, _| Ok(()));
            if read.is_err() || hit.get() {
                lost.push(e);
            }
        }
        Ok((lost, unchecked))
    }

    /// Walks the folder at `path` depth first (a folder before its entries), never following
    /// symbolic links below it. Damaged entries and folders are handed to `visit` with their
    /// error, and the walk goes on; the walk stops (with an error) at [`MAX_DEPTH`] levels,
    /// [`MAX_WALK_ENTRIES`] entries, or on entering more folders than the filesystem has
    /// inodes. `visit` returns whether to go into a folder.
    pub fn walk(&self, path: &[u8], visit: &mut dyn FnMut(Walked<'_>) -> Result<bool>) -> Result<()> {
        let path = normalize(path);
        let real = self.real_path(&path, true)?;
        let mut budget = Budget { entries: MAX_WALK_ENTRIES, folders: self.inodes };
        self.walk_in(&path, &real, &mut Vec::new(), &mut budget, visit)
    }

    /// `real` is `dir` without symbolic links: the walk never follows one, so a folder's real
    /// path is its parent's plus its name. Resolving each folder's path afresh made a walk
    /// down a damaged filesystem's folder loop cost depth³ lookups (fuzz/fs_image: 10 s for a
    /// 768 KiB image).
    fn walk_in(&self, dir: &[u8], real: &[u8], rel: &mut Vec<Vec<u8>>, budget: &mut Budget, visit: &mut dyn FnMut(Walked<'_>) -> Result<bool>) -> Result<()> {
        let listing = match self.list_real(dir, real) {
            Ok(l) => l,
            Err(e) => Listing { entries: Vec::new(), errors: vec![e] },
        };
        for err in listing.errors {
            let entry = Entry {
                name: rel.last().cloned().unwrap_or_default(),
                path: dir.to_vec(),
                kind: Kind::Dir,
                size: 0,
                mtime: 0,
                mode: 0,
                target: None,
                error: Some(err),
            };
            // The folder itself, with what went wrong reading it.
            visit(Walked { rel, entry: &entry })?;
        }
        for entry in listing.entries {
            budget.entries = budget.entries.checked_sub(1).ok_or_else(|| Error::Io(format!("{}: more than {MAX_WALK_ENTRIES} entries; stopped", shown(dir))))?;
            rel.push(entry.name.clone());
            let descend = visit(Walked { rel, entry: &entry })?;
            if descend && entry.kind == Kind::Dir && entry.error.is_none() {
                if rel.len() >= MAX_DEPTH {
                    rel.pop();
                    return Err(Error::Io(format!("{}: folders nested over {MAX_DEPTH} deep (a loop in a damaged filesystem?)", shown(&entry.path))));
                }
                // ext4-view does not say which inode an entry names, so a folder reached under
                // two names (damage: ext4 never hard-links folders) is caught by count: a
                // damaged tree of 18 folders each naming the next twice walked 2^18 paths.
                budget.folders = budget.folders.checked_sub(1).ok_or_else(|| {
                    Error::Io(format!(
                        "{}: the walk has entered more folders than the filesystem's {} inodes: some folder is named more than once (a damaged filesystem); stopped",
                        shown(&entry.path),
                        self.inodes
                    ))
                })?;
                self.walk_in(&entry.path, &join(real, &entry.name), rel, budget, visit)?;
            }
            rel.pop();
        }
        Ok(())
    }
}

/// What a walk may still visit.
pub(super) struct Budget {
    entries: u64,
    folders: u64,
}

/// A file being read in pieces.
pub struct FileReader {
    file: ext4_view::File,
    size: u64,
    path: Vec<u8>,
}

impl FileReader {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Fills as much of `buf` as the file has left (0 at the end); holes read as zeros.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            // ext4-view returns at most one block per call.
            let got = self.file.read_bytes(&mut buf[n..]).map_err(|e| ext_err(&self.path, e))?;
            if got == 0 {
                break;
            }
            n += got;
        }
        Ok(n)
    }
}
