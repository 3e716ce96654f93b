//! The 512-byte tar header and pax records, as both tar layers read them (FORMAT.md §2.1,
//! §6): the outer index (one small archive per member) and the inner tar (the stream inside
//! each backed-up file). One reader, so the two layers cannot disagree on a number.
//!
//! Nothing here trusts the bytes: numbers are checked (octal or GNU base-256, never negative,
//! never above `i64::MAX`), and a malformed field is `None` for the caller to name.

/// One tar block.
pub const BLOCK: usize = 512;

/// Padding that brings `n` to a multiple of 512.
pub fn pad_of(n: u64) -> u64 {
    (BLOCK as u64 - n % BLOCK as u64) % BLOCK as u64
}

pub fn is_zero(block: &[u8]) -> bool {
    block.iter().all(|&b| b == 0)
}

/// Bytes up to the first NUL.
pub fn cstr(f: &[u8]) -> &[u8] {
    match f.iter().position(|&b| b == 0) {
        Some(i) => &f[..i],
        None => f,
    }
}

/// An unsigned numeric header field: octal (space-led, NUL/space terminated) or GNU base-256
/// (first byte `0b10xxxxxx`). Negative values and values above `i64::MAX` are `None`.
pub fn number(f: &[u8]) -> Option<u64> {
    if f.is_empty() {
        return Some(0);
    }
    if f[0] & 0x80 != 0 {
        if f[0] & 0x40 != 0 {
            return None; // base-256 negative
        }
        let mut v = (f[0] & 0x3f) as u64;
        for &b in &f[1..] {
            if v >> 55 != 0 {
                return None;
            }
            v = (v << 8) | b as u64;
        }
        return (v <= i64::MAX as u64).then_some(v);
    }
    let mut i = 0;
    while i < f.len() && f[i] == b' ' {
        i += 1;
    }
    let mut v: u64 = 0;
    while i < f.len() && (b'0'..=b'7').contains(&f[i]) {
        if v > (i64::MAX as u64) >> 3 {
            return None;
        }
        v = (v << 3) | (f[i] - b'0') as u64;
        i += 1;
    }
    if i < f.len() && f[i] != 0 && f[i] != b' ' {
        return None;
    }
    Some(v)
}

/// A signed numeric field (mtime): octal, or base-256 two's complement.
pub fn number_signed(f: &[u8]) -> Option<i64> {
    if !f.is_empty() && f[0] & 0xc0 == 0xc0 {
        let mut acc: i128 = -1;
        for (i, &b) in f.iter().enumerate() {
            if i < f.len().saturating_sub(15) {
                // more than 120 bits: only sign bytes allowed
                if b != 0xff {
                    return None;
                }
                continue;
            }
            acc = (acc << 8) | b as i128;
        }
        return i64::try_from(acc).ok();
    }
    number(f).map(|v| v as i64)
}

/// A decimal number from a pax record or a PAX 1.0 sparse map (no sign, no spaces).
pub fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    (n <= i64::MAX as u64).then_some(n)
}

/// One 512-byte header block with typed accessors.
pub struct Header<'a>(pub &'a [u8; BLOCK]);

impl Header<'_> {
    /// The stored checksum matches the block, summed unsigned or (old tars) signed.
    pub fn checksum_ok(&self) -> bool {
        let Some(stored) = number(&self.0[148..156]) else { return false };
        let mut unsigned: u64 = 0;
        let mut signed: i64 = 0;
        for (i, &b) in self.0.iter().enumerate() {
            let b = if (148..156).contains(&i) { b' ' } else { b };
            unsigned += b as u64;
            signed += b as i8 as i64;
        }
        stored == unsigned || stored as i64 == signed
    }

    pub fn typeflag(&self) -> u8 {
        self.0[156]
    }

    pub fn size(&self) -> Option<u64> {
        number(&self.0[124..136])
    }

    pub fn mode(&self) -> Option<u32> {
        number(&self.0[100..108]).map(|m| (m & 0o7777) as u32)
    }

    pub fn mtime(&self) -> Option<i64> {
        number_signed(&self.0[136..148])
    }

    /// `ustar` magic (POSIX `ustar\0` or GNU `ustar `).
    pub fn is_ustar(&self) -> bool {
        &self.0[257..262] == b"ustar"
    }

    /// The name, with the prefix field only where POSIX `ustar\0` headers have one (GNU and
    /// old headers use that area for other data).
    pub fn path(&self) -> Vec<u8> {
        let name = cstr(&self.0[0..100]);
        let prefix = if &self.0[257..263] == b"ustar\0" { cstr(&self.0[345..500]) } else { &[][..] };
        if prefix.is_empty() {
            name.to_vec()
        } else {
            [prefix, b"/", name].concat()
        }
    }

    pub fn link_name(&self) -> &[u8] {
        cstr(&self.0[157..257])
    }
}

/// The records of a pax extended header: `"<len> <key>=<value>\n"`, up to trailing NULs.
/// Yields `Err(())` once for a malformed record, then stops.
pub fn pax_records(data: &[u8]) -> PaxRecords<'_> {
    PaxRecords { rest: data }
}

pub struct PaxRecords<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for PaxRecords<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), ()>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest;
        if is_zero(rest) {
            return None;
        }
        self.rest = &[];
        let Some(sp) = rest.iter().take(21).position(|&b| b == b' ') else { return Some(Err(())) };
        let Some(len) = decimal(&rest[..sp]).map(|l| l as usize) else { return Some(Err(())) };
        if len < sp + 3 || len > rest.len() || rest[len - 1] != b'\n' {
            return Some(Err(()));
        }
        let record = &rest[sp + 1..len - 1];
        let Some(eq) = record.iter().position(|&b| b == b'=') else { return Some(Err(())) };
        self.rest = &rest[len..];
        Some(Ok((&record[..eq], &record[eq + 1..])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_octal_or_base_256_and_never_negative() {
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(b"   17 \0\0\0\0\0\0"), Some(15));
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 0, 2, 0x80, 0, 0, 0]), Some(10 << 30));
        // The outer index and the inner tar once disagreed on base-256: the low bits of the
        // first byte belong to the number (here they overflow i64, so both layers refuse it).
        assert_eq!(number(&[0x81, 0, 0, 0, 0, 0, 0, 0]), Some(1 << 56));
        assert_eq!(number(&[0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(number(&[0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(number(&[0xff; 12]), None);
        assert_eq!(number(b"0000000000x\0"), None);
        assert_eq!(number_signed(&[0xff; 12]), Some(-1));
    }

    #[test]
    fn pax_records_stop_at_the_first_malformed_one() {
        let ok: Vec<_> = pax_records(b"12 path=abc\n9 size=7\n\0\0").collect();
        assert_eq!(ok, vec![Ok((&b"path"[..], &b"abc"[..])), Ok((&b"size"[..], &b"7"[..]))]);
        let bad: Vec<_> = pax_records(b"99 path=abc\n").collect();
        assert_eq!(bad, vec![Err(())]);
        assert_eq!(pax_records(b"no-space-here").collect::<Vec<_>>(), vec![Err(())]);
    }
}
