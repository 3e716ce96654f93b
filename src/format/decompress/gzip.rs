//! gzip (RFC 1952), members framed here around a raw inflate.

use super::*;

/// gzip members framed by hand around flate2's raw inflate: flate2's own gzip readers are
/// pull-based (`Read`) or, for `write::MultiGzDecoder`, have accepted truncated input in some
/// versions, and we must tell "ends early" from "altered" anyway. The framing is RFC 1952:
/// a 10-byte fixed header, optional fields chosen by FLG, deflate data, CRC32 + ISIZE.
pub(super) struct Gzip {
    state: GzState,
    /// FLG bits of fields still to skip; each is cleared once its field is done.
    flags: u8,
    /// Bytes of the fixed header, FEXTRA length, FHCRC or trailer collected so far.
    acc: [u8; 10],
    n: usize,
    head_crc: flate2::Crc,
    inflate: flate2::Decompress,
    crc: flate2::Crc,
    members: u64,
    buf: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum GzState {
    Fixed,
    ExtraLen,
    Extra(u16),
    Name,
    Comment,
    HeaderCrc,
    Deflate,
    Trailer,
}

pub(super) const FHCRC: u8 = 0x02;
pub(super) const FEXTRA: u8 = 0x04;
pub(super) const FNAME: u8 = 0x08;
pub(super) const FCOMMENT: u8 = 0x10;

impl Gzip {
    pub(super) fn new() -> Self {
        Gzip {
            state: GzState::Fixed,
            flags: 0,
            acc: [0; 10],
            n: 0,
            head_crc: flate2::Crc::new(),
            inflate: flate2::Decompress::new(false),
            crc: flate2::Crc::new(),
            members: 0,
            buf: vec![0; OUT_PIECE],
        }
    }

    /// The next optional header field, in RFC 1952 order, or the deflate data.
    fn next_field(&mut self) -> GzState {
        for (bit, state) in
            [(FEXTRA, GzState::ExtraLen), (FNAME, GzState::Name), (FCOMMENT, GzState::Comment), (FHCRC, GzState::HeaderCrc)]
        {
            if self.flags & bit != 0 {
                self.flags &= !bit;
                return state;
            }
        }
        GzState::Deflate
    }

    fn header_byte(&mut self, b: u8) -> Step<()> {
        if !matches!(self.state, GzState::HeaderCrc | GzState::Trailer) {
            self.head_crc.update(&[b]);
        }
        match self.state {
            GzState::Fixed => {
                let bad_magic = (self.n == 0 && b != 0x1f) || (self.n == 1 && b != 0x8b);
                if bad_magic {
                    return Err(if self.members > 0 { trailing("gzip") } else { tampered("gzip") });
                }
                // CM must be deflate; reserved FLG bits must be clear (gzip refuses both).
                if (self.n == 2 && b != 8) || (self.n == 3 && b & 0xe0 != 0) {
                    return Err(tampered("gzip"));
                }
                self.acc[self.n] = b;
                self.n += 1;
                if self.n == 10 {
                    self.n = 0;
                    self.flags = self.acc[3];
                    self.state = self.next_field();
                }
            }
            GzState::ExtraLen => {
                self.acc[self.n] = b;
                self.n += 1;
                if self.n == 2 {
                    self.n = 0;
                    let len = u16::from_le_bytes([self.acc[0], self.acc[1]]);
                    self.state = if len > 0 { GzState::Extra(len) } else { self.next_field() };
                }
            }
            GzState::Extra(left) => {
                self.state = if left > 1 { GzState::Extra(left - 1) } else { self.next_field() };
            }
            GzState::Name | GzState::Comment => {
                if b == 0 {
                    self.state = self.next_field();
                }
            }
            GzState::HeaderCrc => {
                self.acc[self.n] = b;
                self.n += 1;
                if self.n == 2 {
                    self.n = 0;
                    if u16::from_le_bytes([self.acc[0], self.acc[1]]) != self.head_crc.sum() as u16 {
                        return Err(tampered("gzip"));
                    }
                    self.state = GzState::Deflate;
                }
            }
            GzState::Trailer => {
                self.acc[self.n] = b;
                self.n += 1;
                if self.n == 8 {
                    self.n = 0;
                    let crc = u32::from_le_bytes([self.acc[0], self.acc[1], self.acc[2], self.acc[3]]);
                    let isize = u32::from_le_bytes([self.acc[4], self.acc[5], self.acc[6], self.acc[7]]);
                    if crc != self.crc.sum() || isize != self.crc.amount() {
                        return Err(tampered("gzip"));
                    }
                    self.members += 1;
                    self.crc.reset();
                    self.head_crc.reset();
                    self.inflate.reset(false);
                    self.state = GzState::Fixed;
                }
            }
            GzState::Deflate => unreachable!("deflate bytes go to inflate()"),
        }
        Ok(())
    }

    /// Inflates from `input` until it is used up or the member's deflate data ends;
    /// returns how many bytes were consumed.
    fn inflate(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<usize> {
        let mut pos = 0;
        loop {
            let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(&input[pos..], &mut self.buf, flate2::FlushDecompress::None)
                .map_err(|_| tampered("gzip"))?;
            let used = (self.inflate.total_in() - in0) as usize;
            let made = (self.inflate.total_out() - out0) as usize;
            pos += used;
            self.crc.update(&self.buf[..made]);
            out(&self.buf[..made])?;
            if status == flate2::Status::StreamEnd {
                self.state = GzState::Trailer;
                return Ok(pos);
            }
            if used == 0 && made == 0 {
                return Ok(pos);
            }
        }
    }
}

impl Codec for Gzip {
    fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        let mut pos = 0;
        while pos < input.len() {
            if self.state == GzState::Deflate {
                pos += self.inflate(&input[pos..], out)?;
            } else {
                self.header_byte(input[pos])?;
                pos += 1;
            }
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        // Complete only between members, after at least one member.
        if self.state == GzState::Fixed && self.n == 0 && self.members > 0 {
            Ok(())
        } else {
            Err(truncated("gzip"))
        }
    }
}
