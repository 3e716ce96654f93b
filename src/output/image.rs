//! A restored volume held in memory as sparse extents: only data runs are kept, holes read as
//! zeros. A 20 GiB `private.img` with 500 MiB of data costs about 500 MiB.
//!
//! It is a [`VolumeSink`] (so `restore_file(…, Target::Volume(Box::new(&mut img)), …)` fills it)
//! and a [`ReadAt`] (so the filesystem browser in `fs.rs` reads it). Plain `std`, so the page's
//! worker uses the same code on wasm32.

use crate::error::{Error, Result};
use crate::read_at::ReadAt;
use crate::output::sink::VolumeSink;
use std::collections::BTreeMap;

/// Extents grow by appending until this size, then a new one starts (bounds the slack of `Vec`
/// growth, and keeps a read's split cheap).
const EXTENT_MAX: usize = 1 << 20;
/// Writes are scanned in blocks of this size (aligned to the image) and all-zero blocks are not
/// kept: GNU tar's sparse maps store whole filesystem blocks, zeros included.
const ZERO_BLOCK: u64 = 4096;

/// A sparse image in memory: `len` bytes, data only where `extents` say.
#[derive(Debug, Default, Clone)]
pub struct SparseImage {
    len: u64,
    /// start → bytes; extents never overlap and are never empty.
    extents: BTreeMap<u64, Vec<u8>>,
    stored: u64,
    cap: Option<u64>,
}

impl SparseImage {
    pub fn new() -> SparseImage {
        SparseImage::default()
    }

    /// Refuses (as `unsupported`) to keep more than `cap` bytes of data.
    pub fn with_cap(cap: u64) -> SparseImage {
        SparseImage { cap: Some(cap), ..SparseImage::default() }
    }

    /// The image's full size (holes included).
    pub fn size(&self) -> u64 {
        self.len
    }

    /// Bytes of data held in memory.
    pub fn stored(&self) -> u64 {
        self.stored
    }

    /// The data runs as (offset, length), in order; adjacent extents are reported merged.
    pub fn runs(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (&o, d) in &self.extents {
            match out.last_mut() {
                Some((lo, ll)) if *lo + *ll == o => *ll += d.len() as u64,
                _ => out.push((o, d.len() as u64)),
            }
        }
        out
    }

    /// Fills `buf` from `offset`: data where extents are, zeros in holes. Reading past the end
    /// of the image is an error.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| Error::Io(format!("reading {} bytes at offset {offset} of an image of {} bytes", buf.len(), self.len)))?;
        buf.fill(0);
        // The extent that may contain `offset`, then every extent starting before `end`.
        let first = self.extents.range(..=offset).next_back().map(|(&o, _)| o).unwrap_or(offset);
        for (&start, data) in self.extents.range(first..end) {
            let stop = start + data.len() as u64;
            if stop <= offset {
                continue;
            }
            let from = start.max(offset);
            let to = stop.min(end);
            buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(&data[(from - start) as usize..(to - start) as usize]);
        }
        Ok(())
    }

    fn over(&self, want: u64) -> Error {
        Error::unsupported(format!(
            "an image with more than {} MiB of data in memory (this one needs at least {} MiB); extract it to disk instead",
            self.cap.unwrap_or(0) >> 20,
            want >> 20
        ))
    }

    /// Stores one non-zero block (never crossing an existing extent boundary badly: overlaps
    /// overwrite what is there).
    fn put(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset + data.len() as u64;
        // Overwrite any overlap with existing extents first, collecting the gaps.
        let mut gaps: Vec<(u64, u64)> = Vec::new();
        let mut pos = offset;
        let first = self.extents.range(..=offset).next_back().map(|(&o, _)| o).unwrap_or(offset);
        for (&start, ext) in self.extents.range_mut(first..end) {
            let stop = start + ext.len() as u64;
            if stop <= pos {
                continue;
            }
            if start > pos {
                gaps.push((pos, start));
            }
            let from = start.max(pos);
            let to = stop.min(end);
            ext[(from - start) as usize..(to - start) as usize].copy_from_slice(&data[(from - offset) as usize..(to - offset) as usize]);
            pos = to;
        }
        if pos < end {
            gaps.push((pos, end));
        }
        for (g0, g1) in gaps {
            let bytes = &data[(g0 - offset) as usize..(g1 - offset) as usize];
            let added = bytes.len() as u64;
            if let Some(cap) = self.cap {
                if self.stored + added > cap {
                    return Err(self.over(self.stored + added));
                }
            }
            self.stored += added;
            // Append to the extent ending exactly here when it has room (the usual, in-order case).
            if let Some((_, prev)) = self.extents.range_mut(..g0).next_back().filter(|(&o, d)| o + d.len() as u64 == g0) {
                if prev.len() + bytes.len() <= EXTENT_MAX {
                    prev.extend_from_slice(bytes);
                    continue;
                }
                prev.shrink_to_fit();
            }
            self.extents.insert(g0, bytes.to_vec());
        }
        Ok(())
    }
}

impl VolumeSink for SparseImage {
    /// Sets the full size; data past a smaller size is dropped.
    fn set_len(&mut self, len: u64) -> Result<()> {
        if len < self.len {
            let cut: Vec<u64> = self.extents.range(..).filter(|(&o, d)| o + d.len() as u64 > len).map(|(&o, _)| o).collect();
            for o in cut {
                let mut d = self.extents.remove(&o).expect("listed");
                self.stored -= d.len() as u64;
                if o < len {
                    d.truncate((len - o) as usize);
                    self.stored += d.len() as u64;
                    self.extents.insert(o, d);
                }
            }
        }
        self.len = len;
        Ok(())
    }

    /// Keeps the data, block by block; all-zero blocks stay holes.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset.checked_add(data.len() as u64).ok_or_else(|| self.over(u64::MAX))?;
        let mut pos = offset;
        // Runs of non-zero blocks are stored with one `put` each.
        let mut run: Option<u64> = None;
        while pos < end {
            let next = ((pos / ZERO_BLOCK + 1) * ZERO_BLOCK).min(end);
            let block = &data[(pos - offset) as usize..(next - offset) as usize];
            let zero = block.iter().all(|&b| b == 0);
            match (zero, run) {
                (false, None) => run = Some(pos),
                (true, Some(start)) => {
                    self.put(start, &data[(start - offset) as usize..(pos - offset) as usize])?;
                    run = None;
                }
                _ => {}
            }
            pos = next;
        }
        if let Some(start) = run {
            self.put(start, &data[(start - offset) as usize..])?;
        }
        self.len = self.len.max(end);
        Ok(())
    }
}

impl ReadAt for SparseImage {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.read(offset, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(writes: &[(u64, Vec<u8>)], len: u64) -> Vec<u8> {
        let mut v = vec![0u8; len as usize];
        for (o, d) in writes {
            v[*o as usize..*o as usize + d.len()].copy_from_slice(d);
        }
        v
    }

    #[test]
    fn holes_read_as_zeros_and_reads_cross_extents() {
        let mut img = SparseImage::new();
        img.set_len(1 << 20).unwrap();
        let writes = vec![(100, vec![1u8; 10]), (5000, vec![2u8; 9000]), (8192, vec![3u8; 100]), (70000, vec![4u8; 4096])];
        for (o, d) in &writes {
            img.write_at(*o, d).unwrap();
        }
        let want = naive(&writes, 1 << 20);
        for (o, l) in [(0u64, 1usize << 20), (99, 3), (105, 10000), (8190, 10), (69999, 4098), (1048575, 1), (1048576, 0)] {
            let mut buf = vec![0xffu8; l];
            img.read(o, &mut buf).unwrap();
            assert_eq!(buf, want[o as usize..o as usize + l], "read at {o}+{l}");
        }
        assert!(img.read(1 << 20, &mut [0u8; 1]).is_err());
        assert_eq!(img.stored(), 10 + 9000 + 4096);
    }

    #[test]
    fn memory_is_the_data_not_the_size() {
        let mut img = SparseImage::new();
        img.set_len(20 << 30).unwrap();
        let block = vec![7u8; 1 << 16];
        for i in 0..64u64 {
            img.write_at(i * (300 << 20), &block).unwrap();
        }
        // Zero blocks (GNU tar stores whole filesystem blocks) are not kept.
        img.write_at(5 << 30, &vec![0u8; 1 << 20]).unwrap();
        assert_eq!(img.stored(), 64 << 16);
        assert_eq!(img.size(), 20 << 30);
        let mut buf = vec![0u8; 8];
        img.read((300 << 20) - 4, &mut buf).unwrap();
        assert_eq!(buf, [0, 0, 0, 0, 7, 7, 7, 7]);
    }

    #[test]
    fn in_order_writes_merge_into_bounded_extents_and_cap_is_enforced() {
        let mut img = SparseImage::new();
        for i in 0..600u64 {
            img.write_at(i * 512, &[1u8; 512]).unwrap();
        }
        assert_eq!(img.extents.len(), 1);
        assert_eq!(img.runs(), vec![(0, 600 * 512)]);
        let mut big = SparseImage::new();
        big.write_at(0, &vec![9u8; 3 << 20]).unwrap();
        assert_eq!(big.extents.len(), 1, "one write is one extent");
        big.write_at(3 << 20, &vec![9u8; 3 << 20]).unwrap();
        assert_eq!(big.runs(), vec![(0, 6 << 20)]);
        let mut capped = SparseImage::with_cap(1000);
        capped.write_at(0, &[1u8; 600]).unwrap();
        assert_eq!(capped.write_at(4096, &[1u8; 600]).unwrap_err().class(), "unsupported");
    }

    #[test]
    fn overlapping_writes_and_truncation() {
        let mut img = SparseImage::new();
        let writes = vec![(0u64, vec![1u8; 100]), (50, vec![2u8; 200]), (4000, vec![3u8; 200]), (20, vec![4u8; 4100])];
        for (o, d) in &writes {
            img.write_at(*o, d).unwrap();
        }
        let want = naive(&writes, 4200);
        let mut buf = vec![0u8; 4200];
        img.read(0, &mut buf).unwrap();
        assert_eq!(buf, want);
        img.set_len(60).unwrap();
        assert_eq!(img.stored(), 60);
        img.set_len(5000).unwrap();
        let mut buf = vec![0u8; 5000];
        img.read(0, &mut buf).unwrap();
        assert_eq!(&buf[..60], &want[..60]);
        assert!(buf[60..].iter().all(|&b| b == 0));
    }
}
