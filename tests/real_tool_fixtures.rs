//! Backups made by the real tools (tests/make-fixtures.sh: Tarsnap `scrypt enc`, GNU tar,
//! Python tarfile as Qubes' tarwriter, gzip/bzip2/xz/lzma/zstd, mke2fs, sgdisk) restore
//! exactly as tests/fixtures/made/manifest.json says, through the CLI contract.

mod common;
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("made/manifest.json")).unwrap()).unwrap()
}

fn backup(name: &str) -> Value {
    manifest()["backups"].as_array().unwrap().iter().find(|b| b["file"] == name).unwrap_or_else(|| panic!("{name} in manifest")).clone()
}

fn sha256_range(path: &Path, offset: u64, len: u64) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).unwrap();
    hex(&Sha256::digest(&buf))
}

/// Checks one restored file against its manifest entry.
fn check_file(out: &Path, qube: &str, f: &Value) {
    let rel = f["path"].as_str().unwrap();
    let path = out.join(qube).join(rel);
    let what = format!("{qube}/{rel}");
    let md = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
    match f["type"].as_str().unwrap() {
        "dir" => assert!(md.is_dir(), "{what} is a folder"),
        "symlink" => {
            assert!(md.file_type().is_symlink(), "{what} is a symlink");
            assert_eq!(std::fs::read_link(&path).unwrap().to_str().unwrap(), f["target"].as_str().unwrap(), "{what}");
        }
        _ => {
            assert!(md.is_file(), "{what} is a file");
            assert_eq!(md.len(), f["size"].as_u64().unwrap(), "{what} size");
            if let Some(sum) = f["sha256"].as_str() {
                assert_eq!(sha256_file(&path), sum, "{what} content");
            }
            if let Some(runs) = f["runs"].as_array() {
                for r in runs {
                    let (o, l) = (r["offset"].as_u64().unwrap(), r["length"].as_u64().unwrap());
                    assert_eq!(sha256_range(&path, o, l), r["sha256"].as_str().unwrap(), "{what} run at {o}");
                }
                // Holes stay holes: the image takes about its data on disk, not its size.
                let data = f["data_bytes"].as_u64().unwrap();
                assert!(md.blocks() * 512 <= data + (1 << 20), "{what}: {} bytes allocated for {data} of data", md.blocks() * 512);
            }
        }
    }
    if let (Some(mode), false) = (f["mode"].as_str(), md.file_type().is_symlink()) {
        assert_eq!(md.permissions().mode() & 0o777, u32::from_str_radix(mode, 8).unwrap(), "{what} mode");
    }
}

fn restores_as_the_manifest_says(name: &str) {
    let b = backup(name);
    let out = scratch(&format!("made-{name}"));
    let bin = fixture(&format!("made/{name}"));
    let o = cli(b["passphrase"].as_str().unwrap(), &["extract", bin.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{name}: {}", stderr(&o));
    let mut n = 0;
    for q in b["qubes"].as_array().unwrap() {
        for f in q["files"].as_array().unwrap() {
            check_file(&out, q["name"].as_str().unwrap(), f);
            n += 1;
        }
    }
    assert!(n > 0);
}

#[test]
fn gzip_backup_with_qubes_tarwriter_sparse_volumes_restores_exactly() {
    restores_as_the_manifest_says("gzip-pax.bin");
}

#[test]
fn gzip_backup_with_gnu_tar_sparse_volumes_restores_exactly() {
    restores_as_the_manifest_says("gzip-gnu.bin");
}

#[test]
fn bzip2_backup_restores_exactly() {
    restores_as_the_manifest_says("bzip2.bin");
}

#[test]
fn xz_backup_restores_exactly() {
    restores_as_the_manifest_says("xz.bin");
}

#[test]
fn lzma_backup_restores_exactly() {
    restores_as_the_manifest_says("lzma.bin");
}

#[test]
fn zstd_backup_restores_exactly() {
    restores_as_the_manifest_says("zstd.bin");
}

#[test]
fn uncompressed_backup_restores_exactly() {
    restores_as_the_manifest_says("uncompressed.bin");
}

#[test]
fn sparse_images_over_8_gib_restore_exactly_and_stay_sparse() {
    restores_as_the_manifest_says("big-sparse.bin");
}

#[test]
fn a_20_gib_image_with_20_mib_of_data_restores_exactly_in_about_its_data_on_disk() {
    restores_as_the_manifest_says("huge-sparse.bin");
}

#[test]
fn a_2_gib_image_without_holes_restores_exactly() {
    restores_as_the_manifest_says("dense-2g.bin");
}

#[test]
fn a_file_of_over_1000_chunks_restores_exactly() {
    restores_as_the_manifest_says("many-chunks.bin");
}

#[test]
fn an_empty_final_chunk_is_accepted() {
    restores_as_the_manifest_says("empty-final-chunk.bin");
}

#[test]
fn the_demo_backup_restores_exactly() {
    restores_as_the_manifest_says("demo.bin");
}

#[test]
fn list_json_matches_the_manifest() {
    for b in manifest()["backups"].as_array().unwrap() {
        let bin = fixture(&format!("made/{}", b["file"].as_str().unwrap()));
        let o = cli(b["passphrase"].as_str().unwrap(), &["list", bin.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
        for q in b["qubes"].as_array().unwrap() {
            let l = listed.as_array().unwrap().iter().find(|l| l["name"] == q["name"]).unwrap_or_else(|| panic!("{} listed", q["name"]));
            assert_eq!(l["class"], q["class"]);
            assert_eq!(l["backup_path"], q["backup_path"]);
        }
    }
}

#[test]
fn one_failing_qube_does_not_stop_the_others() {
    // Flip a byte inside work's private.img chunk: work fails (tampered), standalone and dom0 restore.
    let b = backup("gzip-pax.bin");
    let bytes = std::fs::read(fixture("made/gzip-pax.bin")).unwrap();
    let m = qubes_rescue::format::outer::index(&bytes).unwrap().into_iter().find(|m| m.name == "vm5/private.img.001.enc").unwrap();
    let mut damaged = bytes.clone();
    damaged[(m.offset + 200) as usize] ^= 1;
    let out = scratch("one-failing-qube");
    let bin = out.join("damaged.bin");
    std::fs::write(&bin, damaged).unwrap();
    let dest = out.join("restored");
    let o = cli(b["passphrase"].as_str().unwrap(), &["extract", bin.to_str().unwrap(), "-o", dest.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(stderr(&o).contains("vm5/private.img.001.enc"), "{}", stderr(&o));
    assert!(!dest.join("work/private.img").exists(), "a failed volume stays under its final name");
    assert!(!dest.join("work/private.img.partial").exists());
    assert!(dest.join("work/firewall.xml").exists());
    assert!(dest.join("standalone/root.img").exists());
    assert!(dest.join("dom0/home/user/.bashrc").exists());
    // --keep-partial keeps what was restored under a name nobody mistakes for a whole image
    let dest2 = out.join("restored2");
    let o = cli(b["passphrase"].as_str().unwrap(), &["extract", bin.to_str().unwrap(), "work", "-o", dest2.to_str().unwrap(), "--keep-partial"]);
    assert_eq!(o.status.code(), Some(11));
    assert!(dest2.join("work/private.img.partial").exists());
    assert!(!dest2.join("work/private.img").exists());
}

#[test]
fn passphrase_comes_from_a_file_or_stdin_first_line() {
    let b = backup("xz.bin");
    let out = scratch("passphrase-file");
    let pf = out.join("pass");
    std::fs::write(&pf, format!("{}\nsecond line ignored\n", b["passphrase"].as_str().unwrap())).unwrap();
    let bin = fixture("made/xz.bin");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_qubes-rescue"))
        .args(["list", bin.to_str().unwrap(), "--passphrase-file", pf.to_str().unwrap()])
        .env_remove("QUBES_RESCUE_PASSPHRASE")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_qubes-rescue"))
        .args(["list", bin.to_str().unwrap(), "--passphrase-file", "-"])
        .env_remove("QUBES_RESCUE_PASSPHRASE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(format!("{}\n", b["passphrase"].as_str().unwrap()).as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
}

#[test]
fn usage_errors_exit_2() {
    let o = cli("x", &["extract", "nothing.bin"]);
    assert_eq!(o.status.code(), Some(2));
    let o = cli("x", &["frobnicate", "nothing.bin"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_missing_backup_file_is_an_io_error() {
    let o = cli("x", &["list", "/nonexistent/backup.bin"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(error_class(&o).as_deref(), Some("io"));
}
