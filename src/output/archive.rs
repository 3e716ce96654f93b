//! One download for a whole restore (the page's "One archive"): a POSIX tar whose members are the
//! restored files, each under `<folder>/<download name>`.
//!
//! A file with holes is a GNU sparse 1.0 member (PAX `GNU.sparse.*` records, the map at the
//! start of its data): only its data is stored, so a 20 GiB image with 20 MiB of data downloads
//! as ~20 MiB, and GNU tar and bsdtar (libarchive: macOS' and Windows' built-in `tar`) give back
//! an image of the full size whose holes are holes (GNU tar needs no flag; bsdtar seeks over
//! them). A file without holes is a plain member. Every member carries its name in a PAX `path`
//! record, so no name is ever cut to ustar's 100 bytes.
//!
//! Written by hand because the stream is assembled by the page from parts it already holds (the
//! data of each file, in its sink): the core only makes the bytes around them, from the file's
//! size and data runs. The `tar` crate builds whole entries from readers, and has no GNU sparse
//! writer.

use crate::error::{Error, Result};

const BLOCK: usize = 512;

/// Everything the archive holds goes under this folder: `qubes-rescue-<qube>` for one qube,
/// `qubes-rescue-<n>-qubes` for more. The archive file is this name plus `.tar`.
pub fn folder(qubes: &[String]) -> String {
    match qubes {
        [one] => format!("qubes-rescue-{}", super::names::download_name(one.as_bytes())),
        _ => format!("qubes-rescue-{}-qubes", qubes.len()),
    }
}

/// One member of the archive: its headers, then its data as `pieces` (in order), then `padding`
/// zeros.
#[derive(Debug, PartialEq, Eq)]
pub struct Member {
    pub header: Vec<u8>,
    pub pieces: Vec<Piece>,
    pub padding: usize,
}

/// A piece of a member's data: zeros, or bytes `from..to` of the file's data (the bytes of its
/// runs, one after another, as the page holds them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    Zeros(u64),
    Data { from: u64, to: u64 },
}

/// The member `path`: `size` bytes whose data lies in `runs` (offset, length: in order, not
/// overlapping, not empty, within `size`), everything else zeros.
///
/// GNU tar reads each region of a sparse map as whole 512-byte blocks, so the map's regions are
/// the runs widened to block boundaries (and merged where they then touch); the zeros that
/// widening adds are pieces of their own. libarchive reads the same bytes.
pub fn member(path: &str, size: u64, runs: &[(u64, u64)], mtime: u64) -> Result<Member> {
    let b = BLOCK as u64;
    let mut end = 0u64;
    for &(off, len) in runs {
        let stop = off.checked_add(len).filter(|&s| len > 0 && off >= end && s <= size);
        end = stop.ok_or_else(|| Error::Internal(format!("archive member {path}: run ({off}, {len}) is out of order or outside {size} bytes")))?;
    }
    let data: u64 = runs.iter().map(|&(_, l)| l).sum();
    let mut records = Vec::new();
    let mut header = Vec::new();
    if data == size {
        // No holes: a plain member.
        pax_record(&mut records, "path", path.as_bytes());
        if size >= 1 << 33 {
            pax_record(&mut records, "size", size.to_string().as_bytes());
        }
        pax_block(&mut header, &records, mtime);
        header.extend_from_slice(&ustar("qubes-rescue.data", if size >= 1 << 33 { 0 } else { size }, mtime));
        let pieces = if size > 0 { vec![Piece::Data { from: 0, to: size }] } else { Vec::new() };
        return Ok(Member { header, pieces, padding: padding(size) });
    }
    // The map: each run widened to whole blocks, merged where they then touch.
    let mut regions: Vec<(u64, u64)> = Vec::new(); // start, end
    for &(off, len) in runs {
        let (start, stop) = (off - off % b, (off + len).next_multiple_of(b).min(size));
        match regions.last_mut() {
            Some(last) if start <= last.1 => last.1 = stop,
            _ => regions.push((start, stop)),
        }
    }
    // Its data: in each region, the runs it holds, and zeros around them.
    let mut pieces = Vec::new();
    let (mut from, mut next) = (0u64, runs.iter().peekable());
    for &(start, stop) in &regions {
        let mut at = start;
        while let Some(&&(off, len)) = next.peek() {
            if off >= stop {
                break;
            }
            push_zeros(&mut pieces, off - at);
            pieces.push(Piece::Data { from, to: from + len });
            from += len;
            at = off + len;
            next.next();
        }
        push_zeros(&mut pieces, stop - at);
    }
    let mut map: Vec<(u64, u64)> = regions.iter().map(|&(s, e)| (s, e - s)).collect();
    // a file that ends in a hole gets a last (size, 0) entry, as GNU tar writes it
    if map.last().is_none_or(|&(o, l)| o + l < size) {
        map.push((size, 0));
    }
    let stored_data: u64 = map.iter().map(|&(_, l)| l).sum();
    let mut map_text = format!("{}\n", map.len()).into_bytes();
    for (o, l) in &map {
        map_text.extend_from_slice(format!("{o}\n{l}\n").as_bytes());
    }
    map_text.resize(map_text.len().next_multiple_of(BLOCK), 0);
    let stored = map_text.len() as u64 + stored_data;
    pax_record(&mut records, "GNU.sparse.major", b"1");
    pax_record(&mut records, "GNU.sparse.minor", b"0");
    pax_record(&mut records, "GNU.sparse.name", path.as_bytes());
    pax_record(&mut records, "GNU.sparse.realsize", size.to_string().as_bytes());
    if stored >= 1 << 33 {
        pax_record(&mut records, "size", stored.to_string().as_bytes());
    }
    pax_block(&mut header, &records, mtime);
    // What a tar without GNU sparse support extracts instead (the map, then the data).
    let base = path.rsplit('/').next().unwrap_or(path);
    header.extend_from_slice(&ustar(&format!("GNUSparseFile.0/{}", truncate(base, 80)), if stored >= 1 << 33 { 0 } else { stored }, mtime));
    header.extend_from_slice(&map_text);
    Ok(Member { header, pieces, padding: padding(stored_data) })
}

fn push_zeros(pieces: &mut Vec<Piece>, n: u64) {
    if n > 0 {
        pieces.push(Piece::Zeros(n));
    }
}

/// Zeros after a member's `data` bytes, up to the next block.
pub fn padding(data: u64) -> usize {
    ((BLOCK as u64 - data % BLOCK as u64) % BLOCK as u64) as usize
}

/// The end of the archive: two zero blocks.
pub fn end() -> Vec<u8> {
    vec![0; 2 * BLOCK]
}

/// `"<len> key=value\n"` where len counts the whole record, its own digits included.
pub fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let l = key.len() + value.len() + 3;
    let mut p = 0;
    loop {
        let n = l + p.to_string().len();
        if n == p {
            break;
        }
        p = n;
    }
    out.extend_from_slice(format!("{p} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn pax_block(out: &mut Vec<u8>, records: &[u8], mtime: u64) {
    let mut h = ustar("PaxHeader", records.len() as u64, mtime);
    h[156] = b'x';
    checksum(&mut h);
    out.extend_from_slice(&h);
    out.extend_from_slice(records);
    out.resize(out.len().next_multiple_of(BLOCK), 0);
}

/// A ustar header of a regular file, mode 0644, owned by root.
fn ustar(name: &str, size: u64, mtime: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let name = truncate(name, 100);
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime.min(0o77777777777));
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    checksum(&mut h);
    h
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut n = s.len().min(max);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

fn checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    h[154] = 0;
    h[155] = b' ';
}

#[cfg(test)]
mod tests;
