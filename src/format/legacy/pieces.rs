//! Pieces (format 3) and volumes (format 2): every stored file is a sequence of outer members
//! `<base>.000`, `<base>.001`, … (`%03d`: `.999` is followed by `.1000`), each followed by its
//! `<base>.NNN.hmac` (FORMAT.md §9). In format 3 a piece is a slice of one encrypted stream;
//! in format 2 a volume is a whole GNU tar volume, encrypted or gzipped on its own.
//!
//! Nothing authenticates the names here (the HMAC covers only a piece's bytes), so everything
//! about them is checked: at most one `.hmac` per piece (none is reported when the piece is read), no gap, no duplicate, and an empty piece only
//! at the end (Qubes' writer starts a new piece before it knows the stream ended, so a stream
//! whose reads fill the last piece exactly ends with an empty one).

use crate::error::{Check, Error, Result};
use crate::format::outer::Member;

/// One piece (or volume) and the `.hmac` text beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub data: Member,
    /// `None`: missing from the backup (cut short after the piece, or dropped); the piece is
    /// then unusable, which its file reports as `truncated` when it reaches it. The backup
    /// still opens, so the files before the damage restore.
    pub hmac: Option<Member>,
}

/// One stored file: `base` (`vm5/private.img`, `vm1/.`, `dom0-home/user`, `qubes.xml`) and
/// its pieces in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceFile {
    pub base: String,
    pub pieces: Vec<Piece>,
}

/// Names that are not pieces.
pub const HEADER_NAMES: [&str; 2] = ["backup-header", "backup-header.hmac"];

/// `vm5/private.img.012` → (`vm5/private.img`, 12): three digits, or more without a leading zero.
pub fn split_piece_name(name: &str) -> Option<(&str, usize)> {
    let (base, digits) = name.rsplit_once('.')?;
    let canonical = digits.len() >= 3 && digits.bytes().all(|b| b.is_ascii_digit()) && (digits.len() == 3 || !digits.starts_with('0'));
    if !canonical || base.is_empty() || base.ends_with('/') {
        return None;
    }
    Some((base, digits.parse().ok()?))
}

/// Groups every outer member but the header's into files, in the order their first piece
/// appears (Qubes' order: qubes.xml, then qube by qube).
pub fn group(members: &[Member]) -> Result<Vec<PieceFile>> {
    let mut files: Vec<PieceFile> = Vec::new();
    let mut index: Vec<Vec<(usize, Member)>> = Vec::new();
    let mut hmacs: Vec<&Member> = Vec::new();
    for m in members {
        if HEADER_NAMES.contains(&m.name.as_str()) {
            continue;
        }
        if m.name.ends_with(".hmac") {
            hmacs.push(m);
            continue;
        }
        let (base, i) = split_piece_name(&m.name)
            .ok_or_else(|| Error::tampered(&m.name, Check::Name("format 3 and 2 pieces are named <file>.NNN".into())))?;
        let at = match files.iter().position(|f| f.base == base) {
            Some(at) => at,
            None => {
                files.push(PieceFile { base: base.to_string(), pieces: Vec::new() });
                index.push(Vec::new());
                files.len() - 1
            }
        };
        index[at].push((i, m.clone()));
    }
    // Every `.hmac` belongs to a piece, once (by name through a map: a terabyte backup has
    // ten thousand pieces).
    let mut by_name: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for (k, h) in hmacs.iter().enumerate() {
        by_name.entry(h.name.as_str()).or_default().push(k);
    }
    let mut used = vec![false; hmacs.len()];
    for (file, mut seq) in files.iter_mut().zip(index) {
        seq.sort_by_key(|(i, _)| *i);
        for (want, (got, m)) in seq.iter().enumerate() {
            if *got < want {
                return Err(Error::tampered(&m.name, Check::PieceDuplicate));
            }
            if *got > want {
                return Err(Error::tampered(&m.name, Check::PieceMissing(want)));
            }
        }
        let last = seq.len() - 1;
        for (n, (_, m)) in seq.into_iter().enumerate() {
            if m.size == 0 && n != last {
                return Err(Error::tampered(&m.name, Check::PieceEmpty));
            }
            let want = format!("{}.hmac", m.name);
            let hmac = match by_name.get(want.as_str()).map(Vec::as_slice) {
                Some([k]) => {
                    used[*k] = true;
                    Some(hmacs[*k].clone())
                }
                Some(_) => return Err(Error::tampered(&want, Check::Uniqueness)),
                None => None,
            };
            file.pieces.push(Piece { data: m, hmac });
        }
    }
    if let Some((k, _)) = used.iter().enumerate().find(|(_, u)| !**u) {
        return Err(Error::tampered(&hmacs[k].name, Check::Name("an HMAC without its piece".into())));
    }
    Ok(files)
}

/// Whether `base` is stored under a qube's `backup_path` (`vm5`, `appvms/work`,
/// `dom0-home/user`): equal, or below it by whole path components, so `vm5` never takes
/// `vm50/…`. An empty path (a qube not in the backup) matches nothing.
pub fn under(backup_path: &str, base: &str) -> bool {
    let path = backup_path.trim_end_matches('/');
    !path.is_empty() && (base == path || base.strip_prefix(path).is_some_and(|rest| rest.starts_with('/')))
}

#[cfg(test)]
mod tests;
