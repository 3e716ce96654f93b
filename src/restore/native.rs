//! The native parallel runner: chunk KDFs on worker threads, plaintext released in order.

use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Where a file's restore stands, for progress displays.
#[derive(Clone, Debug)]
pub struct Progress {
    pub chunks_done: usize,
    pub chunks_total: usize,
    /// Encrypted bytes processed so far, and in all.
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// How many chunk threads fit for `file` on this machine (see [`WorkerPlan`]).
pub fn worker_count<R: ReadAt>(backup: &Backup<R>, file: &StoredFile, memory_budget: u64) -> usize {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    backup.worker_plan(file, cpus, memory_budget).workers
}

/// Restores one file: chunks are opened (KDF, MAC, decryption) by `workers` threads
/// in parallel and pushed in order; at most `workers + 1` chunks wait in memory.
pub fn restore_file<R: ReadAt + Sync>(
    backup: &Backup<R>,
    file: &StoredFile,
    target: Target<'_>,
    workers: usize,
    progress: &mut dyn FnMut(&Progress),
) -> Result<FileReport> {
    if let Some(legacy) = backup.legacy() {
        let (total, bytes_total) = (file.chunks.len(), file.chunks.iter().map(|c| c.size).sum());
        let sizes: Vec<u64> = file.chunks.iter().map(|c| c.size).collect();
        return backup.restore_pieces(legacy, file, target, &mut |done| {
            let bytes_done = sizes[..done.min(sizes.len())].iter().sum();
            progress(&Progress { chunks_done: done, chunks_total: total, bytes_done, bytes_total });
        });
    }
    let mut restore = FileRestore::new(file, backup.compression(), target);
    each_chunk(backup, file, workers, progress, &mut |_, opened| {
        restore.push(&opened?)?;
        Ok(true)
    })?;
    restore.finish()
}

/// Like [`restore_file`] in salvage mode ([`FileRestore::salvage`]): a chunk that cannot be
/// opened (MAC, read error, cut short) contributes nothing and is reported lost; everything
/// that can be placed is restored. Fails only when the sink fails.
pub fn salvage_file<R: ReadAt + Sync>(
    backup: &Backup<R>,
    file: &StoredFile,
    target: Target<'_>,
    workers: usize,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Salvaged> {
    if backup.legacy().is_some() {
        return Err(super::legacy::no_salvage());
    }
    let mut restore = FileRestore::new(file, backup.compression(), target).salvage();
    each_chunk(backup, file, workers, progress, &mut |i, opened| {
        match opened {
            Ok(plaintext) => restore.push(&plaintext)?,
            Err(e) => {
                let len = file.chunks[i].size.checked_sub(container::OVERHEAD as u64);
                restore.push_lost(len, e)?
            }
        }
        Ok(restore.wants_more())
    })?;
    restore.finish_salvage()
}

/// Opens the chunks of `file` on `workers` threads and hands them to `each` in order
/// (`each` returns false to stop early).
fn each_chunk<R: ReadAt + Sync>(
    backup: &Backup<R>,
    file: &StoredFile,
    workers: usize,
    progress: &mut dyn FnMut(&Progress),
    each: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<bool>,
) -> Result<()> {
    let total = file.chunks.len();
    let window = workers + 1;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let state = (Mutex::new((0usize, BTreeMap::<usize, Result<Vec<u8>>>::new())), Condvar::new());
    let mut p = Progress { chunks_done: 0, chunks_total: total, bytes_done: 0, bytes_total: file.encrypted_size() };
    progress(&p);
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total || stop.load(Ordering::SeqCst) {
                    return;
                }
                {
                    let (lock, cv) = &state;
                    let mut g = lock.lock().unwrap();
                    while i >= g.0 + window && !stop.load(Ordering::SeqCst) {
                        g = cv.wait(g).unwrap();
                    }
                }
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let opened = backup.open_chunk(&file.chunks[i]);
                let (lock, cv) = &state;
                lock.lock().unwrap().1.insert(i, opened);
                cv.notify_all();
            });
        }
        let result: Result<()> = (|| {
            for i in 0..total {
                let opened = {
                    let (lock, cv) = &state;
                    let mut g = lock.lock().unwrap();
                    loop {
                        if let Some(r) = g.1.remove(&i) {
                            break r;
                        }
                        g = cv.wait(g).unwrap();
                    }
                };
                let more = each(i, opened)?;
                let (lock, cv) = &state;
                lock.lock().unwrap().0 = i + 1;
                cv.notify_all();
                p.chunks_done = i + 1;
                p.bytes_done += file.chunks[i].size;
                progress(&p);
                if !more {
                    break;
                }
            }
            Ok(())
        })();
        stop.store(true, Ordering::SeqCst);
        state.1.notify_all();
        result
    })
}
