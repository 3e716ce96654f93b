//! The only input the core sees: random access to the backup file.
//! Native: a `File` (pread). Browser: `File.slice` through `FileReaderSync`. Tests: a byte slice.

use crate::error::{Cut, Error, Result};

pub trait ReadAt {
    /// Total length of the source in bytes.
    fn len(&self) -> u64;

    /// Fills `buf` from `offset`. Reading past the end is a `Truncated` error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads `len` bytes at `offset` into a new buffer; the caller has already capped `len`.
    fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }
}

fn past_end(offset: u64, want: usize, len: u64) -> Error {
    Error::truncated("backup file", Cut::Read { want: want as u64, at: offset, len })
}

impl ReadAt for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64).filter(|&e| e <= ReadAt::len(self));
        match end {
            Some(end) => {
                buf.copy_from_slice(&self[offset as usize..end as usize]);
                Ok(())
            }
            None => Err(past_end(offset, buf.len(), ReadAt::len(self))),
        }
    }
}

impl ReadAt for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.as_slice().read_at(offset, buf)
    }
}

#[cfg(unix)]
impl ReadAt for std::fs::File {
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let len = ReadAt::len(self);
        match self.read_exact_at(buf, offset) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(past_end(offset, buf.len(), len)),
            Err(e) => Err(Error::Io(format!("reading the backup at offset {offset}: {e}"))),
        }
    }
}
