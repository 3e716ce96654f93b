    use super::*;
    use super::gzip::{FCOMMENT, FEXTRA, FHCRC, FNAME};
    use super::zstd::ZSTD_MAGIC;
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;

    const ALL: [Compression; 5] =
        [Compression::Gzip, Compression::Bzip2, Compression::Xz, Compression::Lzma, Compression::Zstd];
    const PIECES: [usize; 5] = [1, 7, 4096, 65536, usize::MAX];

    /// Random, zeros and text, so that every codec meets stored, run and entropy-coded data.
    fn mixed(random: usize, zeros: usize, text: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(random + zeros + text);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        while data.len() < random {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        data.truncate(random);
        data.resize(random + zeros, 0);
        let mut line = 0u64;
        while data.len() < random + zeros + text {
            data.extend_from_slice(format!("line {line}: the quick brown fox jumps over the lazy dog\n").as_bytes());
            line += 1;
        }
        data.truncate(random + zeros + text);
        data
    }

    /// A few MiB for the round trips; a smaller sample for the many-offset tests.
    fn big() -> &'static [u8] {
        static DATA: OnceLock<Vec<u8>> = OnceLock::new();
        DATA.get_or_init(|| mixed(1 << 20, 1 << 20, 1 << 20))
    }

    fn small() -> &'static [u8] {
        static DATA: OnceLock<Vec<u8>> = OnceLock::new();
        DATA.get_or_init(|| mixed(48 << 10, 64 << 10, 80 << 10))
    }

    /// Compresses with the real tool, as the backup writer's `<filter>` would.
    fn tool(c: Compression, data: &[u8]) -> Vec<u8> {
        let argv: &[&str] = match c {
            Compression::Gzip => &["gzip", "-c", "-6"],
            Compression::Bzip2 => &["bzip2", "-c"],
            Compression::Xz => &["xz", "-c", "-T1"],
            Compression::Lzma => &["xz", "--format=lzma", "-c"],
            Compression::Zstd => &["zstd", "-c", "-q"],
            Compression::None => return data.to_vec(),
        };
        tool_argv(argv, data)
    }

    fn tool_argv(argv: &[&str], data: &[u8]) -> Vec<u8> {
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("compressor installed");
        let mut stdin = child.stdin.take().unwrap();
        let input = data.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let mut compressed = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut compressed).unwrap();
        // A tool given a file name does not read stdin: a broken pipe then is fine.
        let _ = writer.join().unwrap();
        assert!(child.wait().unwrap().success());
        compressed
    }

    fn compressed(c: Compression, small_sample: bool) -> &'static [u8] {
        static CACHE: OnceLock<Vec<(Compression, bool, Vec<u8>)>> = OnceLock::new();
        let all = CACHE.get_or_init(|| {
            let mut v = Vec::new();
            for c in ALL {
                v.push((c, false, tool(c, big())));
                v.push((c, true, tool(c, small())));
            }
            v
        });
        &all.iter().find(|(k, s, _)| *k == c && *s == small_sample).unwrap().2
    }

    /// Feeds `input` in pieces of `piece` bytes; checks that no output piece exceeds 1 MiB.
    fn run(c: Compression, input: &[u8], piece: usize) -> (Result<()>, Vec<u8>) {
        let mut got = Vec::new();
        let mut out = |b: &[u8]| {
            assert!(b.len() <= 1 << 20, "output piece of {} bytes", b.len());
            got.extend_from_slice(b);
            Ok(())
        };
        let mut d = decoder(c);
        let mut r = Ok(());
        for p in input.chunks(piece.max(1)) {
            r = d.feed("t", p, &mut out);
            if r.is_err() {
                break;
            }
        }
        if r.is_ok() {
            r = d.finish("t", &mut out);
        }
        (r, got)
    }

    fn class(r: &Result<()>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(e) => e.class(),
        }
    }

    #[test]
    fn header_filters_map_to_decoders() {
        let f = |name| Compression::from_header(true, Some(name)).unwrap();
        assert_eq!(f("gzip"), Compression::Gzip);
        assert_eq!(f("pigz"), Compression::Gzip);
        assert_eq!(f("bzip2"), Compression::Bzip2);
        assert_eq!(f("pbzip2"), Compression::Bzip2);
        assert_eq!(f("xz"), Compression::Xz);
        assert_eq!(f("lzma"), Compression::Lzma);
        assert_eq!(f("zstd"), Compression::Zstd);
        assert_eq!(f("zstdmt"), Compression::Zstd);
        assert_eq!(Compression::from_header(true, None).unwrap(), Compression::Gzip);
        assert_eq!(Compression::Zstd.name(), "zstd");
    }

    #[test]
    fn uncompressed_backup_ignores_the_filter_it_still_names() {
        assert_eq!(Compression::from_header(false, Some("gzip")).unwrap(), Compression::None);
        assert_eq!(Compression::from_header(false, Some("whatever")).unwrap(), Compression::None);
    }

    #[test]
    fn unknown_filter_is_unsupported() {
        let e = Compression::from_header(true, Some("lz4")).unwrap_err();
        assert_eq!(e, Error::unsupported("compression filter `lz4`"));
    }

    #[test]
    fn uncompressed_stream_passes_through_in_bounded_pieces() {
        let data = mixed(0, 3 << 20, 1000);
        for piece in PIECES {
            let (r, got) = run(Compression::None, &data, piece);
            r.unwrap();
            assert!(got == data);
        }
    }

    fn round_trip(c: Compression) {
        let input = compressed(c, false);
        for piece in PIECES {
            let (r, got) = run(c, input, piece);
            assert_eq!(class(&r), "ok", "{c:?} piece {piece}: {r:?}");
            assert!(got == big(), "{c:?} piece {piece}: output differs");
        }
    }

    #[test]
    fn gzip_decodes_byte_exact_in_any_piece_size() {
        round_trip(Compression::Gzip);
    }

    #[test]
    fn bzip2_decodes_byte_exact_in_any_piece_size() {
        round_trip(Compression::Bzip2);
    }

    #[test]
    fn xz_decodes_byte_exact_in_any_piece_size() {
        round_trip(Compression::Xz);
    }

    #[test]
    fn lzma_alone_decodes_byte_exact_in_any_piece_size() {
        round_trip(Compression::Lzma);
    }

    #[test]
    fn zstd_decodes_byte_exact_in_any_piece_size() {
        round_trip(Compression::Zstd);
    }

    /// pigz, pbzip2 and zstdmt write several members/streams/frames; so do xz -T and
    /// `cat a.xz b.xz`.
    #[test]
    fn concatenated_members_streams_and_frames_decode_fully() {
        let (a, b) = (small(), mixed(1000, 70_000, 5000));
        let mut want = a.to_vec();
        want.extend_from_slice(&b);
        for c in [Compression::Gzip, Compression::Bzip2, Compression::Xz, Compression::Zstd] {
            let mut input = tool(c, a);
            input.extend(tool(c, &b));
            for piece in PIECES {
                let (r, got) = run(c, &input, piece);
                assert_eq!(class(&r), "ok", "{c:?} piece {piece}: {r:?}");
                assert!(got == want, "{c:?} piece {piece}: output differs");
            }
        }
    }

    #[test]
    fn xz_stream_padding_between_streams_is_accepted() {
        let mut input = tool(Compression::Xz, b"one");
        input.extend_from_slice(&[0; 8]);
        input.extend(tool(Compression::Xz, b"two"));
        let (r, got) = run(Compression::Xz, &input, 1);
        r.unwrap();
        assert_eq!(got, b"onetwo");
    }

    #[test]
    fn xz_with_any_check_filter_or_thread_count_decodes() {
        for argv in [
            &["xz", "-c", "-T1", "--check=none"][..],
            &["xz", "-c", "-T1", "--check=crc32"],
            &["xz", "-c", "-T1", "--check=sha256"],
            &["xz", "-c", "-T2", "--block-size=100000"],
            &["xz", "-c", "-T1", "--x86", "--lzma2=preset=1"],
            &["xz", "-c", "-T1", "--delta=dist=4", "--lzma2"],
        ] {
            let input = tool_argv(argv, small());
            for piece in [1, 4096, usize::MAX] {
                let (r, got) = run(Compression::Xz, &input, piece);
                assert_eq!(class(&r), "ok", "{argv:?} piece {piece}: {r:?}");
                assert!(got == small(), "{argv:?} piece {piece}: output differs");
            }
        }
    }

    #[test]
    fn zstd_with_or_without_checksum_and_content_size_decodes() {
        // `zstd file` records the content size; --no-check drops the checksum; -T2 and
        // --long make several frames and a wide window.
        let dir = std::env::temp_dir().join(format!("qubes-rescue-zstd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("sample");
        std::fs::write(&file, small()).unwrap();
        let path = file.to_str().unwrap();
        for argv in [
            &["zstd", "-c", "-q", path][..],
            &["zstd", "-c", "-q", "--no-check", path],
            &["zstd", "-c", "-q", "--no-check", "-"],
            &["zstd", "-c", "-q", "-19", "--long=27", "-"],
            &["zstd", "-c", "-q", "-T2", "-1", "-"],
        ] {
            let input = tool_argv(argv, small());
            for piece in [1, 4096, usize::MAX] {
                let (r, got) = run(Compression::Zstd, &input, piece);
                assert_eq!(class(&r), "ok", "{argv:?} piece {piece}: {r:?}");
                assert!(got == small(), "{argv:?} piece {piece}: output differs");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn zstd_frame_with_wrong_content_size_is_tampered() {
        // Single-segment frame claiming 5 bytes, holding a 3-byte raw last block.
        let mut input = ZSTD_MAGIC.to_le_bytes().to_vec();
        input.extend_from_slice(&[0x20, 5, (3 << 3) | 1, 0, 0]);
        input.extend_from_slice(b"abc");
        assert_eq!(run(Compression::Zstd, &input, 1).0, Err(Error::tampered("t", Check::Stream("zstd"))));
    }

    #[test]
    fn zstd_skippable_frames_are_skipped() {
        let skippable = |n: u32| {
            let mut f = (0x184D_2A50u32 + n).to_le_bytes().to_vec();
            f.extend_from_slice(&(n * 100).to_le_bytes());
            f.resize(8 + n as usize * 100, 0xAB);
            f
        };
        let mut input = skippable(3);
        input.extend(tool(Compression::Zstd, small()));
        input.extend(skippable(0));
        input.extend(skippable(15));
        for piece in PIECES {
            let (r, got) = run(Compression::Zstd, &input, piece);
            r.unwrap();
            assert!(got == small());
        }
    }

    #[test]
    fn empty_compressed_stream_is_reported_as_truncated() {
        for c in ALL {
            let (r, _) = run(c, b"", 1);
            assert_eq!(r, Err(Error::truncated("t", Cut::Stream(c.name()))));
        }
    }

    /// Every proper prefix of a valid stream is valid data that stops: that is "ends early".
    fn truncation(c: Compression) {
        let input = compressed(c, true);
        let mut cuts: Vec<usize> = (0..24).chain((0..input.len()).step_by(input.len() / 97)).collect();
        cuts.extend(input.len() - 24..input.len());
        for cut in cuts {
            for piece in [7, usize::MAX] {
                let (r, got) = run(c, &input[..cut], piece);
                assert_eq!(
                    r,
                    Err(Error::truncated("t", Cut::Stream(c.name()))),
                    "{c:?} cut at {cut} of {}",
                    input.len()
                );
                assert!(small().starts_with(&got), "{c:?} cut at {cut}: output is not a prefix");
            }
        }
    }

    #[test]
    fn truncated_gzip_is_reported_as_truncated() {
        truncation(Compression::Gzip);
    }

    #[test]
    fn truncated_bzip2_is_reported_as_truncated() {
        truncation(Compression::Bzip2);
    }

    #[test]
    fn truncated_xz_is_reported_as_truncated() {
        truncation(Compression::Xz);
    }

    #[test]
    fn truncated_lzma_alone_is_reported_as_truncated() {
        truncation(Compression::Lzma);
    }

    /// Found by fuzzing: this text packs (with real `lzma -6`) to a stream whose last byte is
    /// 0x00; lzma-rust2's `Action::Finish` supplied that byte as zero, so the cut passed.
    #[test]
    fn lzma_alone_cut_before_a_final_zero_byte_is_truncated() {
        let plain = b"all version=\"2\">\n  <rules>\n    <rule>\n      <p\x02\x01\x1f\x8b\x08\0\0\0\0\0\0roperties>\n        <property name=\"action\">acce\x03pt";
        let packed = tool(Compression::Lzma, plain);
        assert_eq!(packed.last(), Some(&0), "the sample must end in a zero byte to test this");
        assert_eq!(run(Compression::Lzma, &packed, usize::MAX), (Ok(()), plain.to_vec()));
        for piece in [1, 7, usize::MAX] {
            let (r, _) = run(Compression::Lzma, &packed[..packed.len() - 1], piece);
            assert_eq!(class(&r), "truncated", "pieces of {piece}");
        }
    }

    #[test]
    fn truncated_zstd_is_reported_as_truncated() {
        truncation(Compression::Zstd);
    }

    #[test]
    fn truncated_second_member_is_reported_as_truncated() {
        for c in [Compression::Gzip, Compression::Bzip2, Compression::Xz, Compression::Zstd] {
            let mut input = tool(c, small());
            let first = input.len();
            input.extend(tool(c, b"second member"));
            for cut in [first + 1, first + 2, first + 11, input.len() - 1] {
                let (r, _) = run(c, &input[..cut], usize::MAX);
                assert_eq!(class(&r), "truncated", "{c:?} cut at {cut}: {r:?}");
            }
        }
    }

    /// A flipped byte must never pass as good data. gzip's header fields (mtime, OS) are not
    /// covered by any check, so flipping them may still give the right output: allowed.
    #[test]
    fn flipped_byte_never_yields_wrong_output() {
        for c in [Compression::Gzip, Compression::Bzip2, Compression::Xz, Compression::Zstd] {
            let input = compressed(c, true);
            for at in (0..input.len()).step_by(input.len() / 151).chain([input.len() - 1, input.len() - 5]) {
                let mut bad = input.to_vec();
                bad[at] ^= 0x55;
                let (r, got) = run(c, &bad, 4096);
                assert!(r.is_err() || got == small(), "{c:?} flip at {at} gave wrong output without error");
                if let Err(e) = r {
                    assert!(matches!(e.class(), "tampered" | "truncated" | "unsupported"), "{c:?} at {at}: {e:?}");
                }
            }
        }
    }

    /// .lzma has no checksum, so a flip in the middle may decode to other bytes: what we
    /// promise is no panic, and the classes below.
    #[test]
    fn flipped_byte_in_lzma_alone_never_panics() {
        let input = compressed(Compression::Lzma, true);
        for at in (0..input.len()).step_by(input.len() / 151) {
            let mut bad = input.to_vec();
            bad[at] ^= 0x55;
            let (r, _) = run(Compression::Lzma, &bad, 4096);
            assert!(matches!(class(&r), "ok" | "tampered" | "truncated" | "unsupported"), "at {at}: {r:?}");
        }
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        for c in ALL {
            for garbage in [&b"x"[..], b"garbage!", b"this is not another member, it is garbage"] {
                let mut input = compressed(c, true).to_vec();
                input.extend_from_slice(garbage);
                for piece in [1, usize::MAX] {
                    let (r, _) = run(c, &input, piece);
                    assert!(r.is_err(), "{c:?} accepted {} bytes of trailing garbage", garbage.len());
                }
            }
            // Long enough to be judged as a would-be member header.
            let mut input = compressed(c, true).to_vec();
            input.extend_from_slice(&[0x42; 64]);
            let (r, _) = run(c, &input, usize::MAX);
            assert_eq!(r, Err(Error::tampered("t", Check::Trailing(c.name()))), "{c:?}");
        }
    }

    #[test]
    fn lzma_alone_is_never_concatenated() {
        let mut input = compressed(Compression::Lzma, true).to_vec();
        input.extend_from_slice(compressed(Compression::Lzma, true));
        let (r, _) = run(Compression::Lzma, &input, 4096);
        assert_eq!(r, Err(Error::tampered("t", Check::Trailing("lzma"))));
    }

    #[test]
    fn highly_compressed_input_comes_out_in_bounded_pieces() {
        // `run` asserts every output piece is at most 1 MiB.
        let zeros = vec![0u8; 48 << 20];
        for c in ALL {
            let input = tool(c, &zeros);
            let (r, got) = run(c, &input, usize::MAX);
            r.unwrap();
            assert!(got == zeros, "{c:?}");
        }
    }

    #[test]
    fn decoder_stays_failed_after_an_error() {
        let mut d = decoder(Compression::Gzip);
        let mut sink = |_: &[u8]| Ok(());
        assert!(d.feed("t", b"not gzip", &mut sink).is_err());
        assert!(d.feed("t", compressed(Compression::Gzip, true), &mut sink).is_err());
        assert!(d.finish("t", &mut sink).is_err());
    }

    #[test]
    fn gzip_with_header_fields_and_header_crc_decodes() {
        // gzip(1) writes FNAME for files; FEXTRA, FCOMMENT and FHCRC come from other writers.
        let plain = tool(Compression::Gzip, b"hello, qubes\n");
        let deflate_and_trailer = &plain[10..];
        let mut head = vec![0x1f, 0x8b, 8, FEXTRA | FNAME | FCOMMENT | FHCRC, 0, 0, 0, 0, 0, 3];
        head.extend_from_slice(&[4, 0, b'A', b'B', 0, 0]);
        head.extend_from_slice(b"name.txt\0a comment\0");
        let mut crc = flate2::Crc::new();
        crc.update(&head);
        head.extend_from_slice(&(crc.sum() as u16).to_le_bytes());
        head.extend_from_slice(deflate_and_trailer);
        let (r, got) = run(Compression::Gzip, &head, 1);
        r.unwrap();
        assert_eq!(got, b"hello, qubes\n");

        let n = head.len() - deflate_and_trailer.len() - 1;
        head[n] ^= 1; // header CRC
        assert_eq!(class(&run(Compression::Gzip, &head, usize::MAX).0), "tampered");
    }

    #[test]
    fn gzip_with_wrong_length_in_trailer_is_tampered() {
        let mut input = tool(Compression::Gzip, small());
        let n = input.len();
        input[n - 1] ^= 1;
        assert_eq!(run(Compression::Gzip, &input, usize::MAX).0, Err(Error::tampered("t", Check::Stream("gzip"))));
    }

    #[test]
    fn xz_needing_more_than_the_memory_limit_is_unsupported() {
        // Raise the LZMA2 dictionary in the first block header to 4 GiB and fix its CRC32.
        let mut input = tool(Compression::Xz, small());
        let size = (input[12] as usize + 1) * 4;
        assert_eq!(input[13] & 0xC0, 0, "single-threaded xz writes no sizes in the block header");
        assert_eq!(&input[14..16], &[0x21, 1], "LZMA2 filter with one property byte");
        input[16] = 40;
        let mut crc = flate2::Crc::new();
        crc.update(&input[12..12 + size - 4]);
        input[12 + size - 4..12 + size].copy_from_slice(&crc.sum().to_le_bytes());
        assert_eq!(class(&run(Compression::Xz, &input, 4096).0), "unsupported");
    }

    #[test]
    fn lzma_alone_needing_more_than_the_memory_limit_is_unsupported() {
        let mut input = compressed(Compression::Lzma, true).to_vec();
        input[1..5].copy_from_slice(&(1u32 << 30).to_le_bytes()); // dictionary size
        assert_eq!(class(&run(Compression::Lzma, &input, 4096).0), "unsupported");
    }

    #[test]
    fn zstd_window_over_the_limit_is_unsupported() {
        // Frame: magic, descriptor (no size, no checksum), window 1 GiB, then an empty last raw block.
        let mut input = ZSTD_MAGIC.to_le_bytes().to_vec();
        input.extend_from_slice(&[0x00, 20 << 3, 0x01, 0, 0]);
        assert_eq!(class(&run(Compression::Zstd, &input, 1).0), "unsupported");
        // The same frame with an 8 MiB window is fine.
        input[5] = 13 << 3;
        let (r, got) = run(Compression::Zstd, &input, 1);
        r.unwrap();
        assert!(got.is_empty());
    }
