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
