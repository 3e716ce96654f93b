//! What browsing needs of a tree of files, whichever it is: an ext4 filesystem inside an image
//! ([`Fs`]) or dom0's home indexed from its tar ([`TarIndex`]). The CLI's `ls`/`get` and the
//! page's file browser both go through this.

use super::fs::{Entry, Fs, Kind, Listing, TarIndex, Walked};
use crate::error::Result;

pub trait Tree {
    /// The entry at `path` itself (a symbolic link as a link).
    fn stat(&self, path: &[u8]) -> Result<Entry>;
    /// Symbolic links followed inside the tree (dom0's home: never followed).
    fn stat_follow(&self, path: &[u8]) -> Result<Entry>;
    /// What `path` is once links on the way are followed.
    fn resolve(&self, path: &[u8]) -> Result<Kind>;
    /// A folder's entries, sorted by name, with what stopped the listing early.
    fn list(&self, path: &[u8]) -> Result<Listing>;
    /// Every entry below `path`, depth first, within the walk bounds.
    fn walk(&self, path: &[u8], visit: &mut dyn FnMut(Walked<'_>) -> Result<bool>) -> Result<()>;
}

impl Tree for Fs {
    fn stat(&self, path: &[u8]) -> Result<Entry> {
        Fs::stat(self, path)
    }
    fn stat_follow(&self, path: &[u8]) -> Result<Entry> {
        Fs::stat_follow(self, path)
    }
    fn resolve(&self, path: &[u8]) -> Result<Kind> {
        Fs::resolve(self, path)
    }
    fn list(&self, path: &[u8]) -> Result<Listing> {
        Fs::list(self, path)
    }
    fn walk(&self, path: &[u8], visit: &mut dyn FnMut(Walked<'_>) -> Result<bool>) -> Result<()> {
        Fs::walk(self, path, visit)
    }
}

impl Tree for TarIndex {
    fn stat(&self, path: &[u8]) -> Result<Entry> {
        TarIndex::stat(self, path)
    }
    fn stat_follow(&self, path: &[u8]) -> Result<Entry> {
        TarIndex::stat(self, path)
    }
    fn resolve(&self, path: &[u8]) -> Result<Kind> {
        TarIndex::stat(self, path).map(|e| e.kind)
    }
    fn list(&self, path: &[u8]) -> Result<Listing> {
        TarIndex::list(self, path)
    }
    fn walk(&self, path: &[u8], visit: &mut dyn FnMut(Walked<'_>) -> Result<bool>) -> Result<()> {
        TarIndex::walk(self, path, visit)
    }
}
