//! The core as the page runs it: compiled to wasm32 and run under node
//! (`cargo test --target wasm32-unknown-unknown --test wasm_core`, with
//! wasm-bindgen-test-runner). Real-tool fixtures are embedded and restored through the
//! push pipeline exactly as the coordinator worker drives it: crypto, every decompressor,
//! both sparse encodings, checked against the manifest's sha256s.
#![cfg(target_arch = "wasm32")]

use qubes_rescue::container::{self, Limits};
use qubes_rescue::restore::{Backup, FileKind, FileRestore, Target};
use qubes_rescue::sink::MemorySink;
use qubes_rescue::Error;
use sha2::{Digest, Sha256};
use wasm_bindgen_test::wasm_bindgen_test;

const MANIFEST: &str = include_str!("fixtures/made/manifest.json");

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Restores every file of every qube in memory and checks volumes and small files
/// against the manifest.
fn restores_as_the_manifest_says(name: &str, bytes: &'static [u8]) {
    let manifest: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
    let entry = manifest["backups"].as_array().unwrap().iter().find(|b| b["file"] == name).unwrap();
    let backup = Backup::open(bytes.to_vec(), entry["passphrase"].as_str().unwrap().as_bytes(), &Limits::default()).unwrap();
    let mut checked = 0;
    for q in entry["qubes"].as_array().unwrap() {
        let qube = q["name"].as_str().unwrap();
        for file in backup.files(qube).unwrap() {
            let mut sink = MemorySink::with_cap(256 << 20);
            let target = if file.kind == FileKind::Home { Target::Verify } else { Target::Volume(Box::new(&mut sink)) };
            let mut restore = FileRestore::new(&file, backup.compression(), target);
            for chunk in &file.chunks {
                restore.push(&backup.open_chunk(chunk).unwrap()).unwrap();
            }
            restore.finish().unwrap();
            if file.kind == FileKind::Home {
                continue;
            }
            let want = q["files"].as_array().unwrap().iter().find(|f| f["path"] == file.name.as_str()).unwrap();
            assert_eq!(sink.data.len() as u64, want["size"].as_u64().unwrap(), "{qube}/{}", file.name);
            if let Some(sum) = want["sha256"].as_str() {
                assert_eq!(hex(&Sha256::digest(&sink.data)), sum, "{qube}/{}", file.name);
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
}

#[wasm_bindgen_test]
fn scrypt_container_round_trips_and_tells_wrong_passphrase_from_tampering() {
    let sealed = container::seal(b"pw", b"wasm", 10, 8, 1, [5; 32]);
    assert_eq!(container::open("m", b"pw", sealed.clone(), &Limits::default()).unwrap(), b"wasm");
    assert!(matches!(container::open("m", b"no", sealed.clone(), &Limits::default()), Err(Error::WrongPassphrase { .. })));
    let mut bad = sealed;
    bad[100] ^= 1;
    assert!(matches!(container::open("m", b"pw", bad, &Limits::default()), Err(Error::Tampered { .. })));
}

#[wasm_bindgen_test]
fn gzip_pax_backup_restores_in_wasm() {
    restores_as_the_manifest_says("gzip-pax.bin", include_bytes!("fixtures/made/gzip-pax.bin"));
}

#[wasm_bindgen_test]
fn gzip_gnu_sparse_backup_restores_in_wasm() {
    restores_as_the_manifest_says("gzip-gnu.bin", include_bytes!("fixtures/made/gzip-gnu.bin"));
}

#[wasm_bindgen_test]
fn bzip2_backup_restores_in_wasm() {
    restores_as_the_manifest_says("bzip2.bin", include_bytes!("fixtures/made/bzip2.bin"));
}

#[wasm_bindgen_test]
fn xz_backup_restores_in_wasm() {
    restores_as_the_manifest_says("xz.bin", include_bytes!("fixtures/made/xz.bin"));
}

#[wasm_bindgen_test]
fn lzma_backup_restores_in_wasm() {
    restores_as_the_manifest_says("lzma.bin", include_bytes!("fixtures/made/lzma.bin"));
}

#[wasm_bindgen_test]
fn zstd_backup_restores_in_wasm() {
    restores_as_the_manifest_says("zstd.bin", include_bytes!("fixtures/made/zstd.bin"));
}

#[wasm_bindgen_test]
fn uncompressed_backup_restores_in_wasm() {
    restores_as_the_manifest_says("uncompressed.bin", include_bytes!("fixtures/made/uncompressed.bin"));
}

#[wasm_bindgen_test]
fn wrong_passphrase_is_reported_in_wasm() {
    let bytes = include_bytes!("fixtures/made/demo.bin").to_vec();
    assert!(matches!(Backup::open(bytes, b"not demo", &Limits::default()), Err(Error::WrongPassphrase { .. })));
}
