//! Where restored bytes go: sparse files and the one safe tree writer (native), in-memory
//! images (the page, `ls`/`get`), zip streams (the page's folder downloads), and the one rule
//! for names.

#[cfg(not(target_arch = "wasm32"))]
pub mod home;
pub mod archive;
pub mod image;
pub mod names;
pub mod sink;
#[cfg(not(target_arch = "wasm32"))]
pub mod sparse_file;
#[cfg(not(target_arch = "wasm32"))]
pub mod tree;
pub mod zip;
