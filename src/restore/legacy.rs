//! Formats 3 and 2 (Qubes R2, R3.x) behind the same [`Backup`]: the reading layer
//! (`format::legacy`) opens them; here their qubes and files take the shapes format 4 uses, and
//! a file is restored by streaming its pieces (each HMAC proven before its bytes are used, then
//! decrypted and decompressed by the reader) into the same [`FileRestore`]: the inner tar
//! checked against the outer name, the same sinks, the same errors. There is no KDF per piece,
//! so pieces are read one after the other on the calling thread.

use super::{Backup, FileReport, FileRestore, Source, StoredFile, Target};
use crate::error::{Error, Result};
use crate::format::container::Limits;
use crate::format::decompress::Compression;
use crate::format::header::BackupHeader;
use crate::format::legacy::{LegacyBackup, LegacyFile};
use crate::format::outer::Member;
use crate::format::qubes_xml::Qube;
use crate::read_at::ReadAt;

/// What `--salvage` and the page's salvage say for these formats.
pub(super) fn no_salvage() -> Error {
    Error::unsupported(
        "salvage of a format 3 or 2 backup: a piece that fails its HMAC cannot be used, and restoring \
         goes on only from intact pieces; restore without salvage to see which piece is damaged",
    )
}

impl<R: ReadAt> Backup<R> {
    pub(crate) fn open_legacy(src: R, members: Vec<Member>, passphrase: &[u8], limits: &Limits) -> Result<Backup<R>> {
        let legacy = LegacyBackup::from_index(src, members.clone(), passphrase)?;
        let h = legacy.header();
        let header = BackupHeader {
            version: h.version,
            encrypted: h.encrypted,
            compressed: h.compressed,
            compression_filter: h.compressed.then(|| h.compression.name().to_string()),
            hmac_algorithm: h.hmac_algorithm.name().to_string(),
            crypto_algorithm: h.encrypted.then(|| "aes-256-cbc".to_string()),
            backup_id: String::new(),
        };
        let qubes = legacy
            .qubes()
            .iter()
            .map(|q| Qube {
                name: q.name.clone(),
                class: q.class.clone(),
                label: q.label.clone(),
                label_color: None,
                template: q.template.clone(),
                backup_path: q.backup_path.clone(),
                size: q.size,
                // R3's qubes.xml does not list volumes: the stored images are what there is.
                volumes: legacy.files(&q.name).map_or_else(
                    |_| Vec::new(),
                    |files| files.into_iter().filter(|f| f.kind == crate::format::chunks::FileKind::Volume).map(|f| f.name).collect(),
                ),
                volume_bytes: 0, // not in R3's qubes.xml either
            })
            .collect();
        let complete = legacy.complete();
        Ok(Backup {
            src: Source::Legacy(Box::new(legacy)),
            members,
            header,
            // The reader hands on the decompressed stream.
            compression: Compression::None,
            qubes,
            passphrase: passphrase.to_vec(),
            limits: *limits,
            complete,
        })
    }

    /// What a user must know about this backup's format that `list` and the page say: the
    /// guarantees formats 3 and 2 do not give. `None` for format 4.
    pub fn format_note(&self) -> Option<&'static str> {
        let legacy = self.legacy()?;
        Some(if legacy.header().encrypted {
            "formats 3 and 2 authenticate every piece (HMAC) but do not bind a piece to its name: a piece \
             swapped between files of this backup is caught only by the archive inside it"
        } else {
            "this backup is not encrypted: anyone with the file can read it; every piece is authenticated \
             (HMAC), but a piece swapped between files of this backup is caught only by the archive inside it"
        })
    }

    /// The compressor the backup names (`none` when not compressed).
    pub fn compressor(&self) -> &'static str {
        match self.legacy() {
            Some(l) => l.header().compression.name(),
            None => self.compression.name(),
        }
    }

    /// The format 3 or 2 reader, for such a backup.
    pub fn legacy(&self) -> Option<&LegacyBackup<R>> {
        match &self.src {
            Source::Legacy(b) => Some(b),
            Source::V4(_) => None,
        }
    }

    /// Restores one file of a format 3 or 2 backup; `on_piece(n)` after each of its pieces.
    pub fn restore_pieces(
        &self,
        legacy: &LegacyBackup<R>,
        file: &StoredFile,
        target: Target<'_>,
        on_piece: &mut dyn FnMut(usize),
    ) -> Result<FileReport> {
        let stored = legacy
            .all_files()
            .iter()
            .find(|f| f.base == file.path)
            .ok_or_else(|| Error::NotFound { what: file.path.clone() })?;
        let lf = LegacyFile { path: file.path.clone(), name: file.name.clone(), kind: file.kind, pieces: stored.pieces.clone() };
        let mut restore = FileRestore::new(file, Compression::None, target);
        let mut stream = legacy.stream(&lf);
        let mut done = 0;
        loop {
            let at = stream.piece_name().to_string();
            if !stream.next_piece(&mut |bytes| restore.push_decoded(&at, bytes))? {
                break;
            }
            done += 1;
            on_piece(done);
        }
        restore.finish()
    }
}
