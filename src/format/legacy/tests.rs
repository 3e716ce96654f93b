//! The whole layer on real backups made by tests/make-fixtures-v3.sh (more in tests/legacy_fixtures.rs).
use super::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/made-v3/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn formats_3_and_2_are_told_from_format_4_by_the_header_hmac() {
    for name in ["v3-enc-gzip.bin", "v2-enc-multivolume.bin"] {
        let b = fixture(name);
        assert!(is_legacy(&b, &outer::index(&b).unwrap()), "{name}");
    }
    let v4 = std::fs::read(format!("{}/tests/fixtures/qubes-testsuite/v4_test_230_r4_compressed.bin", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert!(!is_legacy(&v4, &outer::index(&v4).unwrap()));
}

#[test]
fn wrong_passphrase_is_reported_at_the_header_before_any_piece_is_read() {
    let b = fixture("v3-enc-gzip.bin");
    match LegacyBackup::open(b, b"not qubes") {
        Err(Error::WrongPassphrase { member }) => assert_eq!(member, "backup-header"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("opened"),
    }
}

#[test]
fn qube_files_stay_inside_their_backup_path() {
    let backup = LegacyBackup::open(fixture("v3-enc-gzip.bin"), b"qubes").unwrap();
    let work: Vec<String> = backup.files("work").unwrap().into_iter().map(|f| f.path).collect();
    assert_eq!(work, ["vm5/private.img", "vm5/icon.png", "vm5/firewall.xml", "vm5/whitelisted-appmenus.list"]);
    let tpl = backup.files("fedora-23").unwrap();
    assert_eq!((tpl[0].path.as_str(), tpl[0].kind), ("vm1/.", FileKind::Home));
    assert!(matches!(backup.files("sys-firewall"), Err(Error::NotFound { .. })));
}

#[test]
fn a_header_naming_a_digest_we_do_not_verify_is_unsupported_not_a_wrong_passphrase() {
    let b = fixture("v3-enc-gzip.bin");
    let members = outer::index(&b).unwrap();
    let h = members.iter().find(|m| m.name == "backup-header").unwrap();
    let mut b2 = b.clone();
    let at = h.offset as usize;
    let text = String::from_utf8(b[at..at + h.size as usize].to_vec()).unwrap();
    // Same length, so the outer tar stays valid: SHA512 -> MD5xx (unknown either way).
    let changed = text.replace("hmac-algorithm=SHA512", "hmac-algorithm=MD5xxx");
    b2[at..at + h.size as usize].copy_from_slice(changed.as_bytes());
    assert!(matches!(LegacyBackup::open(b2, b"qubes"), Err(Error::Unsupported { .. })));
}

/// `backup` with member `name`'s bytes replaced in place (same length).
fn replace_in_place(backup: &mut [u8], name: &str, bytes: &[u8]) {
    let m = outer::index(&*backup).unwrap().into_iter().find(|m| m.name == name).unwrap();
    assert_eq!(m.size as usize, bytes.len());
    backup[m.offset as usize..m.offset as usize + bytes.len()].copy_from_slice(bytes);
}

#[test]
fn a_header_must_name_the_algorithm_its_hmac_was_made_with() {
    // Someone with the passphrase rewrites the header to claim SHA384 and MACs it with SHA512.
    let mut b = fixture("v3-enc-gzip.bin");
    let h = outer::index(&b).unwrap().into_iter().find(|m| m.name == "backup-header").unwrap();
    let text = String::from_utf8(b[h.offset as usize..(h.offset + h.size) as usize].to_vec()).unwrap();
    let forged = text.replace("SHA512", "SHA384");
    let mut mac = hmac_text::PieceMac::new(HmacAlgorithm::Sha512, b"qubes");
    mac.update(forged.as_bytes());
    let hmac_text::PieceMac::Sha512(m) = mac else { unreachable!() };
    use hmac::Mac;
    let tag: String = m.finalize().into_bytes().iter().map(|x| format!("{x:02x}")).collect();
    replace_in_place(&mut b, "backup-header", forged.as_bytes());
    replace_in_place(&mut b, "backup-header.hmac", format!("SHA2-512(stdin)= {tag}\n").as_bytes());
    match LegacyBackup::open(b, b"qubes") {
        Err(Error::Tampered { at, check }) => {
            assert_eq!(at.member, "backup-header");
            assert!(check.to_string().contains("hmac-algorithm"), "{check}");
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("opened"),
    }
}

#[test]
fn a_piece_pushed_after_the_last_is_refused() {
    let backup = LegacyBackup::open(fixture("v3-enc-gzip.bin"), b"qubes").unwrap();
    let file = backup.files("work").unwrap().into_iter().find(|f| f.path == "vm5/firewall.xml").unwrap();
    let bytes = backup.read_piece(&file.pieces[0]).unwrap();
    let mut stream = backup.stream(&file);
    stream.push_verified(&bytes, &mut |_| Ok(())).unwrap();
    assert!(matches!(stream.push_verified(&bytes, &mut |_| Ok(())), Err(Error::Tampered { .. })));
}
