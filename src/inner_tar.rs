//! STUB — being written by a helper. API is fixed; see the helper brief.
use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
    /// Devices, fifos, anything else: the typeflag byte.
    Other(u8),
}

#[derive(Clone, Debug)]
pub struct Entry {
    /// Real name as stored (pax `path`, GNU `L` long name or `GNU.sparse.name` applied).
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Symlink / hardlink target (pax `linkpath`, GNU `K`).
    pub link: Vec<u8>,
    /// Real (expanded) size of a file: `realsize` for sparse members.
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    /// Bytes actually stored (sum of the sparse map, or `size` for plain files).
    pub stored: u64,
}

/// Receives the members of an inner tar stream in order.
pub trait Visitor {
    fn entry(&mut self, entry: &Entry) -> Result<()>;
    /// File data at `offset` of the real file, ascending; holes are never delivered.
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()>;
    fn end_entry(&mut self) -> Result<()>;
}

pub struct InnerTar {}

impl InnerTar {
    pub fn new() -> InnerTar {
        todo!()
    }
    pub fn feed(&mut self, _data: &[u8], _v: &mut dyn Visitor) -> Result<()> {
        todo!()
    }
    pub fn finish(&mut self, _v: &mut dyn Visitor) -> Result<()> {
        todo!()
    }
}

impl Default for InnerTar {
    fn default() -> Self {
        Self::new()
    }
}
