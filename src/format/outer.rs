//! The outer layer: a concatenation of small POSIX tar archives, one per member
//! (FORMAT.md §2). It is not authenticated, so everything here is checked and capped,
//! and only headers are read: indexing a multi-GB backup touches a few KiB per member.

use crate::error::{Check, Cut, Error, Limit, Location, Result};
use crate::format::tar::{self, cstr, is_zero, Header};
use crate::read_at::ReadAt;

const BLOCK: u64 = tar::BLOCK as u64;
/// GNU tar's default record: each `tar -cO` archive is padded to a multiple of it.
const RECORD: u64 = 10240;
/// Largest outer member Qubes writes: a 100 MiB chunk plus the scrypt overhead.
pub const MAX_MEMBER: u64 = 100 * 1024 * 1024 + 128;
/// pax extended headers and GNU long names are tiny in real backups.
const MAX_META: u64 = 64 * 1024;

/// One member of the outer archive: where its data is in the backup file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Offset of the first data byte in the backup file.
    pub offset: u64,
    pub size: u64,
    /// The backup file ends inside this member's data.
    pub cut: bool,
}

impl Member {
    /// Reads the whole member, refusing more than `cap` bytes or a member cut short.
    pub fn read(&self, src: &(impl ReadAt + ?Sized), cap: u64) -> Result<Vec<u8>> {
        if self.size > cap {
            return Err(Error::over_limit(&self.name, Limit::MemberSize, self.size, cap));
        }
        if self.cut {
            return Err(Error::truncated(&self.name, Cut::Member));
        }
        src.read_vec(self.offset, self.size as usize)
    }
}

/// The one member named `name`, if any: a name twice is `tampered` (which would be used?).
pub fn find_one<'m>(members: &'m [Member], name: &str) -> Result<Option<&'m Member>> {
    let mut found = members.iter().filter(|m| m.name == name);
    let first = found.next();
    if found.next().is_some() {
        return Err(Error::tampered(name, Check::Uniqueness));
    }
    Ok(first)
}

/// pax records of an outer member: only `path` and `size` matter; returns their overrides.
fn pax_overrides(data: &[u8], at: &Location) -> Result<(Option<Vec<u8>>, Option<u64>)> {
    let bad = || Error::tampered(at.clone(), Check::PaxHeader);
    let (mut path, mut size) = (None, None);
    for record in tar::pax_records(data) {
        match record.map_err(|()| bad())? {
            (b"path", value) => path = Some(value.to_vec()),
            (b"size", value) => size = Some(tar::decimal(value).ok_or_else(bad)?),
            _ => {}
        }
    }
    Ok((path, size))
}

/// Outer member names are short relative ASCII paths (`vm12/private.img.003.enc`).
fn check_name(name: &[u8], at: &Location) -> Result<String> {
    let text = std::str::from_utf8(name)
        .ok()
        .filter(|s| s.is_ascii() && !s.is_empty() && !s.contains('\0') && !s.chars().any(|c| c.is_ascii_control()))
        .ok_or_else(|| Error::unsafe_path(String::from_utf8_lossy(name), "outer member names are ASCII"))?;
    let text = text.strip_prefix("./").unwrap_or(text);
    if text.starts_with('/') || text.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(Error::unsafe_path(text, format!("not a plain relative member name ({at})")));
    }
    Ok(text.to_string())
}

/// Indexes every regular-file member, skipping zero blocks between the archives like
/// `tar --ignore-zeros`. A backup cut short keeps the members before the cut.
pub fn index(src: &(impl ReadAt + ?Sized)) -> Result<Vec<Member>> {
    let len = src.len();
    let mut members = Vec::new();
    let mut offset = 0u64;
    let (mut next_path, mut next_size): (Option<Vec<u8>>, Option<u64>) = (None, None);
    let mut block = [0u8; BLOCK as usize];
    loop {
        if offset >= len {
            break;
        }
        if len - offset < BLOCK {
            let mut tail = vec![0u8; (len - offset) as usize];
            src.read_at(offset, &mut tail)?;
            if is_zero(&tail) {
                break;
            }
            return Err(Error::truncated(Location::file("backup file", offset), Cut::TarHeader));
        }
        src.read_at(offset, &mut block)?;
        if is_zero(&block) {
            // Padding between archives: read up to the next 10240-byte record boundary in one
            // go (GNU tar pads each archive to one) instead of block by block.
            let record_end = ((offset / RECORD) + 1) * RECORD;
            let span = (record_end.min(len) - offset) / BLOCK * BLOCK;
            let pad = src.read_vec(offset, span as usize)?;
            let zeros = pad.chunks(BLOCK as usize).take_while(|b| is_zero(b)).count() as u64;
            offset += zeros.max(1) * BLOCK;
            continue;
        }
        let at = Location::file("backup file", offset);
        let header = Header(&block);
        if !header.checksum_ok() || !header.is_ustar() {
            if members.is_empty() {
                return Err(Error::not_a_backup("it does not start with a tar archive"));
            }
            return Err(Error::tampered(at, Check::TarChecksum));
        }
        let typeflag = header.typeflag();
        let size = match next_size.take() {
            Some(s) => s,
            None => header.size().ok_or_else(|| Error::tampered(at.clone(), Check::TarSize))?,
        };
        let data = offset + BLOCK;
        let padded = size.checked_add(BLOCK - 1).map(|s| s / BLOCK * BLOCK).ok_or_else(|| Error::tampered(at.clone(), Check::TarSize))?;
        let end = data.checked_add(padded).ok_or_else(|| Error::tampered(at.clone(), Check::TarSize))?;
        let cut = data.saturating_add(size) > len;
        match typeflag {
            b'x' | b'L' => {
                if size > MAX_META {
                    return Err(Error::over_limit(at, Limit::TarMetadata, size, MAX_META));
                }
                if cut {
                    return Err(Error::truncated(at, Cut::TarHeader));
                }
                let meta = src.read_vec(data, size as usize)?;
                if typeflag == b'x' {
                    let (p, s) = pax_overrides(&meta, &at)?;
                    next_path = p.or(next_path);
                    next_size = s;
                } else {
                    next_path = Some(cstr(&meta).to_vec());
                }
            }
            b'0' | 0 | b'7' => {
                let raw = match next_path.take() {
                    Some(p) => p,
                    None => header.path(),
                };
                let name = check_name(&raw, &at)?;
                if size > MAX_MEMBER {
                    return Err(Error::over_limit(&name, Limit::MemberSize, size, MAX_MEMBER));
                }
                members.push(Member { name, offset: data, size, cut });
            }
            // global pax headers, GNU long link names, directories: nothing to index
            _ => next_path = None,
        }
        if cut {
            break;
        }
        offset = end;
    }
    Ok(members)
}

/// Whether the file ends with a whole archive: the last member's data, then at least
/// the two zero blocks of an end-of-archive marker (Qubes pads each archive to 10240).
pub fn ends_cleanly(src: &(impl ReadAt + ?Sized), members: &[Member]) -> bool {
    let Some(last) = members.last() else { return false };
    if last.cut {
        return false;
    }
    let end = last.offset + last.size.div_ceil(BLOCK) * BLOCK;
    let mut marker = [0u8; 2 * BLOCK as usize];
    src.len() >= end + 2 * BLOCK && src.read_at(end, &mut marker).is_ok() && is_zero(&marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ustar(name: &str, size: usize, flag: u8) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = flag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn archive(name: &str, data: &[u8]) -> Vec<u8> {
        let mut a = ustar(name, data.len(), b'0');
        a.extend_from_slice(data);
        a.resize(a.len().div_ceil(512) * 512 + 1024, 0);
        a.resize(a.len().div_ceil(10240) * 10240, 0);
        a
    }

    #[test]
    fn concatenated_archives_are_all_indexed() {
        let mut b = archive("backup-header", b"version=4\n");
        b.extend(archive("vm5/private.img.000.enc", &[1u8; 700]));
        let m = index(&b).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].name, "vm5/private.img.000.enc");
        assert_eq!(m[1].offset, 10240 + 512);
        assert_eq!(m[1].size, 700);
    }

    #[test]
    fn a_backup_cut_short_keeps_the_members_before_the_cut() {
        let mut b = archive("a.000.enc", b"x");
        b.extend(archive("b.000.enc", &[2u8; 2000]));
        b.truncate(10240 + 1000);
        let m = index(&b).unwrap();
        assert!(!m[0].cut);
        assert!(m[1].cut);
        assert!(matches!(m[1].read(&b, MAX_MEMBER), Err(Error::Truncated { .. })));
    }

    #[test]
    fn a_file_cut_inside_the_last_archive_does_not_end_cleanly() {
        let b = archive("a.000.enc", b"x");
        assert!(ends_cleanly(&b, &index(&b).unwrap()));
        let cut = b[..600].to_vec();
        assert!(!ends_cleanly(&cut, &index(&cut).unwrap()));
    }

    #[test]
    fn a_file_that_is_not_tar_is_not_a_backup() {
        assert!(matches!(index(&vec![7u8; 4096]), Err(Error::NotABackup { .. })));
    }

    #[test]
    fn escaping_member_names_are_refused() {
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b"] {
            assert!(matches!(index(&archive(bad, b"x")), Err(Error::UnsafePath { .. })), "{bad}");
        }
    }

    #[test]
    fn oversized_members_are_refused_without_reading_them() {
        let mut h = ustar("big.000.enc", 0, b'0');
        h[124..135].copy_from_slice(format!("{:011o}", MAX_MEMBER + 1).as_bytes());
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let e = index(&h).unwrap_err();
        assert_eq!(e.class(), "tampered");
        assert!(matches!(e, Error::OverLimit { limit: Limit::MemberSize, value, cap: MAX_MEMBER, .. } if value == MAX_MEMBER + 1), "{e:?}");
    }
}
