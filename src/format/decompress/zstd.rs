//! zstd frames (RFC 8878), framed here and decoded by ruzstd.

use super::*;

/// ruzstd's `FrameDecoder` reads from a blocking `Read`; to drive it from pushed pieces we
/// frame the stream ourselves (RFC 8878 §3.1) just enough to know when a whole frame header
/// or a whole block (at most 128 KiB) is buffered, and only then hand it over.
pub(super) struct Zstd {
    frames: ruzstd::decoding::FrameDecoder,
    state: ZState,
    /// The bytes of the current header or block, until `need` of them are there.
    acc: Vec<u8>,
    need: usize,
    /// Frame facts taken from the header as we parsed it.
    has_checksum: bool,
    content_size: Option<u64>,
    produced: u64,
    /// Frames (skippable ones too) completed so far.
    done: u64,
    buf: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ZState {
    Magic,
    /// The frame header descriptor byte, which says how long the rest of the header is.
    Descriptor,
    FrameHeader,
    SkipLen,
    Skip(u64),
    BlockHeader,
    Block { last: bool },
}

pub(super) const ZSTD_MAGIC: u32 = 0xFD2F_B528;
pub(super) const ZSTD_BLOCK_MAX: usize = 128 * 1024;

impl Zstd {
    pub(super) fn new() -> Self {
        let mut frames = ruzstd::decoding::FrameDecoder::new();
        frames.set_max_window_size(MEM_LIMIT);
        Zstd {
            frames,
            state: ZState::Magic,
            acc: Vec::with_capacity(ZSTD_BLOCK_MAX + 8),
            need: 4,
            has_checksum: false,
            content_size: None,
            produced: 0,
            done: 0,
            buf: vec![0; OUT_PIECE],
        }
    }

    fn expect(&mut self, state: ZState, need: usize) {
        self.state = state;
        self.need = need;
    }

    /// Called whenever `acc` holds `need` bytes.
    fn step(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        match self.state {
            ZState::Magic => {
                let magic = u32::from_le_bytes([self.acc[0], self.acc[1], self.acc[2], self.acc[3]]);
                if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
                    self.acc.clear();
                    self.expect(ZState::SkipLen, 4);
                } else if magic == ZSTD_MAGIC {
                    self.expect(ZState::Descriptor, 5);
                } else {
                    return Err(if self.done > 0 { trailing("zstd") } else { tampered("zstd") });
                }
            }
            ZState::Descriptor => {
                let d = self.acc[4];
                let single_segment = d & 0x20 != 0;
                let window = if single_segment { 0 } else { 1 };
                let dict = [0, 1, 2, 4][(d & 3) as usize];
                let fcs = match d >> 6 {
                    0 if single_segment => 1,
                    0 => 0,
                    1 => 2,
                    2 => 4,
                    _ => 8,
                };
                self.has_checksum = d & 0x04 != 0;
                self.content_size = (fcs > 0).then_some(0);
                // Never 5: a frame has a window byte or a content size.
                self.expect(ZState::FrameHeader, 5 + window + dict + fcs);
            }
            ZState::FrameHeader => {
                self.frames.reset(&self.acc[..]).map_err(zstd_error)?;
                if self.content_size.is_some() {
                    self.content_size = Some(self.frames.content_size());
                }
                self.produced = 0;
                self.acc.clear();
                self.expect(ZState::BlockHeader, 3);
            }
            ZState::SkipLen => {
                let len = u32::from_le_bytes([self.acc[0], self.acc[1], self.acc[2], self.acc[3]]);
                self.acc.clear();
                if len == 0 {
                    self.done += 1;
                    self.expect(ZState::Magic, 4);
                } else {
                    self.expect(ZState::Skip(len as u64), 0);
                }
            }
            ZState::Skip(_) => unreachable!("skipped bytes are never buffered"),
            ZState::BlockHeader => {
                let h = u32::from_le_bytes([self.acc[0], self.acc[1], self.acc[2], 0]);
                let last = h & 1 != 0;
                let size = (h >> 3) as usize;
                let body = match (h >> 1) & 3 {
                    0 | 2 => size, // raw, compressed
                    1 => 1,        // RLE: one byte repeated `size` times
                    _ => return Err(tampered("zstd")),
                };
                if size > ZSTD_BLOCK_MAX {
                    return Err(tampered("zstd"));
                }
                // The frame checksum follows the last block; ruzstd reads it together with it.
                let checksum = if last && self.has_checksum { 4 } else { 0 };
                self.expect(ZState::Block { last }, 3 + body + checksum);
            }
            ZState::Block { last } => {
                self.frames
                    .decode_blocks(&self.acc[..], ruzstd::decoding::BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(zstd_error)?;
                self.acc.clear();
                self.drain(out)?;
                if last {
                    self.end_frame()?;
                    self.expect(ZState::Magic, 4);
                } else {
                    self.expect(ZState::BlockHeader, 3);
                }
            }
        }
        Ok(())
    }

    /// Hands on what the decoder no longer needs as history (everything, once the frame ended).
    fn drain(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        use std::io::Read;
        loop {
            let n = self.frames.read(&mut self.buf).map_err(|_| tampered("zstd"))?;
            if n == 0 {
                return Ok(());
            }
            self.produced += n as u64;
            out(&self.buf[..n])?;
        }
    }

    fn end_frame(&mut self) -> Step<()> {
        if !self.frames.is_finished() || self.frames.can_collect() != 0 {
            return Err(tampered("zstd"));
        }
        if self.has_checksum && self.frames.get_checksum_from_data() != self.frames.get_calculated_checksum() {
            return Err(tampered("zstd"));
        }
        if self.content_size.is_some_and(|size| size != self.produced) {
            return Err(tampered("zstd"));
        }
        self.done += 1;
        Ok(())
    }
}

pub(super) fn zstd_error(e: ruzstd::decoding::errors::FrameDecoderError) -> Fault {
    use ruzstd::decoding::errors::FrameDecoderError as E;
    match e {
        E::WindowSizeTooBig { requested, .. } => Fault::OverLimit { limit: Limit::DecoderMemory, value: requested, cap: MEM_LIMIT },
        E::DictNotProvided { .. } => Error::unsupported("zstd frames that need a dictionary").into(),
        _ => tampered("zstd"),
    }
}

impl Codec for Zstd {
    fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        let mut rest = input;
        while !rest.is_empty() {
            if let ZState::Skip(left) = self.state {
                let n = left.min(rest.len() as u64);
                rest = &rest[n as usize..];
                if n == left {
                    self.done += 1;
                    self.expect(ZState::Magic, 4);
                } else {
                    self.state = ZState::Skip(left - n);
                }
                continue;
            }
            let take = (self.need - self.acc.len()).min(rest.len());
            self.acc.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            while self.acc.len() == self.need && !matches!(self.state, ZState::Skip(_)) {
                self.step(out)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        if self.state == ZState::Magic && self.acc.is_empty() && self.done > 0 {
            Ok(())
        } else {
            Err(truncated("zstd"))
        }
    }
}
