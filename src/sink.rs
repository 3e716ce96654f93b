//! Where restored bytes go: a volume image, a small file kept in memory, nothing (verify only),
//! or the dom0 home tree (FORMAT.md §6.4, §12 item 13).
//!
//! Sinks take positioned writes and never write holes, so a sparse volume stays sparse on disk.

use crate::error::{Error, Result};

/// Where a restored volume (or any single file) goes: positioned writes, holes never written.
pub trait VolumeSink {
    fn set_len(&mut self, len: u64) -> Result<()>;
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()>;
}

/// A small file kept in memory (qubes.xml, firewall.xml, notes.txt), refused above `cap` bytes.
#[derive(Debug, Clone)]
pub struct MemorySink {
    pub data: Vec<u8>,
    cap: u64,
}

impl MemorySink {
    /// Memory grows with `set_len`/`write_at` only, never past `cap` bytes.
    pub fn with_cap(cap: u64) -> MemorySink {
        MemorySink { data: Vec::new(), cap }
    }

    pub fn cap(&self) -> u64 {
        self.cap
    }

    fn over(&self, len: u64) -> Error {
        Error::unsupported(format!("a file of {len} bytes where at most {} bytes are expected", self.cap))
    }
}

impl VolumeSink for MemorySink {
    /// Sets the length (a trailing hole reads as zeros); bounded by the cap.
    fn set_len(&mut self, len: u64) -> Result<()> {
        if len > self.cap {
            return Err(self.over(len));
        }
        self.data.resize(len as usize, 0);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset.checked_add(data.len() as u64).ok_or_else(|| self.over(u64::MAX))?;
        if end > self.cap {
            return Err(self.over(end));
        }
        let (offset, end) = (offset as usize, end as usize);
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[offset..end].copy_from_slice(data);
        Ok(())
    }
}

/// Verify only: every byte is checked upstream and dropped here.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl VolumeSink for NullSink {
    fn set_len(&mut self, _len: u64) -> Result<()> {
        Ok(())
    }
    fn write_at(&mut self, _offset: u64, _data: &[u8]) -> Result<()> {
        Ok(())
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::{HomeTree, SparseFile};

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::VolumeSink;
    use crate::error::{Error, Result};
    use crate::inner_tar::{Entry, Kind, Visitor};
    use std::collections::HashSet;
    use std::ffi::{OsStr, OsString};
    use std::fs::{self, DirBuilder, File, OpenOptions};
    use std::io::ErrorKind;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
    use std::path::{Path, PathBuf};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
        Error::Io(format!("cannot {what} {}: {e}", path.display()))
    }

    /// A volume image written as `<final>.partial`, renamed to `<final>` by [`SparseFile::commit`].
    /// Holes are never written, so they stay holes on filesystems that support them.
    #[derive(Debug)]
    pub struct SparseFile {
        file: Option<File>,
        partial: PathBuf,
        final_path: PathBuf,
    }

    impl SparseFile {
        /// Creates `<final_path>.partial`; refuses if it or `final_path` already exists.
        pub fn create(final_path: &Path) -> Result<SparseFile> {
            let mut p: OsString = final_path.as_os_str().to_owned();
            p.push(".partial");
            let partial = PathBuf::from(p);
            if fs::symlink_metadata(final_path).is_ok() {
                return Err(Error::Io(format!(
                    "{} already exists; choose another output folder or remove it first",
                    final_path.display()
                )));
            }
            if fs::symlink_metadata(&partial).is_ok() {
                return Err(Error::Io(format!(
                    "{} already exists (left by an interrupted restore?); remove it first",
                    partial.display()
                )));
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&partial)
                .map_err(|e| io_err("create", &partial, e))?;
            Ok(SparseFile { file: Some(file), partial, final_path: final_path.to_path_buf() })
        }

        /// The `.partial` file being written.
        pub fn partial_path(&self) -> &Path {
            &self.partial
        }

        pub fn final_path(&self) -> &Path {
            &self.final_path
        }

        fn file(&self) -> Result<&File> {
            self.file.as_ref().ok_or_else(|| Error::Io("the output file is closed".into()))
        }

        /// Flushes to disk and renames `.partial` to the final name (refused if that appeared meanwhile).
        pub fn commit(mut self) -> Result<()> {
            let file = self.file.take().ok_or_else(|| Error::Io("the output file is closed".into()))?;
            file.sync_all().map_err(|e| io_err("flush", &self.partial, e))?;
            drop(file);
            if fs::symlink_metadata(&self.final_path).is_ok() {
                return Err(Error::Io(format!(
                    "{} appeared while restoring; the data is kept in {}",
                    self.final_path.display(),
                    self.partial.display()
                )));
            }
            fs::rename(&self.partial, &self.final_path).map_err(|e| io_err("rename", &self.partial, e))
        }

        /// Closes the file and removes it, or keeps the `.partial` file for inspection.
        pub fn abort(mut self, keep_partial: bool) {
            drop(self.file.take());
            if !keep_partial {
                let _ = fs::remove_file(&self.partial);
            }
        }
    }

    impl VolumeSink for SparseFile {
        fn set_len(&mut self, len: u64) -> Result<()> {
            self.file()?.set_len(len).map_err(|e| io_err("resize", &self.partial, e))
        }

        /// Writes `data`, leaving 4 KiB blocks that are all zeros unwritten: they already read
        /// as zeros after `set_len`, and GNU tar stores allocated-but-zero extents (ext4 inode
        /// tables, preallocated files) as data, which would otherwise fill the holes.
        /// Sound because the restore writes each byte at most once, in ascending order.
        fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
            const BLOCK: u64 = 4096;
            let mut start = 0usize; // start of the pending run of bytes to write
            let mut at = 0usize;
            while at < data.len() {
                let block_end = ((offset + at as u64) / BLOCK + 1) * BLOCK;
                let end = data.len().min((block_end - offset) as usize);
                if data[at..end].iter().all(|&b| b == 0) {
                    if start < at {
                        self.write_run(offset + start as u64, &data[start..at])?;
                    }
                    start = end;
                }
                at = end;
            }
            if start < data.len() {
                self.write_run(offset + start as u64, &data[start..])?;
            }
            Ok(())
        }
    }

    impl SparseFile {
        fn write_run(&mut self, offset: u64, data: &[u8]) -> Result<()> {
            self.file()?.write_all_at(data, offset).map_err(|e| io_err("write", &self.partial, e))
        }
    }

    struct OpenFile {
        file: File,
        path: PathBuf,
        key: Vec<u8>,
        size: u64,
        mode: u32,
        mtime: i64,
    }

    /// Extracts the dom0 home tree (`dom0-home/<user>/…`) under `out_root/<user>/…` without ever
    /// writing outside `out_root`: names are checked component by component, existing parents must
    /// be real folders (never symbolic links), files are created with `O_EXCL|O_NOFOLLOW`, symbolic
    /// links are created verbatim and never followed, hard links only to files extracted before.
    /// Devices, fifos and other special members are skipped and listed in `skipped`.
    ///
    /// Call [`HomeTree::finish`] after the inner tar ends: it applies folder modes.
    /// Note (FORMAT.md §6.4): GNU tar `--xform` rewrote relative symlink targets inside the home to
    /// `dom0-home/<user>/…`; they are restored verbatim, as Qubes' own restore does.
    pub struct HomeTree {
        root: PathBuf,
        prefix: Vec<Vec<u8>>,
        prefix_ok: bool,
        root_ready: bool,
        cur: Option<OpenFile>,
        dirs: Vec<(PathBuf, u32)>,
        extracted: HashSet<Vec<u8>>,
        /// Members not restored (devices, fifos, …), with their type.
        pub skipped: Vec<String>,
        /// Regular files and hard links created.
        pub files: u64,
        /// File bytes written (holes not counted).
        pub bytes: u64,
        entries: u64,
    }

    /// The longest dom0 home path extracted (Linux's PATH_MAX).
    pub const MAX_HOME_PATH: usize = 4096;

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
            HomeTree {
                root: out_root.to_path_buf(),
                prefix: comps,
                prefix_ok,
                root_ready: false,
                cur: None,
                dirs: Vec::new(),
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
                return Err(Error::truncated("", format!("{} is incomplete", cur.path.display())));
            }
            while let Some((path, mode)) = self.dirs.pop() {
                match fs::symlink_metadata(&path) {
                    Ok(md) if md.file_type().is_dir() => {
                        fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o777))
                            .map_err(|e| io_err("set the mode of", &path, e))?;
                    }
                    _ => {
                        return Err(Error::unsafe_path(
                            path.display().to_string(),
                            "a folder was replaced while restoring",
                        ))
                    }
                }
            }
            Ok(())
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
            let comps: Vec<&[u8]> = p.split(|&b| b == b'/').collect();
            for c in &comps {
                match *c {
                    b"" => return refuse("empty path component"),
                    b"." => return refuse("'.' path component"),
                    b".." => return refuse("'..' path component"),
                    _ => {}
                }
            }
            let n = self.prefix.len();
            if comps.len() < n || comps[..n].iter().zip(&self.prefix).any(|(a, b)| *a != b.as_slice()) {
                let prefix = self.prefix.iter().map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>();
                return refuse(&format!("outside {}", prefix.join("/")));
            }
            Ok(comps[n - 1..].to_vec())
        }

        fn ensure_root(&mut self) -> Result<()> {
            if !self.root_ready {
                fs::create_dir_all(&self.root).map_err(|e| io_err("create", &self.root, e))?;
                self.root_ready = true;
            }
            Ok(())
        }

        /// Walks (and creates) `comps` as real folders below the root; a symlink or a file on the
        /// way is refused.
        fn ensure_dirs(&self, name: &str, comps: &[&[u8]]) -> Result<PathBuf> {
            let mut p = self.root.clone();
            for c in comps {
                p.push(OsStr::from_bytes(c));
                match fs::symlink_metadata(&p) {
                    Ok(md) if md.file_type().is_dir() => {}
                    Ok(md) if md.file_type().is_symlink() => {
                        return Err(Error::unsafe_path(name, "a parent folder is a symbolic link"))
                    }
                    Ok(_) => return Err(Error::unsafe_path(name, "a parent is not a folder")),
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        DirBuilder::new().mode(0o700).create(&p).map_err(|e| io_err("create", &p, e))?;
                    }
                    Err(e) => return Err(io_err("inspect", &p, e)),
                }
            }
            Ok(p)
        }

        /// Checks without creating that `comps` is an extracted regular file reached through real folders.
        fn existing_file(&self, name: &str, comps: &[&[u8]]) -> Result<PathBuf> {
            let mut p = self.root.clone();
            for (i, c) in comps.iter().enumerate() {
                p.push(OsStr::from_bytes(c));
                let md = fs::symlink_metadata(&p)
                    .map_err(|_| Error::unsafe_path(name, "hard link to a file that was not extracted"))?;
                let ok =
                    if i + 1 == comps.len() { md.file_type().is_file() } else { md.file_type().is_dir() };
                if !ok {
                    return Err(Error::unsafe_path(
                        name,
                        "hard link through or to something that is not a file",
                    ));
                }
            }
            Ok(p)
        }

        fn exists_err(name: &str, path: &Path, e: std::io::Error) -> Error {
            if e.kind() == ErrorKind::AlreadyExists {
                Error::unsafe_path(name, "it already exists in the output folder")
            } else {
                io_err("create", path, e)
            }
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
                return Err(Error::unsupported(format!("a dom0 home entry with a path of {} bytes (at most {MAX_HOME_PATH})", e.path.len())));
            }
            self.entries += 1;
            if self.entries > crate::fs::MAX_HOME_ENTRIES as u64 {
                return Err(Error::unsupported(format!("a dom0 home of more than {} entries", crate::fs::MAX_HOME_ENTRIES)));
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
            self.ensure_root()?;
            if e.kind == Kind::Dir {
                let p = self.ensure_dirs(&name, &comps)?;
                self.dirs.push((p, e.mode));
                return Ok(());
            }
            if comps.len() < 2 {
                return Err(Error::unsafe_path(name, "the home itself must be a folder"));
            }
            let (last, parents) = comps.split_last().expect("two components");
            let mut path = self.ensure_dirs(&name, parents)?;
            path.push(OsStr::from_bytes(last));
            match e.kind {
                Kind::File => {
                    let file = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&path)
                        .map_err(|err| Self::exists_err(&name, &path, err))?;
                    self.cur = Some(OpenFile {
                        file,
                        path,
                        key: key(&comps),
                        size: e.size,
                        mode: e.mode,
                        mtime: e.mtime,
                    });
                }
                Kind::Symlink => {
                    if e.link.is_empty() || e.link.contains(&0) {
                        return Err(Error::unsafe_path(name, "symbolic link with an empty or NUL target"));
                    }
                    std::os::unix::fs::symlink(OsStr::from_bytes(&e.link), &path)
                        .map_err(|err| Self::exists_err(&name, &path, err))?;
                }
                Kind::HardLink => {
                    let target = self.components(&e.link)?;
                    if !self.extracted.contains(&key(&target)) {
                        return Err(Error::unsafe_path(name, "hard link to a file that was not extracted"));
                    }
                    let src = self.existing_file(&name, &target)?;
                    // link(2) does not follow a symlink at `src`; `existing_file` checked it is a file.
                    fs::hard_link(&src, &path).map_err(|err| Self::exists_err(&name, &path, err))?;
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
            f.set_permissions(fs::Permissions::from_mode(cur.mode & 0o777))
                .map_err(|e| io_err("set the mode of", &cur.path, e))?;
            let t = if cur.mtime >= 0 {
                UNIX_EPOCH.checked_add(Duration::from_secs(cur.mtime as u64))
            } else {
                UNIX_EPOCH.checked_sub(Duration::from_secs(cur.mtime.unsigned_abs()))
            };
            if let Some(t) = t.filter(|t| *t < SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40)) {
                f.set_modified(t).map_err(|e| io_err("set the time of", &cur.path, e))?;
            }
            self.extracted.insert(cur.key);
            self.files += 1;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inner_tar::tests::{fix_checksum, gnu_tar, header, plain_tree, tmpdir};
    use crate::inner_tar::InnerTar;
    use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
    use std::path::Path;

    fn extract(tar: &[u8], out: &Path, piece: usize) -> (HomeTree, Result<()>) {
        let mut home = HomeTree::new(out, "dom0-home/user");
        let mut t = InnerTar::new();
        let r = (|| {
            for p in tar.chunks(piece) {
                t.feed(p, &mut home)?;
            }
            t.finish(&mut home)?;
            home.finish()
        })();
        (home, r)
    }

    /// (name, typeflag, link target, data)
    type Member<'a> = (&'a [u8], u8, &'a [u8], &'a [u8]);

    /// Hand-built members (GNU headers), then the end marker.
    fn members(list: &[Member]) -> Vec<u8> {
        let mut v = Vec::new();
        for (name, flag, link, data) in list {
            v.extend_from_slice(&header(name, *flag, data.len() as u64, link, false));
            v.extend_from_slice(data);
            while v.len() % 512 != 0 {
                v.push(0);
            }
        }
        v.extend_from_slice(&[0; 1024]);
        v
    }

    fn files_under(p: &Path) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd {
                let e = e.unwrap();
                out.push(e.path().display().to_string());
                if e.file_type().unwrap().is_dir() {
                    out.extend(files_under(&e.path()));
                }
            }
        }
        out
    }

    #[test]
    fn dom0_home_extracts_files_links_modes_and_holes() {
        let dir = tmpdir("home-ok");
        let src = dir.join("src");
        let long = plain_tree(&src);
        let f = std::fs::File::create(src.join("user/sparse.img")).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(b"middle", 32 << 20).unwrap();
        std::fs::set_permissions(src.join("user/sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
        let tar =
            gnu_tar(&src, &["--format=gnu", "--sparse", "-c", "--xform=s:^user:dom0-home/\\0:", "user"]);
        let out = dir.join("out");
        let (home, r) = extract(&tar, &out, 777);
        r.unwrap();
        let u = out.join("user");
        assert_eq!(std::fs::read(u.join("file.txt")).unwrap(), b"file contents\n");
        let md = std::fs::metadata(u.join("file.txt")).unwrap();
        assert_eq!((md.mode() & 0o777, md.mtime()), (0o640, 1600000000));
        assert_eq!(std::fs::read(u.join(format!("sub/{long}"))).unwrap(), vec![0x5a; 70000]);
        assert_eq!(std::fs::metadata(u.join("sub")).unwrap().mode() & 0o777, 0o750);
        assert_eq!(std::fs::read(u.join("empty")).unwrap(), b"");
        // Targets are restored verbatim (never rewritten, never followed).
        assert_eq!(std::fs::read_link(u.join("link")).unwrap(), Path::new("file.txt"));
        assert_eq!(std::fs::metadata(u.join("hard")).unwrap().ino(), md.ino());
        let sp = std::fs::metadata(u.join("sparse.img")).unwrap();
        assert_eq!(sp.len(), 64 << 20);
        assert!(sp.blocks() * 512 < 1 << 20, "holes stayed holes");
        let mut buf = [0u8; 6];
        std::fs::File::open(u.join("sparse.img")).unwrap().read_exact_at(&mut buf, 32 << 20).unwrap();
        assert_eq!(&buf, b"middle");
        assert_eq!(home.files, 5, "4 files + 1 hard link");
        assert!(home.skipped.is_empty());
        assert!(home.bytes < (1 << 20), "only data was written");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_home_path_over_path_max_is_refused_before_anything_is_created() {
        let dir = tmpdir("home-long");
        let out = dir.join("out");
        let mut home = HomeTree::new(&out, "dom0-home/user");
        let mut path = b"dom0-home/user/".to_vec();
        path.extend(std::iter::repeat_n(b'a', native::MAX_HOME_PATH));
        let e = crate::inner_tar::Entry { path, kind: crate::inner_tar::Kind::File, link: Vec::new(), size: 1, mode: 0o644, mtime: 0, stored: 1, data_start: 0, map: None };
        let err = crate::inner_tar::Visitor::entry(&mut home, &e).unwrap_err();
        assert_eq!(err.class(), "unsupported", "{err}");
        assert!(files_under(&dir).is_empty(), "nothing created");
    }

    #[test]
    fn names_escaping_the_home_are_refused_and_nothing_is_written_outside() {
        let dir = tmpdir("home-bad");
        let out = dir.join("out");
        let outside = dir.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let outside_s = outside.display().to_string();
        let cases: Vec<Vec<u8>> = vec![
            members(&[(b"dom0-home/user/../x", b'0', b"", b"evil")]),
            members(&[(b"../x", b'0', b"", b"evil")]),
            members(&[(b"/etc/x", b'0', b"", b"evil")]),
            members(&[(b"dom0-home/other/x", b'0', b"", b"evil")]),
            members(&[(b"dom0-home/username/x", b'0', b"", b"evil")]),
            members(&[(b"dom0-home/user//x", b'0', b"", b"evil")]),
            members(&[(b"dom0-home/user", b'0', b"", b"evil")]),
            members(&[
                (b"dom0-home/user/link", b'2', outside_s.as_bytes(), b""),
                (b"dom0-home/user/link/file", b'0', b"", b"evil"),
            ]),
            members(&[
                (b"dom0-home/user/link", b'2', outside_s.as_bytes(), b""),
                (b"dom0-home/user/link", b'0', b"", b"evil"),
            ]),
            members(&[(b"dom0-home/user/h", b'1', b"/etc/passwd", b"")]),
            members(&[(b"dom0-home/user/h", b'1', b"dom0-home/user/nothing", b"")]),
            members(&[
                (b"dom0-home/user/link", b'2', outside_s.as_bytes(), b""),
                (b"dom0-home/user/h", b'1', b"dom0-home/user/link", b""),
            ]),
        ];
        for (i, tar) in cases.iter().enumerate() {
            let _ = std::fs::remove_dir_all(&out);
            let (_, r) = extract(tar, &out, 100);
            let e = r.unwrap_err();
            assert_eq!(e.class(), "unsafe-path", "case {i}: {e}");
            assert!(files_under(&outside).is_empty(), "case {i} wrote outside");
            assert!(!dir.join("x").exists() && !out.join("x").exists(), "case {i}");
        }
        // A NUL inside a pax path.
        let mut tar = crate::inner_tar::tests::pax_header(&crate::inner_tar::tests::pax_record(
            "path",
            b"dom0-home/user/a\0b",
        ));
        tar.extend(members(&[(b"x", b'0', b"", b"evil")]));
        let _ = std::fs::remove_dir_all(&out);
        assert_eq!(extract(&tar, &out, 512).1.unwrap_err().class(), "unsafe-path");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn device_nodes_and_fifos_are_skipped_and_listed() {
        let dir = tmpdir("home-dev");
        let out = dir.join("out");
        let mut dev = header(b"dom0-home/user/null", b'3', 0, b"", false);
        dev[329..337].copy_from_slice(b"0000001\0");
        dev[337..345].copy_from_slice(b"0000003\0");
        fix_checksum(&mut dev);
        let mut tar = dev.to_vec();
        tar.extend(members(&[
            (b"dom0-home/user/pipe", b'6', b"", b""),
            (b"dom0-home/user/ok", b'0', b"", b"ok"),
        ]));
        let (home, r) = extract(&tar, &out, 1);
        r.unwrap();
        assert_eq!(
            home.skipped,
            vec!["dom0-home/user/null (character device)", "dom0-home/user/pipe (fifo)"]
        );
        assert!(!out.join("user/null").exists() && !out.join("user/pipe").exists());
        assert_eq!(std::fs::read(out.join("user/ok")).unwrap(), b"ok");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sparse_file_writes_partial_then_commits_and_refuses_to_overwrite() {
        let dir = tmpdir("sparsefile");
        let fin = dir.join("private.img");
        let mut s = SparseFile::create(&fin).unwrap();
        assert_eq!(s.partial_path(), dir.join("private.img.partial"));
        s.set_len(1 << 30).unwrap();
        s.write_at(512 << 20, b"data").unwrap();
        assert!(SparseFile::create(&fin).unwrap_err().to_string().contains("already exists"));
        s.commit().unwrap();
        let md = std::fs::metadata(&fin).unwrap();
        assert_eq!(md.len(), 1 << 30);
        assert!(md.blocks() * 512 < 1 << 20, "holes stayed holes");
        assert!(!dir.join("private.img.partial").exists());
        assert_eq!(SparseFile::create(&fin).unwrap_err().class(), "io");
        let other = dir.join("root.img");
        let s = SparseFile::create(&other).unwrap();
        s.abort(true);
        assert!(dir.join("root.img.partial").exists());
        std::fs::remove_file(dir.join("root.img.partial")).unwrap();
        let s = SparseFile::create(&other).unwrap();
        s.abort(false);
        assert!(!dir.join("root.img.partial").exists() && !other.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn memory_sink_refuses_more_than_its_cap() {
        let mut m = MemorySink::with_cap(10);
        m.write_at(2, b"abc").unwrap();
        assert_eq!(m.data, b"\0\0abc");
        m.set_len(8).unwrap();
        assert_eq!(m.data, b"\0\0abc\0\0\0");
        assert_eq!(m.write_at(8, b"abc").unwrap_err().class(), "unsupported");
        assert_eq!(m.set_len(11).unwrap_err().class(), "unsupported");
        assert_eq!(m.write_at(u64::MAX, b"a").unwrap_err().class(), "unsupported");
        let mut n = NullSink;
        n.set_len(u64::MAX).unwrap();
        n.write_at(5, b"x").unwrap();
    }
}
