//! One stored file's pieces turned into its inner tar stream (see the parent module):
//! HMAC proven → decrypted → decompressed → (format 2) volumes joined.

use super::multivolume::VolumeJoiner;
use super::openssl_cbc::CbcStream;
use super::{LegacyBackup, Piece};
use crate::error::{Check, Error, Result};
use crate::format::decompress::{self, Decoder};
use crate::read_at::ReadAt;

/// One stored file's inner tar stream: each call to [`FileStream::next_piece`] reads the next
/// piece, proves its HMAC, decrypts, decompresses (and in format 2 joins the volumes) and
/// hands the resulting inner tar bytes to `out`, in pieces of at most 256 KiB.
pub struct FileStream<'b, R: ReadAt> {
    backup: &'b LegacyBackup<R>,
    pieces: Vec<Piece>,
    next: usize,
    /// Format 3: one openssl stream across all pieces.
    cbc: CbcStream,
    /// Format 3: one compressed stream across all pieces.
    decoder: Box<dyn Decoder>,
    /// Format 2: the volumes joined back into one tar.
    joiner: VolumeJoiner,
    done: bool,
}

impl<'b, R: ReadAt> FileStream<'b, R> {
    pub(super) fn new(backup: &'b LegacyBackup<R>, pieces: Vec<Piece>) -> FileStream<'b, R> {
        FileStream {
            backup,
            pieces,
            next: 0,
            cbc: CbcStream::new(&backup.passphrase),
            decoder: decompress::decoder(backup.header.compression),
            joiner: VolumeJoiner::new(),
            done: false,
        }
    }

    /// The piece the next call reads (or the last one, once all were read).
    pub fn piece_name(&self) -> &str {
        let i = self.next.min(self.pieces.len().saturating_sub(1));
        self.pieces.get(i).map_or("", |p| p.data.name.as_str())
    }

    /// Reads, verifies and decodes the next piece; after the last one ends the stream (padding,
    /// compressor and volume checks). Returns false once the stream has ended.
    pub fn next_piece(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        if self.next == self.pieces.len() {
            self.finish(out)?;
            return Ok(false);
        }
        let bytes = self.backup.read_piece(&self.pieces[self.next])?;
        self.push_verified(&bytes, out)?;
        Ok(true)
    }

    /// Decodes the next piece, already read and proven by [`LegacyBackup::read_piece`] (pieces
    /// must come in order; the caller is trusted to have verified them).
    pub fn push_verified(&mut self, bytes: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let name = self.piece_name().to_string();
        if self.done || self.next >= self.pieces.len() {
            return Err(Error::tampered(name, Check::PieceAfterEnd));
        }
        self.next += 1;
        let r = if self.backup.header.version == 2 { self.volume(&name, bytes, out) } else { self.piece(&name, bytes, out) };
        if r.is_err() {
            self.done = true;
        }
        r
    }

    /// Format 3: the piece continues the file's one openssl and compressed streams.
    fn piece(&mut self, at: &str, bytes: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let decoder = &mut self.decoder;
        if self.backup.header.encrypted {
            self.cbc.feed(at, bytes, &mut |plain| decoder.feed(at, plain, out))
        } else {
            decoder.feed(at, bytes, out)
        }
    }

    /// Format 2: the volume is a whole openssl (or gzip) stream of its own.
    fn volume(&mut self, at: &str, bytes: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut decoder = decompress::decoder(self.backup.header.compression);
        let joiner = &mut self.joiner;
        {
            let mut join = |b: &[u8]| joiner.feed(at, b, out);
            if self.backup.header.encrypted {
                let mut cbc = CbcStream::new(&self.backup.passphrase);
                cbc.feed(at, bytes, &mut |plain| decoder.feed(at, plain, &mut join))?;
                cbc.finish(at, &mut |plain| decoder.feed(at, plain, &mut join))?;
            } else {
                decoder.feed(at, bytes, &mut join)?;
            }
            decoder.finish(at, &mut join)?;
        }
        joiner.end_volume(at)
    }

    fn finish(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.done = true;
        let last = self.piece_name().to_string();
        if self.backup.header.version == 2 {
            self.joiner.finish(&last)
        } else {
            let decoder = &mut self.decoder;
            if self.backup.header.encrypted {
                self.cbc.finish(&last, &mut |plain| decoder.feed(&last, plain, out))?;
            }
            decoder.finish(&last, out)
        }
    }
}
