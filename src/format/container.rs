//! The scrypt container (Tarsnap `scrypt enc` file format, version 0; FORMAT.md §5).
//!
//! ```text
//! 0   6  "scrypt"          48 16 SHA-256(0..48)[..16]     96  X  AES-256-CTR ciphertext
//! 6   1  version 0         64 32 HMAC(key_hmac, 0..64)    96+X 32 HMAC(key_hmac, 0..96+X)
//! 7   1  logN   8 4 r   12 4 p   16 32 salt
//! ```
//! Every check happens before any plaintext leaves this module: parameters are
//! checked against the memory cap before the KDF allocates, the header MAC tells a
//! wrong passphrase, and the whole-file MAC is verified before decryption starts.

use crate::error::{Check, Cut, Error, Result};
use crate::kdf;
use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;
type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

pub const HEADER_LEN: usize = 96;
pub const MAC_LEN: usize = 32;
/// Size of an encrypted empty file: header + final MAC.
pub const OVERHEAD: usize = HEADER_LEN + MAC_LEN;
const MAGIC: &[u8; 6] = b"scrypt";

/// Resource limits for the KDF, checked before anything is allocated.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Memory one KDF lane may use for its V table. Beyond it the KDF does not refuse: it
    /// keeps every k-th block and recomputes the others (`kdf::plan`), exact but slower.
    pub max_kdf_memory: u64,
    /// Most scrypt work one KDF may ask for: N·r·p times the slowdown of the memory trade-off.
    /// Memory no longer bounds what opens, so this is what refuses absurd parameters (a KDF
    /// that would run for hours). `scrypt enc` sizes its work to take about 5 s: about 2^25 on
    /// a 64 GiB machine; 2^30 is 32 times that (about 6 minutes here).
    pub max_kdf_work: u64,
    /// Threads one KDF may run its `p` lanes on (natively; the page spreads lanes itself).
    pub lane_threads: usize,
}

impl Default for Limits {
    /// 4 GiB natively: N=2^22, r=8 (what `scrypt enc` picks on a 32 GiB+ dom0) runs without
    /// recomputation.
    fn default() -> Limits {
        Limits { max_kdf_memory: 4 << 30, max_kdf_work: 1 << 30, lane_threads: 1 }
    }
}

/// The parsed 96-byte header of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub log_n: u8,
    pub r: u32,
    pub p: u32,
    pub salt: [u8; 32],
    raw: [u8; HEADER_LEN],
}

impl Header {
    /// Bytes the KDF will allocate: 128·r·N.
    pub fn kdf_memory(&self) -> u64 {
        128u64.saturating_mul(self.r as u64).saturating_mul(1u64 << self.log_n.min(63))
    }

    /// Parses and checks the header of a whole container (`bytes`: all of it, or at least its
    /// first 128 bytes); `member` names the container in errors.
    pub fn parse(member: &str, bytes: &[u8]) -> Result<Header> {
        Header::magic_and_version(member, bytes)?;
        if bytes.len() < OVERHEAD {
            return Err(Error::truncated(member, Cut::Container { len: bytes.len() as u64, min: OVERHEAD as u64 }));
        }
        Header::fields(member, bytes)
    }

    /// Parses the 96-byte header alone (to plan a KDF before the container is read; the
    /// container's length is checked when it is opened).
    pub fn parse_head(member: &str, head: &[u8; HEADER_LEN]) -> Result<Header> {
        Header::magic_and_version(member, head)?;
        Header::fields(member, head)
    }

    fn magic_and_version(member: &str, bytes: &[u8]) -> Result<()> {
        if bytes.len() < 7 || &bytes[..6] != MAGIC {
            return Err(Error::tampered(member, Check::ScryptMagic));
        }
        if bytes[6] != 0 {
            return Err(Error::unsupported(format!("{member}: scrypt container version {}", bytes[6])));
        }
        Ok(())
    }

    /// Checksum and fields; `bytes` holds at least the 96-byte header.
    fn fields(member: &str, bytes: &[u8]) -> Result<Header> {
        let sum = Sha256::digest(&bytes[..48]);
        if sum[..16] != bytes[48..64] {
            return Err(Error::tampered(member, Check::ScryptHeaderChecksum));
        }
        let mut raw = [0u8; HEADER_LEN];
        raw.copy_from_slice(&bytes[..HEADER_LEN]);
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&bytes[16..48]);
        let header = Header {
            log_n: bytes[7],
            r: u32::from_be_bytes(bytes[8..12].try_into().unwrap()),
            p: u32::from_be_bytes(bytes[12..16].try_into().unwrap()),
            salt,
            raw,
        };
        Ok(header)
    }

    /// How one lane of this KDF runs within `limits` (its memory and slowdown).
    pub fn kdf_plan(&self, limits: &Limits) -> Option<kdf::Plan> {
        kdf::plan(self.log_n, self.r, limits.max_kdf_memory).ok()
    }

    /// Refuses parameters `scrypt dec` would refuse, and any whose work (with the memory
    /// trade-off's slowdown) is beyond `limits`. Nothing is allocated.
    pub fn check(&self, member: &str, limits: &Limits) -> Result<kdf::Params> {
        let work = (1u64 << self.log_n.min(63)).saturating_mul(self.r as u64).saturating_mul(self.p as u64);
        let unsafe_params = |work: u64| Error::UnsafeParams {
            member: member.to_string(),
            log_n: self.log_n,
            r: self.r,
            p: self.p,
            work,
            cap: limits.max_kdf_work,
        };
        // scrypt's own checkparams(): 1 <= logN <= 63, r != 0, p != 0, r·p < 2^30.
        let params = kdf::Params::new(self.log_n, self.r, self.p).map_err(|_| unsafe_params(work))?;
        let plan = self.kdf_plan(limits).ok_or_else(|| unsafe_params(work))?;
        let effective = (work as f64 * plan.relative_cost).min(u64::MAX as f64) as u64;
        if effective > limits.max_kdf_work {
            return Err(unsafe_params(effective));
        }
        Ok(params)
    }
}

/// The two keys derived from a passphrase and a header.
#[derive(Clone)]
pub struct Keys {
    pub enc: [u8; 32],
    pub hmac: [u8; 32],
}

/// Runs the KDF after checking the parameters, and verifies the header MAC:
/// a mismatch is `WrongPassphrase` (or a passphrase bound to another path/backup).
pub fn derive_keys(member: &str, passphrase: &[u8], header: &Header, limits: &Limits) -> Result<Keys> {
    let params = header.check(member, limits)?;
    let mut dk = [0u8; 64];
    kdf::scrypt(passphrase, &header.salt, &params, limits.max_kdf_memory, limits.lane_threads, &mut dk)
        .map_err(|e| kdf_error(member, e))?;
    checked_keys(member, header, dk)
}

/// A KDF split into its lanes (RFC 7914: B = PBKDF2(P, S, 1, p·128·r); each lane
/// B_i = ROMix(B_i); DK = PBKDF2(P, B, 1, 64)), for a caller that runs the lanes elsewhere: the
/// page spreads them over its workers. [`begin_kdf`] checks the parameters before anything is
/// allocated and expands; each lane goes through [`run_lane`]; [`keys_from_lanes`] joins them
/// and checks the header MAC, with the same verdicts as [`derive_keys`].
pub struct LaneWork {
    pub params: kdf::Params,
    /// p lanes of 128·r bytes, back to back.
    pub lanes: Vec<u8>,
}

pub fn begin_kdf(member: &str, passphrase: &[u8], header: &Header, limits: &Limits) -> Result<LaneWork> {
    let params = header.check(member, limits)?;
    let lanes = kdf::expand(passphrase, &header.salt, &params).map_err(|e| kdf_error(member, e))?;
    Ok(LaneWork { params, lanes })
}

/// One lane, in place (`lane` is 128·r bytes), within `limits`' memory per lane.
pub fn run_lane(member: &str, lane: &mut [u8], log_n: u8, r: u32, limits: &Limits) -> Result<()> {
    // The caller's parameters passed `Header::check` where the lanes were made; a lane is
    // still held to the same work cap, in case it comes from anywhere else.
    let header = Header { log_n, r, p: 1, salt: [0; 32], raw: [0; HEADER_LEN] };
    let params = header.check(member, limits)?;
    if lane.len() as u64 != params.lane_len() {
        return Err(Error::internal(format!("a KDF lane of {} bytes for r={r}", lane.len())));
    }
    kdf::romix(lane, log_n, r, limits.max_kdf_memory).map(|_| ()).map_err(|e| kdf_error(member, e))
}

/// Joins the lanes `begin_kdf` gave out, each run by [`run_lane`], into the keys.
pub fn keys_from_lanes(member: &str, passphrase: &[u8], header: &Header, work: &LaneWork) -> Result<Keys> {
    let mut dk = [0u8; 64];
    kdf::finish(passphrase, &work.lanes, &mut dk).map_err(|e| kdf_error(member, e))?;
    checked_keys(member, header, dk)
}

fn kdf_error(member: &str, e: kdf::KdfError) -> Error {
    match e {
        kdf::KdfError::OutOfMemory { bytes } => Error::Io(format!(
            "{member}: the KDF could not get {} MiB of memory; close other programs, or lower the KDF memory (it then recomputes, slower)",
            bytes >> 20
        )),
        other => Error::unsupported(format!("{member}: scrypt ({other})")),
    }
}

/// The derived key's halves, once the header MAC proves them right.
fn checked_keys(member: &str, header: &Header, mut dk: [u8; 64]) -> Result<Keys> {
    let keys = Keys { enc: dk[..32].try_into().expect("32 bytes"), hmac: dk[32..].try_into().expect("32 bytes") };
    dk.fill(0);
    let mut mac = HmacSha256::new_from_slice(&keys.hmac).expect("any key length");
    mac.update(&header.raw[..64]);
    if mac.verify_slice(&header.raw[64..96]).is_err() {
        return Err(Error::WrongPassphrase { member: member.to_string() });
    }
    Ok(keys)
}

/// Verifies the whole-file MAC of a container (`bytes` is the complete `.enc` member).
pub fn verify(member: &str, keys: &Keys, bytes: &[u8]) -> Result<()> {
    if bytes.len() < OVERHEAD {
        return Err(Error::truncated(member, Cut::Container { len: bytes.len() as u64, min: OVERHEAD as u64 }));
    }
    let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    let mut mac = HmacSha256::new_from_slice(&keys.hmac).expect("any key length");
    mac.update(body);
    mac.verify_slice(tag).map_err(|_| Error::tampered(member, Check::FileMac))
}

/// Compares a whole-file MAC computed elsewhere (the page's WebCrypto) with the one stored in
/// the container, in constant time: the same verdict as [`verify`].
pub fn check_mac(member: &str, computed: &[u8], stored: &[u8]) -> Result<()> {
    let differ = computed.iter().zip(stored).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if computed.len() != MAC_LEN || stored.len() != MAC_LEN || differ != 0 {
        return Err(Error::tampered(member, Check::FileMac));
    }
    Ok(())
}

/// AES-256-CTR from counter 0, in place.
pub fn apply_keystream(keys: &Keys, data: &mut [u8]) {
    let mut cipher = Aes256Ctr::new(&keys.enc.into(), &[0u8; 16].into());
    cipher.apply_keystream(data);
}

/// Opens a complete container: header, KDF, header MAC, whole-file MAC, then decryption.
/// Takes the buffer by value so the plaintext reuses it and no unverified plaintext exists.
pub fn open(member: &str, passphrase: &[u8], bytes: Vec<u8>, limits: &Limits) -> Result<Vec<u8>> {
    let header = Header::parse(member, &bytes)?;
    let keys = derive_keys(member, passphrase, &header, limits)?;
    open_with(member, &keys, bytes)
}

/// Opens a complete container whose keys were derived already (and its header MAC checked):
/// whole-file MAC, then decryption.
pub fn open_with(member: &str, keys: &Keys, mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    verify(member, keys, &bytes)?;
    let end = bytes.len() - MAC_LEN;
    bytes.truncate(end);
    bytes.drain(..HEADER_LEN);
    apply_keystream(keys, &mut bytes);
    Ok(bytes)
}

/// Encrypts like `scrypt enc` with the given parameters and salt (the backup writer's half).
pub fn seal(passphrase: &[u8], plaintext: &[u8], log_n: u8, r: u32, p: u32, salt: [u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
    out.extend_from_slice(MAGIC);
    out.push(0);
    out.push(log_n);
    out.extend_from_slice(&r.to_be_bytes());
    out.extend_from_slice(&p.to_be_bytes());
    out.extend_from_slice(&salt);
    let sum = Sha256::digest(&out[..48]);
    out.extend_from_slice(&sum[..16]);
    let params = kdf::Params::new(log_n, r, p).expect("writer parameters are valid");
    let mut dk = [0u8; 64];
    kdf::scrypt(passphrase, &salt, &params, u64::MAX, 1, &mut dk).expect("the writer's parameters fit in memory");
    let keys = Keys { enc: dk[..32].try_into().unwrap(), hmac: dk[32..].try_into().unwrap() };
    let mut mac = HmacSha256::new_from_slice(&keys.hmac).expect("any key length");
    mac.update(&out[..64]);
    out.extend_from_slice(&mac.finalize().into_bytes());
    let start = out.len();
    out.extend_from_slice(plaintext);
    apply_keystream(&keys, &mut out[start..]);
    let mut mac = HmacSha256::new_from_slice(&keys.hmac).expect("any key length");
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; 32] = [7; 32];

    #[test]
    fn lanes_run_apart_give_the_keys_of_the_whole_kdf_and_the_same_verdicts() {
        let enc = seal(b"pw", b"hello", 5, 2, 3, SALT);
        let header = Header::parse("m", &enc).unwrap();
        let limits = Limits::default();
        let whole = derive_keys("m", b"pw", &header, &limits).unwrap();
        let mut work = begin_kdf("m", b"pw", &header, &limits).unwrap();
        let p = work.params;
        // Each lane on its own, in reverse order, as different workers would.
        for i in (0..p.p()).rev() {
            run_lane("m", kdf::lane_mut(&mut work.lanes, &p, i).unwrap(), p.log_n(), p.r(), &limits).unwrap();
        }
        let keys = keys_from_lanes("m", b"pw", &header, &work).unwrap();
        assert_eq!((keys.enc, keys.hmac), (whole.enc, whole.hmac));
        assert_eq!(open_with("m", &keys, enc).unwrap(), b"hello");
        // Lanes of another passphrase, or not run at all: the header MAC says so.
        let mut other = begin_kdf("m", b"other", &header, &limits).unwrap();
        for i in 0..p.p() {
            run_lane("m", kdf::lane_mut(&mut other.lanes, &p, i).unwrap(), p.log_n(), p.r(), &limits).unwrap();
        }
        assert!(matches!(keys_from_lanes("m", b"other", &header, &other), Err(Error::WrongPassphrase { .. })));
        let unrun = begin_kdf("m", b"pw", &header, &limits).unwrap();
        assert!(matches!(keys_from_lanes("m", b"pw", &header, &unrun), Err(Error::WrongPassphrase { .. })));
    }

    #[test]
    fn a_lane_is_held_to_the_work_cap_wherever_it_comes_from() {
        let mut lane = vec![0u8; 128 * 8];
        let e = run_lane("m", &mut lane, 40, 8, &Limits::default()).unwrap_err();
        assert!(matches!(e, Error::UnsafeParams { log_n: 40, .. }), "{e:?}");
        let e = run_lane("m", &mut lane[..100], 4, 8, &Limits::default()).unwrap_err();
        assert_eq!(e.class(), "internal");
    }

    #[test]
    fn seal_then_open_round_trips() {
        let enc = seal(b"pw", b"hello world", 4, 8, 1, SALT);
        assert_eq!(enc.len(), 11 + OVERHEAD);
        assert_eq!(open("m", b"pw", enc, &Limits::default()).unwrap(), b"hello world");
    }

    #[test]
    fn empty_plaintext_is_a_128_byte_container() {
        let enc = seal(b"pw", b"", 4, 8, 1, SALT);
        assert_eq!(enc.len(), 128);
        assert_eq!(open("m", b"pw", enc, &Limits::default()).unwrap(), b"");
    }

    #[test]
    fn wrong_passphrase_is_told_apart_from_tampering() {
        let enc = seal(b"pw", b"data", 4, 8, 1, SALT);
        assert!(matches!(open("m", b"other", enc.clone(), &Limits::default()), Err(Error::WrongPassphrase { .. })));
        let mut bad = enc.clone();
        bad[HEADER_LEN] ^= 1; // first ciphertext byte
        assert!(matches!(open("m", b"pw", bad, &Limits::default()), Err(Error::Tampered { .. })));
    }

    #[test]
    fn every_region_of_a_container_is_covered_by_a_check() {
        let enc = seal(b"pw", b"some plaintext bytes", 4, 8, 1, SALT);
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x80;
            let r = open("m", b"pw", bad, &Limits::default());
            assert!(r.is_err(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn the_largest_parameters_scrypt_enc_picks_by_default_work() {
        // N=2^21, r=8: 2 GiB, what `scrypt enc` chooses on a dom0 with 16 GiB or more.
        let enc = seal(b"pw", b"big kdf", 21, 8, 1, SALT);
        assert_eq!(Header::parse("m", &enc).unwrap().kdf_memory(), 2 << 30);
        assert_eq!(open("m", b"pw", enc, &Limits::default()).unwrap(), b"big kdf");
    }

    #[test]
    fn parameters_over_the_memory_budget_open_by_recomputing() {
        // 128·8·2^12 = 4 MiB of V in a 1 MiB budget: every 4th block kept, the rest recomputed.
        let enc = seal(b"pw", b"x", 12, 8, 1, SALT);
        let small = Limits { max_kdf_memory: 1 << 20, ..Limits::default() };
        assert_eq!(Header::parse("m", &enc).unwrap().kdf_plan(&small).unwrap().stride, 4);
        assert_eq!(open("m", b"pw", enc, &small).unwrap(), b"x");
    }

    #[test]
    fn work_beyond_the_cap_is_refused_and_the_trade_off_counts() {
        let enc = seal(b"pw", b"x", 12, 8, 1, SALT);
        let h = Header::parse("m", &enc).unwrap();
        // N·r·p = 2^15: allowed at exactly that cap with all memory, refused once recomputing.
        let tight = Limits { max_kdf_work: 1 << 15, ..Limits::default() };
        assert!(h.check("m", &tight).is_ok());
        let recomputing = Limits { max_kdf_memory: 1 << 20, ..tight };
        assert!(matches!(h.check("m", &recomputing), Err(Error::UnsafeParams { log_n: 12, .. })));
    }

    #[test]
    fn the_96_byte_header_alone_parses_as_the_whole_container_does() {
        let enc = seal(b"pw", b"some data", 5, 8, 2, SALT);
        let head: [u8; HEADER_LEN] = enc[..HEADER_LEN].try_into().unwrap();
        assert_eq!(Header::parse_head("m", &head).unwrap(), Header::parse("m", &enc).unwrap());
        assert!(matches!(Header::parse("m", &enc[..HEADER_LEN]), Err(Error::Truncated { .. })));
        let mut bad = head;
        bad[20] ^= 1;
        assert!(matches!(Header::parse_head("m", &bad), Err(Error::Tampered { .. })));
    }

    #[test]
    fn absurd_parameters_are_refused_before_allocating() {
        let mut enc = seal(b"pw", b"x", 4, 8, 1, SALT);
        enc[7] = 40; // 128·8·2^40 bytes
        let sum = Sha256::digest(&enc[..48]);
        enc[48..64].copy_from_slice(&sum[..16]);
        assert!(matches!(open("m", b"pw", enc, &Limits::default()), Err(Error::UnsafeParams { log_n: 40, .. })));
    }
}
