//! `backup-header` of formats 3 and 2 (FORMAT.md §9): `key=value` lines, parsed only after its
//! HMAC (`backup-header.hmac`) was proven. Format 3 writes `version=3`, `hmac-algorithm`,
//! `crypto-algorithm`, `encrypted`, `compressed` and, when compressed, `compression-filter`;
//! format 2 has no `version` line, and R2-beta3 backups have no header at all (Qubes then
//! assumes format 2, SHA1, aes-256-cbc).
//!
//! The grammar is admin-client's `BackupHeader.load`, as in `format::header`: ASCII, every line
//! exactly one `=`, keys and values `[A-Za-z0-9-]*`, unknown keys ignored, known keys once.

use super::hmac_text::HmacAlgorithm;
use crate::error::{Check, Error, Result};
use crate::format::decompress::Compression;

/// Real headers are ~120 bytes; Qubes' budget is 1 MiB for both files, we take 4 KiB.
pub const MAX_HEADER: u64 = 4096;

/// How the data of every file is stored, from the authenticated header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyHeader {
    /// 3, or 2 (no `version` line, or no header at all).
    pub version: u32,
    /// False for an R2-beta3 backup without `backup-header` (the values are Qubes' defaults).
    pub present: bool,
    pub hmac_algorithm: HmacAlgorithm,
    /// Pieces (format 3) or volumes (format 2) are `openssl enc -aes-256-cbc` streams.
    pub encrypted: bool,
    pub compressed: bool,
    /// The compressor of format 3 (inside the tar stream, before encryption); format 2 gzips
    /// each unencrypted volume, and `Compression::None` when not compressed.
    pub compression: Compression,
}

fn bad(why: impl Into<String>) -> Error {
    Error::tampered("backup-header", Check::BackupHeader(why.into()))
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

const KNOWN: [&str; 7] =
    ["version", "encrypted", "compressed", "compression-filter", "hmac-algorithm", "crypto-algorithm", "backup-id"];

/// The known `key=value` pairs, grammar checked.
fn fields(bytes: &[u8]) -> Result<Vec<(&str, &str)>> {
    if bytes.len() as u64 > MAX_HEADER {
        return Err(bad(format!("size ({} bytes, at most {MAX_HEADER})", bytes.len())));
    }
    let text = std::str::from_utf8(bytes).ok().filter(|t| t.is_ascii()).ok_or_else(|| bad("ASCII grammar"))?;
    let allowed = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some((key, value)) = line.split_once('=').filter(|(_, v)| !v.contains('=')) else {
            return Err(bad("grammar (every line is key=value)"));
        };
        if !allowed(key) || !allowed(value) {
            return Err(bad("grammar (characters)"));
        }
        if KNOWN.contains(&key) {
            if seen.iter().any(|(k, _)| *k == key) {
                return Err(bad(format!("grammar (duplicate {key})")));
            }
            seen.push((key, value));
        }
    }
    Ok(seen)
}

/// The `hmac-algorithm` the (not yet authenticated) header names, if its grammar holds.
pub fn claimed_hmac_name(bytes: &[u8]) -> Option<String> {
    let fields = fields(bytes).ok()?;
    fields.iter().find(|(k, _)| *k == "hmac-algorithm").map(|(_, v)| v.to_string())
}

/// The algorithm the (not yet authenticated) header names, to try first.
pub fn claimed_hmac_algorithm(bytes: &[u8]) -> Option<HmacAlgorithm> {
    HmacAlgorithm::from_name(&claimed_hmac_name(bytes)?)
}

fn unsupported_hmac(name: &str) -> Error {
    Error::unsupported(format!("hmac-algorithm {name} (SHA1, SHA224, SHA256, SHA384 and SHA512 are supported)"))
}

/// When no supported HMAC matches: a header naming a digest we do not verify (MD5,
/// RIPEMD-160, …) is reported as such, though unauthenticated; more useful than "wrong
/// passphrase", and nothing is restored from it.
pub fn unsupported_claim(bytes: &[u8]) -> Option<Error> {
    claimed_hmac_name(bytes).filter(|n| HmacAlgorithm::from_name(n).is_none()).map(|n| unsupported_hmac(&n))
}

/// Parses an authenticated format 3 or 2 header.
pub fn parse(bytes: &[u8]) -> Result<LegacyHeader> {
    let fields = fields(bytes)?;
    let get = |k: &str| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let required = |k: &str| get(k).ok_or_else(|| bad(format!("required field {k}")));
    let version = match get("version") {
        None => 2,
        Some(v) => match v.parse::<u32>() {
            Ok(v @ (2 | 3)) => v,
            Ok(4) => return Err(Error::unsupported("a format 4 header in a format 3/2 backup (its HMAC is an openssl text)")),
            Ok(v @ 0..=100) => return Err(Error::unsupported(format!("backup format version {v}"))),
            _ => return Err(bad("version field")),
        },
    };
    let name = required("hmac-algorithm")?;
    let hmac_algorithm = HmacAlgorithm::from_name(name).ok_or_else(|| unsupported_hmac(name))?;
    let encrypted = truthy(required("encrypted")?);
    let compressed = truthy(required("compressed")?);
    if encrypted {
        let cipher = required("crypto-algorithm")?;
        if !cipher.eq_ignore_ascii_case("aes-256-cbc") {
            return Err(Error::unsupported(format!("crypto-algorithm {cipher} (only aes-256-cbc, Qubes' default)")));
        }
    }
    let compression = match (version, compressed) {
        (_, false) => Compression::None,
        (3, true) => Compression::from_header(true, Some(required("compression-filter")?))?,
        // Format 2 compressed an unencrypted volume with gzip; an encrypted one with `openssl
        // enc -z` (zlib inside the cipher), which today's OpenSSL cannot even write.
        (_, true) if encrypted => {
            return Err(Error::unsupported("a format 2 backup both encrypted and compressed (openssl enc -z)"));
        }
        (_, true) => Compression::Gzip,
    };
    Ok(LegacyHeader { version, present: true, hmac_algorithm, encrypted, compressed, compression })
}

/// Qubes' assumptions for a backup without `backup-header` (R2-beta3): format 2, SHA1,
/// aes-256-cbc. Whether it is encrypted and compressed was the user's to say; `encrypted`
/// and `gzip` are read from the first authenticated piece by the caller.
pub fn headerless(encrypted: bool, gzip: bool) -> Result<LegacyHeader> {
    if encrypted && gzip {
        return Err(Error::unsupported("a format 2 backup both encrypted and compressed (openssl enc -z)"));
    }
    Ok(LegacyHeader {
        version: 2,
        present: false,
        hmac_algorithm: HmacAlgorithm::Sha1,
        encrypted,
        compressed: gzip,
        compression: if gzip { Compression::Gzip } else { Compression::None },
    })
}

#[cfg(test)]
mod tests;
