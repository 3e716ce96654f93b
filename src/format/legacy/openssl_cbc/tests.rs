//! Fixtures made by the real `openssl enc` (tests/fixtures/openssl-enc/make.sh).
use super::*;
use crate::error::Error;

const ENC_1000: &[u8] = include_bytes!("../../../../tests/fixtures/openssl-enc/enc-1000.bin");
const PLAIN_1000: &[u8] = include_bytes!("../../../../tests/fixtures/openssl-enc/plain-1000.bin");
const ENC_64: &[u8] = include_bytes!("../../../../tests/fixtures/openssl-enc/enc-64.bin");
const PLAIN_64: &[u8] = include_bytes!("../../../../tests/fixtures/openssl-enc/plain-64.bin");
const ENC_0: &[u8] = include_bytes!("../../../../tests/fixtures/openssl-enc/enc-0.bin");

fn decrypt(enc: &[u8], piece: usize, pass: &[u8]) -> Result<Vec<u8>> {
    let mut s = CbcStream::new(pass);
    let mut got = Vec::new();
    for p in enc.chunks(piece.max(1)) {
        s.feed("p", p, &mut |b| {
            got.extend_from_slice(b);
            Ok(())
        })?;
    }
    s.finish("p", &mut |b| {
        got.extend_from_slice(b);
        Ok(())
    })?;
    Ok(got)
}

#[test]
fn the_key_and_iv_are_what_openssl_derives() {
    // openssl enc -aes-256-cbc -md md5 -pass pass:qubes -S 0102030405060708 -P
    let (key, iv) = bytes_to_key(b"qubes", &[1, 2, 3, 4, 5, 6, 7, 8]);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    assert_eq!(hex(&key), "0095D3E8605B4C01578957E82AC66FD825252642F1E33D54B91285B969591FF8");
    assert_eq!(hex(&iv), "09A26FC3AC81FF5F900204C64B2C973C");
}

#[test]
fn openssl_enc_output_decrypts_fed_in_any_pieces() {
    for piece in [1, 7, 16, 17, 100, 4096] {
        assert_eq!(decrypt(ENC_1000, piece, b"qubes").unwrap(), PLAIN_1000, "piece {piece}");
        assert_eq!(decrypt(ENC_64, piece, b"qubes").unwrap(), PLAIN_64, "piece {piece}");
        assert_eq!(decrypt(ENC_0, piece, b"qubes").unwrap(), b"", "piece {piece}");
    }
}

#[test]
fn a_long_stream_crosses_the_work_buffer_intact() {
    // The real fixtures are small: a 200 KiB stream (encrypted here with the cbc crate, whose
    // agreement with openssl the fixtures prove) crosses the 64 KiB work buffer.
    use aes::cipher::{BlockModeEncrypt, KeyIvInit};
    let plain: Vec<u8> = (0..200_003u32).map(|i| (i * 31 % 253) as u8).collect();
    let salt = [9u8; 8];
    let (key, iv) = bytes_to_key(b"qubes", &salt);
    let mut padded = plain.clone();
    let n = 16 - padded.len() % 16;
    padded.extend(std::iter::repeat_n(n as u8, n));
    let mut enc = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into());
    let (blocks, _) = Array::slice_as_chunks_mut(&mut padded[..]);
    enc.encrypt_blocks(blocks);
    let stream = [b"Salted__".as_slice(), &salt, &padded].concat();
    for piece in [65536, 70000, 1 << 20] {
        assert_eq!(decrypt(&stream, piece, b"qubes").unwrap(), plain);
    }
}

#[test]
fn bad_padding_is_tampered() {
    // A wrong passphrase yields garbage, whose padding is almost surely invalid: the only way
    // CBC notices (the HMAC, checked before, is what proves the passphrase).
    assert!(matches!(decrypt(ENC_1000, 100, b"qubez"), Err(Error::Tampered { .. })));
    // Flipping a byte of the second-to-last block flips the same byte of the padding.
    let mut bad = ENC_64.to_vec();
    let at = bad.len() - 17;
    bad[at] ^= 0x01;
    assert!(matches!(decrypt(&bad, 100, b"qubes"), Err(Error::Tampered { .. })));
}

#[test]
fn a_stream_cut_short_is_truncated() {
    for cut in [0, 5, 16, 20, ENC_1000.len() - 1] {
        assert!(matches!(decrypt(&ENC_1000[..cut], 100, b"qubes"), Err(Error::Truncated { .. })), "cut {cut}");
    }
}

#[test]
fn a_stream_without_a_salt_header_is_tampered() {
    let mut bad = ENC_1000.to_vec();
    bad[0] = b's';
    assert!(matches!(decrypt(&bad, 100, b"qubes"), Err(Error::Tampered { .. })));
}
