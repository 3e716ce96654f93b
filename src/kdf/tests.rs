//! Tests of the scrypt module: RFC 7914 vectors, the `scrypt` crate as the
//! reference, the trade-off and segmented modes, separate lanes, and the
//! real Tarsnap `scrypt` binary.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// SplitMix64: a small deterministic PRNG for the randomised tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn reference(pw: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32, len: usize) -> Vec<u8> {
    let params = scrypt::Params::new(log_n, r, p).unwrap();
    let mut out = vec![0u8; len];
    scrypt::scrypt(pw, salt, &params, &mut out).unwrap();
    out
}

fn ours(pw: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32, budget: u64, len: usize) -> Vec<u8> {
    let params = Params::new(log_n, r, p).unwrap();
    let mut out = vec![0u8; len];
    scrypt(pw, salt, &params, budget, 1, &mut out).unwrap();
    out
}

/// ROMix of one lane with an explicit segment cap (forces many segments).
fn romix_seg(lane: &[u8], log_n: u8, r: u32, budget: u64, seg_cap: usize) -> (Vec<u8>, Plan) {
    let mut l = lane.to_vec();
    let plan = romix::romix(&mut l, log_n, r, budget, seg_cap).unwrap();
    (l, plan)
}

// --- RFC 7914 §12 -----------------------------------------------------------

const RFC: [(&str, &str, u8, u32, u32, &str); 4] = [
    (
        "",
        "",
        4,
        1,
        1,
        "77 d6 57 62 38 65 7b 20 3b 19 ca 42 c1 8a 04 97 f1 6b 48 44 e3 07 4a e8 df df fa 3f ed e2 14 42
         fc d0 06 9d ed 09 48 f8 32 6a 75 3a 0f c8 1f 17 e8 d3 e0 fb 2e 0d 36 28 cf 35 e2 0c 38 d1 89 06",
    ),
    (
        "password",
        "NaCl",
        10,
        8,
        16,
        "fd ba be 1c 9d 34 72 00 78 56 e7 19 0d 01 e9 fe 7c 6a d7 cb c8 23 78 30 e7 73 76 63 4b 37 31 62
         2e af 30 d9 2e 22 a3 88 6f f1 09 27 9d 98 30 da c7 27 af b9 4a 83 ee 6d 83 60 cb df a2 cc 06 40",
    ),
    (
        "pleaseletmein",
        "SodiumChloride",
        14,
        8,
        1,
        "70 23 bd cb 3a fd 73 48 46 1c 06 cd 81 fd 38 eb fd a8 fb ba 90 4f 8e 3e a9 b5 43 f6 54 5d a1 f2
         d5 43 29 55 61 3f 0f cf 62 d4 97 05 24 2a 9a f9 e6 1e 85 dc 0d 65 1e 40 df cf 01 7b 45 57 58 87",
    ),
    (
        "pleaseletmein",
        "SodiumChloride",
        20,
        8,
        1,
        "21 01 cb 9b 6a 51 1a ae ad db be 09 cf 70 f8 81 ec 56 8d 57 4a 2f fd 4d ab e5 ee 98 20 ad aa 47
         8e 56 fd 8f 4b a5 d0 9f fa 1c 6d 92 7c 40 f4 c3 37 30 40 49 e8 a9 52 fb cb f4 5c 6f a7 7a 41 a4",
    ),
];

#[test]
fn rfc7914_vectors() {
    for (pw, salt, log_n, r, p, dk) in RFC {
        let got = ours(pw.as_bytes(), salt.as_bytes(), log_n, r, p, u64::MAX, 64);
        assert_eq!(got, hex(dk), "RFC 7914 vector logN={log_n} r={r} p={p}");
    }
}

/// The 1 GiB vector again, with half and a quarter of the memory (trade-off),
/// two V segments, and its lane run on its own.
#[test]
fn rfc7914_vector4_tmto_and_segments() {
    let (pw, salt, log_n, r, p, dk) = RFC[3];
    let params = Params::new(log_n, r, p).unwrap();
    let b = expand(pw.as_bytes(), salt.as_bytes(), &params).unwrap();
    for (budget, seg_cap, stride) in [
        (1u64 << 29, 1usize << 29, 2u64),
        (1 << 28, 1 << 30, 4),
        (1 << 30, 1 << 29, 1),
    ] {
        let (lane, plan) = romix_seg(&b, log_n, r, budget, seg_cap);
        assert_eq!(plan.stride, stride);
        let mut out = [0u8; 64];
        finish(pw.as_bytes(), &lane, &mut out).unwrap();
        assert_eq!(out.to_vec(), hex(dk), "budget {budget} seg_cap {seg_cap}");
    }
}

// --- BlockMix backends --------------------------------------------------------

#[test]
fn shuffle_roundtrip_and_integerify() {
    let mut rng = Rng(1);
    let orig = rng.bytes(128 * 3);
    let mut b = orig.clone();
    salsa::shuffle_in(&mut b);
    assert_ne!(b, orig);
    // RFC words 0 and 1 of the last sub-block, little-endian
    let last = &orig[orig.len() - 64..];
    let want = u64::from_le_bytes(last[..8].try_into().unwrap());
    assert_eq!(salsa::integerify(&b), want);
    salsa::shuffle_out(&mut b);
    assert_eq!(b, orig);
}

/// RFC 7914 §8 BlockMix test vector is given for Salsa20/8 Core (§8) only;
/// check our core through a BlockMix with r = 1 against §8's in/out.
#[test]
fn salsa20_8_core_vector() {
    // §8: INPUT / OUTPUT of Salsa20/8 Core. BlockMix r=1 on (B0, B1) with
    // B0 = 0 gives Y0 = Salsa(B1 xor B0) = Salsa(B1): use B1 = INPUT.
    let input = hex(
        "7e879a21 4f3ec986 7ca940e6 41718f26 baee555b 8c61c1b5 0df84611 6dcd3b1d
         ee24f319 df9b3d85 14121e4b 5ac5aa32 76021d29 09c74829 edebc68d b8b8c25e",
    );
    let output = hex(
        "a41f859c 6608cc99 3b81cacb 020cef05 044b2181 a2fd337d fd7b1c63 96682f29
         b4393168 e3c9e6bc fe6bc5b7 a06d96ba e424cc10 2c91745c 24ad673d c7618f81",
    );
    let mut b = vec![0u8; 128];
    b[64..].copy_from_slice(&input);
    salsa::shuffle_in(&mut b);
    let mut out = vec![0u8; 128];
    salsa::block_mix(&b, &mut out);
    salsa::shuffle_out(&mut out);
    assert_eq!(&out[..64], &output[..]);
}

#[test]
fn simd_backend_matches_scalar() {
    let mut rng = Rng(2);
    for r in [1usize, 2, 3, 8, 16] {
        for _ in 0..20 {
            let a = rng.bytes(128 * r);
            let b = rng.bytes(128 * r);
            let mut o1 = vec![0u8; 128 * r];
            let mut o2 = vec![0u8; 128 * r];
            salsa::block_mix(&a, &mut o1);
            salsa::scalar::block_mix::<false>(&a, &a, &mut o2);
            assert_eq!(o1, o2, "block_mix r={r} backend {}", backend());
            for (name, o) in salsa::variants::<false>(&a, &a) {
                assert_eq!(o, o2, "block_mix r={r} variant {name}");
            }
            salsa::block_mix_xor(&a, &b, &mut o1);
            salsa::scalar::block_mix::<true>(&a, &b, &mut o2);
            assert_eq!(o1, o2, "block_mix_xor r={r}");
            for (name, o) in salsa::variants::<true>(&a, &b) {
                assert_eq!(o, o2, "block_mix_xor r={r} variant {name}");
            }
            let x: Vec<u8> = a.iter().zip(&b).map(|(a, b)| a ^ b).collect();
            salsa::block_mix(&x, &mut o2);
            assert_eq!(o1, o2, "block_mix_xor = block_mix of xor");
        }
    }
}

// --- against the scrypt crate -------------------------------------------------

#[test]
fn random_params_match_scrypt_crate() {
    let mut rng = Rng(3);
    for case in 0..120 {
        let log_n = rng.range(1, 12) as u8;
        let r = rng.range(1, 16) as u32;
        let p = rng.range(1, 4) as u32;
        let pw_len = rng.range(0, 80) as usize;
        let pw = rng.bytes(pw_len);
        let salt_len = rng.range(0, 80) as usize;
        let salt = rng.bytes(salt_len);
        let len = rng.range(1, 100) as usize;
        let want = reference(&pw, &salt, log_n, r, p, len);
        let threads = rng.range(1, 3) as usize;
        let params = Params::new(log_n, r, p).unwrap();
        let mut got = vec![0u8; len];
        scrypt(&pw, &salt, &params, u64::MAX, threads, &mut got).unwrap();
        assert_eq!(
            got, want,
            "case {case}: logN={log_n} r={r} p={p} threads={threads}"
        );
    }
}

// --- time–memory trade-off and segments ----------------------------------------

#[test]
fn tmto_matches_plain() {
    let mut rng = Rng(4);
    for _ in 0..12 {
        let log_n = rng.range(4, 10) as u8;
        let r = rng.range(1, 8) as u32;
        let p = rng.range(1, 2) as u32;
        let pw = rng.bytes(12);
        let salt = rng.bytes(16);
        let full = (128 * u64::from(r)) << log_n;
        let plain = ours(&pw, &salt, log_n, r, p, full, 32);
        assert_eq!(plain, reference(&pw, &salt, log_n, r, p, 32));
        for s in [1u8, 2, 3, 4, log_n / 2, log_n] {
            let budget = full >> s;
            let got = plan(log_n, r, budget).unwrap();
            assert_eq!(got.stride, 1 << s);
            assert_eq!(got.memory, budget);
            assert_eq!(
                ours(&pw, &salt, log_n, r, p, budget, 32),
                plain,
                "logN={log_n} r={r} stride 2^{s}"
            );
            // a budget just under the threshold needs the next stride
            if s < log_n {
                assert_eq!(plan(log_n, r, budget - 1).unwrap().stride, 2 << s);
            }
        }
    }
}

#[test]
fn segmented_matches_plain() {
    let mut rng = Rng(5);
    for _ in 0..10 {
        let log_n = rng.range(3, 11) as u8;
        let r = rng.range(1, 6) as u32;
        let entry = 128 * r as usize;
        let lane = rng.bytes(entry);
        let (want, _) = romix_seg(&lane, log_n, r, u64::MAX, usize::MAX);
        // segment caps of 1, 2 (rounds to 2), 3 (rounds down to 2), 7 entries, and smaller than one entry
        for seg_cap in [entry, 2 * entry, 3 * entry, 7 * entry + 5, 1] {
            for budget_shift in [0u8, 2] {
                let budget = (entry as u64) << (log_n - budget_shift);
                let (got, _) = romix_seg(&lane, log_n, r, budget, seg_cap);
                assert_eq!(
                    got, want,
                    "logN={log_n} r={r} seg_cap={seg_cap} budget>>{budget_shift}"
                );
            }
        }
    }
}

// --- lanes run apart ------------------------------------------------------------

#[test]
fn lanes_separately_then_joined() {
    let pw = b"correct horse";
    let salt = b"battery staple salt";
    let params = Params::new(9, 4, 4).unwrap();
    let want = reference(pw, salt, 9, 4, 4, 64);

    let expanded = expand(pw, salt, &params).unwrap();
    // each lane on its own copy, in reverse order, with different budgets, as separate workers would
    let mut results: Vec<Vec<u8>> = Vec::new();
    for i in (0..params.p()).rev() {
        let mut l = lane(&expanded, &params, i).unwrap().to_vec();
        let budget = params.lane_memory() >> i; // strides 1, 2, 4, 8
        let plan = romix(&mut l, params.log_n(), params.r(), budget).unwrap();
        assert_eq!(plan.stride, 1 << i);
        results.push(l);
    }
    results.reverse();
    let joined: Vec<u8> = results.concat();
    let mut out = [0u8; 64];
    finish(pw, &joined, &mut out).unwrap();
    assert_eq!(out.to_vec(), want);

    // in place through lane_mut
    let mut b = expand(pw, salt, &params).unwrap();
    for i in 0..params.p() {
        romix(lane_mut(&mut b, &params, i).unwrap(), 9, 4, u64::MAX).unwrap();
    }
    assert_eq!(b, joined);

    // the threaded one-shot
    for threads in [0, 1, 2, 3, 4, 9] {
        let mut out2 = [0u8; 64];
        scrypt(pw, salt, &params, u64::MAX, threads, &mut out2).unwrap();
        assert_eq!(out2, out, "threads={threads}");
    }
    assert!(lane(&expanded, &params, 4).is_none());
    assert!(lane(&expanded[1..], &params, 0).is_none());
}

// --- refusing bad input without panicking --------------------------------------------

#[test]
fn bad_params_are_errors() {
    assert_eq!(Params::new(0, 8, 1), Err(KdfError::BadParams));
    assert_eq!(Params::new(64, 8, 1), Err(KdfError::BadParams));
    assert_eq!(Params::new(255, 8, 1), Err(KdfError::BadParams));
    assert_eq!(Params::new(10, 0, 1), Err(KdfError::BadParams));
    assert_eq!(Params::new(10, 1, 0), Err(KdfError::BadParams));
    assert_eq!(Params::new(10, 1 << 15, 1 << 15), Err(KdfError::BadParams));
    assert!(Params::new(10, (1 << 15) - 1, 1 << 15).is_ok());
    assert!(Params::new(63, u32::MAX >> 2, 1).is_ok());
    let p = Params::new(63, (1 << 30) - 1, 1).unwrap();
    assert_eq!(p.lane_memory(), u64::MAX);
    assert_eq!(p.work(), u64::MAX);

    let mut lane = vec![0u8; 1024];
    assert_eq!(romix(&mut lane, 64, 8, u64::MAX), Err(KdfError::BadParams));
    assert_eq!(romix(&mut lane, 0, 8, u64::MAX), Err(KdfError::BadParams));
    assert_eq!(romix(&mut lane, 10, 0, u64::MAX), Err(KdfError::BadParams));
    assert_eq!(
        romix(&mut lane, 10, u32::MAX, u64::MAX),
        Err(KdfError::BadParams)
    );
    assert_eq!(romix(&mut lane, 10, 4, u64::MAX), Err(KdfError::BadParams)); // wrong length
    assert_eq!(
        romix(&mut lane[..0], 10, 8, u64::MAX),
        Err(KdfError::BadParams)
    );
    assert_eq!(
        romix(&mut lane, 10, 8, 1023),
        Err(KdfError::OverBudget {
            need: 1024,
            budget: 1023
        })
    );
    assert_eq!(
        romix(&mut lane, 10, 8, 0),
        Err(KdfError::OverBudget {
            need: 1024,
            budget: 0
        })
    );
    // a V that cannot exist: 2^63 entries of 1 KiB, huge budget → fails to allocate, no panic
    match romix(&mut lane, 63, 8, u64::MAX) {
        Err(KdfError::OutOfMemory { .. }) => {}
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    // plans for absurd parameters are computed without overflow
    let pl = plan(63, (1 << 30) - 1, u64::MAX).unwrap();
    assert!(pl.memory <= usize::MAX as u64 && pl.stride.is_power_of_two());
    assert_eq!(plan(20, 8, 1 << 30).unwrap().stride, 1);
    assert_eq!(plan(20, 8, (1 << 30) - 1).unwrap().stride, 2);
    assert_eq!(
        plan(21, 8, 1 << 30).unwrap(),
        Plan {
            stride: 2,
            stored: 1 << 20,
            memory: 1 << 30,
            relative_cost: 1.25
        }
    );
    assert_eq!(plan(21, 8, 1 << 29).unwrap().relative_cost, 1.75);
    assert_eq!(plan(21, 8, 1024).unwrap().stride, 1 << 21);
    assert_eq!(
        plan(21, 8, 1023),
        Err(KdfError::OverBudget {
            need: 1024,
            budget: 1023
        })
    );

    let mut empty = [0u8; 0];
    assert_eq!(finish(b"x", b"y", &mut empty), Err(KdfError::BadParams));
    let params = Params::new(4, 1, 1).unwrap();
    assert_eq!(
        scrypt(b"x", b"y", &params, u64::MAX, 1, &mut empty),
        Err(KdfError::BadParams)
    );
    let mut out = [0u8; 32];
    assert_eq!(
        scrypt(b"x", b"y", &params, 100, 1, &mut out),
        Err(KdfError::OverBudget {
            need: 128,
            budget: 100
        })
    );
}

// --- the real Tarsnap scrypt -------------------------------------------------------

/// `scrypt enc` (Tarsnap 1.x, Debian package `scrypt`) writes a header whose
/// bytes 64..96 are HMAC-SHA256(dk[32..64], header[0..64]) with
/// dk = scrypt(passphrase, salt, N, r, p, 64): recompute it with our KDF.
#[test]
#[cfg(not(target_arch = "wasm32"))]
fn tarsnap_scrypt_binary() {
    use hmac::{KeyInit, Mac};
    use sha2::Digest;
    use std::process::Command;

    if std::env::var_os("KDF_SKIP_TARSNAP").is_some() {
        eprintln!("tarsnap_scrypt_binary: skipped by KDF_SKIP_TARSNAP");
        return;
    }
    let dir = std::env::temp_dir().join(format!("kdf-tarsnap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("plain");
    std::fs::write(&plain, b"qubes-rescue kdf test\n").unwrap();
    let sets: [(u8, u32, u32, &str); 5] = [
        (10, 8, 1, "pass word"),
        (10, 8, 2, ""),
        (11, 4, 4, "ünïcödé ✓"),
        (12, 1, 2, "x"),
        (
            10,
            16,
            3,
            "a rather long passphrase that is longer than the sha-256 block of sixty-four bytes",
        ),
    ];
    for (log_n, r, p, pw) in sets {
        let enc = dir.join(format!("c-{log_n}-{r}-{p}"));
        let st = Command::new("scrypt")
            .args(["enc", "-f", "--logN", &log_n.to_string(), "-r", &r.to_string(), "-p", &p.to_string()])
            .args(["--passphrase", "env:KDF_TEST_PASSPHRASE"])
            .arg(&plain)
            .arg(&enc)
            .env("KDF_TEST_PASSPHRASE", pw)
            .status()
            .expect("the Tarsnap `scrypt` binary is needed (apt-get install scrypt), or set KDF_SKIP_TARSNAP=1");
        assert!(st.success(), "scrypt enc failed");
        let c = std::fs::read(&enc).unwrap();
        assert_eq!(&c[..6], b"scrypt");
        assert_eq!(c[6], 0);
        assert_eq!(c[7], log_n);
        assert_eq!(u32::from_be_bytes(c[8..12].try_into().unwrap()), r);
        assert_eq!(u32::from_be_bytes(c[12..16].try_into().unwrap()), p);
        assert_eq!(&sha2::Sha256::digest(&c[..48])[..16], &c[48..64]);
        let salt = &c[16..48];
        let dk = ours(pw.as_bytes(), salt, log_n, r, p, u64::MAX, 64);
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&dk[32..]).unwrap();
        mac.update(&c[..64]);
        assert_eq!(
            mac.finalize().into_bytes().as_slice(),
            &c[64..96],
            "logN={log_n} r={r} p={p}"
        );
        // and with the trade-off (a quarter of the memory), threads = p
        let params = Params::new(log_n, r, p).unwrap();
        let mut dk2 = [0u8; 64];
        scrypt(
            pw.as_bytes(),
            salt,
            &params,
            params.lane_memory() / 4,
            p as usize,
            &mut dk2,
        )
        .unwrap();
        assert_eq!(dk2.to_vec(), dk);
    }
    std::fs::remove_dir_all(&dir).ok();
}
