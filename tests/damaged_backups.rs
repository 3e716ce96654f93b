//! Every kind of damage ends in its own error class, names the member, never panics,
//! and never lets unauthenticated bytes through. Backups come from our writer (checked
//! against the real tools in writer_vs_real_tools.rs) and are then damaged on purpose.

mod common;
use common::*;
use qubes_rescue::format::container;
use qubes_rescue::format::decompress::Compression;
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
    let last = qubes_rescue::format::outer::index(&bytes).unwrap().pop().unwrap();
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
    let index = qubes_rescue::format::outer::index(&bytes).unwrap();
    // qubes.xml's KDF starts beside the header's (issue 10): of its chunk, only the 96-byte
    // scrypt header may be read before the passphrase is proven.
    let chunk_ranges: Vec<(u64, u64)> = index
        .iter()
        .filter(|m| m.name.ends_with(".enc"))
        .map(|m| (m.offset + if m.name == "qubes.xml.000.enc" { 96 } else { 0 }, m.offset + m.size))
        .collect();
    let src = Recording { bytes, reads: Default::default() };
    assert!(matches!(Backup::open(src, b"wrong", &limits()), Err(Error::WrongPassphrase { .. })));
    // (the Recording moved into open(); rebuild to inspect)
    let (bytes, _) = multi_chunk();
    let src = Recording { bytes, reads: Default::default() };
    let index = qubes_rescue::format::outer::index(&src).unwrap();
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

// ---- The error matrix, row by row (README "Error matrix"): each damage below is named by the
// class it ends in, and never writes outside the output folder or panics.

/// Runs `extract BACKUP QUBE -o out` in a fresh folder holding only the backup (and a `victim`
/// file that nothing may touch); checks that the run did not panic and that nothing appeared
/// beside `out`.
fn extract(tag: &str, bytes: &[u8], qube: &str) -> (std::process::Output, std::path::PathBuf) {
    let dir = scratch(&format!("matrix-{tag}"));
    std::fs::write(dir.join("b.bin"), bytes).unwrap();
    std::fs::write(dir.join("victim"), b"untouched").unwrap();
    let out = dir.join("out");
    let o = cli(PASS, &["extract", dir.join("b.bin").to_str().unwrap(), qube, "-o", out.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(101), "{tag}: panicked: {}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{tag}: {}", stderr(&o));
    let mut beside: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    beside.sort();
    assert!(beside.iter().all(|n| ["b.bin", "out", "victim"].contains(&n.as_str())), "{tag}: wrote beside the output folder: {beside:?}");
    assert_eq!(std::fs::read(dir.join("victim")).unwrap(), b"untouched", "{tag}: the file outside was changed");
    (o, out)
}

/// Every path under `root` (folders included), relative, sorted.
fn tree(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let e = e.unwrap();
            out.push(e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// A tar member header with a device number (character or block device).
fn device(name: &[u8], flag: u8) -> Vec<u8> {
    let mut h = tar_member(name, flag, b"", b"");
    h[329..337].copy_from_slice(b"0000001\0");
    h[337..345].copy_from_slice(b"0000003\0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

#[test]
fn device_nodes_and_fifos_in_dom0_home_are_skipped_and_the_rest_restores() {
    let mut inner = tar_member(b"dom0-home/user/", b'5', b"", b"");
    inner.extend(device(b"dom0-home/user/null", b'3'));
    inner.extend(device(b"dom0-home/user/sda", b'4'));
    inner.extend(tar_member(b"dom0-home/user/pipe", b'6', b"", b""));
    inner.extend(tar_member(b"dom0-home/user/ok.txt", b'0', b"", b"kept"));
    inner.extend(vec![0u8; 1024]);
    let (o, out) = extract("devices", &with_inner_stream("dom0-home/user", &inner), "dom0");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped 3 special files"), "{}", stderr(&o));
    let home = out.join("dom0/home/user");
    assert_eq!(std::fs::read(home.join("ok.txt")).unwrap(), b"kept");
    assert_eq!(tree(&home), ["ok.txt"], "no device node or fifo was created");
}

#[test]
fn hard_links_in_dom0_home_escaping_the_home_are_unsafe() {
    let victim = scratch("matrix-hardlink-victim").join("victim");
    std::fs::write(&victim, b"untouched").unwrap();
    let victim_s = victim.to_str().unwrap().as_bytes().to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("absolute", tar_member(b"dom0-home/user/h", b'1', &victim_s, b"")),
        ("dotdot", tar_member(b"dom0-home/user/h", b'1', b"dom0-home/user/../../../victim", b"")),
        ("other-home", tar_member(b"dom0-home/user/h", b'1', b"dom0-home/other/file", b"")),
        ("via-symlink", {
            let mut t = tar_member(b"dom0-home/user/link", b'2', &victim_s, b"");
            t.extend(tar_member(b"dom0-home/user/h", b'1', b"dom0-home/user/link", b""));
            t
        }),
    ];
    for (tag, member) in cases {
        let mut inner = tar_member(b"dom0-home/user/", b'5', b"", b"");
        inner.extend(member);
        // If the link had been made, this would write through it.
        inner.extend(tar_member(b"dom0-home/user/h", b'0', b"", b"evil"));
        inner.extend(vec![0u8; 1024]);
        let (o, out) = extract(&format!("hardlink-{tag}"), &with_inner_stream("dom0-home/user", &inner), "dom0");
        assert_eq!(error_class(&o).as_deref(), Some("unsafe-path"), "{tag}: {}", stderr(&o));
        assert_eq!(o.status.code(), Some(16), "{tag}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched", "{tag}: wrote through the link");
        let h = out.join("dom0/home/user/h");
        assert!(std::fs::symlink_metadata(&h).is_err(), "{tag}: the link was created");
    }
}

#[test]
fn dom0_home_path_traversal_writes_nothing_outside_the_output_folder() {
    for (tag, name) in [("dotdot", &b"dom0-home/user/../../../victim"[..]), ("absolute", b"/tmp/qubes-rescue-matrix-escaped")] {
        let mut inner = tar_member(b"dom0-home/user/", b'5', b"", b"");
        inner.extend(tar_member(name, b'0', b"", b"evil"));
        inner.extend(vec![0u8; 1024]);
        let (o, _) = extract(&format!("traversal-{tag}"), &with_inner_stream("dom0-home/user", &inner), "dom0");
        assert_eq!(error_class(&o).as_deref(), Some("unsafe-path"), "{tag}: {}", stderr(&o));
        assert!(!std::path::Path::new("/tmp/qubes-rescue-matrix-escaped").exists());
    }
}

/// A backup whose qubes.xml is `xml` (compressed with gzip like the rest).
fn with_qubes_xml(xml: &[u8]) -> Vec<u8> {
    let mut w = BackupWriter::new(PASS.as_bytes(), BACKUP_ID, Compression::Gzip).chunk_size(1 << 20).scrypt_log_n(4);
    w.qubes_xml(xml);
    w.volume("vm5/", "private.img", &sample_image(1 << 20), SparseEncoding::Pax10);
    w.finish()
}

fn open_class(bytes: Vec<u8>) -> &'static str {
    Backup::open(bytes, PASS.as_bytes(), &limits()).err().map_or("ok", |e| e.class())
}

#[test]
fn a_qubes_xml_over_1_mib_is_refused_before_it_is_decrypted() {
    // Incompressible, so its chunk is over 1 MiB: refused by size, before any KDF.
    let (_, ms) = multi_chunk();
    let big = seal_chunk("qubes.xml.000.enc", &noise((1 << 20) + 4096, 7));
    let ms = edit(&ms, "qubes.xml.000.enc", |d| *d = big);
    assert_eq!(open_class(rebuild(&ms)), "unsupported");
}

#[test]
fn a_qubes_xml_that_inflates_past_8_mib_is_refused() {
    let xml = qubes_xml(&[]);
    let padded = xml.replacen("<pools/>", &format!("<!--{}--><pools/>", "x".repeat(9 << 20)), 1);
    let bytes = with_qubes_xml(padded.as_bytes());
    assert!(bytes.len() < 1 << 20, "compressed it stays small");
    assert_eq!(open_class(bytes), "unsupported");
}

#[test]
fn a_qubes_xml_with_a_dtd_or_entities_is_refused() {
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE qubes [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><qubes>&d;&d;&d;&d;</qubes>"#;
    assert_eq!(open_class(with_qubes_xml(laughs.as_bytes())), "tampered");
    let external = r#"<?xml version="1.0"?><!DOCTYPE qubes SYSTEM "file:///etc/passwd"><qubes/>"#;
    assert_eq!(open_class(with_qubes_xml(external.as_bytes())), "tampered");
}

#[test]
fn a_malformed_qubes_xml_is_tampered() {
    for bad in [&b"<qubes><domains>"[..], b"not xml at all", b"\xff\xfe<qubes/>", b"<other/>"] {
        assert_eq!(open_class(with_qubes_xml(bad)), "tampered", "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn a_damaged_or_missing_qubes_xml_chunk_is_reported() {
    let (_, ms) = multi_chunk();
    let flipped = edit(&ms, "qubes.xml.000.enc", |d| d[100] ^= 1);
    assert_eq!(open_class(rebuild(&flipped)), "tampered");
    let dropped: Vec<_> = ms.iter().filter(|(n, _)| n != "qubes.xml.000.enc").cloned().collect();
    assert_eq!(open_class(rebuild(&dropped)), "truncated");
}

#[test]
fn damage_to_the_header_copy_is_reported() {
    let (_, ms) = multi_chunk();
    // Its ciphertext: the passphrase opened the header MAC, the file MAC fails.
    let body = edit(&ms, "backup-header.hmac", |d| d[100] ^= 1);
    assert_eq!(open_class(rebuild(&body)), "tampered");
    // Its scrypt header MAC: indistinguishable from a wrong passphrase (nothing else is proven yet).
    let mac = edit(&ms, "backup-header.hmac", |d| d[80] ^= 1);
    assert_eq!(open_class(rebuild(&mac)), "wrong-passphrase");
    let dropped: Vec<_> = ms.iter().filter(|(n, _)| n != "backup-header.hmac").cloned().collect();
    assert_eq!(open_class(rebuild(&dropped)), "truncated");
    let mut twice = ms.clone();
    twice.insert(2, ms[1].clone());
    assert_eq!(open_class(rebuild(&twice)), "tampered");
}

#[test]
fn a_missing_or_duplicated_header_is_reported() {
    let (_, ms) = multi_chunk();
    let dropped: Vec<_> = ms.iter().filter(|(n, _)| n != "backup-header").cloned().collect();
    assert_eq!(open_class(rebuild(&dropped)), "not-a-backup");
    let mut twice = ms.clone();
    twice.insert(1, ms[0].clone());
    assert_eq!(open_class(rebuild(&twice)), "tampered");
    // A header over 4 KiB is refused before it is read.
    let big = edit(&ms, "backup-header", |d| d.resize(5000, b'\n'));
    assert_eq!(open_class(rebuild(&big)), "tampered");
}

/// Rewrites the ustar size field of the outer member holding `name` (and its checksum).
fn set_outer_size(bytes: &mut [u8], name: &str, size_field: &[u8; 12]) {
    let m = qubes_rescue::format::outer::index(&bytes[..]).unwrap().into_iter().find(|m| m.name == name).unwrap();
    let h = &mut bytes[m.offset as usize - 512..m.offset as usize];
    h[124..136].copy_from_slice(size_field);
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}

#[test]
fn oversized_length_fields_are_refused_without_allocating() {
    let (bytes, _) = multi_chunk();
    // An outer member claiming 8 GiB (octal) or 2^62 bytes (base-256): refused by the index.
    let mut octal = bytes.clone();
    set_outer_size(&mut octal, "vm5/private.img.001.enc", b"77777777777\0");
    let e = Backup::open(octal, PASS.as_bytes(), &limits()).err().unwrap();
    assert_eq!(e.class(), "tampered", "{e}");
    assert!(e.to_string().contains("vm5/private.img.001.enc"), "{e}");
    let mut b256 = bytes.clone();
    set_outer_size(&mut b256, "vm5/private.img.001.enc", &[0x80, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(open_class(b256), "tampered");
    // Inner tar: a sparse map announcing 10^15 entries, a realsize past 2^63, a pax record
    // claiming a terabyte.
    let huge_map = {
        // Same length as the map text "1\n1000000000000000\n512\n" it replaces.
        let mut t = pax_sparse("vm5/private.img", 4096, &[(1_000_000_000_000_000, 512)], &[1u8; 512]);
        let at = t.windows(23).position(|w| w == b"1\n1000000000000000\n512\n").unwrap();
        t[at..at + 23].copy_from_slice(b"1000000000000000\n0\n512\n");
        t.extend(vec![0u8; 1024]);
        t
    };
    let mut huge_record = tar_member(b"././@PaxHeader", b'x', b"", b"1099511627776 path=x\n");
    huge_record.extend(vec![0u8; 1024]);
    let huge_real = pax_sparse("vm5/private.img", u64::MAX, &[(0, 512), (u64::MAX, 0)], &[1u8; 512]);
    for (what, inner) in [("map entries", huge_map), ("pax record", huge_record), ("realsize", huge_real)] {
        let e = verify_all(with_inner_stream("vm5/private.img", &inner)).err().unwrap();
        assert_eq!(e.class(), "tampered", "{what}: {e}");
    }
}

#[test]
fn data_after_the_outer_archive_is_refused_unless_it_is_a_member() {
    let (bytes, _) = multi_chunk();
    // A non-zero block that is no tar header: the outer index cannot tell what it is.
    let mut garbage = bytes.clone();
    garbage.extend(noise(4096, 3));
    assert_eq!(open_class(garbage), "tampered");
    // Less than a block of it: the file ends inside a (would-be) header.
    let mut short = bytes.clone();
    short.extend(b"trailing");
    assert_eq!(open_class(short), "truncated");
    // Zero padding, or a whole extra member nothing refers to: ignored.
    let mut zeros = bytes.clone();
    zeros.extend(vec![0u8; 20480]);
    assert_eq!(class_of(zeros), "ok");
    let mut extra = bytes;
    extra.extend(rebuild(&[("junk".to_string(), b"not a chunk".to_vec())]));
    assert_eq!(class_of(extra), "ok");
}

#[test]
fn chunks_stored_out_of_order_still_restore() {
    // The outer layer is unauthenticated and may be reordered; chunks are taken by index.
    let (_, ms) = multi_chunk();
    let mut ms = ms;
    let first = ms.iter().position(|(n, _)| n.starts_with("vm5/private.img.")).unwrap();
    let count = ms.iter().filter(|(n, _)| n.starts_with("vm5/private.img.")).count();
    ms[first..first + count].reverse();
    assert_eq!(class_of(rebuild(&ms)), "ok");
}

/// The sample backup with `vm5/private.img` replaced by one chunk holding `stream` as is
/// (already compressed, or damaged on purpose), sealed as Qubes would.
fn with_compressed_stream(stream: &[u8]) -> Vec<u8> {
    let (bytes, _) = sample_backup(Compression::Gzip, 1 << 20);
    let mut ms: Vec<(String, Vec<u8>)> = members(&bytes).into_iter().filter(|(n, _)| !n.starts_with("vm5/private.img.")).collect();
    ms.push(("vm5/private.img.000.enc".into(), seal_chunk("vm5/private.img.000.enc", stream)));
    rebuild(&ms)
}

#[test]
fn an_authentic_but_damaged_compressed_stream_is_reported() {
    let inner = pax_sparse("vm5/private.img", 1 << 20, &[(0, 4096), (1 << 20, 0)], &noise(4096, 5));
    let mut inner = inner;
    inner.extend(vec![0u8; 1024]);
    let gz = qubes_rescue::writer::compress(Compression::Gzip, &inner);
    assert_eq!(class_of(with_compressed_stream(&gz)), "ok");
    // cut short: the decompressor never reaches its end
    for cut in [10, gz.len() / 2, gz.len() - 4] {
        assert_eq!(class_of(with_compressed_stream(&gz[..cut])), "truncated", "cut at {cut}");
    }
    // a flipped byte in the deflate data or the CRC: the decoder refuses it
    let mut flipped = gz.clone();
    let at = gz.len() - 6;
    flipped[at] ^= 0x01;
    assert_eq!(class_of(with_compressed_stream(&flipped)), "tampered");
    // not gzip at all
    assert_eq!(class_of(with_compressed_stream(b"this is not a gzip stream")), "tampered");
}

#[test]
fn an_inner_tar_cut_short_is_truncated() {
    let mut inner = pax_sparse("vm5/private.img", 1 << 20, &[(0, 4096), (1 << 20, 0)], &noise(4096, 5));
    inner.extend(vec![0u8; 1024]);
    let stored_end = inner.len() - 1024;
    for cut in [100, 512, 1024, 1536, stored_end - 1000, stored_end - 1] {
        assert_eq!(class_of(with_inner_stream("vm5/private.img", &inner[..cut])), "truncated", "cut at {cut}");
    }
}

/// Open's head start (issue 10): qubes.xml's first chunk is opened beside the header's KDF under
/// the backup id read from the not yet authenticated header. What comes of it is used only
/// under the id the header then proves; anything else is ignored and the chunk opened again.
#[test]
fn an_early_qubes_xml_result_is_used_only_under_the_proven_backup_id() {
    use qubes_rescue::restore::{Early, Indexed};
    let (bytes, _) = multi_chunk();
    let reference = Backup::open(bytes.clone(), PASS.as_bytes(), &limits()).unwrap();
    let names = |b: &Backup<Vec<u8>>| b.qubes().iter().map(|q| q.name.clone()).collect::<Vec<_>>();

    // The real head start: the chunk opened with the unauthenticated id gives the same qubes.
    let indexed = Indexed::index(bytes.clone()).unwrap();
    let early = indexed.early_qubes_xml(&limits()).expect("qubes.xml.000.enc can be opened early");
    assert_eq!(early.member.name, "qubes.xml.000.enc");
    let pass = qubes_rescue::format::chunks::chunk_passphrase(&early.backup_id, &early.member.name, PASS.as_bytes());
    let sealed = bytes[early.member.offset as usize..(early.member.offset + early.member.size) as usize].to_vec();
    let plaintext = container::open(&early.member.name, &pass, sealed, &limits()).unwrap();
    let backup = indexed.authenticate(PASS.as_bytes(), &limits()).unwrap().read_qubes_xml(Some((early, Ok(Early::Plaintext(plaintext))))).unwrap();
    assert_eq!(names(&backup), names(&reference));

    // A result under another id (a forged header would give one) is never used: garbage in its
    // place changes nothing, because the chunk is opened again under the proven id.
    let indexed = Indexed::index(bytes.clone()).unwrap();
    let mut early = indexed.early_qubes_xml(&limits()).unwrap();
    early.backup_id.push_str("-forged");
    let backup = indexed
        .authenticate(PASS.as_bytes(), &limits())
        .unwrap()
        .read_qubes_xml(Some((early, Ok(Early::Plaintext(b"not qubes.xml".to_vec())))))
        .unwrap();
    assert_eq!(names(&backup), names(&reference));

    // A wrong passphrase stops at the header, whatever was started early.
    let indexed = Indexed::index(bytes).unwrap();
    assert!(indexed.early_qubes_xml(&limits()).is_some());
    assert!(matches!(indexed.authenticate(b"wrong", &limits()), Err(Error::WrongPassphrase { .. })));
}

#[test]
fn a_damaged_inner_tar_is_reported_in_the_chunk_and_at_the_stream_byte_where_it_lies() {
    // firewall.xml's stream: a valid 600-byte member (512 + 1024 bytes), then a block that is
    // no tar header. With 1024-byte chunks and no compression, that block is at byte 1536 of
    // the stream: inside chunk .001.
    let mut tar = Vec::new();
    let mut h = [0u8; 512];
    h[..16].copy_from_slice(b"vm5/firewall.xml");
    h[100..108].copy_from_slice(b"0000644\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", 600).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar ");
    h[263..265].copy_from_slice(b" \0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    tar.extend_from_slice(&h);
    tar.extend_from_slice(&[b'x'; 1024]);
    tar.extend_from_slice(&[0x55; 512]);
    tar.extend_from_slice(&[0; 1024]);
    let mut w = BackupWriter::new(PASS.as_bytes(), BACKUP_ID, Compression::None).chunk_size(1024).scrypt_log_n(4);
    w.qubes_xml(qubes_xml(&[]).as_bytes());
    w.stream("vm5/firewall.xml", tar);
    let backup = Backup::open(w.finish(), PASS.as_bytes(), &limits()).unwrap();
    let files = backup.files("work").unwrap();
    let file = files.iter().find(|f| f.name == "firewall.xml").unwrap();
    let e = qubes_rescue::restore::restore_file(&backup, file, qubes_rescue::restore::Target::Verify, 2, &mut |_| {}).unwrap_err();
    assert_eq!(e.check(), Some(&qubes_rescue::Check::InnerTar(qubes_rescue::TarFault::HeaderChecksum)), "{e}");
    assert_eq!(e.location(), Some(&qubes_rescue::Location::stream("vm5/firewall.xml.001.enc", 1536)), "{e}");
    assert!(e.to_string().contains("vm5/firewall.xml.001.enc (byte 1536 of its decompressed stream)"), "{e}");
}
