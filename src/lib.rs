//! qubes-rescue: restore Qubes OS backups (format 4) without Qubes.
//!
//! The tree follows the format (see the README's Design section):
//! - [`format`]: one module per layer of a `qvm-backup` file, outermost first;
//! - [`kdf`]: our scrypt, whose lanes run apart and whose memory is bounded;
//! - [`restore`]: [`restore::Backup`] (open, list, find a qube's files) and the push pipeline
//!   that turns verified chunks into restored files, with salvage and the native runner;
//! - [`output`]: where restored bytes go (sparse files, the safe tree writer, images, zip);
//! - [`browse`]: files inside restored images (partitions, ext4, dom0's home);
//! - `wasm`: the page's adapter (wasm32 only).
//!
//! Every failure is an [`Error`] whose class (`wrong-passphrase`, `tampered`, …) the CLI
//! and the page report the same way.
//!
//! Restoring the volumes of one qube:
//!
//! ```no_run
//! use qubes_rescue::format::container::Limits;
//! use qubes_rescue::output::sink::SparseFile;
//! use qubes_rescue::restore::{self, Backup, FileKind, Target};
//! use std::path::Path;
//!
//! let file = std::fs::File::open("qubes-backup-2024-03-15T101500")?;
//! // Indexes the file, authenticates backup-header (one KDF: a wrong passphrase is reported
//! // here, before any chunk is read) and reads qubes.xml.
//! let backup = Backup::open(file, b"the passphrase", &Limits::default())?;
//! for qube in backup.qubes() {
//!     println!("{} ({}, {} bytes)", qube.name, qube.class, qube.size);
//! }
//! for stored in backup.files("work")?.iter().filter(|f| f.kind == FileKind::Volume) {
//!     // Written as `private.img.partial`, renamed once every chunk was authenticated and decoded.
//!     let mut out = SparseFile::create(Path::new(&stored.name))?;
//!     let workers = restore::worker_count(&backup, stored, restore::DEFAULT_MEMORY_BUDGET);
//!     restore::restore_file(&backup, stored, Target::Volume(Box::new(&mut out)), workers, &mut |_| {})?;
//!     out.commit()?;
//! }
//! # Ok::<(), qubes_rescue::Error>(())
//! ```

pub mod browse;
pub mod error;
pub mod format;
pub mod kdf;
pub mod output;
pub mod read_at;
pub mod restore;

/// Test support: a backup writer producing what `qvm-backup` writes (feature `test-support`).
#[cfg(all(not(target_arch = "wasm32"), any(test, feature = "test-support")))]
pub mod writer;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use error::{Check, Cut, Error, Limit, Location, Offset, Result, TarEnd, TarFault};
