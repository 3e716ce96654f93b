    use super::*;
    use std::os::unix::fs::FileExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// One member as the visitor saw it: data runs merged when adjacent.
    #[derive(Debug)]
    pub struct Got {
        pub entry: Entry,
        pub runs: Vec<(u64, Vec<u8>)>,
        pub ended: bool,
    }

    #[derive(Default, Debug)]
    pub struct Collect {
        pub got: Vec<Got>,
    }

    impl Visitor for Collect {
        fn entry(&mut self, e: &Entry) -> Result<()> {
            assert!(self.got.last().is_none_or(|g| g.ended), "entry before end_entry");
            self.got.push(Got { entry: e.clone(), runs: Vec::new(), ended: false });
            Ok(())
        }
        fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
            assert!(!bytes.is_empty() && bytes.len() <= MAX_DATA_CALL);
            let g = self.got.last_mut().expect("data before entry");
            assert!(!g.ended);
            assert!(offset + bytes.len() as u64 <= g.entry.size, "data beyond the real size");
            match g.runs.last_mut() {
                Some((o, d)) if *o + d.len() as u64 == offset => d.extend_from_slice(bytes),
                Some((o, d)) => {
                    assert!(offset > *o + d.len() as u64, "offsets not ascending");
                    g.runs.push((offset, bytes.to_vec()));
                }
                None => g.runs.push((offset, bytes.to_vec())),
            }
            Ok(())
        }
        fn end_entry(&mut self) -> Result<()> {
            let g = self.got.last_mut().expect("end before entry");
            assert!(!g.ended);
            g.ended = true;
            Ok(())
        }
    }

    impl Got {
        /// Bytes `[off, off+len)` of the real file as delivered (holes read as zeros).
        pub fn read(&self, off: u64, len: usize) -> Vec<u8> {
            let mut out = vec![0u8; len];
            for (o, d) in &self.runs {
                let (s, e) = ((*o).max(off), (*o + d.len() as u64).min(off + len as u64));
                if s < e {
                    out[(s - off) as usize..(e - off) as usize]
                        .copy_from_slice(&d[(s - o) as usize..(e - o) as usize]);
                }
            }
            out
        }
        pub fn delivered(&self) -> u64 {
            self.runs.iter().map(|(_, d)| d.len() as u64).sum()
        }
    }

    pub fn parse(bytes: &[u8], piece: usize) -> Result<Collect> {
        let mut t = InnerTar::new();
        let mut c = Collect::default();
        for p in bytes.chunks(piece.max(1)) {
            t.feed("t", p, &mut c)?;
        }
        t.finish("t", &mut c)?;
        Ok(c)
    }

    pub fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("qr-innertar-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Runs GNU tar with `args` in `cwd`, returns the archive it writes to stdout.
    pub fn gnu_tar(cwd: &Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new("tar").current_dir(cwd).args(args).arg("-f").arg("-").output().unwrap();
        assert!(out.status.success(), "tar failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// A header block with a valid checksum. `posix` selects `ustar\000` over the GNU magic.
    pub fn header(name: &[u8], flag: u8, size: u64, link: &[u8], posix: bool) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0001750\0");
        h[116..124].copy_from_slice(b"0001750\0");
        if size < 1 << 33 {
            h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        } else {
            h[124] = 0x80;
            h[128..136].copy_from_slice(&size.to_be_bytes());
        }
        h[136..148].copy_from_slice(b"14020476400\0");
        h[156] = flag;
        h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        if posix {
            h[257..265].copy_from_slice(b"ustar\x0000");
        } else {
            h[257..265].copy_from_slice(b"ustar  \0");
        }
        fix_checksum(&mut h);
        h
    }

    pub fn fix_checksum(h: &mut [u8]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h[..512].iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    pub fn pad(v: &mut Vec<u8>) {
        while v.len() % 512 != 0 {
            v.push(0);
        }
    }

    /// One pax record `"<len> key=value\n"`.
    pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
        let body = [b" ", key.as_bytes(), b"=", value, b"\n"].concat();
        let mut len = body.len() + 1;
        while format!("{len}").len() + body.len() != len {
            len += 1;
        }
        [format!("{len}").into_bytes(), body].concat()
    }

    pub fn pax_header(records: &[u8]) -> Vec<u8> {
        let mut v = header(b"././@PaxHeader", b'x', records.len() as u64, b"", true).to_vec();
        v.extend_from_slice(records);
        pad(&mut v);
        v
    }

    /// Exactly what Qubes `tarwriter` (FORMAT.md §6.3) writes for one volume, given the map and the
    /// volume bytes: pax `x` header, ustar header `<dir>/GNUSparseFile.<pid>/<base>`, NUL-padded map
    /// text, runs (last one unpadded), 1024 zero bytes.
    pub fn tarwriter(
        name: &str,
        realsize: u64,
        map: &[(u64, u64)],
        volume: &dyn Fn(u64, u64) -> Vec<u8>,
    ) -> Vec<u8> {
        let mut text = format!("{}\n", map.len());
        for (o, s) in map {
            text += &format!("{o}\n{s}\n");
        }
        let mut maptext = text.into_bytes();
        pad(&mut maptext);
        let stored = maptext.len() as u64 + map.iter().map(|m| m.1).sum::<u64>();
        let mut rec = Vec::new();
        rec.extend(pax_record("GNU.sparse.major", b"1"));
        rec.extend(pax_record("GNU.sparse.minor", b"0"));
        rec.extend(pax_record("GNU.sparse.name", name.as_bytes()));
        rec.extend(pax_record("GNU.sparse.realsize", realsize.to_string().as_bytes()));
        let ustar_size = if stored >= 1 << 33 {
            rec.extend(pax_record("size", stored.to_string().as_bytes()));
            0
        } else {
            stored
        };
        let mut out = pax_header(&rec);
        let (dir, base) = name.rsplit_once('/').unwrap();
        let mut h =
            header(format!("{dir}/GNUSparseFile.22006/{base}").as_bytes(), b'0', ustar_size, b"", true);
        h[136..148].copy_from_slice(b"00000000000\0");
        fix_checksum(&mut h);
        out.extend_from_slice(&h);
        out.extend(maptext);
        for &(o, s) in map {
            out.extend(volume(o, s));
        }
        out.extend([0u8; 1024]);
        out
    }

    fn qubes_volume(off: u64, len: u64) -> Vec<u8> {
        (off..off + len).map(|i| (i % 251) as u8 | 1).collect()
    }

    const QUBES_MAP: [(u64, u64); 3] = [(1048576, 512), (41943040, 3072), (67108864, 0)];

    const PIECES: [usize; 4] = [1, 511, 65536, usize::MAX];

    #[test]
    fn qubes_tarwriter_member_restores_only_its_runs() {
        let tar = tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume);
        assert_eq!(tar.len(), 6656, "FORMAT.md §11: total 6656 bytes");
        for piece in PIECES {
            let c = parse(&tar, piece).unwrap();
            assert_eq!(c.got.len(), 1);
            let g = &c.got[0];
            assert!(g.ended);
            assert_eq!(g.entry.path, b"vm5/private.img");
            assert_eq!(g.entry.kind, Kind::File);
            assert_eq!(g.entry.size, 67108864);
            assert_eq!(g.entry.stored, 3584);
            assert_eq!(g.runs.len(), 2);
            assert_eq!(g.runs[0], (1048576, qubes_volume(1048576, 512)));
            assert_eq!(g.runs[1], (41943040, qubes_volume(41943040, 3072)));
        }
    }

    #[test]
    fn qubes_tarwriter_member_is_what_gnu_tar_extracts() {
        let dir = tmpdir("tw-gnu");
        let tar = tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume);
        std::fs::write(dir.join("a.tar"), &tar).unwrap();
        let st = Command::new("tar").current_dir(&dir).args(["-xf", "a.tar"]).status().unwrap();
        assert!(st.success());
        let f = std::fs::File::open(dir.join("vm5/private.img")).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 67108864);
        let g = &parse(&tar, 4096).unwrap().got[0];
        for off in [0u64, 1048576 - 512, 1048576, 41943040 - 100, 41943040, 67108864 - 4096] {
            let mut buf = vec![0; 4096];
            f.read_exact_at(&mut buf, off).unwrap();
            assert_eq!(buf, g.read(off, 4096), "at {off}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unpadded_last_run_and_missing_end_marker_are_accepted() {
        let mut tar = tarwriter("vm1/x.img", 1000, &[(0, 100), (900, 100)], &qubes_volume);
        let c = parse(&tar, 7).unwrap();
        assert_eq!(
            c.got[0].read(0, 1000),
            [qubes_volume(0, 100), vec![0; 800], qubes_volume(900, 100)].concat()
        );
        // Stream cut right after the member (no end marker, no padding): still complete.
        tar.truncate(tar.len() - 1024);
        let c = parse(&tar, 1).unwrap();
        assert!(c.got[0].ended);
        assert_eq!(c.got[0].delivered(), 200);
    }

    #[test]
    fn stored_size_over_8_gib_comes_from_the_pax_size_record() {
        let realsize = 9u64 << 30;
        let map = [(4096u64, (8u64 << 30) + 512), (realsize, 0)];
        let head_len = 512 * 4; // pax header + records + ustar header + map
        let tar = tarwriter("vm7/root.img", realsize, &map, &|_, _| vec![0xAB; 1 << 20]);
        let tar = &tar[..head_len + (1 << 20)];
        assert_eq!(&tar[1024 + 124..1024 + 136], b"00000000000\0", "ustar size field is 0");
        let mut t = InnerTar::new();
        let mut c = Collect::default();
        t.feed("t", tar, &mut c).unwrap();
        let g = &c.got[0];
        assert_eq!((g.entry.size, g.entry.stored), (realsize, (8 << 30) + 512));
        assert_eq!(t.sparse_map().unwrap(), &map[..]);
        assert_eq!(g.runs, vec![(4096, vec![0xAB; 1 << 20])]);
        let e = t.finish("t", &mut c).unwrap_err();
        assert_eq!(e.cut(), Some(&Cut::InnerTar(TarEnd::Member("vm7/root.img".into()))));
    }

    /// Sparse test file: a patchwork of short writes, some past 8 GiB.
    fn sparse_source(dir: &Path, name: &str, size: u64) -> (PathBuf, Vec<(u64, Vec<u8>)>) {
        let path = dir.join(name);
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(size).unwrap();
        let mut writes = Vec::new();
        for i in 0..30u64 {
            let off = i * (256 << 10) + 1000 * i;
            writes.push((off, (0..100 + 37 * i).map(|j| (j * 7 + i) as u8 | 0x80).collect::<Vec<u8>>()));
        }
        if size > 8 << 30 {
            writes.push(((8 << 30) + 12345, b"WORLD beyond 8 GiB".to_vec()));
            writes.push((size - 10, b"0123456789".to_vec()));
        }
        for (o, d) in &writes {
            f.write_all_at(d, *o).unwrap();
        }
        (path, writes)
    }

    fn check_sparse(g: &Got, src: &Path, writes: &[(u64, Vec<u8>)], size: u64) {
        assert!(g.ended);
        assert_eq!(g.entry.kind, Kind::File);
        assert_eq!(g.entry.size, size);
        assert_eq!(g.entry.stored, g.delivered());
        let f = std::fs::File::open(src).unwrap();
        for (o, d) in &g.runs {
            let mut buf = vec![0; d.len()];
            f.read_exact_at(&mut buf, *o).unwrap();
            assert!(buf == *d, "run at {o} differs from the source");
        }
        for (o, d) in writes {
            assert_eq!(&g.read(*o, d.len()), d, "write at {o} not restored");
        }
        assert!(g.delivered() < 1 << 20, "holes were delivered");
    }

    #[test]
    fn gnu_old_sparse_over_8_gib_with_extension_blocks_restores_exactly() {
        let dir = tmpdir("gnu-sparse");
        let size = 9u64 << 30;
        let (src, writes) = sparse_source(&dir, "big.img", size);
        std::fs::write(dir.join("small.txt"), b"hello\n").unwrap();
        let tar = gnu_tar(&dir, &["--format=gnu", "--sparse", "-c", "big.img", "small.txt"]);
        assert_eq!(tar[156], b'S');
        assert_eq!(tar[482], 1, "extension blocks present");
        assert_eq!(tar[483], 0x80, "realsize in base-256");
        for piece in PIECES {
            let c = parse(&tar, piece).unwrap();
            assert_eq!(c.got.len(), 2);
            assert_eq!(c.got[0].entry.path, b"big.img");
            check_sparse(&c.got[0], &src, &writes, size);
            assert_eq!(c.got[1].entry.path, b"small.txt");
            assert_eq!(c.got[1].runs, vec![(0, b"hello\n".to_vec())]);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn posix_sparse_1_0_0_1_and_0_0_from_gnu_tar_restore_exactly() {
        let dir = tmpdir("posix-sparse");
        let size = 9u64 << 30;
        let (src, writes) = sparse_source(&dir, "big.img", size);
        for version in ["1.0", "0.1", "0.0"] {
            let v = format!("--sparse-version={version}");
            let tar = gnu_tar(&dir, &["--format=posix", "--sparse", &v, "-c", "big.img"]);
            for piece in PIECES {
                let c = parse(&tar, piece).unwrap_or_else(|e| panic!("{version}: {e}"));
                assert_eq!(c.got.len(), 1);
                assert_eq!(c.got[0].entry.path, b"big.img", "{version}");
                check_sparse(&c.got[0], &src, &writes, size);
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A tree with every member type Qubes' dom0-home may hold.
    pub fn plain_tree(dir: &Path) -> String {
        let long = "n".repeat(150);
        std::fs::create_dir_all(dir.join("user/sub")).unwrap();
        std::fs::write(dir.join("user/file.txt"), b"file contents\n").unwrap();
        std::fs::write(dir.join("user/empty"), b"").unwrap();
        std::fs::write(dir.join(format!("user/sub/{long}")), vec![0x5a; 70000]).unwrap();
        std::os::unix::fs::symlink("file.txt", dir.join("user/link")).unwrap();
        std::os::unix::fs::symlink(format!("sub/{long}"), dir.join("user/longlink")).unwrap();
        std::fs::hard_link(dir.join("user/file.txt"), dir.join("user/hard")).unwrap();
        let st = Command::new("touch")
            .args(["-h", "-d", "@1600000000"])
            .current_dir(dir)
            .args(["user/file.txt", "user/empty", "user/link"])
            .status()
            .unwrap();
        assert!(st.success());
        let st = Command::new("chmod").args(["0640", "user/file.txt"]).current_dir(dir).status().unwrap();
        assert!(st.success());
        long
    }

    #[test]
    fn plain_members_long_names_links_and_dirs_in_gnu_and_posix_formats() {
        let dir = tmpdir("plain");
        let long = plain_tree(&dir);
        for format in ["--format=gnu", "--format=posix", "--format=ustar", "--format=oldgnu"] {
            let args = [format, "-c", "--sort=name", "user"];
            let out = Command::new("tar").current_dir(&dir).args(args).arg("-f").arg("-").output().unwrap();
            if !out.status.success() {
                // ustar cannot hold the 150-byte name: expected.
                assert_eq!(format, "--format=ustar");
                continue;
            }
            let tar = out.stdout;
            for piece in PIECES {
                let c = parse(&tar, piece).unwrap();
                let find = |p: &str| {
                    c.got
                        .iter()
                        .find(|g| g.entry.path == p.as_bytes())
                        .unwrap_or_else(|| panic!("{format}: {p} missing"))
                };
                assert_eq!(find("user/").entry.kind, Kind::Dir);
                let f = find("user/file.txt");
                assert_eq!(
                    (f.entry.kind.clone(), f.entry.mode, f.entry.mtime),
                    (Kind::File, 0o640, 1600000000)
                );
                assert_eq!(f.runs, vec![(0, b"file contents\n".to_vec())]);
                let e = find("user/empty");
                assert_eq!((e.entry.size, e.runs.len(), e.ended), (0, 0, true));
                let l = find(&format!("user/sub/{long}"));
                assert_eq!((l.entry.size, l.runs.clone()), (70000, vec![(0, vec![0x5a; 70000])]));
                let s = find("user/link");
                assert_eq!(
                    (s.entry.kind.clone(), s.entry.link.as_slice()),
                    (Kind::Symlink, &b"file.txt"[..])
                );
                let s = find("user/longlink");
                assert_eq!(s.entry.link, format!("sub/{long}").as_bytes());
                let h = find("user/hard");
                assert_eq!(
                    (h.entry.kind.clone(), h.entry.link.as_slice()),
                    (Kind::HardLink, &b"user/file.txt"[..])
                );
                assert!(h.runs.is_empty());
                assert!(c.got.iter().all(|g| g.ended));
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Damaged, hostile and cut streams, and salvage across lost spans.
    mod damage;
