use super::*;

const MESSAGE: &[u8] = b"backup-header bytes\n";

/// `printf 'backup-header bytes\n' | openssl dgst -<alg> -hmac qubes` (OpenSSL 3.0).
const OPENSSL: [(HmacAlgorithm, &str); 5] = [
    (HmacAlgorithm::Sha1, "SHA1(stdin)= aa278f8f58eaf5130f49f1c4e7057ffe9ac603a3\n"),
    (HmacAlgorithm::Sha224, "SHA2-224(stdin)= f2ffe47afcfa2680a1eaa3ce32d05a728e9b46f4eb2a971a515c04c8\n"),
    (HmacAlgorithm::Sha256, "SHA2-256(stdin)= 7fa9616f5567bcdd65246645d066158ea78f2699b7867ff4f221c73dde1b2248\n"),
    (
        HmacAlgorithm::Sha384,
        "SHA2-384(stdin)= f5c19b4a99d7fe170722a29ccf475e6729fb58d70221a1b965681403759dc9266eaf62edb6403731508589ab4843b6f8\n",
    ),
    (
        HmacAlgorithm::Sha512,
        "SHA2-512(stdin)= 2c7dc729f637cf6f8a0354cfc0ea6f72d40af2ddb2b6c07f9acd353f50dc1f46c4d35e375afd03481ea520f6eb19f011f9e0373ec1dfe380eb659d96597315ba\n",
    ),
];

#[test]
fn every_supported_digest_matches_what_openssl_printed() {
    for (alg, text) in OPENSSL {
        let tag = parse(text.as_bytes(), "x.hmac").unwrap();
        assert_eq!(tag.len(), alg.tag_len());
        assert!(verify(alg, b"qubes", MESSAGE, &tag), "{alg:?}");
        assert!(!verify(alg, b"qubez", MESSAGE, &tag), "{alg:?}");
        assert!(!verify(alg, b"qubes", b"backup-header bytes!", &tag), "{alg:?}");
    }
}

#[test]
fn the_openssl_1_0_text_and_a_file_argument_parse_alike() {
    let (_, text) = OPENSSL[4];
    let hex = text.rsplit_once("= ").unwrap().1;
    let want = parse(text.as_bytes(), "x").unwrap();
    assert_eq!(parse(format!("(stdin)= {hex}").as_bytes(), "x").unwrap(), want);
    assert_eq!(parse(format!("HMAC-SHA2-512(a=b.000)= {hex}").as_bytes(), "x").unwrap(), want);
    assert_eq!(parse(format!("(stdin)= {}\n", hex.to_uppercase()).as_bytes(), "x").unwrap(), want);
}

#[test]
fn fed_in_pieces_the_mac_is_the_same() {
    let (alg, text) = OPENSSL[0];
    let tag = parse(text.as_bytes(), "x").unwrap();
    let mut mac = PieceMac::new(alg, b"qubes");
    for b in MESSAGE.chunks(3) {
        mac.update(b);
    }
    assert!(mac.verify(&tag));
}

#[test]
fn a_tag_of_another_length_does_not_verify() {
    let (_, text) = OPENSSL[0];
    let tag = parse(text.as_bytes(), "x").unwrap();
    assert!(!verify(HmacAlgorithm::Sha512, b"qubes", MESSAGE, &tag));
    assert!(!verify(HmacAlgorithm::Sha1, b"qubes", MESSAGE, &tag[..19]));
}

#[test]
fn hmac_texts_that_are_not_a_digest_are_tampered_naming_the_member() {
    for bad in ["", "(stdin)", "(stdin)= ", "(stdin)= abc", "(stdin)= zz", "(stdin)= \u{e9}\u{e9}"] {
        match parse(bad.as_bytes(), "vm5/private.img.000.hmac") {
            Err(Error::Tampered { at, .. }) => assert_eq!(at.member, "vm5/private.img.000.hmac"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(parse(&vec![b'a'; 5000], "x").is_err());
}

#[test]
fn digest_names_follow_openssl() {
    assert_eq!(HmacAlgorithm::from_name("SHA512"), Some(HmacAlgorithm::Sha512));
    assert_eq!(HmacAlgorithm::from_name("sha1"), Some(HmacAlgorithm::Sha1));
    assert_eq!(HmacAlgorithm::from_name("SHA2-256"), Some(HmacAlgorithm::Sha256));
    assert_eq!(HmacAlgorithm::from_name("md5"), None);
    assert_eq!(HmacAlgorithm::from_name("scrypt"), None);
}
