    use super::*;

    fn img(size: u64, runs: &[(u64, &[u8])]) -> Image {
        Image { size, runs: runs.iter().map(|(o, d)| (*o, d.to_vec())).collect() }
    }

    #[test]
    fn tarwriter_map_turns_zero_blocks_inside_data_into_holes() {
        let mut run = vec![1u8; 2048];
        run[512..1024].fill(0);
        let map = tarwriter_sparse_map(&img(1 << 20, &[(4096, &run)]));
        assert_eq!(map, vec![(4096, 512), (5120, 1024), (1 << 20, 0)]);
    }

    #[test]
    fn tarwriter_map_of_a_zero_image_is_one_empty_entry() {
        assert_eq!(tarwriter_sparse_map(&img(8192, &[])), vec![(8192, 0)]);
        assert_eq!(tarwriter_sparse_map(&img(8192, &[(0, &[0; 100])])), vec![(8192, 0)]);
    }

    #[test]
    fn tarwriter_map_keeps_a_trailing_partial_block_as_data() {
        assert_eq!(tarwriter_sparse_map(&img(1000, &[])), vec![(512, 488)]);
    }

    #[test]
    fn tarwriter_map_has_no_final_entry_when_the_image_ends_in_data() {
        assert_eq!(tarwriter_sparse_map(&img(2048, &[(2000, &[9; 48])])), vec![(1536, 512)]);
    }

    #[test]
    fn stored_size_of_8_gib_moves_to_a_pax_size_record() {
        let map = [(0u64, 1u64 << 33), (1 << 34, 0)];
        let h = pax10_headers("vm5/private.img", &map, 42);
        let records = std::str::from_utf8(&h[512..1024]).unwrap().trim_end_matches('\0');
        assert_eq!(
            records,
            "22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n35 GNU.sparse.name=vm5/private.img\n\
             35 GNU.sparse.realsize=17179869184\n19 size=8589935104\n"
        );
        assert_eq!(&h[1024..1060], b"vm5/GNUSparseFile.42/private.img\0\0\0\0");
        assert_eq!(&h[1024 + 124..1024 + 136], b"00000000000\0");
    }

    #[test]
    fn gnu_numbers_switch_to_base_256_at_8_gib() {
        let mut f = [0u8; 12];
        put_gnu_num(&mut f, (1 << 33) - 1);
        assert_eq!(&f, b"77777777777\0");
        put_gnu_num(&mut f, 10 << 30);
        assert_eq!(f, [0x80, 0, 0, 0, 0, 0, 0, 2, 0x80, 0, 0, 0]);
    }

    #[test]
    fn gnu_map_widens_runs_to_filesystem_blocks_and_always_ends_with_an_empty_entry() {
        let map = gnu_seek_sparse_map(&img(1 << 20, &[(5000, &[1; 10]), (8190, &[0; 4])])).unwrap();
        assert_eq!(map, vec![(4096, 8192), (1 << 20, 0)]);
        let ends_in_data = gnu_seek_sparse_map(&img(1 << 20, &[((1 << 20) - 10, &[1; 10])])).unwrap();
        assert_eq!(ends_in_data, vec![((1 << 20) - 4096, 4096), (1 << 20, 0)]);
        assert_eq!(gnu_seek_sparse_map(&img(6000, &[(0, &[1; 6000])])), None);
    }

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        let mut r = Vec::new();
        pax_record(&mut r, "atime", b"1700000000.5");
        assert_eq!(r, b"22 atime=1700000000.5\n");
        let mut r = Vec::new();
        pax_record(&mut r, "k", &[b'v'; 95]); // 1+95+3 = 99, +2 digits = 101 → 3 digits → 102
        assert_eq!(&r[..4], b"102 ");
    }

    #[test]
    fn exact_multiple_stream_gets_an_empty_last_chunk_and_members_fill_records() {
        let mut w = BackupWriter::new(b"pw", "20240101T000000-1", Compression::None).chunk_size(10240).scrypt_log_n(4);
        w.file("vm5/", "firewall.xml", b"<firewall/>");
        let out = w.finish();
        // header, hmac, .000 (10240 B), .001 (empty): one record each except the full chunk.
        assert_eq!(out.len(), 10240 * 2 + 10240 * 2 + 10240);
        assert_eq!(&out[0..29], b"./PaxHeaders/backup-header\0\0\0");
    }
