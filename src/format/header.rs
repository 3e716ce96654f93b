//! `backup-header`: seven `key=value` lines (FORMAT.md §3). Parsed only after its
//! authenticated copy in `backup-header.hmac` matched it byte for byte (§4).

use crate::error::{Check, Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupHeader {
    pub version: u32,
    pub encrypted: bool,
    pub compressed: bool,
    pub compression_filter: Option<String>,
    pub hmac_algorithm: String,
    pub crypto_algorithm: Option<String>,
    pub backup_id: String,
}

fn bad(why: impl Into<String>) -> Error {
    Error::tampered("backup-header", Check::BackupHeader(why.into()))
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

/// The grammar of admin-client `BackupHeader.load`/`validate`: ASCII, every line exactly
/// one `=`, keys and values `[A-Za-z0-9-]*`, unknown keys ignored, known keys once.
pub fn parse(bytes: &[u8]) -> Result<BackupHeader> {
    let text = std::str::from_utf8(bytes).ok().filter(|t| t.is_ascii()).ok_or_else(|| bad("ASCII grammar"))?;
    let allowed = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let mut seen = std::collections::HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.matches('=').count() != 1 {
            return Err(bad("grammar (every line is key=value)"));
        }
        let (key, value) = line.split_once('=').expect("one =");
        if !allowed(key) || !allowed(value) {
            return Err(bad("grammar (characters)"));
        }
        let known = matches!(
            key,
            "version" | "encrypted" | "compressed" | "compression-filter" | "hmac-algorithm" | "crypto-algorithm" | "backup-id"
        );
        if known && seen.insert(key, value).is_some() {
            return Err(bad(format!("grammar (duplicate {key})")));
        }
    }
    let get = |k: &str| seen.get(k).map(|v| v.to_string());
    let version: u32 = match get("version") {
        Some(v) => v.parse().map_err(|_| bad("version field"))?,
        None => return Err(Error::unsupported("a backup header without a version (Qubes R2 beta format 2)")),
    };
    if !(1..=4).contains(&version) {
        return Err(Error::unsupported(format!("backup format version {version}")));
    }
    let required = |k: &str| get(k).ok_or_else(|| bad(format!("required field {k}")));
    let header = BackupHeader {
        version,
        encrypted: truthy(&required("encrypted")?),
        compressed: truthy(&required("compressed")?),
        compression_filter: get("compression-filter"),
        hmac_algorithm: required("hmac-algorithm")?,
        crypto_algorithm: get("crypto-algorithm"),
        backup_id: get("backup-id").unwrap_or_default(),
    };
    if version < 4 {
        return Err(Error::unsupported(format!(
            "backup format {version} (Qubes R2/R3.x); this tool restores format 4 (Qubes R4.0 and later)"
        )));
    }
    if header.compressed && header.compression_filter.is_none() {
        return Err(bad("required field compression-filter"));
    }
    if header.backup_id.is_empty() || header.backup_id.starts_with('-') {
        return Err(bad("backup-id field"));
    }
    if !header.hmac_algorithm.eq_ignore_ascii_case("scrypt") {
        return Err(Error::unsupported(format!("hmac-algorithm {} in a format 4 backup", header.hmac_algorithm)));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R4: &str = "version=4\nencrypted=True\ncompressed=True\ncompression-filter=gzip\nhmac-algorithm=scrypt\nbackup-id=20230405T123455-1234\n";

    #[test]
    fn a_real_r4_header_parses() {
        let h = parse(R4.as_bytes()).unwrap();
        assert_eq!(h.version, 4);
        assert!(h.compressed);
        assert_eq!(h.compression_filter.as_deref(), Some("gzip"));
        assert_eq!(h.backup_id, "20230405T123455-1234");
    }

    #[test]
    fn unknown_keys_are_ignored() {
        assert!(parse(format!("{R4}foo=bar\n").as_bytes()).is_ok());
    }

    #[test]
    fn grammar_violations_are_refused() {
        for bad in [
            format!("{R4}version=4\n"),
            format!("{R4}\n"),
            R4.replace("gzip", "gz.ip"),
            R4.replace("backup-id=", "backup-id=-"),
            format!("{R4}a=b=c\n"),
            R4.replace("version=4\n", ""),
            R4.replace("encrypted=True\n", ""),
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn older_formats_are_unsupported() {
        let v3 = "version=3\nhmac-algorithm=SHA512\ncrypto-algorithm=aes-256-cbc\nencrypted=True\ncompressed=True\ncompression-filter=gzip\n";
        assert!(matches!(parse(v3.as_bytes()), Err(Error::Unsupported { .. })));
        assert!(matches!(parse(R4.replace("version=4", "version=5").as_bytes()), Err(Error::Unsupported { .. })));
    }

    #[test]
    fn booleans_follow_qubes() {
        let h = parse(R4.replace("compressed=True", "compressed=yes").as_bytes()).unwrap();
        assert!(h.compressed);
        let h = parse(R4.replace("compressed=True", "compressed=False").as_bytes()).unwrap();
        assert!(!h.compressed);
    }
}
