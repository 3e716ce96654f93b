    use super::*;

    #[test]
    fn names_are_shown_lossily() {
        assert_eq!(lossy(b"a\nb\xff"), "a\\nb\u{fffd}");
    }

    #[test]
    fn gpt_types_read_as_sgdisk_prints_them() {
        assert_eq!(guid_text(&GPT_LINUX_FS), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
        assert_eq!(gpt_kind(&GPT_LINUX_FS), "Linux filesystem");
        assert_eq!(gpt_kind(&[0x11; 16]), "11111111-1111-1111-1111-111111111111");
    }

    #[test]
    fn dom0_home_paths_map_to_home_and_unsafe_names_are_dropped() {
        assert_eq!(TarIndex::path_of(b"dom0-home/user/a/").unwrap(), b"/home/user/a");
        assert_eq!(TarIndex::path_of(b"./dom0-home/user").unwrap(), b"/home/user");
        for bad in [&b"dom0-home/user/../x"[..], b"other/x", b"dom0-home//x", b"dom0-home/./x", b"dom0-home"] {
            assert_eq!(TarIndex::path_of(bad), None, "{}", lossy(bad));
        }
    }

    #[test]
    fn paths_normalize_and_times_print_in_utc() {
        assert_eq!(normalize(b"//a/./b/"), b"/a/b");
        assert_eq!(normalize(b""), b"/");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_710_497_700), "2024-03-15T10:15:00Z");
        assert_eq!(iso_time(-1), "1969-12-31T23:59:59Z");
        assert_eq!(iso_time(951_782_400), "2000-02-29T00:00:00Z");
    }

    /// A saved home tar (GNU and POSIX formats, long names, hard and symbolic links, a sparse
    /// file) is indexed from its headers, and each file reads back byte-exact from the tar.
    #[test]
    fn a_saved_home_tar_is_browsed_from_its_headers() {
        use crate::format::inner_tar::tests::{gnu_tar, plain_tree, tmpdir};
        let dir = tmpdir("fs-home");
        let long = plain_tree(&dir.join("dom0-home"));
        let mut sparse = vec![0u8; 3 << 20];
        sparse[1 << 20..(1 << 20) + 5].copy_from_slice(b"hello");
        std::fs::write(dir.join("dom0-home/user/sparse.img"), &sparse).unwrap();
        for format in ["--format=gnu", "--format=posix"] {
            let tar = gnu_tar(&dir, &[format, "--sparse", "-c", "--sort=name", "dom0-home"]);
            let index = TarIndex::index_stream(&tar).unwrap();
            let names: Vec<String> = index.list(b"/home/user").unwrap().entries.iter().map(|e| lossy(&e.name)).collect();
            assert_eq!(names, ["empty", "file.txt", "hard", "link", "longlink", "sparse.img", "sub"], "{format}");
            for (path, want) in [
                ("/home/user/file.txt".to_string(), b"file contents\n".to_vec()),
                ("/home/user/hard".into(), b"file contents\n".to_vec()),
                ("/home/user/empty".into(), Vec::new()),
                (format!("/home/user/sub/{long}"), vec![0x5a; 70000]),
                ("/home/user/sparse.img".into(), sparse.clone()),
            ] {
                let mut f = index.open_file(path.as_bytes()).unwrap();
                assert_eq!(f.size(), want.len() as u64);
                let mut got = Vec::new();
                let mut buf = vec![0u8; 4093];
                loop {
                    let n = f.read(&tar, &mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert!(got == want, "{format} {path}");
            }
            let mut walked = Vec::new();
            index.walk(b"/home/user", &mut |w| {
                walked.push(w.rel.iter().map(|c| lossy(c)).collect::<Vec<_>>().join("/"));
                Ok(true)
            }).unwrap();
            assert!(walked.contains(&format!("sub/{long}")) && walked.len() == 8, "{walked:?}");
            assert_eq!(index.open_file(b"/home/user/link").err().map(|e| e.class()), Some("not-found"));
            assert_eq!(TarIndex::index_stream(&tar[..tar.len() / 2].to_vec()).err().map(|e| e.class()), Some("truncated"));
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Found by fuzz/fs_image: a superblock claiming ~2^44 blocks made ext4-view allocate its
    /// group table (15 GB) before reading anything, and abort.
    #[test]
    fn a_superblock_claiming_more_blocks_than_the_image_holds_is_refused() {
        let mut img = vec![0u8; 1 << 16];
        let sb = &mut img[1024..2048];
        sb[0x04..0x08].copy_from_slice(&64u32.to_le_bytes()); // blocks (lo)
        sb[0x20..0x24].copy_from_slice(&8192u32.to_le_bytes()); // blocks per group
        sb[56..58].copy_from_slice(&EXT_MAGIC.to_le_bytes());
        sb[0x150..0x154].copy_from_slice(&0x0fffu32.to_le_bytes()); // blocks (hi), without 64bit
        let e = Fs::open(img.clone(), None).err().unwrap();
        assert_eq!(e.class(), "io");
        assert!(e.to_string().contains("more than the 65536-byte image holds"), "{e}");
        img[1024 + 0x150..1024 + 0x154].fill(0);
        img[1024 + 0x20..1024 + 0x24].fill(0);
        assert!(Fs::open(img, None).err().unwrap().to_string().contains("claims"), "zero blocks per group");
    }

    #[test]
    fn a_blank_image_is_no_filesystem_and_no_panic() {
        let img = vec![0u8; 1 << 16];
        assert_eq!(partitions(&img).unwrap(), None);
        let e = Fs::open(img, None).err().unwrap();
        assert_eq!(e.class(), "unsupported");
        let mut garbage = crate::output::image::SparseImage::new();
        crate::output::sink::VolumeSink::write_at(&mut garbage, 0, &(0..70000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<_>>()).unwrap();
        assert!(Fs::open(garbage, None).is_err());
    }
