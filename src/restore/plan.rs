//! What a restore of a selection of qubes does, decided once for the CLI and the page:
//! which files, in which order, under which names, how many chunk workers, how many chunks in
//! flight, and in which order failures are reported.

use super::Backup;
use crate::error::Error;
use crate::format::chunks::{self, FileKind, StoredFile};
use crate::output::names;
use crate::read_at::ReadAt;

/// Memory all chunk workers' KDFs may use at once, unless the user says otherwise.
pub const DEFAULT_MEMORY_BUDGET: u64 = 8 << 30;

/// KDF memory assumed for a chunk whose header cannot be read (it will fail on its own).
const UNKNOWN_KDF_MEMORY: u64 = 1 << 30;

/// How many chunks are opened at once, and how many may wait for their turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WorkerPlan {
    /// KDF memory of one chunk (128·r·N bytes).
    pub kdf_memory: u64,
    /// Chunk workers (threads natively, web workers in the page).
    pub workers: usize,
    /// Chunks opened ahead of the one being consumed: plaintext is released strictly in
    /// order, so at most this many verified plaintexts wait in memory.
    pub window: usize,
}

impl WorkerPlan {
    /// One KDF plus a chunk buffer per worker within `memory_budget`, no more than `cpus`.
    pub fn new(kdf_memory: u64, chunk_size: u64, cpus: usize, memory_budget: u64) -> WorkerPlan {
        let per_worker = kdf_memory.saturating_add(chunk_size.saturating_mul(2));
        let workers = (memory_budget / per_worker.max(1)).clamp(1, cpus.max(1) as u64) as usize;
        WorkerPlan { kdf_memory, workers, window: workers + 1 }
    }
}

impl<R: ReadAt> Backup<R> {
    /// Memory one KDF of `file`'s chunks takes: 128·r·N from the first chunk's scrypt header,
    /// or less where the KDF recomputes within `Limits::max_kdf_memory` (`kdf::plan`). The
    /// header is unauthenticated, so this only sizes the pool; the parameters are checked
    /// again before each KDF runs.
    pub fn kdf_memory(&self, file: &StoredFile) -> u64 {
        file.chunks
            .first()
            .and_then(|c| chunks::scrypt_head(self.source(), c))
            .map(|h| h.kdf_plan(self.limits()).map_or(h.kdf_memory(), |p| p.memory))
            .unwrap_or(UNKNOWN_KDF_MEMORY)
    }

    /// The worker plan for `file` on `cpus` cores within `memory_budget`.
    pub fn worker_plan(&self, file: &StoredFile, cpus: usize, memory_budget: u64) -> WorkerPlan {
        let chunk = file.chunks.first().map_or(0, |c| c.size);
        WorkerPlan::new(self.kdf_memory(file), chunk, cpus, memory_budget)
    }

    /// The restore of `qubes`, in the order failures are reported: for each qube, its files
    /// (each a failure of its own), then what qubes.xml promises but the backup lacks. A qube
    /// whose files cannot even be listed is one failure.
    pub fn plan(&self, qubes: &[String], salvage: bool) -> Vec<QubePlan> {
        qubes
            .iter()
            .map(|name| {
                let files = if salvage { self.salvage_files(name) } else { self.files(name) };
                match files {
                    Err(e) => QubePlan { qube: name.clone(), files: Vec::new(), missing: Vec::new(), listing: Some(e) },
                    Ok(files) => {
                        let missing = self.missing(name, &files).unwrap_or_default();
                        let files = files.into_iter().map(|file| PlannedFile::new(name, file)).collect();
                        QubePlan { qube: name.clone(), files, missing, listing: None }
                    }
                }
            })
            .collect()
    }
}

/// One qube of a restore.
pub struct QubePlan {
    pub qube: String,
    pub files: Vec<PlannedFile>,
    /// Reported after the qube's files: what the backup lacks.
    pub missing: Vec<Error>,
    /// The qube's files could not be listed (an unsafe backup path, a broken sequence).
    pub listing: Option<Error>,
}

impl QubePlan {
    /// Failures known before anything is restored, in report order (after the files').
    pub fn known_failures(&self) -> impl Iterator<Item = &Error> {
        self.listing.iter().chain(&self.missing)
    }
}

/// One stored file of a restore and the name it is saved under.
pub struct PlannedFile {
    pub file: StoredFile,
    /// The file name of a download (the page): `<qube>-private.img`, `dom0-home-<user>.tar`.
    pub download: String,
    /// Qubes' zero-length stand-in for a qube without files (`empty`): checked, never saved.
    pub placeholder: bool,
}

impl PlannedFile {
    fn new(qube: &str, file: StoredFile) -> PlannedFile {
        let placeholder = file.kind == FileKind::Small && file.name == "empty";
        PlannedFile { download: download_name(qube, &file), placeholder, file }
    }
}

/// The page's download name of a stored file (a folder of downloads holds every qube's files).
pub fn download_name(qube: &str, file: &StoredFile) -> String {
    match file.kind {
        // a format 3 template's whole folder (`vmN/.`), as one tar
        FileKind::Home if file.name == "." => format!("{}.tar", names::download_name(qube.as_bytes())),
        FileKind::Home => format!("dom0-home-{}.tar", names::download_name(file.name.as_bytes())),
        _ => format!("{}-{}", names::download_name(qube.as_bytes()), names::download_name(file.name.as_bytes())),
    }
}

/// Where `extract` puts a stored tree inside the qube's folder: dom0's home under `home/`; a
/// format 3 template's whole folder (`vmN/.`: root.img, private.img, …) in the qube's folder itself.
pub fn tree_folder(file: &StoredFile) -> &'static str {
    if file.name == "." { "" } else { "home" }
}

/// The salvage report written beside a salvaged image: `{"lost": [[start, end], …]}`, image
/// byte offsets, end exclusive.
pub fn salvage_report_json(lost: &[(u64, u64)]) -> String {
    let ranges: Vec<[u64; 2]> = lost.iter().map(|&(a, b)| [a, b]).collect();
    serde_json::json!({ "lost": ranges }).to_string() + "\n"
}

/// Whether the page offers one archive by default rather than a download per file: when the
/// restore saves more than a few files (one download each is easy to lose track of), or its
/// data or its volumes' full size reach 1 GiB (volumes that big are mostly holes, which only the
/// archive leaves out of the download).
pub fn archive_by_default(files: usize, data_bytes: u64, volume_bytes: u64) -> bool {
    files > 3 || data_bytes.max(volume_bytes) >= 1 << 30
}

/// Whether the page warns, before a restore, that a private window may lose its downloads: a
/// private (off-the-record) window keeps Blobs in memory, and Chromium was seen to cancel a
/// 2 GiB download there while the page could not tell. Only data is downloaded (holes are not,
/// in the archive), so the data size decides.
pub fn private_window_risk(data_bytes: u64) -> bool {
    data_bytes >= 1 << 30
}

/// `<name>.salvaged` and `<name>.salvage.json`: names nobody mistakes for a clean restore.
pub fn salvage_names(name: &str) -> (String, String) {
    (format!("{name}.salvaged"), format!("{name}.salvage.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_fit_the_memory_budget_and_the_cores() {
        let p = WorkerPlan::new(1 << 30, 100 << 20, 8, 8 << 30);
        assert_eq!((p.workers, p.window), (6, 7));
        assert_eq!(WorkerPlan::new(1 << 30, 100 << 20, 2, 8 << 30).workers, 2);
        // a KDF bigger than the budget still gets one worker
        assert_eq!(WorkerPlan::new(16 << 30, 0, 4, 8 << 30).workers, 1);
    }

    #[test]
    fn one_archive_is_suggested_for_many_files_or_big_volumes_and_downloads_otherwise() {
        assert!(!archive_by_default(3, 500 << 20, 2 << 30 >> 2), "3 files, 500 MiB, 512 MiB of volumes");
        assert!(archive_by_default(4, 1, 1), "4 files");
        assert!(archive_by_default(1, 20 << 20, 20 << 30), "a 20 GiB volume with 20 MiB of data");
        assert!(archive_by_default(1, 1 << 30, 0), "1 GiB of data");
    }

    #[test]
    fn download_names_are_one_safe_file_name() {
        let f = |name: &str, kind| StoredFile { path: String::new(), name: name.into(), kind, chunks: vec![], missing: vec![] };
        assert_eq!(download_name("work", &f("private.img", FileKind::Volume)), "work-private.img");
        assert_eq!(download_name("a/b:c", &f("x\u{1}y", FileKind::Small)), "a_b_c-x_y");
        assert_eq!(download_name("dom0", &f("user", FileKind::Home)), "dom0-home-user.tar");
    }
}
