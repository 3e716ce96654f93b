//! The outer layer as GNU tar 1.34 writes it: `tar -cO --posix -C <tmpdir> <name>` (§2.1).

use super::*;

/// GNU tar `code_timespec`: seconds, then `.` and the nanoseconds without trailing zeros.
pub(super) fn timespec(sec: u64, ns: u32) -> String {
    if ns == 0 {
        return sec.to_string();
    }
    let frac = format!("{ns:09}");
    format!("{sec}.{}", frac.trim_end_matches('0'))
}

pub(super) fn outer_member(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let start = out.len();
    let (sec, ns) = now();
    let ts = timespec(sec, ns);
    let mut records = Vec::new();
    if name.len() > 100 {
        pax_record(&mut records, "path", name.as_bytes());
    }
    if ns != 0 {
        pax_record(&mut records, "mtime", ts.as_bytes());
    }
    pax_record(&mut records, "atime", ts.as_bytes());
    pax_record(&mut records, "ctime", ts.as_bytes());
    // xheader_xhdr_name: "%d/PaxHeaders/%f", %d = dirname ("." for a top-level file).
    let (dir, base) = match name.rfind('/') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (".", name),
    };
    let xname = format!("{dir}/PaxHeaders/{base}");
    // start_private_header: mode 0644, uid/gid 0, the file's mtime, ustar magic, no names.
    let mut x = [0u8; BLOCK];
    put_str(&mut x[0..100], xname.as_bytes());
    put_octal(&mut x[100..108], 0o644);
    put_octal(&mut x[108..116], 0);
    put_octal(&mut x[116..124], 0);
    put_octal(&mut x[124..136], records.len() as u64);
    put_octal(&mut x[136..148], sec);
    x[156] = b'x';
    x[257..263].copy_from_slice(b"ustar\0");
    x[263..265].copy_from_slice(b"00");
    put_checksum(&mut x);
    out.extend_from_slice(&x);
    out.extend_from_slice(&records);
    pad_to(out, BLOCK);
    // The ustar header proper, POSIX flavour (devmajor/devminor written as 0).
    let mut h = [0u8; BLOCK];
    put_str(&mut h[0..100], name.as_bytes());
    put_octal(&mut h[100..108], 0o644);
    put_octal(&mut h[108..116], 0);
    put_octal(&mut h[116..124], 0);
    put_octal(&mut h[124..136], data.len() as u64);
    put_octal(&mut h[136..148], sec);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put_str(&mut h[265..297], b"root");
    put_str(&mut h[297..329], b"root");
    put_octal(&mut h[329..337], 0);
    put_octal(&mut h[337..345], 0);
    put_checksum(&mut h);
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    pad_to(out, BLOCK);
    out.resize(out.len() + 2 * BLOCK, 0);
    // Each `tar` run pads its own archive to a full record.
    let len = out.len() - start;
    out.resize(start + len.div_ceil(RECORD) * RECORD, 0);
}
