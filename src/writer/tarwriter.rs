//! The inner tar of an LVM volume as Qubes' tarwriter writes it: PAX GNU sparse 1.0 (§6.3).

use super::*;

/// `get_sparse_map`: maximal runs of non-zero 512-byte blocks; a trailing partial block is
/// always data (its slice never equals the 512-byte zero block); `(size, 0)` when the image
/// ends in zeros.
pub fn tarwriter_sparse_map(image: &Image) -> Vec<(u64, u64)> {
    let b = BLOCK as u64;
    let size = image.size;
    // Only blocks some run touches can be non-zero.
    let mut candidates: Vec<(u64, u64)> = Vec::new(); // block ranges [first, end)
    for (off, len) in image.sorted_runs() {
        let (first, end) = (off / b, (off + len).div_ceil(b));
        match candidates.last_mut() {
            Some(last) if last.1 >= first => last.1 = last.1.max(end),
            _ => candidates.push((first, end)),
        }
    }
    let full_blocks = size / b;
    let mut data_blocks: Vec<(u64, u64)> = Vec::new(); // byte ranges
    let mut push = |off: u64, len: u64| match data_blocks.last_mut() {
        Some(last) if last.0 + last.1 == off => last.1 += len,
        _ => data_blocks.push((off, len)),
    };
    for (first, end) in candidates {
        for blk in first..end.min(full_blocks) {
            if image.read(blk * b, b).iter().any(|&x| x != 0) {
                push(blk * b, b);
            }
        }
    }
    if size % b != 0 {
        push(full_blocks * b, size % b);
    }
    match data_blocks.last() {
        Some(&(o, l)) if o + l == size => {}
        _ => data_blocks.push((size, 0)),
    }
    data_blocks
}

/// Python `tarfile._create_header` as in current CPython (3.11.4+, R4.2/R4.3 dom0): device
/// fields of non-devices are left NUL (Python 3.8 of R4.1 wrote "0000000\0" there).
pub(super) fn python_header(name: &str, mode: u32, size: u64, typeflag: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    put_str(&mut h[0..100], name.as_bytes());
    put_octal(&mut h[100..108], mode as u64);
    put_octal(&mut h[108..116], 0);
    put_octal(&mut h[116..124], 0);
    put_octal(&mut h[124..136], size);
    put_octal(&mut h[136..148], 0);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put_checksum(&mut h);
    h
}

/// The pax header, ustar header and NUL-padded map text of a tarwriter member.
pub(super) fn pax10_headers(path: &str, map: &[(u64, u64)], pid: u32) -> Vec<u8> {
    let realsize = map.last().map_or(0, |&(o, l)| o + l);
    let mut map_txt = format!("{}\n", map.len());
    for (o, l) in map {
        map_txt.push_str(&format!("{o}\n{l}\n"));
    }
    let mut map_buf = map_txt.into_bytes();
    pad_to(&mut map_buf, BLOCK);
    let stored = map_buf.len() as u64 + map.iter().map(|&(_, l)| l).sum::<u64>();
    let mut records = Vec::new();
    pax_record(&mut records, "GNU.sparse.major", b"1");
    pax_record(&mut records, "GNU.sparse.minor", b"0");
    pax_record(&mut records, "GNU.sparse.name", path.as_bytes());
    pax_record(&mut records, "GNU.sparse.realsize", realsize.to_string().as_bytes());
    let ustar_size = if stored >= 1u64 << 33 {
        pax_record(&mut records, "size", stored.to_string().as_bytes());
        0
    } else {
        stored
    };
    let (dir, base) = match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    };
    let mut out = Vec::new();
    out.extend_from_slice(&python_header("././@PaxHeader", 0, records.len() as u64, b'x'));
    out.extend_from_slice(&records);
    pad_to(&mut out, BLOCK);
    out.extend_from_slice(&python_header(&format!("{dir}/GNUSparseFile.{pid}/{base}"), 0o644, ustar_size, b'0'));
    out.extend_from_slice(&map_buf);
    out
}

pub(super) fn pax10_tar(path: &str, image: &Image) -> Vec<u8> {
    let map = tarwriter_sparse_map(image);
    let mut out = pax10_headers(path, &map, std::process::id());
    for &(o, l) in &map {
        out.extend_from_slice(&image.read(o, l));
    }
    // finalize(): two zero blocks, no padding of the last run nor of the archive.
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}
