//! The `openssl enc -aes-256-cbc` container of formats 3 and 2 (FORMAT.md §9.1): `Salted__`,
//! an 8-byte salt, then AES-256-CBC ciphertext with PKCS#7 padding; key and IV come from
//! `EVP_BytesToKey(MD5, salt, passphrase, 1 iteration)` (R2/R3 ran OpenSSL 1.0, whose `enc`
//! digest was MD5; the restore always says `-md MD5`).
//!
//! [`CbcStream`] decrypts by push: one stream spans all pieces of a file in format 3 (the
//! pieces are cut from the ciphertext) and one volume in format 2. It is fed only bytes whose
//! HMAC was already proven, so CBC's lack of integrity matters only as a consistency check:
//! the last block is held back until [`CbcStream::finish`], whose padding must be valid.
//!
//! Every call names the piece being read (`at`), for errors.

use crate::error::{Check, Cut, Fault, Result, Step};
use aes::cipher::array::Array;
use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use md5::{Digest, Md5};

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

const MAGIC: &[u8; 8] = b"Salted__";
const BLOCK: usize = 16;
/// Ciphertext decrypted in one go (and the largest piece handed to `out`).
const WORK: usize = 64 * 1024;

/// `EVP_BytesToKey(EVP_md5(), salt, pass, count = 1)` for a 32-byte key and a 16-byte IV:
/// D1 = MD5(P‖salt), Dn = MD5(Dn-1‖P‖salt); key = D1‖D2, IV = D3.
pub fn bytes_to_key(passphrase: &[u8], salt: &[u8; 8]) -> ([u8; 32], [u8; 16]) {
    let mut out = [0u8; 48];
    let mut prev: Option<[u8; 16]> = None;
    for block in out.chunks_mut(16) {
        let mut md = Md5::new();
        if let Some(p) = prev {
            md.update(p);
        }
        md.update(passphrase);
        md.update(salt);
        let d: [u8; 16] = md.finalize().into();
        block.copy_from_slice(&d);
        prev = Some(d);
    }
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&out[..32]);
    iv.copy_from_slice(&out[32..]);
    (key, iv)
}

enum State {
    /// Collecting `Salted__` and the salt.
    Salt { head: [u8; 16], have: usize },
    Running {
        dec: Box<Aes256CbcDec>,
        /// Ciphertext bytes of an incomplete block.
        carry: [u8; BLOCK],
        carry_len: usize,
        /// The last decrypted block, held back: it carries the padding.
        held: Option<[u8; BLOCK]>,
    },
    /// Failed or finished: nothing more is accepted.
    Done,
}

/// One openssl `enc` stream, decrypted by push.
pub struct CbcStream {
    passphrase: Vec<u8>,
    state: State,
    /// Scratch for a run of whole blocks.
    work: Vec<u8>,
}

fn tampered(what: &'static str) -> Fault {
    Fault::Tampered(Check::OpensslEnc(what))
}

fn cut(what: &'static str) -> Fault {
    Fault::Truncated(Cut::OpensslEnc(what))
}

impl CbcStream {
    pub fn new(passphrase: &[u8]) -> CbcStream {
        CbcStream { passphrase: passphrase.to_vec(), state: State::Salt { head: [0; 16], have: 0 }, work: Vec::new() }
    }

    /// Feeds ciphertext; plaintext goes to `out` in pieces of at most 64 KiB, all but the
    /// last block (held for [`CbcStream::finish`]).
    pub fn feed(&mut self, at: &str, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.feed_blocks(input, out).map_err(|f| f.at(at))
    }

    fn feed_blocks(&mut self, mut input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        if let State::Salt { head, have } = &mut self.state {
            let take = (16 - *have).min(input.len());
            head[*have..*have + take].copy_from_slice(&input[..take]);
            *have += take;
            input = &input[take..];
            if *have < 16 {
                return Ok(());
            }
            if &head[..8] != MAGIC {
                self.state = State::Done;
                return Err(tampered("header (no `Salted__`)"));
            }
            let salt: [u8; 8] = head[8..].try_into().expect("8 bytes");
            let (key, iv) = bytes_to_key(&self.passphrase, &salt);
            let dec = Box::new(Aes256CbcDec::new(&key.into(), &iv.into()));
            self.state = State::Running { dec, carry: [0; BLOCK], carry_len: 0, held: None };
        }
        let State::Running { dec, carry, carry_len, held } = &mut self.state else {
            return Err(tampered("stream (used after it failed or ended)"));
        };
        while !input.is_empty() {
            // Gather whole blocks into `work`: the carried partial block first, then input.
            self.work.clear();
            if *carry_len > 0 {
                let take = (BLOCK - *carry_len).min(input.len());
                carry[*carry_len..*carry_len + take].copy_from_slice(&input[..take]);
                *carry_len += take;
                input = &input[take..];
                if *carry_len < BLOCK {
                    return Ok(());
                }
                self.work.extend_from_slice(carry);
                *carry_len = 0;
            }
            let whole = (input.len() / BLOCK * BLOCK).min(WORK - self.work.len());
            self.work.extend_from_slice(&input[..whole]);
            input = &input[whole..];
            if input.len() < BLOCK && !input.is_empty() && whole < WORK {
                carry[..input.len()].copy_from_slice(input);
                *carry_len = input.len();
                input = &[];
            }
            if self.work.is_empty() {
                continue;
            }
            let (blocks, rest) = Array::slice_as_chunks_mut(&mut self.work[..]);
            debug_assert!(rest.is_empty());
            dec.decrypt_blocks(blocks);
            // Release the previously held block and all new ones but the last.
            let last: [u8; BLOCK] = self.work[self.work.len() - BLOCK..].try_into().expect("one block");
            if let Some(h) = held.take() {
                out(&h)?;
            }
            let body = &self.work[..self.work.len() - BLOCK];
            if !body.is_empty() {
                out(body)?;
            }
            *held = Some(last);
        }
        Ok(())
    }

    /// Ends the stream: the ciphertext must be whole blocks and the last block's PKCS#7
    /// padding valid; the unpadded rest of the last block goes to `out`.
    pub fn finish(&mut self, at: &str, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.finish_blocks(out).map_err(|f| f.at(at))
    }

    fn finish_blocks(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::Salt { .. } => Err(cut("ends inside its salt header")),
            State::Done => Err(tampered("stream (used after it failed or ended)")),
            State::Running { carry_len, held, .. } => {
                if carry_len != 0 {
                    return Err(cut("ends inside a 16-byte block"));
                }
                let Some(last) = held else {
                    return Err(cut("has no data block"));
                };
                let n = last[BLOCK - 1] as usize;
                if n == 0 || n > BLOCK || last[BLOCK - n..].iter().any(|&b| b as usize != n) {
                    return Err(Fault::Tampered(Check::CbcPadding));
                }
                if n < BLOCK {
                    out(&last[..BLOCK - n])?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
