use super::*;

const V3: &str = "version=3\nhmac-algorithm=SHA512\ncrypto-algorithm=aes-256-cbc\nencrypted=True\ncompressed=True\ncompression-filter=gzip\n";
const V3_PLAIN: &str = "version=3\nhmac-algorithm=SHA512\ncrypto-algorithm=aes-256-cbc\nencrypted=False\ncompressed=False\n";
const V2: &str = "hmac-algorithm=SHA1\ncrypto-algorithm=aes-256-cbc\nencrypted=True\ncompressed=False\n";

#[test]
fn an_r3_header_parses() {
    let h = parse(V3.as_bytes()).unwrap();
    assert_eq!(h.version, 3);
    assert!(h.present && h.encrypted && h.compressed);
    assert_eq!(h.hmac_algorithm, HmacAlgorithm::Sha512);
    assert_eq!(h.compression, Compression::Gzip);
    let h = parse(V3_PLAIN.as_bytes()).unwrap();
    assert!(!h.encrypted && !h.compressed);
    assert_eq!(h.compression, Compression::None);
}

#[test]
fn a_header_without_version_is_format_2() {
    let h = parse(V2.as_bytes()).unwrap();
    assert_eq!(h.version, 2);
    assert_eq!(h.hmac_algorithm, HmacAlgorithm::Sha1);
    let gz = parse(V2.replace("encrypted=True", "encrypted=False").replace("compressed=False", "compressed=True").as_bytes()).unwrap();
    assert_eq!(gz.compression, Compression::Gzip);
}

#[test]
fn format_2_encrypted_and_compressed_is_unsupported() {
    let both = V2.replace("compressed=False", "compressed=True");
    assert!(matches!(parse(both.as_bytes()), Err(Error::Unsupported { .. })));
    assert!(matches!(headerless(true, true), Err(Error::Unsupported { .. })));
    assert_eq!(headerless(true, false).unwrap().hmac_algorithm, HmacAlgorithm::Sha1);
}

#[test]
fn other_versions_and_algorithms_are_unsupported_with_a_sentence() {
    for h in [
        V3.replace("version=3", "version=4"),
        V3.replace("version=3", "version=1"),
        V3.replace("version=3", "version=7"),
        V3.replace("SHA512", "whirlpool"),
        V3.replace("aes-256-cbc", "camellia-256-cbc"),
        V3.replace("gzip", "compress"),
    ] {
        match parse(h.as_bytes()) {
            Err(e @ Error::Unsupported { .. }) => assert!(!e.to_string().is_empty()),
            other => panic!("{h:?}: {other:?}"),
        }
    }
}

#[test]
fn an_unencrypted_header_needs_no_cipher() {
    assert!(parse(V3_PLAIN.replace("crypto-algorithm=aes-256-cbc\n", "").as_bytes()).is_ok());
    assert!(parse(V3.replace("crypto-algorithm=aes-256-cbc\n", "").as_bytes()).is_err());
}

#[test]
fn grammar_violations_and_absurd_values_are_tampered() {
    for h in [
        format!("{V3}version=3\n"),
        format!("{V3}\n"),
        format!("{V3}a=b=c\n"),
        V3.replace("version=3", "version=99999999999999999999"),
        V3.replace("version=3", "version=three"),
        V3.replace("gzip", "gz.ip"),
        V3.replace("compression-filter=gzip\n", ""),
        V3.replace("hmac-algorithm=SHA512\n", ""),
        V3.replace("encrypted=True\n", ""),
        "\u{e9}=1\n".to_string(),
        format!("{V3}{}", "x".repeat(5000)),
    ] {
        assert!(matches!(parse(h.as_bytes()), Err(Error::Tampered { .. })), "{h:?}");
    }
}

#[test]
fn unknown_keys_are_ignored_and_the_claimed_algorithm_is_read() {
    assert!(parse(format!("{V3}backup-id=x\nfoo=bar\n").as_bytes()).is_ok());
    assert_eq!(claimed_hmac_algorithm(V2.as_bytes()), Some(HmacAlgorithm::Sha1));
    assert_eq!(claimed_hmac_algorithm(b"garbage"), None);
}
