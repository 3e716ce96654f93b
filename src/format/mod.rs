//! The layers of a `qvm-backup` file, outermost first (FORMAT.md): data flows one way,
//! and no module here knows about the ones above it.
//!
//! `outer` (concatenated tars) → `header` (`backup-header`) → `container` (scrypt) →
//! `chunks` (chunk sequences) → `decompress` → `inner_tar`; `qubes_xml` lists the qubes.
//! `tar` is the 512-byte tar header both tar layers read. `legacy` reads formats 3 and 2
//! (Qubes R2/R3) on top of `outer`, `decompress` and `inner_tar`.

pub mod chunks;
pub mod container;
pub mod decompress;
pub mod header;
pub mod inner_tar;
pub mod legacy;
pub mod outer;
pub mod qubes_xml;
pub mod tar;
