//! The scrypt container. Mode 0: any bytes through `Header::parse` + `check` (no KDF).
//! Mode 1: the bytes with a forged tiny-logN header (valid checksum) through `open`: the KDF
//! runs, and with a random header MAC or file MAC nothing may come out. Mode 2: a container
//! sealed from the input opens to the input; with one byte changed it must not open.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qubes_rescue::format::container::{self, Header, Limits, HEADER_LEN, OVERHEAD};
use sha2::{Digest, Sha256};

const PASS: &[u8] = b"fuzz";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let limits = Limits { max_kdf_memory: 1 << 20, max_kdf_work: 1 << 16, lane_threads: 1 };
    match mode % 3 {
        0 => {
            if let Ok(h) = Header::parse("m", rest) {
                assert!(rest.len() >= OVERHEAD);
                if h.check("m", &limits).is_ok() {
                    // what passes runs within the memory budget (recomputing beyond it), and
                    // its work, slowdown included, within the cap
                    let plan = h.kdf_plan(&limits).expect("checked");
                    assert!(plan.memory <= limits.max_kdf_memory);
                    assert!((1u64 << h.log_n) * u64::from(h.r) * u64::from(h.p) <= limits.max_kdf_work);
                }
            }
        }
        1 => {
            let mut bytes = rest.to_vec();
            if bytes.len() >= HEADER_LEN {
                bytes[..7].copy_from_slice(b"scrypt\0");
                bytes[7] = 1 + bytes[7] % 4; // logN 1..4
                let r = 1 + u32::from(bytes[11] % 8);
                bytes[8..12].copy_from_slice(&r.to_be_bytes());
                bytes[12..16].copy_from_slice(&1u32.to_be_bytes());
                let sum = Sha256::digest(&bytes[..48]);
                bytes[48..64].copy_from_slice(&sum[..16]);
            }
            // A random 32-byte MAC matches with probability 2^-256: anything else is a bug.
            assert!(container::open("m", PASS, bytes, &limits).is_err());
        }
        _ => {
            let Some((&at, plain)) = rest.split_first() else { return };
            let mut salt = [0u8; 32];
            salt[..plain.len().min(32)].copy_from_slice(&plain[..plain.len().min(32)]);
            let sealed = container::seal(PASS, plain, 1 + at % 4, 1, 1, salt);
            assert_eq!(container::open("m", PASS, sealed.clone(), &limits).unwrap(), plain);
            let mut bad = sealed.clone();
            let i = (at as usize * 7919) % bad.len();
            bad[i] ^= 1 | at;
            assert!(container::open("m", PASS, bad, &limits).is_err(), "a changed byte {i} went unnoticed");
            let cut = sealed[..sealed.len() - 1 - (at as usize % sealed.len())].to_vec();
            assert!(container::open("m", PASS, cut, &limits).is_err());
        }
    }
});
