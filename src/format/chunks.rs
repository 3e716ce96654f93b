//! Chunk sequences (FORMAT.md §2.3): every stored file is cut into members
//! `<file>.000.enc, .001.enc, …` (`%03d`, so `.999` is followed by `.1000`), each a scrypt
//! container whose passphrase binds it to its backup, file and place. This module groups the
//! outer members into files and refuses what Qubes never writes (gaps, duplicates, odd sizes).

use crate::error::{Check, Error, Result};
use crate::format::container;
use crate::format::outer::Member;
use crate::read_at::ReadAt;

/// Salvage follows a sequence past at most this many missing chunks (10 TiB at Qubes' 100 MiB).
pub const MAX_MISSING_CHUNKS: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A volume image (`private.img`, `root.img`): one sparse member.
    Volume,
    /// Any other single file (`firewall.xml`, `notes.txt`, ...).
    Small,
    /// dom0's home folder: a whole tree.
    Home,
}

/// One file as stored in the backup: its chunk sequence, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    /// `vm5/private.img`, or `dom0-home/user`: also the inner tar member's name.
    pub path: String,
    /// `private.img`, or the user name for dom0's home.
    pub name: String,
    pub kind: FileKind,
    /// The chunks present, in sequence order.
    pub chunks: Vec<Member>,
    /// Sequence indices of chunks missing between present ones, ascending. Always empty from
    /// [`Backup::files`] (a gap is refused there); [`Backup::salvage_files`] keeps such files so
    /// that salvage can restore around the gap.
    pub missing: Vec<usize>,
}

impl StoredFile {
    pub fn encrypted_size(&self) -> u64 {
        self.chunks.iter().map(|c| c.size).sum()
    }
}

/// `vm5/private.img.012.enc` → (`vm5/private.img`, 12); the index is `%03d`, so
/// it has three digits, or more without a leading zero (`.999` → `.1000`).
fn split_chunk_name(name: &str) -> Option<(&str, usize)> {
    let stem = name.strip_suffix(".enc")?;
    let (base, digits) = stem.rsplit_once('.')?;
    let canonical = digits.len() >= 3 && digits.bytes().all(|b| b.is_ascii_digit()) && (digits.len() == 3 || !digits.starts_with('0'));
    if !canonical || base.is_empty() {
        return None;
    }
    Some((base, digits.parse().ok()?))
}

/// The passphrase was already proven right by `backup-header`, so a chunk whose
/// header MAC fails was altered, renamed, or comes from another file or backup: say
/// so, instead of the misleading "passphrase is incorrect" `scrypt dec` prints.
pub fn chunk_error(e: Error) -> Error {
    match e {
        Error::WrongPassphrase { member } => {
            Error::tampered(member, Check::ChunkHeaderMac)
        }
        other => other,
    }
}

/// Groups the chunks stored under `path` into files, each a contiguous sequence
/// `.000, .001, …` with no gap or duplicate and equal-sized non-final chunks.
/// `whole`: the chunks of `path` itself form one file of that kind (dom0's home,
/// qubes.xml); otherwise every `path/<name>.NNN.enc` is a file of the folder `path`.
pub fn sequences(members: &[Member], path: &str, whole: Option<FileKind>) -> Result<Vec<StoredFile>> {
    group(members, path, whole, false)
}

/// Like [`sequences`], but a chunk missing between present ones (a dropped or unreadable
/// member) is recorded in [`StoredFile::missing`] instead of refused. Duplicates, odd names and
/// unequal sizes are still refused. For salvage: the restore reports the gap as the same
/// `tampered` damage and, for an uncompressed stream, restores what follows it.
pub fn sequences_with_gaps(members: &[Member], path: &str, whole: Option<FileKind>) -> Result<Vec<StoredFile>> {
    group(members, path, whole, true)
}

fn group(members: &[Member], path: &str, whole: Option<FileKind>, gaps: bool) -> Result<Vec<StoredFile>> {
    let mut files: Vec<StoredFile> = Vec::new();
    let mut indices: Vec<Vec<usize>> = Vec::new();
    for m in members {
        let ours = match m.name.strip_prefix(path) {
            Some(rest) if whole.is_some() => rest.starts_with('.'),
            Some(rest) => rest.strip_prefix('/').is_some_and(|r| !r.contains('/')),
            None => false,
        };
        if !ours {
            continue; // another qube's, or not listed in qubes.xml: never touched
        }
        let (base, index) = split_chunk_name(&m.name)
            .filter(|(b, _)| if whole.is_some() { *b == path } else { b.len() > path.len() + 1 })
            .ok_or_else(|| Error::tampered(&m.name, Check::ChunkName))?;
        let at = match files.iter().position(|f| f.path == base) {
            Some(at) => at,
            None => {
                let name = base.rsplit('/').next().unwrap_or(base).to_string();
                let kind = if let Some(kind) = whole {
                    kind
                } else if name.ends_with(".img") {
                    FileKind::Volume
                } else {
                    FileKind::Small
                };
                files.push(StoredFile { path: base.to_string(), name, kind, chunks: Vec::new(), missing: Vec::new() });
                indices.push(Vec::new());
                files.len() - 1
            }
        };
        files[at].chunks.push(m.clone());
        indices[at].push(index);
    }
    for (file, idx) in files.iter_mut().zip(indices) {
        let mut order: Vec<(usize, Member)> = idx.into_iter().zip(file.chunks.drain(..)).collect();
        order.sort_by_key(|(i, _)| *i);
        let mut want = 0;
        for (got, m) in &order {
            if *got < want {
                return Err(Error::tampered(&m.name, Check::ChunkDuplicate));
            }
            if *got > want {
                if !gaps {
                    return Err(Error::tampered(&m.name, Check::ChunkMissing(want)));
                }
                // A hostile name (`.99999999999.enc`) must not make us list billions of chunks.
                if file.missing.len() + (got - want) > MAX_MISSING_CHUNKS {
                    return Err(Error::tampered(&m.name, Check::ChunkGap(MAX_MISSING_CHUNKS)));
                }
                file.missing.extend(want..*got);
            }
            want = got + 1;
        }
        file.chunks = order.into_iter().map(|(_, m)| m).collect();
        let first = file.chunks[0].size;
        let non_final = &file.chunks[..file.chunks.len() - 1];
        if let Some(odd) = non_final.iter().find(|c| c.size != first) {
            return Err(Error::tampered(&odd.name, Check::ChunkSize));
        }
        // No chunk exceeds 100 MiB + 128 bytes: `outer::index` refused larger members already.
    }
    Ok(files)
}

/// `backup_id!vm5/private.img.000!passphrase`: the scrypt passphrase of one chunk, which binds
/// it to its backup, its file and its place in the sequence (a swapped, renamed or foreign
/// chunk fails its header MAC).
pub fn chunk_passphrase(backup_id: &str, chunk_name: &str, passphrase: &[u8]) -> Vec<u8> {
    let stem = chunk_name.strip_suffix(".enc").unwrap_or(chunk_name);
    [backup_id.as_bytes(), b"!", stem.as_bytes(), b"!", passphrase].concat()
}

/// The scrypt header of `chunk` read alone (its first 96 bytes), to plan a KDF before the
/// chunk is read: unauthenticated, so only for planning and caps; `None` for a chunk that is
/// cut short or too small to be a container, or whose header does not parse.
pub fn scrypt_head(src: &(impl ReadAt + ?Sized), chunk: &Member) -> Option<container::Header> {
    let mut head = [0u8; container::HEADER_LEN];
    if chunk.cut || chunk.size < container::OVERHEAD as u64 || src.read_at(chunk.offset, &mut head).is_err() {
        return None;
    }
    container::Header::parse_head(&chunk.name, &head).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_refused_by_the_strict_listing_and_recorded_by_the_salvage_one() {
        let m = |name: &str, size| Member { name: name.into(), offset: 0, size, cut: false };
        let members = [m("vm5/a.img.000.enc", 228), m("vm5/a.img.002.enc", 228), m("vm5/a.img.005.enc", 140)];
        let e = sequences(&members, "vm5", None).unwrap_err();
        assert_eq!(e, Error::tampered("vm5/a.img.002.enc", Check::ChunkMissing(1)));
        let files = sequences_with_gaps(&members, "vm5", None).unwrap();
        assert_eq!(files[0].missing, [1, 3, 4]);
        assert_eq!(files[0].chunks.len(), 3);
        // still refused: a duplicate, and present non-final chunks of different sizes
        let dup = [m("vm5/a.img.000.enc", 228), m("vm5/a.img.002.enc", 228), m("vm5/a.img.002.enc", 228)];
        assert!(sequences_with_gaps(&dup, "vm5", None).is_err());
        let odd = [m("vm5/a.img.000.enc", 228), m("vm5/a.img.002.enc", 200), m("vm5/a.img.003.enc", 10)];
        assert!(sequences_with_gaps(&odd, "vm5", None).is_err());
    }

    /// Found by fuzz/chunk_sequence (a CI timeout): one chunk named `.230193.enc` made the gap
    /// listing enumerate every index before it; a huge index must be refused at once.
    #[test]
    fn a_gap_of_absurd_length_is_refused() {
        let m = |name: &str| Member { name: name.into(), offset: 0, size: 640, cut: false };
        let members = [m("vm5/a.img.000.enc"), m("vm5/a.img.99999999999.enc")];
        let e = sequences_with_gaps(&members, "vm5", None).unwrap_err();
        assert_eq!(e.class(), "tampered");
        assert!(e.to_string().contains("more than 100000 chunks missing"), "{e}");
        let ok = [m("vm5/a.img.000.enc"), m("vm5/a.img.5000.enc")];
        assert_eq!(sequences_with_gaps(&ok, "vm5", None).unwrap()[0].missing.len(), 4999);
    }

    #[test]
    fn chunk_names_follow_qubes_numbering() {
        assert_eq!(split_chunk_name("vm5/private.img.000.enc"), Some(("vm5/private.img", 0)));
        assert_eq!(split_chunk_name("vm5/private.img.999.enc"), Some(("vm5/private.img", 999)));
        assert_eq!(split_chunk_name("vm5/private.img.1000.enc"), Some(("vm5/private.img", 1000)));
        assert_eq!(split_chunk_name("vm5/private.img.0001.enc"), None);
        assert_eq!(split_chunk_name("vm5/private.img.01.enc"), None);
        assert_eq!(split_chunk_name("vm5/private.img.000"), None);
        assert_eq!(split_chunk_name(".000.enc"), None);
    }
}
