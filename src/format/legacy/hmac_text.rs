//! The `.hmac` members of formats 3 and 2 (FORMAT.md §9.1): the text `openssl dgst -<alg> -hmac <P>`
//! printed for the member beside it, i.e. HMAC-<alg>(key = the raw passphrase, message = the
//! member's bytes as stored). OpenSSL 1.0 printed `(stdin)= <hex>`, OpenSSL 3 prints
//! `SHA2-512(stdin)= <hex>` (or `HMAC-SHA2-512(file)= <hex>`): Qubes' `load_hmac` takes what
//! follows the `=`, and so do we (the last one, so a name holding `=` changes nothing).
//!
//! Nothing binds a piece to its name or backup at this layer (the motivation for format 4):
//! the MAC only proves that someone who knew the passphrase wrote these bytes.

use crate::error::{Check, Error, Result};
use hmac::{Hmac, KeyInit, Mac};

/// Qubes refuses `.hmac` files over 4096 bytes (`HMAC_MAX_SIZE`); real ones are ~150.
pub const MAX_HMAC_TEXT: u64 = 4096;

/// The digests an R2/R3 `hmac-algorithm` may name that we verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HmacAlgorithm {
    /// Every supported algorithm, the defaults of format 3 (SHA512) and 2 (SHA1) first.
    pub const ALL: [HmacAlgorithm; 5] =
        [HmacAlgorithm::Sha512, HmacAlgorithm::Sha1, HmacAlgorithm::Sha256, HmacAlgorithm::Sha384, HmacAlgorithm::Sha224];

    /// An openssl digest name as `qvm-backup -H` took it (`SHA512`, `sha512`, `SHA2-512`).
    pub fn from_name(name: &str) -> Option<HmacAlgorithm> {
        Some(match name.to_ascii_lowercase().as_str() {
            "sha1" => HmacAlgorithm::Sha1,
            "sha224" | "sha2-224" => HmacAlgorithm::Sha224,
            "sha256" | "sha2-256" => HmacAlgorithm::Sha256,
            "sha384" | "sha2-384" => HmacAlgorithm::Sha384,
            "sha512" | "sha2-512" => HmacAlgorithm::Sha512,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            HmacAlgorithm::Sha1 => "SHA1",
            HmacAlgorithm::Sha224 => "SHA224",
            HmacAlgorithm::Sha256 => "SHA256",
            HmacAlgorithm::Sha384 => "SHA384",
            HmacAlgorithm::Sha512 => "SHA512",
        }
    }

    /// Length of the tag in bytes.
    pub fn tag_len(self) -> usize {
        match self {
            HmacAlgorithm::Sha1 => 20,
            HmacAlgorithm::Sha224 => 28,
            HmacAlgorithm::Sha256 => 32,
            HmacAlgorithm::Sha384 => 48,
            HmacAlgorithm::Sha512 => 64,
        }
    }
}

/// The tag in a `.hmac` text: the hex after the last `=`, surrounding white space stripped.
/// `member` names the `.hmac` member in errors.
pub fn parse(text: &[u8], member: &str) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::tampered(member, Check::HmacText(why.into()));
    if text.len() as u64 > MAX_HMAC_TEXT {
        return Err(bad("over 4096 bytes"));
    }
    let text = std::str::from_utf8(text).ok().filter(|t| t.is_ascii()).ok_or_else(|| bad("not ASCII"))?;
    let hex = text.rsplit_once('=').ok_or_else(|| bad("no `=`"))?.1.trim();
    if hex.is_empty() || hex.len() % 2 != 0 {
        return Err(bad("the digest is not whole hex bytes"));
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    hex.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| bad("not hex"))
}

/// HMAC of one member, fed as it is read. [`PieceMac::verify`] compares in constant time.
pub enum PieceMac {
    Sha1(Hmac<sha1::Sha1>),
    Sha224(Hmac<sha2::Sha224>),
    Sha256(Hmac<sha2::Sha256>),
    Sha384(Hmac<sha2::Sha384>),
    Sha512(Hmac<sha2::Sha512>),
}

impl PieceMac {
    pub fn new(algorithm: HmacAlgorithm, passphrase: &[u8]) -> PieceMac {
        // HMAC takes keys of any length (long ones are hashed first, as openssl does).
        match algorithm {
            HmacAlgorithm::Sha1 => PieceMac::Sha1(Hmac::new_from_slice(passphrase).expect("any key length")),
            HmacAlgorithm::Sha224 => PieceMac::Sha224(Hmac::new_from_slice(passphrase).expect("any key length")),
            HmacAlgorithm::Sha256 => PieceMac::Sha256(Hmac::new_from_slice(passphrase).expect("any key length")),
            HmacAlgorithm::Sha384 => PieceMac::Sha384(Hmac::new_from_slice(passphrase).expect("any key length")),
            HmacAlgorithm::Sha512 => PieceMac::Sha512(Hmac::new_from_slice(passphrase).expect("any key length")),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            PieceMac::Sha1(m) => m.update(bytes),
            PieceMac::Sha224(m) => m.update(bytes),
            PieceMac::Sha256(m) => m.update(bytes),
            PieceMac::Sha384(m) => m.update(bytes),
            PieceMac::Sha512(m) => m.update(bytes),
        }
    }

    /// Whether `tag` is the HMAC of everything fed (constant time; a tag of the wrong length
    /// is simply false).
    pub fn verify(self, tag: &[u8]) -> bool {
        match self {
            PieceMac::Sha1(m) => m.verify_slice(tag).is_ok(),
            PieceMac::Sha224(m) => m.verify_slice(tag).is_ok(),
            PieceMac::Sha256(m) => m.verify_slice(tag).is_ok(),
            PieceMac::Sha384(m) => m.verify_slice(tag).is_ok(),
            PieceMac::Sha512(m) => m.verify_slice(tag).is_ok(),
        }
    }
}

impl PieceMac {
    /// The tag itself (the test writer's half; a restore only ever verifies).
    pub fn finalize(self) -> Vec<u8> {
        match self {
            PieceMac::Sha1(m) => m.finalize().into_bytes().to_vec(),
            PieceMac::Sha224(m) => m.finalize().into_bytes().to_vec(),
            PieceMac::Sha256(m) => m.finalize().into_bytes().to_vec(),
            PieceMac::Sha384(m) => m.finalize().into_bytes().to_vec(),
            PieceMac::Sha512(m) => m.finalize().into_bytes().to_vec(),
        }
    }
}

/// Whether `tag` is HMAC-`algorithm`(`passphrase`, `bytes`).
pub fn verify(algorithm: HmacAlgorithm, passphrase: &[u8], bytes: &[u8], tag: &[u8]) -> bool {
    let mut mac = PieceMac::new(algorithm, passphrase);
    mac.update(bytes);
    mac.verify(tag)
}

#[cfg(test)]
mod tests;
