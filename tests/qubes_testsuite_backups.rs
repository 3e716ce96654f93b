//! Backups made by Qubes' own backup-compatibility test suite (real `scrypt`, GNU tar,
//! gzip/bzip2): every file restores byte-exact; format 3 is reported as unsupported.

mod common;
use common::*;
use serde_json::Value;

fn manifest(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(&format!("qubes-testsuite/{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn restores_byte_exact(name: &str) {
    let m = manifest(name);
    let out = scratch(name);
    let bin = fixture(&format!("qubes-testsuite/{name}.bin"));
    let o = cli("qubes", &["extract", bin.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "extract failed: {}", stderr(&o));
    let mut checked = 0;
    for qube in m["qubes"].as_array().unwrap() {
        let qname = qube["name"].as_str().unwrap();
        let base = if qname == "dom0" { out.join("dom0/home/user") } else { out.join(qname) };
        for f in qube["files"].as_array().unwrap() {
            let path = base.join(f["path"].as_str().unwrap());
            assert_eq!(std::fs::metadata(&path).map(|m| m.len()).ok(), f["size"].as_u64(), "{}", path.display());
            assert_eq!(sha256_file(&path), f["sha256"].as_str().unwrap(), "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} files checked");
}

#[test]
fn gzip_backup_from_the_qubes_test_suite_restores_byte_exact() {
    restores_byte_exact("v4_test_230_r4_compressed");
}

#[test]
fn bzip2_backup_from_the_qubes_test_suite_restores_byte_exact() {
    restores_byte_exact("v4_test_230_r4_custom_compression");
}

#[test]
fn list_json_names_every_qube_with_its_volumes() {
    let bin = fixture("qubes-testsuite/v4_test_230_r4_compressed.bin");
    let o = cli("qubes", &["list", bin.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = manifest("v4_test_230_r4_compressed");
    let want: Vec<&str> = m["qubes"].as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
    let got: Vec<&str> = listed.as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
    let (mut w, mut g) = (want.clone(), got.clone());
    w.sort();
    g.sort();
    assert_eq!(w, g);
    let work = listed.as_array().unwrap().iter().find(|q| q["name"] == "test-work").unwrap();
    assert_eq!(work["class"], "AppVM");
    assert_eq!(work["backup_path"], "vm3");
    assert!(work["volumes"].as_array().unwrap().iter().any(|v| v == "private.img"));
    assert!(work["size"].as_u64().is_some());
}

#[test]
fn verify_decodes_everything_and_writes_nothing() {
    let bin = fixture("qubes-testsuite/v4_test_230_r4_compressed.bin");
    let o = cli("qubes", &["verify", bin.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("test-work/private.img"));
}

#[test]
fn wrong_passphrase_is_reported_with_its_exit_code() {
    let bin = fixture("qubes-testsuite/v4_test_230_r4_compressed.bin");
    let o = cli("not the passphrase", &["list", bin.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert_eq!(error_class(&o).as_deref(), Some("wrong-passphrase"));
}

#[test]
fn format_3_backups_open_and_a_wrong_passphrase_is_named_at_their_header() {
    for name in ["v3_test_210_r2", "v3_test_220_r2_encrypted"] {
        let bin = fixture(&format!("qubes-testsuite/{name}.bin"));
        let o = cli("qubes", &["list", bin.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("(format 3, "), "{name}");
        let o = cli("not the passphrase", &["list", bin.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(10), "{name}: {}", stderr(&o));
        assert_eq!(error_class(&o).as_deref(), Some("wrong-passphrase"));
    }
}

#[test]
fn a_file_that_is_not_a_backup_is_named_so() {
    let o = cli("qubes", &["list", fixture("qubes-r4-sample.xml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(14), "{}", stderr(&o));
    assert_eq!(error_class(&o).as_deref(), Some("not-a-backup"));
}
