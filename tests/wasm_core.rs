//! The core as the page runs it: compiled to wasm32 and run under node
//! (`cargo test --target wasm32-unknown-unknown --test wasm_core`, with
//! wasm-bindgen-test-runner). Real-tool fixtures are embedded and restored through the
//! push pipeline exactly as the coordinator worker drives it: crypto, every decompressor,
//! both sparse encodings, checked against the manifest's sha256s.
#![cfg(target_arch = "wasm32")]

use qubes_rescue::format::container::{self, Limits};
use qubes_rescue::restore::{Backup, FileKind, FileRestore, Target};
use qubes_rescue::output::sink::MemorySink;
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
    restores_within(name, bytes, &Limits::default())
}

fn restores_within(name: &str, bytes: &'static [u8], limits: &Limits) {
    let manifest: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
    let entry = manifest["backups"].as_array().unwrap().iter().find(|b| b["file"] == name).unwrap();
    let backup = Backup::open(bytes.to_vec(), entry["passphrase"].as_str().unwrap().as_bytes(), limits).unwrap();
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

/// What the page grants one KDF lane (ui.js MAX_KDF_MEMORY): N=2^21 r=8 takes all of it, in
/// two 1 GiB segments (a wasm32 instance cannot allocate 2 GiB at once).
const PAGE: Limits = Limits { max_kdf_memory: 2 << 30, max_kdf_work: 1 << 30, lane_threads: 1 };

#[wasm_bindgen_test]
fn a_backup_with_scrypt_n_2_21_from_the_real_scrypt_opens_in_wasm() {
    restores_within("kdf-21.bin", include_bytes!("fixtures/made/kdf-21.bin"), &PAGE);
}

#[wasm_bindgen_test]
fn a_backup_with_four_scrypt_lanes_restores_in_wasm() {
    restores_within("kdf-p4.bin", include_bytes!("fixtures/made/kdf-p4.bin"), &PAGE);
}

#[wasm_bindgen_test]
fn our_scrypt_meets_the_rfc_7914_vectors_in_wasm_with_and_without_recomputing() {
    use qubes_rescue::kdf;
    let cases: [(&[u8], &[u8], u8, u32, u32, &str); 2] = [
        (b"", b"", 4, 1, 1, "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"),
        (b"password", b"NaCl", 10, 8, 16, "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"),
    ];
    for (pass, salt, log_n, r, p, want) in cases {
        let params = kdf::Params::new(log_n, r, p).unwrap();
        for budget in [u64::MAX, params.lane_memory() / 4] {
            let mut dk = [0u8; 64];
            kdf::scrypt(pass, salt, &params, budget, 1, &mut dk).unwrap();
            assert_eq!(hex(&dk), want, "logN={log_n} budget={budget}");
        }
    }
}

/// The page's chunk workers open chunks through `ChunkOpener`: a chunk presented under another
/// name (two chunks swapped, a chunk renamed) fails its header MAC, and since the passphrase
/// was proven by `backup-header` that is `tampered`, as the CLI says, never `wrong-passphrase`.
#[wasm_bindgen_test]
fn the_pages_chunk_opener_reports_a_swapped_chunk_as_tampered() {
    use qubes_rescue::wasm::ChunkOpener;
    let bytes: &[u8] = include_bytes!("fixtures/made/gzip-pax.bin");
    let manifest: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
    let entry = manifest["backups"].as_array().unwrap().iter().find(|b| b["file"] == "gzip-pax.bin").unwrap();
    let pass = entry["passphrase"].as_str().unwrap().as_bytes();
    let backup = Backup::open(bytes.to_vec(), pass, &Limits::default()).unwrap();
    let file = backup
        .qubes()
        .iter()
        .flat_map(|q| backup.files(&q.name).unwrap())
        .find(|f| f.chunks.len() >= 2)
        .expect("a file of two chunks or more");
    let (first, second) = (&file.chunks[0], &file.chunks[1]);
    let member = |m: &qubes_rescue::format::outer::Member| &bytes[m.offset as usize..(m.offset + m.size) as usize];
    let opener = ChunkOpener::new(&backup.header().backup_id, pass, (2u64 << 30) as f64);
    let size = first.size as f64;
    let keys = opener.unlock(&first.name, &member(first)[..128], size, size).unwrap();
    assert_eq!(keys.open(member(first)).unwrap(), backup.open_chunk(first).unwrap());
    let class = |e: wasm_bindgen::JsValue| js_sys::Reflect::get(&e, &"class".into()).unwrap().as_string().unwrap();
    let swapped = opener.unlock(&second.name, &member(first)[..128], size, size).err().expect("a swapped chunk must not open");
    assert_eq!(class(swapped), "tampered");
    let short = opener.unlock(&first.name, &member(first)[..128], size - 1.0, size).err().expect("a short read must not open");
    assert_eq!(class(short), "truncated");
    // The MAC WebCrypto computes is compared by the core; one wrong bit and no key comes out.
    let mut mac = [0u8; 32];
    mac.copy_from_slice(&member(first)[member(first).len() - 32..]);
    assert!(keys.release_key(&mac, &mac).is_ok());
    let mut other = mac;
    other[0] ^= 1;
    assert_eq!(class(keys.release_key(&other, &mac).err().unwrap()), "tampered");
}

/// The page spreads a KDF's lanes over its workers: each lane of a p=4 chunk (made by the real
/// `scrypt enc`) run on its own by `kdf_lane`, in any order, and joined by the core, opens the
/// chunk exactly as the one-worker path; a lane left out, or lanes of another chunk, never do.
#[wasm_bindgen_test]
fn a_p4_chunk_opens_from_lanes_run_apart_and_not_from_wrong_ones() {
    use qubes_rescue::wasm::{kdf_lane, ChunkOpener};
    let bytes: &[u8] = include_bytes!("fixtures/made/kdf-p4.bin");
    let backup = Backup::open(bytes.to_vec(), b"qubes", &Limits::default()).unwrap();
    let file = backup.qubes().iter().flat_map(|q| backup.files(&q.name).unwrap()).find(|f| f.chunks.len() >= 2).unwrap();
    let member = |m: &qubes_rescue::format::outer::Member| &bytes[m.offset as usize..(m.offset + m.size) as usize];
    let (first, second) = (&file.chunks[0], &file.chunks[1]);
    let opener = ChunkOpener::new(&backup.header().backup_id, b"qubes", (2u64 << 30) as f64);
    let size = first.size as f64;
    let get = |o: &wasm_bindgen::JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).unwrap();
    let run = |name: &str, head: &[u8]| {
        let mut kdf = opener.begin(name, head, size, size).unwrap();
        let work = kdf.lanes();
        let lanes = js_sys::Array::from(&get(&work, "lanes"));
        let (log_n, r) = (get(&work, "logN").as_f64().unwrap() as u8, get(&work, "r").as_f64().unwrap() as u32);
        assert_eq!(lanes.length(), 4, "p=4");
        let outs = js_sys::Array::new();
        for i in (0..4).rev() {
            let lane = js_sys::Uint8Array::from(lanes.get(i)).to_vec();
            outs.unshift(&js_sys::Uint8Array::from(&kdf_lane(name, lane, log_n, r, (2u64 << 30) as f64).unwrap()[..]));
        }
        (kdf.unlock(outs.clone()), outs)
    };
    let (keys, outs) = run(&first.name, &member(first)[..128]);
    assert_eq!(keys.unwrap().open(member(first)).unwrap(), backup.open_chunk(first).unwrap());
    let class = |e: wasm_bindgen::JsValue| get(&e, "class").as_string().unwrap();
    // The second chunk's KDF joined with the first chunk's lanes: its header MAC fails.
    let mut other = opener.begin(&second.name, &member(second)[..128], second.size as f64, second.size as f64).unwrap();
    assert_eq!(class(other.unlock(outs.clone()).err().unwrap()), "tampered");
    // Three lanes back for p=4: a bug of the page, said so.
    let mut short = opener.begin(&first.name, &member(first)[..128], size, size).unwrap();
    outs.pop();
    assert_eq!(class(short.unlock(outs).err().unwrap()), "internal");
}
