//! Push decoders for the compressors a backup header may name (FORMAT.md §6.2).
//!
//! The restore pipeline receives authenticated plaintext chunk by chunk and must also run in
//! wasm32, where nothing may block: so every decoder here is fed arbitrary pieces of the
//! compressed stream (down to one byte) and hands its output on in pieces of at most
//! [`OUT_PIECE`] bytes. No decoder keeps more than its compressor's window plus one block.
//!
//! Every decoder accepts concatenated members/streams/frames, as pigz, pbzip2 and zstdmt write.
//! Every call names the member being read (`at`: the chunk the bytes came from), so an error
//! says where it is without being patched afterwards.

use crate::error::{Check, Cut, Error, Fault, Limit, Result, Step};

/// Largest piece of output handed to `out` at once.
const OUT_PIECE: usize = 256 * 1024;

/// Refuse xz/lzma streams and zstd frames that need more memory than this: a hostile header
/// must not make the page allocate gigabytes. Real compressors stay far below (xz -9: 65 MiB,
/// zstd --ultra -22: 128 MiB window).
const MEM_LIMIT: u64 = 512 << 20;

/// The compressor named by the authenticated backup header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Lzma,
    Zstd,
}

impl Compression {
    /// `compression-filter` is written even when `compressed=False` (then it means nothing);
    /// a missing one means Qubes' default, gzip.
    pub fn from_header(compressed: bool, filter: Option<&str>) -> Result<Compression> {
        if !compressed {
            return Ok(Compression::None);
        }
        Ok(match filter.unwrap_or("gzip") {
            "gzip" | "pigz" => Compression::Gzip,
            "bzip2" | "pbzip2" => Compression::Bzip2,
            "xz" => Compression::Xz,
            "lzma" => Compression::Lzma,
            "zstd" | "zstdmt" => Compression::Zstd,
            other => return Err(Error::unsupported(format!("compression filter `{other}`"))),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Zstd => "zstd",
        }
    }
}

/// Push decoder: compressed bytes in, decompressed bytes out through `out`.
pub trait Decoder {
    fn feed(&mut self, at: &str, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>;
    fn finish(&mut self, at: &str, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>;
}

pub fn decoder(c: Compression) -> Box<dyn Decoder> {
    match c {
        Compression::None => Box::new(Passthrough),
        Compression::Gzip => Box::new(Sticky::new(Gzip::new())),
        Compression::Bzip2 => Box::new(Sticky::new(Bzip2::new())),
        Compression::Xz => Box::new(Sticky::new(Xz::new())),
        Compression::Lzma => Box::new(Sticky::new(Lzma::new())),
        Compression::Zstd => Box::new(Sticky::new(Zstd::new())),
    }
}

// A codec's own faults are `Fault`s: the [`Sticky`] boundary places them in the member it was fed.

/// A codec proper: the same calls as [`Decoder`] without knowing which member it reads.
trait Codec {
    fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()>;
    fn finish(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()>;
}

fn tampered(codec: &'static str) -> Fault {
    Fault::Tampered(Check::Stream(codec))
}

fn truncated(codec: &'static str) -> Fault {
    Fault::Truncated(Cut::Stream(codec))
}

fn trailing(codec: &'static str) -> Fault {
    Fault::Tampered(Check::Trailing(codec))
}

/// A decoder that failed stays failed: after an error its state is half-updated, and
/// going on could turn a detected corruption into silently wrong output.
struct Sticky<D> {
    inner: D,
    failed: Option<Error>,
}

impl<D: Codec> Sticky<D> {
    fn new(inner: D) -> Self {
        Sticky { inner, failed: None }
    }

    fn guard(&mut self, at: &str, r: Step<()>) -> Result<()> {
        let r = r.map_err(|f| f.at(at));
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }
}

impl<D: Codec> Decoder for Sticky<D> {
    fn feed(&mut self, at: &str, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.inner.feed(input, out);
        self.guard(at, r)
    }

    fn finish(&mut self, at: &str, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.inner.finish(out);
        self.guard(at, r)
    }
}

/// `compressed=False`: the decrypted stream is the tar.
struct Passthrough;

impl Decoder for Passthrough {
    fn feed(&mut self, _at: &str, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        input.chunks(OUT_PIECE).try_for_each(out)
    }

    fn finish(&mut self, _at: &str, _out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        Ok(())
    }
}

mod bzip2;
mod gzip;
mod xz;
mod zstd;
use bzip2::Bzip2;
use gzip::Gzip;
use xz::{Lzma, Xz};
use zstd::Zstd;

#[cfg(test)]
mod tests;
