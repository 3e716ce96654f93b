//! Every kind of damage ends in its own error class, names the member, never panics,
//! and never lets unauthenticated bytes through. Backups come from our writer (checked
//! against the real tools in writer_vs_real_tools.rs) and are then damaged on purpose.

mod common;
use common::*;
use qubes_rescue::container;
use qubes_rescue::decompress::Compression;
use qubes_rescue::restore::Backup;
use qubes_rescue::writer::{BackupWriter, SparseEncoding};
use qubes_rescue::Error;
use sha2::Digest;

fn class(r: Result<(), Error>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(e) => e.class(),
    }
}

fn class_of(bytes: Vec<u8>) -> &'static str {
    class(verify_all(bytes))
}

/// A backup whose private.img spans several chunks.
fn multi_chunk() -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let (bytes, _) = sample_backup(Compression::Gzip, 1024);
    let ms = members(&bytes);
    assert!(ms.iter().filter(|(n, _)| n.starts_with("vm5/private.img.")).count() >= 4, "want several chunks");
    (bytes, ms)
}

fn edit(ms: &[(String, Vec<u8>)], name: &str, f: impl FnOnce(&mut Vec<u8>)) -> Vec<(String, Vec<u8>)> {
    let mut ms = ms.to_vec();
    f(&mut ms.iter_mut().find(|(n, _)| n == name).unwrap().1);
    ms
}

#[test]
fn the_intact_sample_verifies() {
    assert_eq!(class_of(multi_chunk().0), "ok");
}

#[test]
fn wrong_passphrase_is_reported_before_any_chunk_is_read() {
    let (bytes, _) = multi_chunk();
    let e = Backup::open(bytes, b"wrong", &limits()).err().unwrap();
    assert_eq!(e.class(), "wrong-passphrase");
    assert!(e.to_string().contains("backup-header.hmac"));
}

#[test]
fn a_flipped_byte_in_each_region_of_a_chunk_is_caught() {
    let (_, ms) = multi_chunk();
    let name = "vm5/private.img.001.enc";
    let len = ms.iter().find(|(n, _)| n == name).unwrap().1.len();
    for (at, region, want) in [
        (0, "magic", "tampered"),
        (6, "version", "unsupported"),
        (7, "logN", "tampered"),
        (10, "r", "tampered"),
        (14, "p", "tampered"),
        (30, "salt", "tampered"),
        (50, "checksum", "tampered"),
        (80, "header MAC", "tampered"),
        (100, "ciphertext", "tampered"),
        (len - 3, "final MAC", "tampered"),
    ] {
        let damaged = rebuild(&edit(&ms, name, |d| d[at] ^= 0x10));
        let e = verify_all(damaged).err().unwrap_or_else(|| panic!("flip in {region} went unnoticed"));
        assert_eq!(e.class(), want, "{region}: {e}");
        assert!(e.to_string().contains(name) || want == "unsupported", "{region}: {e}");
    }
}

#[test]
fn swapped_chunks_are_rejected() {
    let (_, ms) = multi_chunk();
    let mut ms = ms;
    let a = ms.iter().position(|(n, _)| n == "vm5/private.img.001.enc").unwrap();
    let b = ms.iter().position(|(n, _)| n == "vm5/private.img.002.enc").unwrap();
    let (da, db) = (ms[a].1.clone(), ms[b].1.clone());
    ms[a].1 = db;
    ms[b].1 = da;
    assert_eq!(class_of(rebuild(&ms)), "tampered");
}

#[test]
fn a_chunk_from_another_file_is_rejected() {
    let (_, ms) = multi_chunk();
    let fw = ms.iter().find(|(n, _)| n == "vm5/firewall.xml.000.enc").unwrap().1.clone();
    let ms = edit(&ms, "vm5/private.img.000.enc", |d| *d = fw);
    assert_eq!(class_of(rebuild(&ms)), "tampered");
}

#[test]
fn a_chunk_from_another_backup_is_rejected() {
    let mut w = BackupWriter::new(PASS.as_bytes(), "20240202T120000-999", Compression::Gzip).chunk_size(1024).scrypt_log_n(4);
    w.qubes_xml(qubes_xml(&[]).as_bytes());
    w.volume("vm5/", "private.img", &sample_image(1 << 20), SparseEncoding::Pax10);
    let other = w.finish();
    let theirs = members(&other).into_iter().find(|(n, _)| n == "vm5/private.img.000.enc").unwrap().1;
    let (_, ms) = multi_chunk();
    // Same passphrase and names, another backup-id: the passphrase binding refuses it.
    let ms = edit(&ms, "vm5/private.img.000.enc", |d| *d = theirs);
    assert_eq!(class_of(rebuild(&ms)), "tampered");
}

#[test]
fn renamed_duplicated_and_dropped_chunks_are_rejected() {
    let (_, ms) = multi_chunk();
    let chunks: Vec<String> = ms.iter().map(|(n, _)| n.clone()).filter(|n| n.starts_with("vm5/private.img.")).collect();
    let last = chunks.last().unwrap().clone();
    // dropped in the middle: a gap
    let dropped_mid: Vec<_> = ms.iter().filter(|(n, _)| n != "vm5/private.img.001.enc").cloned().collect();
    assert_eq!(class_of(rebuild(&dropped_mid)), "tampered");
    // dropped at the end: the stream ends early
    let dropped_last: Vec<_> = ms.iter().filter(|(n, _)| *n != last).cloned().collect();
    assert_eq!(class_of(rebuild(&dropped_last)), "truncated");
    // duplicated
    let mut dup = ms.clone();
    dup.push(ms.iter().find(|(n, _)| n == "vm5/private.img.001.enc").unwrap().clone());
    assert_eq!(class_of(rebuild(&dup)), "tampered");
    // renamed: .001 → .009 (a gap, and the name no longer matches its passphrase)
    let renamed: Vec<_> = ms.iter().map(|(n, d)| (n.replace("private.img.001.enc", "private.img.009.enc"), d.clone())).collect();
    assert_eq!(class_of(rebuild(&renamed)), "tampered");
}

#[test]
fn a_backup_cut_short_is_truncated_at_every_offset() {
    let (bytes, _) = multi_chunk();
    // Past the last member's data only archive padding is lost, and nothing with it.
    let last = qubes_rescue::outer::index(&bytes).unwrap().pop().unwrap();
    let data_end = (last.offset + last.size) as usize;
    let step = data_end / 97;
    for cut in (1..data_end).step_by(step.max(1)).chain([data_end - 1]) {
        let r = verify_all(bytes[..cut].to_vec());
        let c = class(r);
        assert!(matches!(c, "truncated" | "not-a-backup"), "cut at {cut} of {}: {c}", bytes.len());
        if cut > 10240 {
            assert_eq!(c, "truncated", "cut at {cut}");
        }
    }
}

#[test]
fn an_edited_header_is_tampered() {
    let (_, ms) = multi_chunk();
    let ms = edit(&ms, "backup-header", |d| *d = String::from_utf8(d.clone()).unwrap().replace("gzip", "bzip2").into_bytes());
    assert_eq!(class_of(rebuild(&ms)), "tampered");
}

#[test]
fn an_authentic_header_of_an_unknown_version_is_unsupported() {
    let (_, ms) = multi_chunk();
    let header = ms[0].1.clone();
    let v5 = String::from_utf8(header).unwrap().replace("version=4", "version=5").into_bytes();
    let copy = container::seal(format!("backup-header!{PASS}").as_bytes(), &v5, 4, 8, 1, [1; 32]);
    let ms = edit(&edit(&ms, "backup-header", |d| *d = v5), "backup-header.hmac", |d| *d = copy);
    assert_eq!(class_of(rebuild(&ms)), "unsupported");
}

fn with_log_n(d: &mut [u8], log_n: u8) {
    d[7] = log_n;
    let sum = sha2::Sha256::digest(&d[..48]);
    d[48..64].copy_from_slice(&sum[..16]);
}

#[test]
fn absurd_scrypt_parameters_are_refused_without_allocating() {
    let (_, ms) = multi_chunk();
    // 128·8·2^50 bytes: the test finishing at all shows nothing was allocated
    let ms1 = edit(&ms, "vm5/private.img.001.enc", |d| with_log_n(d, 50));
    let e = verify_all(rebuild(&ms1)).err().unwrap();
    assert!(matches!(e, Error::UnsafeParams { log_n: 50, .. }), "{e}");
    let ms2 = edit(&ms, "backup-header.hmac", |d| with_log_n(d, 62));
    assert_eq!(class_of(rebuild(&ms2)), "unsafe-params");
}

#[test]
fn a_decompression_bomb_after_the_member_is_refused() {
    let image = pax_sparse("vm5/private.img", 4096, &[(0, 512), (4096, 0)], &[1u8; 512]);
    let mut inner = image.clone();
    inner.extend(vec![0u8; 64 << 20]); // 64 MiB of zeros compress to ~64 KiB
    assert_eq!(class_of(with_inner_stream("vm5/private.img", &inner)), "tampered");
    let mut ok = image;
    ok.extend(vec![0u8; 10240]);
    assert_eq!(class_of(with_inner_stream("vm5/private.img", &ok)), "ok");
}

#[test]
fn data_after_the_declared_size_is_refused() {
    let mut inner = pax_sparse("vm5/private.img", 4096, &[(0, 512), (4096, 0)], &[1u8; 512]);
    inner.extend(b"garbage that is not a tar header".repeat(20));
    assert_eq!(class_of(with_inner_stream("vm5/private.img", &inner)), "tampered");
}

#[test]
fn sparse_maps_that_lie_are_refused() {
    for (map, data_len) in [
        (vec![(0, 1024), (512, 512), (8192, 0)], 1536),   // overlapping
        (vec![(4096, 512), (0, 512), (8192, 0)], 1024),   // unsorted
        (vec![(0, 512), (9000, 512)], 1024),               // beyond realsize
        (vec![(0, 512), (8192, 0)], 1024),                 // sizes do not sum to the data
    ] {
        let inner = pax_sparse("vm5/private.img", 8192, &map, &vec![3u8; data_len]);
        assert_eq!(class_of(with_inner_stream("vm5/private.img", &inner)), "tampered", "{map:?}");
    }
}

#[test]
fn an_inner_member_with_another_name_is_refused() {
    let inner = pax_sparse("vm6/private.img", 4096, &[(0, 512), (4096, 0)], &[1u8; 512]);
    assert_eq!(class_of(with_inner_stream("vm5/private.img", &inner)), "tampered");
}

#[test]
fn dom0_home_entries_escaping_the_home_are_unsafe() {
    for (name, flag, link) in [
        (&b"dom0-home/user/../../escaped"[..], b'0', &b""[..]),
        (b"/etc/escaped", b'0', b""),
        (b"dom0-home/other/file", b'0', b""),
        (b"dom0-home/user/../user2/x", b'0', b""),
    ] {
        let mut inner = tar_member(b"dom0-home/user/", b'5', b"", b"");
        inner.extend(tar_member(name, flag, link, b"evil"));
        inner.extend(vec![0u8; 1024]);
        assert_eq!(class_of(with_inner_stream("dom0-home/user", &inner)), "unsafe-path", "{}", String::from_utf8_lossy(name));
    }
}

#[test]
fn a_symlink_in_dom0_home_is_never_followed_when_extracting() {
    let out = scratch("symlink-escape");
    let victim = out.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let mut inner = tar_member(b"dom0-home/user/", b'5', b"", b"");
    inner.extend(tar_member(b"dom0-home/user/link", b'2', victim.to_str().unwrap().as_bytes(), b""));
    inner.extend(tar_member(b"dom0-home/user/link/owned", b'0', b"", b"evil"));
    inner.extend(vec![0u8; 1024]);
    let backup = out.join("b.bin");
    std::fs::write(&backup, with_inner_stream("dom0-home/user", &inner)).unwrap();
    let dest = out.join("restored");
    let o = cli(PASS, &["extract", backup.to_str().unwrap(), "dom0", "-o", dest.to_str().unwrap()]);
    assert_eq!(error_class(&o).as_deref(), Some("unsafe-path"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(16));
    assert!(!victim.join("owned").exists(), "wrote through the symlink");
}

/// A backup source that records every byte range read.
struct Recording {
    bytes: Vec<u8>,
    reads: std::cell::RefCell<Vec<(u64, usize)>>,
}

impl qubes_rescue::read_at::ReadAt for Recording {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> qubes_rescue::Result<()> {
        self.reads.borrow_mut().push((offset, buf.len()));
        self.bytes.read_at(offset, buf)
    }
}

#[test]
fn a_wrong_passphrase_reads_no_chunk_and_indexing_reads_only_headers() {
    let (bytes, _) = multi_chunk();
    let index = qubes_rescue::outer::index(&bytes).unwrap();
    let chunk_ranges: Vec<(u64, u64)> =
        index.iter().filter(|m| m.name.ends_with(".enc")).map(|m| (m.offset, m.offset + m.size)).collect();
    let src = Recording { bytes, reads: Default::default() };
    assert!(matches!(Backup::open(src, b"wrong", &limits()), Err(Error::WrongPassphrase { .. })));
    // (the Recording moved into open(); rebuild to inspect)
    let (bytes, _) = multi_chunk();
    let src = Recording { bytes, reads: Default::default() };
    let index = qubes_rescue::outer::index(&src).unwrap();
    let reads = src.reads.borrow();
    for &(offset, len) in reads.iter() {
        let touches_chunk = chunk_ranges.iter().any(|&(s, e)| offset < e && offset + len as u64 > s);
        assert!(!touches_chunk, "indexing read {len} bytes at {offset}, inside a chunk");
    }
    // per member: pax header block and records, ustar header, a zero block, the padding
    assert!(reads.len() <= index.len() * 5, "{} reads for {} members", reads.len(), index.len());
    drop(reads);
    let src = Recording { bytes: src.bytes, reads: Default::default() };
    let opened = std::rc::Rc::new(src);
    struct Shared(std::rc::Rc<Recording>);
    impl qubes_rescue::read_at::ReadAt for Shared {
        fn len(&self) -> u64 {
            self.0.len()
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> qubes_rescue::Result<()> {
            self.0.read_at(offset, buf)
        }
    }
    assert!(Backup::open(Shared(opened.clone()), b"wrong", &limits()).is_err());
    for &(offset, len) in opened.reads.borrow().iter() {
        let touches_chunk = chunk_ranges.iter().any(|&(s, e)| offset < e && offset + len as u64 > s);
        assert!(!touches_chunk, "read {len} bytes at {offset} inside a chunk before the passphrase was known good");
    }
}
