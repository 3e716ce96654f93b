use super::*;

fn m(name: &str, size: u64) -> Member {
    Member { name: name.to_string(), offset: 0, size, cut: false }
}

fn with_hmacs(pieces: &[(&str, u64)]) -> Vec<Member> {
    let mut v = vec![m("backup-header", 100), m("backup-header.hmac", 146)];
    for (n, s) in pieces {
        v.push(m(n, *s));
        v.push(m(&format!("{n}.hmac"), 146));
    }
    v
}

#[test]
fn pieces_group_into_files_in_backup_order() {
    let members = with_hmacs(&[
        ("qubes.xml.000", 800),
        ("vm5/private.img.000", 16384),
        ("vm5/private.img.001", 16384),
        ("vm5/private.img.002", 0),
        ("vm1/..000", 300),
        ("dom0-home/user.000", 9000),
    ]);
    let files = group(&members).unwrap();
    let bases: Vec<&str> = files.iter().map(|f| f.base.as_str()).collect();
    assert_eq!(bases, ["qubes.xml", "vm5/private.img", "vm1/.", "dom0-home/user"]);
    assert_eq!(files[1].pieces.len(), 3);
    assert_eq!(files[1].pieces[2].hmac.as_ref().unwrap().name, "vm5/private.img.002.hmac");
}

#[test]
fn the_thousandth_piece_follows_the_999th() {
    let names: Vec<String> = (0..1001).map(|i| format!("a.{i:03}")).collect();
    let members = with_hmacs(&names.iter().map(|n| (n.as_str(), 10)).collect::<Vec<_>>());
    let files = group(&members).unwrap();
    assert_eq!(files[0].pieces[1000].data.name, "a.1000");
    assert_eq!(split_piece_name("a.0999"), None);
}

#[test]
fn a_gap_or_a_duplicate_is_tampered_naming_the_piece() {
    let gap = with_hmacs(&[("a.000", 10), ("a.002", 10)]);
    match group(&gap) {
        Err(Error::Tampered { at, .. }) => assert_eq!(at.member, "a.002"),
        other => panic!("{other:?}"),
    }
    let dup = with_hmacs(&[("a.000", 10), ("a.001", 10), ("a.001", 10)]);
    assert!(matches!(group(&dup), Err(Error::Tampered { .. })));
}

#[test]
fn an_empty_piece_is_allowed_only_at_the_end() {
    assert!(group(&with_hmacs(&[("a.000", 10), ("a.001", 0)])).is_ok());
    assert!(matches!(group(&with_hmacs(&[("a.000", 0), ("a.001", 10)])), Err(Error::Tampered { .. })));
}

#[test]
fn a_piece_without_its_hmac_is_kept_unusable_and_a_stray_hmac_is_tampered() {
    let mut members = with_hmacs(&[("a.000", 10)]);
    members.pop();
    assert_eq!(group(&members).unwrap()[0].pieces[0].hmac, None);
    let mut members = with_hmacs(&[("a.000", 10)]);
    members.push(m("b.000.hmac", 146));
    assert!(matches!(group(&members), Err(Error::Tampered { .. })));
}

#[test]
fn names_that_are_not_pieces_are_tampered() {
    for bad in ["a", "a.1", "a.01", "a.0001", ".000", "vm5/.000", "a.00x", "a.99999999999999999999999"] {
        assert!(group(&with_hmacs(&[(bad, 10)])).is_err(), "{bad}");
    }
}

#[test]
fn a_backup_path_matches_whole_components_only() {
    assert!(under("vm5", "vm5/private.img"));
    assert!(!under("vm5", "vm50/private.img"));
    assert!(under("vm5/", "vm5/private.img"));
    assert!(under("vm1", "vm1/."));
    assert!(under("dom0-home/user", "dom0-home/user"));
    assert!(!under("dom0-home/user", "dom0-home/user2"));
    assert!(!under("appvms/work", "appvms/work-web/private.img"));
    assert!(!under("", "qubes.xml"));
    assert!(!under("", "vm5/private.img"));
}
