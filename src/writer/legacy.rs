//! A format 3 backup writer (Qubes R3.x, FORMAT.md §9.1), for property tests: what
//! `tests/make-fixtures-v3.sh` makes with the real `openssl` and GNU tar — whose output
//! `tests/legacy_fixtures.rs` and `tests/legacy_cli.rs` restore — built here from random
//! volumes, piece sizes, compressors and HMAC algorithms, so that they round-trip through the
//! restore. The inner tars are the format 4 writer's (GNU sparse and PAX), which the real-tool
//! cross-checks already cover.

use super::{compress, gnu_sparse_tar, now, outer_member, pax10_tar, Image, SparseEncoding};
use crate::format::decompress::Compression;
use crate::format::legacy::hmac_text::{HmacAlgorithm, PieceMac};
use crate::format::legacy::openssl_cbc::bytes_to_key;
use aes::cipher::{BlockCipherEncrypt, KeyInit};

pub struct LegacyWriter {
    passphrase: Vec<u8>,
    compression: Compression,
    encrypted: bool,
    hmac: HmacAlgorithm,
    piece_size: usize,
    /// (outer base, inner tar)
    files: Vec<(String, Vec<u8>)>,
}

impl LegacyWriter {
    pub fn new(passphrase: &[u8], compression: Compression, encrypted: bool, hmac: HmacAlgorithm) -> Self {
        LegacyWriter { passphrase: passphrase.to_vec(), compression, encrypted, hmac, piece_size: 100 << 20, files: Vec::new() }
    }

    /// Bytes per piece (Qubes: 100 MiB).
    pub fn piece_size(mut self, n: usize) -> Self {
        self.piece_size = n.max(1);
        self
    }

    /// The R3 `qubes.xml` (a `QubesVmCollection`), stored as the file `qubes.xml`.
    pub fn qubes_xml(&mut self, xml: &[u8]) {
        self.files.push(("qubes.xml".into(), super::gnu_file_tar("qubes.xml", xml)));
    }

    /// `<dir>/<name>` (`vm5` + `private.img`) as a sparse volume.
    pub fn volume(&mut self, dir: &str, name: &str, image: &Image, enc: SparseEncoding) {
        let path = format!("{dir}/{name}");
        let tar = match enc {
            SparseEncoding::Pax10 => pax10_tar(&path, image),
            SparseEncoding::GnuOld => gnu_sparse_tar(&path, image, now().0),
        };
        self.files.push((path, tar));
    }

    /// `backup-header` as R3 wrote it (key order of `prepare_backup_header`).
    pub fn header_text(&self) -> String {
        let yes = |b: bool| if b { "True" } else { "False" };
        let mut h = format!(
            "version=3\nhmac-algorithm={}\ncrypto-algorithm=aes-256-cbc\nencrypted={}\ncompressed={}\n",
            self.hmac.name(),
            yes(self.encrypted),
            yes(self.compression != Compression::None)
        );
        if self.compression != Compression::None {
            h.push_str(&format!("compression-filter={}\n", super::filter_name(self.compression)));
        }
        h
    }

    /// The whole backup file: header and its HMAC text, then every file's stream (tar →
    /// compressor → `openssl enc`) cut into pieces, each with its HMAC text.
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        let header = self.header_text().into_bytes();
        outer_member(&mut out, "backup-header", &header);
        outer_member(&mut out, "backup-header.hmac", &self.hmac_text(&header));
        for (base, tar) in &self.files {
            let mut stream = compress(self.compression, tar);
            if self.encrypted {
                stream = openssl_enc(&self.passphrase, &stream);
            }
            // Like the format 4 writer: an exact multiple gets one more, empty, piece.
            let count = stream.len() / self.piece_size + 1;
            for i in 0..count {
                let piece = &stream[(i * self.piece_size).min(stream.len())..((i + 1) * self.piece_size).min(stream.len())];
                outer_member(&mut out, &format!("{base}.{i:03}"), piece);
                outer_member(&mut out, &format!("{base}.{i:03}.hmac"), &self.hmac_text(piece));
            }
        }
        out
    }

    /// What `openssl dgst -<alg> -hmac <passphrase>` printed on R3 (OpenSSL 1.0).
    fn hmac_text(&self, bytes: &[u8]) -> Vec<u8> {
        let mut mac = PieceMac::new(self.hmac, &self.passphrase);
        mac.update(bytes);
        let hex: String = mac.finalize().iter().map(|b| format!("{b:02x}")).collect();
        format!("(stdin)= {hex}\n").into_bytes()
    }
}

/// `openssl enc -e -aes-256-cbc -md md5 -pass pass:P`: `Salted__`, 8 random bytes of salt, then
/// AES-256-CBC with PKCS#7 padding, key and IV by `EVP_BytesToKey` (MD5, one round).
pub fn openssl_enc(passphrase: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt).expect("random salt");
    let (key, iv) = bytes_to_key(passphrase, &salt);
    let aes = aes::Aes256::new(&key.into());
    let mut out = b"Salted__".to_vec();
    out.extend_from_slice(&salt);
    let mut padded = plaintext.to_vec();
    let pad = 16 - padded.len() % 16;
    padded.resize(padded.len() + pad, pad as u8);
    let mut prev = iv;
    for block in padded.chunks(16) {
        let mut b = [0u8; 16];
        for (i, x) in b.iter_mut().enumerate() {
            *x = block[i] ^ prev[i];
        }
        let mut arr = b.into();
        aes.encrypt_block(&mut arr);
        prev = arr.into();
        out.extend_from_slice(&prev);
    }
    out
}
