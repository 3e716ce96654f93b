//! The inner tar as GNU tar 1.34 `--format=gnu --sparse` writes it (§6.4).

use super::*;

pub(super) struct GnuEntry {
    pub(super) mode: u32,
    pub(super) uid: u64,
    pub(super) gid: u64,
    pub(super) uname: &'static [u8],
    pub(super) gname: &'static [u8],
    pub(super) size: u64,
    pub(super) mtime: u64,
    pub(super) typeflag: u8,
    pub(super) linkname: Vec<u8>,
}

impl GnuEntry {
    /// A file read by root from a VM directory (`-C /var/lib/qubes/appvms/<vm>`).
    pub(super) fn file(mode: u32, size: u64, mtime: u64, typeflag: u8) -> GnuEntry {
        GnuEntry { mode, uid: 0, gid: 0, uname: b"root", gname: b"root", size, mtime, typeflag, linkname: Vec::new() }
    }
    /// An entry of the dom0 user's home (uid 1000).
    pub(super) fn home(mode: u32, size: u64, mtime: u64, typeflag: u8) -> GnuEntry {
        GnuEntry {
            mode,
            uid: 1000,
            gid: 1000,
            uname: b"user",
            gname: b"user",
            size,
            mtime,
            typeflag,
            linkname: Vec::new(),
        }
    }
}

/// `start_header` for the gnu format: `"ustar  \0"` magic, permission bits only, no device
/// numbers for non-devices, no atime/ctime.
pub(super) fn gnu_header(name: &[u8], e: &GnuEntry) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    put_str(&mut h[0..100], name);
    put_gnu_num(&mut h[100..108], e.mode as u64);
    put_gnu_num(&mut h[108..116], e.uid);
    put_gnu_num(&mut h[116..124], e.gid);
    put_gnu_num(&mut h[124..136], e.size);
    put_gnu_num(&mut h[136..148], e.mtime);
    h[156] = e.typeflag;
    put_str(&mut h[157..257], &e.linkname);
    h[257..265].copy_from_slice(b"ustar  \0");
    put_str(&mut h[265..297], e.uname);
    put_str(&mut h[297..329], e.gname);
    h
}

/// `write_gnu_long_link`: a `././@LongLink` pseudo-member of type 'L' or 'K' holding the name
/// plus its NUL.
pub(super) fn gnu_long_link(out: &mut Vec<u8>, value: &[u8], typeflag: u8) {
    let ent = GnuEntry::file(0o644, value.len() as u64 + 1, 0, typeflag);
    let mut h = gnu_header(b"././@LongLink", &ent);
    put_checksum(&mut h);
    out.extend_from_slice(&h);
    out.extend_from_slice(value);
    out.push(0);
    pad_to(out, BLOCK);
}

/// One header (with 'K'/'L' pseudo-members first when the link target or name exceeds 100 bytes).
pub(super) fn gnu_member(out: &mut Vec<u8>, name: &str, e: &GnuEntry) {
    if e.linkname.len() > 100 {
        gnu_long_link(out, &e.linkname, b'K');
    }
    if name.len() > 100 {
        gnu_long_link(out, name.as_bytes(), b'L');
    }
    let mut h = gnu_header(name.as_bytes(), e);
    put_checksum(&mut h);
    out.extend_from_slice(&h);
}

/// `write_eot`: two zero blocks, then the record is filled.
pub(super) fn gnu_finish(out: &mut Vec<u8>) {
    out.resize(out.len() + 2 * BLOCK, 0);
    pad_to(out, RECORD);
}

/// The map `sparse_scan_file_seek` would find on a 4096-byte-block filesystem where exactly
/// the runs were written: runs widened to whole blocks, clipped at the size, merged, and then
/// **always** `(size, 0)`: the final SEEK_DATA at the end fails with ENXIO, which GNU tar
/// records as an empty last segment even when the file ends in data. `None` when nothing is a
/// hole (ST_IS_SPARSE false → a plain '0' member).
pub fn gnu_seek_sparse_map(image: &Image) -> Option<Vec<(u64, u64)>> {
    let mut map: Vec<(u64, u64)> = Vec::new();
    for (off, len) in image.sorted_runs() {
        let start = off / FS_BLOCK * FS_BLOCK;
        let end = ((off + len).div_ceil(FS_BLOCK) * FS_BLOCK).min(image.size);
        match map.last_mut() {
            Some(last) if last.0 + last.1 >= start => last.1 = end.max(last.0 + last.1) - last.0,
            _ => map.push((start, end - start)),
        }
    }
    let allocated: u64 = map.iter().map(|&(_, l)| l).sum();
    // ST_IS_SPARSE: fewer 512-byte blocks allocated than the size needs.
    if allocated.div_ceil(FS_BLOCK) * (FS_BLOCK / 512) >= image.size.div_ceil(512) {
        return None;
    }
    map.push((image.size, 0));
    Some(map)
}

pub(super) fn put_sparse(field: &mut [u8], (off, len): (u64, u64)) {
    put_gnu_num(&mut field[0..12], off);
    put_gnu_num(&mut field[12..24], len);
}

/// `oldgnu_dump_header` + `sparse_dump_region` + `write_eot`.
pub(super) fn gnu_sparse_tar(path: &str, image: &Image, mtime: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(map) = gnu_seek_sparse_map(image) else {
        gnu_member(&mut out, path, &GnuEntry::file(0o644, image.size, mtime, b'0'));
        out.extend_from_slice(&image.read(0, image.size));
        pad_to(&mut out, BLOCK);
        gnu_finish(&mut out);
        return out;
    };
    let stored: u64 = map.iter().map(|&(_, l)| l).sum();
    if path.len() > 100 {
        gnu_long_link(&mut out, path.as_bytes(), b'L');
    }
    let mut h = gnu_header(path.as_bytes(), &GnuEntry::file(0o644, stored, mtime, b'S'));
    for (i, &entry) in map.iter().take(4).enumerate() {
        put_sparse(&mut h[386 + 24 * i..410 + 24 * i], entry);
    }
    h[482] = (map.len() > 4) as u8;
    put_gnu_num(&mut h[483..495], image.size);
    put_checksum(&mut h);
    out.extend_from_slice(&h);
    let mut rest = &map[map.len().min(4)..];
    while !rest.is_empty() {
        let mut ext = [0u8; BLOCK];
        let n = rest.len().min(21);
        for (i, &entry) in rest[..n].iter().enumerate() {
            put_sparse(&mut ext[24 * i..24 * (i + 1)], entry);
        }
        rest = &rest[n..];
        ext[504] = (!rest.is_empty()) as u8;
        out.extend_from_slice(&ext);
    }
    // Each region is padded to 512 on its own (only the last can be unaligned here).
    for &(o, l) in &map {
        out.extend_from_slice(&image.read(o, l));
        pad_to(&mut out, BLOCK);
    }
    gnu_finish(&mut out);
    out
}
