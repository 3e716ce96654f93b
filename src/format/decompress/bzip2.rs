//! bzip2, one stream after another (pbzip2).

use super::*;

/// pbzip2 writes one bzip2 stream per block group; libbzip2 stops exactly at the end of a
/// stream, so a fresh decompressor takes the next one.
pub(super) struct Bzip2 {
    inflate: ::bzip2::Decompress,
    /// Inside a stream (some of its bytes were fed, its end not yet seen).
    open: bool,
    streams: u64,
    buf: Vec<u8>,
}

impl Bzip2 {
    pub(super) fn new() -> Self {
        Bzip2 { inflate: ::bzip2::Decompress::new(false), open: false, streams: 0, buf: vec![0; OUT_PIECE] }
    }
}

impl Codec for Bzip2 {
    fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        let mut pos = 0;
        while pos < input.len() {
            if !self.open {
                if self.streams > 0 {
                    self.inflate = ::bzip2::Decompress::new(false);
                }
                self.open = true;
            }
            let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self.inflate.decompress(&input[pos..], &mut self.buf).map_err(|e| match e {
                ::bzip2::Error::DataMagic if self.streams > 0 => trailing("bzip2"),
                _ => tampered("bzip2"),
            })?;
            let used = (self.inflate.total_in() - in0) as usize;
            let made = (self.inflate.total_out() - out0) as usize;
            pos += used;
            out(&self.buf[..made])?;
            match status {
                ::bzip2::Status::StreamEnd => {
                    self.open = false;
                    self.streams += 1;
                }
                ::bzip2::Status::MemNeeded => return Err(Error::unsupported("bzip2 stream needs too much memory").into()),
                _ if used == 0 && made == 0 => return Err(tampered("bzip2")),
                _ => {}
            }
        }
        // libbzip2 may still hold decoded bytes when the output buffer filled up just as the
        // input ran out: drain them now so memory and latency stay bounded.
        while self.open {
            let out0 = self.inflate.total_out();
            let status = self.inflate.decompress(&[], &mut self.buf).map_err(|_| tampered("bzip2"))?;
            let made = (self.inflate.total_out() - out0) as usize;
            out(&self.buf[..made])?;
            if status == ::bzip2::Status::StreamEnd {
                self.open = false;
                self.streams += 1;
            }
            if made == 0 {
                break;
            }
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        if self.open || self.streams == 0 {
            Err(truncated("bzip2"))
        } else {
            Ok(())
        }
    }
}
