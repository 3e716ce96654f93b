//! Format 2's GNU multi-volume tar (FORMAT.md §9.2): `tar -c --tape-length 100000` cut the
//! inner tar of a file into volumes of 102 400 000 bytes, and each volume is a piece of its own.
//! A volume that starts inside a member begins with a GNU `'M'` continuation header (no ustar
//! magic; `size` = the member's bytes still to come, the `offset` field at 369 = where they sit
//! in the real file), possibly after a `'V'` volume label.
//!
//! [`VolumeJoiner`] turns the volumes back into the one ordinary tar stream that `tar -M` would
//! have read, so the inner tar reader (`format::inner_tar`) runs unchanged: it walks the member
//! headers just enough to know, at each volume boundary, whether a member continues and with how
//! many bytes; it checks the `'M'` header against that (name and remaining size), drops it and
//! any label, and passes every other byte through untouched.
//!
//! GNU tar also writes an `'M'` header when a volume starts exactly at a member's header (it
//! registered the member before its header reached the full record): `offset` 0, `size` the
//! whole member; the member's own header follows. Like `tar -M` we drop it.
//! Not handled (refused, never misread): a volume boundary inside old-GNU sparse extension
//! blocks, or inside the data of a GNU long-name pseudo member.
//!
//! Every call names the volume being read (`at`), for errors.

use crate::error::{Check, Cut, Error, Fault, Result, Step, TarFault};
use crate::format::tar::{self, cstr, pad_of, BLOCK};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At a member boundary: the next block is a header (or a zero block).
    Header,
    /// Inside the extension blocks of an old-GNU sparse header.
    SparseExt,
    /// Member data: `left` bytes to come, `pad` of them block padding.
    Data { left: u64, pad: u64 },
}

/// Joins the volumes of one file into one tar stream.
pub struct VolumeJoiner {
    state: State,
    blk: [u8; BLOCK],
    blk_len: usize,
    /// At the start of a volume: labels and the continuation come first.
    volume_start: bool,
    /// The name field (raw, NUL-trimmed) of the member whose data is being passed.
    member_name: Vec<u8>,
    /// Its stored size (old-GNU sparse: the data after the extension blocks).
    member_size: u64,
}

fn tampered(why: impl Into<String>) -> Fault {
    Fault::Tampered(Check::MultiVolume(why.into()))
}

fn member_header(fault: TarFault) -> Fault {
    Fault::Tampered(Check::InnerTar(fault))
}

impl Default for VolumeJoiner {
    fn default() -> Self {
        Self::new()
    }
}

impl VolumeJoiner {
    pub fn new() -> VolumeJoiner {
        VolumeJoiner { state: State::Header, blk: [0; BLOCK], blk_len: 0, volume_start: true, member_name: Vec::new(), member_size: 0 }
    }

    /// Bytes of the current volume, in order; the joined stream goes to `out`.
    pub fn feed(&mut self, at: &str, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.feed_blocks(input, out).map_err(|f| f.at(at))
    }

    fn feed_blocks(&mut self, mut input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        while !input.is_empty() {
            if let State::Data { left, pad } = self.state {
                if !self.volume_start && left > 0 {
                    // Member data passes straight through, in the sizes it came in.
                    let n = (left.min(input.len() as u64)) as usize;
                    out(&input[..n])?;
                    input = &input[n..];
                    self.state = State::Data { left: left - n as u64, pad };
                    if left - n as u64 == 0 {
                        self.state = State::Header;
                    }
                    continue;
                }
                if left == 0 {
                    self.state = State::Header;
                }
            }
            // Collect one block.
            let take = (BLOCK - self.blk_len).min(input.len());
            self.blk[self.blk_len..self.blk_len + take].copy_from_slice(&input[..take]);
            self.blk_len += take;
            input = &input[take..];
            if self.blk_len == BLOCK {
                self.blk_len = 0;
                let block = self.blk;
                self.block(&block, out)?;
            }
        }
        Ok(())
    }

    /// One whole block at a header position (or the first block of a continuation volume).
    fn block(&mut self, b: &[u8; BLOCK], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        let header = tar::Header(b);
        let continues = matches!(self.state, State::Data { left, .. } if left > 0);
        if self.volume_start && tar::is_zero(b) {
            // The end-of-archive marker alone in the last volume.
            if continues {
                return Err(tampered("a volume lacks the continuation header of the member it continues"));
            }
            self.volume_start = false;
        }
        if self.volume_start {
            if !header.checksum_ok() {
                return Err(tampered("header checksum"));
            }
            match header.typeflag() {
                // A volume label (`tar -V`): nothing of the archive.
                b'V' => return Ok(()),
                b'M' if !continues => {
                    // Announces the member whose header follows (see the module comment).
                    if tar::number(&b[369..381]) != Some(0) {
                        return Err(tampered("a continuation header where no member continues"));
                    }
                    return Ok(());
                }
                b'M' => {
                    let (left, pad) = match self.state {
                        State::Data { left, pad } => (left, pad),
                        _ => (0, 0),
                    };
                    let remaining = left.saturating_sub(pad);
                    if cstr(&b[..100]) != self.member_name.as_slice() || header.size() != Some(remaining) {
                        return Err(tampered(format!(
                            "continuation of {:?} with {:?} bytes, expected {:?} with {remaining}",
                            String::from_utf8_lossy(cstr(&b[..100])),
                            header.size(),
                            String::from_utf8_lossy(&self.member_name)
                        )));
                    }
                    self.volume_start = false;
                    return Ok(());
                }
                _ => {
                    if continues {
                        return Err(tampered("a volume lacks the continuation header of the member it continues"));
                    }
                    self.volume_start = false;
                }
            }
        }
        out(b)?;
        match self.state {
            State::SparseExt => {
                if b[504] == 0 {
                    self.start_data(self.member_size)?;
                }
            }
            State::Header | State::Data { .. } => {
                if tar::is_zero(b) {
                    return Ok(());
                }
                if !header.checksum_ok() {
                    return Err(member_header(TarFault::HeaderChecksum));
                }
                let size = header.size().ok_or_else(|| member_header(TarFault::HeaderNumber))?;
                self.member_name = cstr(&b[..100]).to_vec();
                self.member_size = size;
                if header.typeflag() == b'S' && b[482] != 0 {
                    self.state = State::SparseExt;
                } else {
                    self.start_data(size)?;
                }
            }
        }
        Ok(())
    }

    fn start_data(&mut self, size: u64) -> Step<()> {
        let pad = pad_of(size);
        let left = size.checked_add(pad).ok_or_else(|| member_header(TarFault::HeaderNumber))?;
        self.state = if left == 0 { State::Header } else { State::Data { left, pad } };
        Ok(())
    }

    /// The current volume is complete. The next one (if any) may begin with a continuation.
    pub fn end_volume(&mut self, at: &str) -> Result<()> {
        if self.blk_len != 0 {
            return Err(tampered("a volume is not whole 512-byte blocks").at(at));
        }
        if self.state == State::SparseExt {
            return Err(Error::unsupported("a format 2 volume that ends inside a sparse header"));
        }
        if self.volume_start {
            return Err(Error::truncated(at, Cut::MultiVolume("a multi-volume tar volume holds nothing".into())));
        }
        self.volume_start = true;
        Ok(())
    }

    /// The last volume was ended: a member still waiting for its continuation is cut short.
    pub fn finish(&mut self, at: &str) -> Result<()> {
        match self.state {
            State::Data { left, .. } if left > 0 => Err(Error::truncated(
                at,
                Cut::MultiVolume(format!("the multi-volume tar ends inside {:?} ({left} bytes missing)", String::from_utf8_lossy(&self.member_name))),
            )),
            State::SparseExt => Err(Error::truncated(at, Cut::MultiVolume("the multi-volume tar ends inside a sparse header".into()))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
