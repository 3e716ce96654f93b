    use super::*;

    fn class(r: Result<Collect>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.class(),
        }
    }

    #[test]
    fn bad_header_checksum_is_tampered() {
        let mut tar = tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume);
        tar[1024 + 3] ^= 1;
        for piece in PIECES {
            assert_eq!(parse(&tar, piece).unwrap_err().check(), Some(&Check::InnerTar(TarFault::HeaderChecksum)));
        }
    }

    #[test]
    fn signed_header_checksum_is_accepted() {
        let mut h = header(b"caf\xe9", b'0', 0, b"", false);
        h[148..156].copy_from_slice(b"        ");
        let sum: i64 = h.iter().map(|&b| b as i8 as i64).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let c = parse(&[&h[..], &[0u8; 1024][..]].concat(), 512).unwrap();
        assert_eq!(c.got[0].entry.path, b"caf\xe9");
    }

    #[test]
    fn bad_sparse_maps_are_tampered() {
        let cases: [(u64, &[(u64, u64)]); 4] = [
            (1 << 20, &[(4096, 512), (0, 512)]), // unsorted
            (1 << 20, &[(0, 1024), (512, 512)]), // overlapping
            (1000, &[(0, 512), (900, 512)]),     // past realsize
            (u64::MAX >> 1, &[(u64::MAX >> 2, u64::MAX >> 2), (u64::MAX >> 1, 1)]), // overflow
        ];
        for (realsize, map) in cases {
            let tar = tarwriter("vm1/x.img", realsize, map, &|_, l| vec![1; l.min(4096) as usize]);
            assert_eq!(parse(&tar, 100).unwrap_err().check(), Some(&Check::InnerTar(TarFault::SparseMap)), "{map:?}");
        }
        // Σ runs ≠ stored size: the ustar size claims one block less than the map needs.
        let mut tar = tarwriter("vm1/x.img", 1 << 20, &[(0, 1024)], &|_, l| vec![1; l as usize]);
        tar[1024 + 124..1024 + 136].copy_from_slice(format!("{:011o}\0", 1024).as_bytes());
        fix_checksum(&mut tar[1024..1536]);
        assert_eq!(parse(&tar, 512).unwrap_err().check(), Some(&Check::InnerTar(TarFault::SparseMap)));
        // Map text that is not decimal lines, and a count beyond the cap.
        for text in [&b"1\n0x10\n5\n"[..], b"2\n0\n", b"99999999999\n", b"1\n\n5\n"] {
            let mut tar = tarwriter("vm1/x.img", 1 << 20, &[(0, 512)], &|_, l| vec![1; l as usize]);
            tar[1536..2048].fill(0);
            tar[1536..1536 + text.len()].copy_from_slice(text);
            let e = parse(&tar, 512).unwrap_err();
            assert!(e.class() == "tampered" || e.class() == "truncated", "{text:?}: {e}");
        }
    }

    #[test]
    fn old_sparse_realsize_below_the_map_is_tampered() {
        let dir = tmpdir("old-bad");
        let (_, _) = sparse_source(&dir, "s.img", 16 << 20);
        let mut tar = gnu_tar(&dir, &["--format=gnu", "--sparse", "-c", "s.img"]);
        assert_eq!(tar[156], b'S');
        tar[483..495].copy_from_slice(b"00000001000\0");
        fix_checksum(&mut tar[..512]);
        assert_eq!(parse(&tar, 512).unwrap_err().check(), Some(&Check::InnerTar(TarFault::SparseMap)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn base_256_numbers_negative_or_over_63_bits_are_tampered() {
        assert_eq!(num(&[0x80, 0, 0, 0, 0, 0, 0, 2, 0x80, 0, 0, 0]).unwrap(), 10 << 30);
        assert!(num(&[0xff; 12]).is_err());
        assert!(num(&[0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(num(b"0000000000x\0").is_err());
        assert_eq!(num(b"   17 \0\0\0\0\0\0").unwrap(), 15);
        assert_eq!(tar::number_signed(&[0xff; 12]), Some(-1));
        for bad in [[0xffu8; 12], [0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0]] {
            let mut h = header(b"f", b'0', 0, b"", false);
            h[124..136].copy_from_slice(&bad);
            fix_checksum(&mut h);
            let e = parse(&[&h[..], &[0u8; 1024][..]].concat(), 1).unwrap_err();
            assert_eq!(e.check(), Some(&Check::InnerTar(TarFault::HeaderNumber)));
        }
    }

    #[test]
    fn pax_records_with_a_bad_length_are_tampered() {
        for rec in [&b"99 path=x\n"[..], b"5 path=x\n", b"x path=x\n", b"10 pathxxx\n", b"9 path=xy"] {
            let mut tar = pax_header(rec);
            tar.extend_from_slice(&header(b"f", b'0', 0, b"", true));
            tar.extend_from_slice(&[0; 1024]);
            assert_eq!(parse(&tar, 3).unwrap_err().check(), Some(&Check::InnerTar(TarFault::PaxHeader)), "{rec:?}");
        }
        // A huge declared pax size is refused before anything is allocated.
        let h = header(b"././@PaxHeader", b'x', 1 << 40, b"", true);
        let e = parse(&h, 512).unwrap_err();
        assert!(matches!(e, Error::OverLimit { limit: Limit::TarMetadata, value: 1099511627776, .. }), "{e:?}");
        let h = header(b"././@LongLink", b'L', 1 << 20, b"", false);
        assert_eq!(parse(&h, 512).unwrap_err().class(), "tampered");
    }

    #[test]
    fn data_after_the_end_marker_is_tampered_but_zero_padding_is_not() {
        let tar = tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume);
        let mut padded = tar.clone();
        padded.extend(vec![0u8; 10240]);
        assert!(parse(&padded, 1000).is_ok());
        let mut t = InnerTar::new();
        t.feed("t", &padded, &mut Collect::default()).unwrap();
        assert!(t.ended());
        let mut bad = padded.clone();
        bad.push(b'x');
        let e = parse(&bad, 1000).unwrap_err();
        assert_eq!(e.check(), Some(&Check::InnerTar(TarFault::DataAfterEnd)));
        assert_eq!(e.location(), Some(&Location::stream("t", padded.len() as u64)), "the stray byte is placed where it lies");
        let mut long = tar.clone();
        long.extend(vec![0u8; 2 << 20]);
        assert_eq!(parse(&long, 1 << 16).unwrap_err().class(), "tampered");
    }

    #[test]
    fn every_truncation_is_reported_or_lands_on_a_member_boundary() {
        let tar = tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume);
        let data_end = tar.len() - 1024;
        for cut in 0..tar.len() {
            let r = parse(&tar[..cut], 509);
            if cut == 0 || cut >= data_end {
                assert!(r.is_ok(), "cut {cut}: {:?}", r.err());
            } else {
                let e = r.unwrap_err();
                assert_eq!(e.class(), "truncated", "cut {cut}: {e}");
                if cut > 2048 {
                    assert_eq!(e.cut(), Some(&Cut::InnerTar(TarEnd::Member("vm5/private.img".into()))));
                }
            }
        }
        let dir = tmpdir("trunc");
        plain_tree(&dir);
        let tar = gnu_tar(&dir, &["--format=gnu", "-c", "user"]);
        for cut in (0..tar.len()).step_by(97) {
            let c = class(parse(&tar[..cut], 4096));
            assert!(c == "ok" || c == "truncated", "cut {cut}: {c}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Feeds `tar` with `[..a]`, loses `[a..b)`, feeds `[b..]`; returns what was delivered and lost.
    fn salvage_parse(tar: &[u8], a: usize, b: usize) -> (Collect, Vec<(u64, u64)>, bool) {
        let mut t = InnerTar::new();
        let mut c = Collect::default();
        let mut lost = Vec::new();
        t.feed("t", &tar[..a], &mut c).unwrap();
        let synced = t.skip("t", (b - a) as u64, &mut c, &mut |o, l| lost.push((o, l))).unwrap();
        if synced {
            t.feed("t", &tar[b..], &mut c).unwrap();
            t.finish("t", &mut c).unwrap();
        } else {
            t.give_up(&mut |o, l| lost.push((o, l)));
            assert!(t.feed("t", &tar[b..], &mut c).is_err() || b == tar.len());
        }
        (c, lost, synced)
    }

    #[test]
    fn a_gap_in_member_data_is_mapped_through_the_sparse_map_and_parsing_goes_on() {
        let map = [(0u64, 1536u64), (8192, 512), (20000, 1000), (40000, 0)];
        let tar = tarwriter("vm1/x.img", 40000, &map, &qubes_volume);
        let data_start = 1536 + 512; // pax header + records, ustar header, one block of map text
        // Stored byte k of the data area lands at image offset place(k).
        let place = |k: u64| {
            let mut base = 0;
            for &(o, l) in &map {
                if k < base + l {
                    return o + (k - base);
                }
                base += l;
            }
            unreachable!()
        };
        for (a, b) in [(data_start, data_start + 100), (data_start + 1500, data_start + 2100), (data_start + 2047, data_start + 3048)] {
            let (c, lost, synced) = salvage_parse(&tar, a, b);
            assert!(synced);
            let g = &c.got[0];
            assert!(g.ended);
            // lost + delivered = exactly the stored bytes, each once, where the map puts them
            let mut want = Vec::new();
            for k in (a - data_start) as u64..(b - data_start) as u64 {
                want.push(place(k));
            }
            let got: Vec<u64> = lost.iter().flat_map(|&(o, l)| o..o + l).collect();
            assert_eq!(got, want, "gap {a}..{b}");
            assert_eq!(g.delivered() + got.len() as u64, 3048);
            for (o, d) in &g.runs {
                assert_eq!(*d, qubes_volume(*o, d.len() as u64));
            }
        }
    }

    /// Found by fuzzing (inner_tar, gap mode): `give_up` inside a sparse map reported ranges of a
    /// member the visitor had never been told about, outside the size of the last entry it saw.
    #[test]
    fn give_up_inside_a_sparse_map_reports_nothing_for_the_unannounced_member() {
        let tar = tarwriter("vm1/x.img", 40000, &[(0, 1536), (30000, 512)], &qubes_volume);
        let (c, lost, synced) = salvage_parse(&tar, 1600, 1700);
        assert!(!synced);
        assert!(c.got.is_empty(), "nothing is delivered without the map");
        assert_eq!(lost, vec![], "the member was never announced: nothing of it can be placed");
        let mut two = tarwriter("vm1/a.img", 1024, &[(0, 512)], &qubes_volume);
        two.truncate(two.len() - 1024);
        let second = tarwriter("vm1/x.img", 1 << 40, &[(0, 1536)], &qubes_volume);
        two.extend_from_slice(&second[..1600]);
        let mut t = InnerTar::new();
        let mut c = Collect::default();
        t.feed("t", &two, &mut c).unwrap();
        let mut lost = Vec::new();
        t.give_up(&mut |o, l| lost.push((o, l)));
        assert_eq!((c.got.len(), lost), (1, vec![]));
    }

    #[test]
    fn a_gap_after_the_data_loses_only_the_rest_of_the_member() {
        let tar = tarwriter("vm1/x.img", 40000, &[(0, 1536), (30000, 512)], &qubes_volume);
        // A gap from the data into the end marker: the rest of the member is lost, nothing else
        // (the stream cannot be followed past a lost header, but the member was complete).
        let (c, lost, synced) = salvage_parse(&tar, 2048 + 1000, tar.len() - 10);
        assert!(!synced);
        assert!(c.got[0].ended);
        assert_eq!(lost, vec![(1000, 536), (30000, 512)]);
        assert_eq!(c.got[0].delivered(), 1000);
        // give_up in the middle of the data: the undelivered rest of the map is lost.
        let mut t = InnerTar::new();
        let mut c = Collect::default();
        t.feed("t", &tar[..2048 + 1600], &mut c).unwrap();
        let mut lost = Vec::new();
        t.give_up(&mut |o, l| lost.push((o, l)));
        assert_eq!(lost, vec![(30000 + 64, 512 - 64)]);
        assert!(t.finish("t", &mut c).is_err());
    }

    /// `data_start` and `map` locate every stored byte in the raw stream: reading a file back
    /// through them gives what the parser delivered (the page browses dom0's home tar this way).
    #[test]
    fn data_start_and_map_locate_each_member_in_the_stream() {
        let dir = tmpdir("locate");
        plain_tree(&dir);
        let (_, _) = sparse_source(&dir, "s.img", 16 << 20);
        let inputs = [
            tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume),
            gnu_tar(&dir, &["--format=gnu", "--sparse", "-c", "s.img", "user"]),
            gnu_tar(&dir, &["--format=posix", "--sparse", "-c", "s.img", "user"]),
            gnu_tar(&dir, &["--format=posix", "--sparse", "--sparse-version=0.1", "-c", "s.img"]),
        ];
        for (i, input) in inputs.iter().enumerate() {
            for piece in [1, 511, 4096, usize::MAX] {
                let c = parse(input, piece).unwrap();
                let mut files = 0;
                for g in c.got.iter().filter(|g| g.entry.kind == Kind::File) {
                    files += 1;
                    let e = &g.entry;
                    let stored = &input[e.data_start as usize..(e.data_start + e.stored) as usize];
                    let runs = e.map.clone().unwrap_or_else(|| vec![(0, e.size)]);
                    let mut at = 0usize;
                    for (off, len) in runs {
                        let want = g.read(off, len as usize);
                        assert_eq!(&stored[at..at + len as usize], &want[..], "input {i}, piece {piece}, {}", String::from_utf8_lossy(&e.path));
                        at += len as usize;
                    }
                    assert_eq!(at as u64, e.stored);
                }
                assert!(files >= 1, "input {i} has files");
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn random_corruption_never_panics() {
        let dir = tmpdir("fuzz");
        plain_tree(&dir);
        let (_, _) = sparse_source(&dir, "s.img", 16 << 20);
        let inputs = [
            tarwriter("vm5/private.img", 67108864, &QUBES_MAP, &qubes_volume),
            gnu_tar(&dir, &["--format=gnu", "--sparse", "-c", "s.img", "user"]),
            gnu_tar(&dir, &["--format=posix", "--sparse", "-c", "s.img", "user"]),
        ];
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for input in &inputs {
            for _ in 0..400 {
                let mut t = input.clone();
                for _ in 0..1 + rnd() % 4 {
                    let i = (rnd() % t.len() as u64) as usize;
                    t[i] = rnd() as u8;
                }
                // keep headers plausible so the corruption reaches past the checksum
                for blk in t.chunks_mut(512) {
                    if blk.len() == 512 && (&blk[257..262] == b"ustar") && rnd() % 2 == 0 {
                        fix_checksum(blk);
                    }
                }
                let cut = (rnd() % (t.len() as u64 + 1)) as usize;
                let _ = parse(&t[..cut], 1 + (rnd() % 3000) as usize);
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
