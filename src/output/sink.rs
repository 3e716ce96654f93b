//! Where restored bytes go: a volume image, a small file kept in memory, nothing (verify only),
//! or the dom0 home tree (FORMAT.md §6.4, §12 item 13).
//!
//! Sinks take positioned writes and never write holes, so a sparse volume stays sparse on disk.

use crate::error::{Error, Limit, Location, Result};

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
        Error::over_limit(Location::default(), Limit::FileSize, len, self.cap)
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
pub use super::home::HomeTree;
#[cfg(not(target_arch = "wasm32"))]
pub use super::sparse_file::SparseFile;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::inner_tar::tests::{fix_checksum, gnu_tar, header, plain_tree, tmpdir};
    use crate::format::inner_tar::InnerTar;
    use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
    use std::path::Path;

    fn extract(tar: &[u8], out: &Path, piece: usize) -> (HomeTree, Result<()>) {
        let mut home = HomeTree::new(out, "dom0-home/user");
        let mut t = InnerTar::new();
        let r = (|| {
            for p in tar.chunks(piece) {
                t.feed("dom0-home", p, &mut home)?;
            }
            t.finish("dom0-home", &mut home)?;
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
        path.extend(std::iter::repeat_n(b'a', crate::output::home::MAX_HOME_PATH));
        let e = crate::format::inner_tar::Entry { path, kind: crate::format::inner_tar::Kind::File, link: Vec::new(), size: 1, mode: 0o644, mtime: 0, stored: 1, data_start: 0, map: None };
        let err = crate::format::inner_tar::Visitor::entry(&mut home, &e).unwrap_err();
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
        let mut tar = crate::format::inner_tar::tests::pax_header(&crate::format::inner_tar::tests::pax_record(
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
