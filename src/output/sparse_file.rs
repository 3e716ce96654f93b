//! A volume image on disk: written as `<name>.partial`, renamed when complete, holes never
//! written (a 20 GiB image with 20 MiB of data takes about 20 MiB of disk).

use super::sink::VolumeSink;
use super::tree::io_err;
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A volume image written as `<final>.partial`, renamed to `<final>` by [`SparseFile::commit`].
/// Holes are never written, so they stay holes on filesystems that support them.
#[derive(Debug)]
pub struct SparseFile {
    file: Option<File>,
    partial: PathBuf,
    final_path: PathBuf,
}

impl SparseFile {
    /// Creates `<final_path>.partial`; refuses if it or `final_path` already exists.
    pub fn create(final_path: &Path) -> Result<SparseFile> {
        let mut p: OsString = final_path.as_os_str().to_owned();
        p.push(".partial");
        let partial = PathBuf::from(p);
        if fs::symlink_metadata(final_path).is_ok() {
            return Err(Error::Io(format!(
                "{} already exists; choose another output folder or remove it first",
                final_path.display()
            )));
        }
        if fs::symlink_metadata(&partial).is_ok() {
            return Err(Error::Io(format!(
                "{} already exists (left by an interrupted restore?); remove it first",
                partial.display()
            )));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&partial)
            .map_err(|e| io_err("create", &partial, e))?;
        Ok(SparseFile { file: Some(file), partial, final_path: final_path.to_path_buf() })
    }

    /// The `.partial` file being written.
    pub fn partial_path(&self) -> &Path {
        &self.partial
    }

    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    fn file(&self) -> Result<&File> {
        self.file.as_ref().ok_or_else(|| Error::internal("the output file is used after it was closed"))
    }

    /// Flushes to disk and renames `.partial` to the final name (refused if that appeared meanwhile).
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().ok_or_else(|| Error::internal("the output file is used after it was closed"))?;
        file.sync_all().map_err(|e| io_err("flush", &self.partial, e))?;
        drop(file);
        if fs::symlink_metadata(&self.final_path).is_ok() {
            return Err(Error::Io(format!(
                "{} appeared while restoring; the data is kept in {}",
                self.final_path.display(),
                self.partial.display()
            )));
        }
        fs::rename(&self.partial, &self.final_path).map_err(|e| io_err("rename", &self.partial, e))
    }

    /// Closes the file and removes it, or keeps the `.partial` file for inspection.
    pub fn abort(mut self, keep_partial: bool) {
        drop(self.file.take());
        if !keep_partial {
            let _ = fs::remove_file(&self.partial);
        }
    }
}

impl VolumeSink for SparseFile {
    fn set_len(&mut self, len: u64) -> Result<()> {
        self.file()?.set_len(len).map_err(|e| io_err("resize", &self.partial, e))
    }

    /// Writes `data`, leaving 4 KiB blocks that are all zeros unwritten: they already read
    /// as zeros after `set_len`, and GNU tar stores allocated-but-zero extents (ext4 inode
    /// tables, preallocated files) as data, which would otherwise fill the holes.
    /// Sound because the restore writes each byte at most once, in ascending order.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        const BLOCK: u64 = 4096;
        let mut start = 0usize; // start of the pending run of bytes to write
        let mut at = 0usize;
        while at < data.len() {
            let block_end = ((offset + at as u64) / BLOCK + 1) * BLOCK;
            let end = data.len().min((block_end - offset) as usize);
            if data[at..end].iter().all(|&b| b == 0) {
                if start < at {
                    self.write_run(offset + start as u64, &data[start..at])?;
                }
                start = end;
            }
            at = end;
        }
        if start < data.len() {
            self.write_run(offset + start as u64, &data[start..])?;
        }
        Ok(())
    }
}

impl SparseFile {
    fn write_run(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.file()?.write_all_at(data, offset).map_err(|e| io_err("write", &self.partial, e))
    }
}
