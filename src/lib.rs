//! qubes-rescue: restore Qubes OS backups (format 4) without Qubes.
//!
//! Layers, outermost first (one module each; data flows one way):
//! `read_at` → `outer` (concatenated tars) → `header` (backup-header) → `container`
//! (scrypt) → `chunks` (chunk sequences) → `decompress` → `inner_tar` → `sink`.
//! `qubes_xml` lists the qubes; `restore` ties the layers together.

pub mod container;
pub mod decompress;
pub mod error;
pub mod fs;
pub mod header;
pub mod image;
pub mod inner_tar;
pub mod outer;
pub mod qubes_xml;
pub mod read_at;
pub mod sink;
pub mod restore;
pub mod zip;

#[cfg(not(target_arch = "wasm32"))]
pub mod writer;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use error::{Error, Result};
