//! Formats 3 and 2 through the CLI, as a user runs it: `list`, `verify` and `extract` on every
//! backup the real tools made (tests/make-fixtures-v3.sh) and on Qubes' own test-suite backups,
//! the extracted tree checked file by file against the manifests (sha256, sizes, data runs,
//! links, folders), and the damage rows with their exit codes.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qubes-rescue"))
        .args(args)
        .env("QUBES_RESCUE_PASSPHRASE", "qubes")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qr-legacy-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn sha256_range(path: &Path, offset: u64, len: u64) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let (mut h, mut buf, mut left) = (Sha256::new(), vec![0u8; 1 << 20], len);
    while left > 0 {
        let n = (left as usize).min(buf.len());
        f.read_exact(&mut buf[..n]).unwrap();
        h.update(&buf[..n]);
        left -= n as u64;
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One manifest entry of qube `qube` against the extracted tree under `out`.
fn check(out: &Path, qube: &str, f: &Value, backup: &str) {
    let path = out.join(qube).join(f["path"].as_str().unwrap());
    let what = format!("{backup}: {}", path.display());
    match f["type"].as_str().unwrap() {
        "dir" => assert!(path.is_dir(), "{what}: not a folder"),
        "symlink" => {
            let target = std::fs::read_link(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(target.to_str().unwrap(), f["target"].as_str().unwrap(), "{what}");
        }
        _ => {
            let size = f["size"].as_u64().unwrap();
            let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(meta.is_file(), "{what}: not a file");
            assert_eq!(meta.len(), size, "{what}: size");
            match f["runs"].as_array() {
                // Images over 1 GiB: their data runs (the holes read as zeros by construction).
                Some(runs) if size > 1 << 30 => {
                    for r in runs {
                        let (o, l) = (r["offset"].as_u64().unwrap(), r["length"].as_u64().unwrap());
                        assert_eq!(sha256_range(&path, o, l), r["sha256"].as_str().unwrap(), "{what}: run at {o}");
                    }
                }
                _ => assert_eq!(sha256_range(&path, 0, size), f["sha256"].as_str().unwrap(), "{what}"),
            }
        }
    }
}

#[test]
fn every_format_3_and_2_backup_made_by_the_real_tools_extracts_as_its_manifest_says() {
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(fixture("made-v3/manifest.json")).unwrap()).unwrap();
    let mut checked = 0;
    for b in manifest["backups"].as_array().unwrap() {
        let name = b["file"].as_str().unwrap();
        let bin = fixture(&format!("made-v3/{name}"));
        let out = tmp(name);
        let o = cli(&["extract", bin.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        for q in b["qubes"].as_array().unwrap() {
            for f in q["files"].as_array().unwrap() {
                check(&out, q["name"].as_str().unwrap(), f, name);
                checked += 1;
            }
        }
        // Qubes not in the backup are not extracted.
        for q in b["not_in_backup"].as_array().unwrap() {
            assert!(!out.join(q["name"].as_str().unwrap()).exists(), "{name}: {} extracted", q["name"]);
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    assert!(checked >= 100, "only {checked} entries checked");
}

#[test]
fn list_names_the_format_and_what_it_does_not_guarantee() {
    let bin = fixture("made-v3/v3-enc-gzip.bin");
    let o = cli(&["list", bin.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("(format 3, gzip)"), "{text}");
    assert!(text.contains("do not bind a piece to its name"), "{text}");
    let plain = fixture("made-v3/v3-plain-bzip2.bin");
    let text = String::from_utf8_lossy(&cli(&["list", plain.to_str().unwrap()]).stdout).into_owned();
    assert!(text.contains("not encrypted"), "{text}");
    let v2 = fixture("made-v3/v2-enc-multivolume.bin");
    let text = String::from_utf8_lossy(&cli(&["list", v2.to_str().unwrap()]).stdout).into_owned();
    assert!(text.contains("(format 2, "), "{text}");
}

#[test]
fn qubes_own_format_3_test_backups_verify() {
    for name in ["v3_test_210_r2", "v3_test_220_r2_encrypted"] {
        let bin = fixture(&format!("qubes-testsuite/{name}.bin"));
        let o = cli(&["verify", bin.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let json: Value = serde_json::from_str(&std::fs::read_to_string(fixture(&format!("qubes-testsuite/{name}.json"))).unwrap()).unwrap();
        let listed: Value = serde_json::from_slice(&cli(&["list", "--json", bin.to_str().unwrap()]).stdout).unwrap();
        let mut want: Vec<&str> = json["qubes"].as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
        let mut have: Vec<&str> = listed.as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
        want.sort();
        have.sort();
        assert_eq!(have, want, "{name}");
    }
}

/// The backup with one byte of member `piece` flipped (mid-member).
fn flipped(file: &str, piece: &str) -> PathBuf {
    let mut bytes = std::fs::read(fixture(&format!("made-v3/{file}"))).unwrap();
    let m = qubes_rescue::format::outer::index(&bytes[..]).unwrap().into_iter().find(|m| m.name == piece).unwrap();
    bytes[(m.offset + m.size / 2) as usize] ^= 0x20;
    let out = tmp(&format!("flip-{file}"));
    std::fs::create_dir_all(&out).unwrap();
    let path = out.join(file);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn damage_ends_in_the_same_classes_and_exit_codes_as_format_4() {
    // A flipped byte in a piece: tampered (exit 11), naming the piece; the other qubes restore.
    let bin = flipped("v3-enc-gzip.bin", "vm5/private.img.001");
    let out = tmp("damaged-out");
    let o = cli(&["extract", bin.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(stderr(&o).contains("error[tampered]: vm5/private.img.001 failed its HMAC-"), "{}", stderr(&o));
    assert!(out.join("work-web/private.img").is_file(), "the other qubes are restored");
    // A wrong passphrase: exit 10 at the header.
    let good = fixture("made-v3/v2-enc-multivolume.bin");
    let o = Command::new(env!("CARGO_BIN_EXE_qubes-rescue"))
        .args(["verify", good.to_str().unwrap()])
        .env("QUBES_RESCUE_PASSPHRASE", "Qubes")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(stderr(&o).contains("backup-header"), "{}", stderr(&o));
    // Cut short inside a piece: truncated (exit 12).
    let mut bytes = std::fs::read(fixture("made-v3/v3-sha256-xz.bin")).unwrap();
    let m = qubes_rescue::format::outer::index(&bytes[..]).unwrap().into_iter().find(|m| m.name == "vm5/private.img.000").unwrap();
    bytes.truncate((m.offset + m.size / 2) as usize);
    let cut = tmp("cut").with_extension("bin");
    std::fs::write(&cut, bytes).unwrap();
    let o = cli(&["verify", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    // Salvage is refused with a sentence, not attempted.
    let o = cli(&["extract", bin.to_str().unwrap(), "work", "--salvage", "-o", tmp("salvage").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    assert!(stderr(&o).contains("salvage of a format 3 or 2 backup"), "{}", stderr(&o));
}
