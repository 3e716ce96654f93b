//! Reading files out of restored images without mounting them: partition tables, ext4,
//! dom0's home tar.

#[cfg(not(target_arch = "wasm32"))]
pub mod copy;
pub mod fs;
pub mod tree;
pub use tree::Tree;
