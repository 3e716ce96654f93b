//! One error type for every layer, split into the classes a user must tell apart.
//! The CLI maps a class to an exit code, the page to a sentence; both come from here.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The passphrase does not open `member` (the scrypt header MAC did not match).
    WrongPassphrase { member: String },
    /// `member` was altered, or belongs to another file or backup: `check` names what failed.
    Tampered { member: String, check: String },
    /// Data ends early: a chunk, a member, a stream or a whole file is missing.
    Truncated { member: String, detail: String },
    /// Valid, but not something this tool restores (format 3, an unknown compressor, ...).
    Unsupported { what: String },
    /// The file is not a Qubes backup at all.
    NotABackup { why: String },
    /// scrypt parameters that are invalid, or whose work (N·r·p, times the slowdown of
    /// recomputing what does not fit in memory) is beyond the cap: a KDF that would run for hours.
    UnsafeParams { member: String, log_n: u8, r: u32, p: u32, work: u64, cap: u64 },
    /// A name that would escape the output folder or is otherwise unsafe.
    UnsafePath { name: String, why: String },
    /// A path asked for inside a backup or filesystem does not exist.
    NotFound { what: String },
    /// The source or the destination failed (disk full, permission, read error).
    Io(String),
}

impl Error {
    /// The stable class name used by the CLI (`error[<class>]`) and the page (`data-error`).
    pub fn class(&self) -> &'static str {
        match self {
            Error::WrongPassphrase { .. } => "wrong-passphrase",
            Error::Tampered { .. } => "tampered",
            Error::Truncated { .. } => "truncated",
            Error::Unsupported { .. } => "unsupported",
            Error::NotABackup { .. } => "not-a-backup",
            Error::UnsafeParams { .. } => "unsafe-params",
            Error::UnsafePath { .. } => "unsafe-path",
            Error::NotFound { .. } => "not-found",
            Error::Io(_) => "io",
        }
    }

    /// The CLI's exit code for this class (part of the CLI contract).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::WrongPassphrase { .. } => 10,
            Error::Tampered { .. } => 11,
            Error::Truncated { .. } => 12,
            Error::Unsupported { .. } => 13,
            Error::NotABackup { .. } => 14,
            Error::UnsafeParams { .. } => 15,
            Error::UnsafePath { .. } => 16,
            Error::NotFound { .. } => 3,
            Error::Io(_) => 1,
        }
    }

    pub fn tampered(member: impl Into<String>, check: impl Into<String>) -> Error {
        Error::Tampered { member: member.into(), check: check.into() }
    }

    pub fn truncated(member: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::Truncated { member: member.into(), detail: detail.into() }
    }

    pub fn unsupported(what: impl Into<String>) -> Error {
        Error::Unsupported { what: what.into() }
    }

    pub fn not_a_backup(why: impl Into<String>) -> Error {
        Error::NotABackup { why: why.into() }
    }

    pub fn unsafe_path(name: impl Into<String>, why: impl Into<String>) -> Error {
        Error::UnsafePath { name: name.into(), why: why.into() }
    }

    /// Names the member an error is about when a lower layer did not know it
    /// (a decoder or the inner tar only sees bytes).
    pub fn in_member(self, name: &str) -> Error {
        match self {
            Error::Tampered { member, check } if member.is_empty() => Error::tampered(name, check),
            Error::Truncated { member, detail } if member.is_empty() => Error::truncated(name, detail),
            other => other,
        }
    }
}

impl fmt::Display for Error {
    /// One sentence: what failed, and what the user can try.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WrongPassphrase { member } => write!(
                f,
                "the passphrase does not open {member}; check it (case, keyboard layout) and try again"
            ),
            Error::Tampered { member, check } => write!(
                f,
                "{member} failed its {check} check: it was altered, damaged, or belongs to another file or backup; \
                 restore from another copy of the backup"
            ),
            Error::Truncated { member, detail } => write!(
                f,
                "{member} ends early ({detail}); the backup file is incomplete, copy it again from its source"
            ),
            Error::Unsupported { what } => write!(f, "not supported: {what}"),
            Error::NotABackup { why } => write!(
                f,
                "this is not a Qubes backup ({why}); pick the file qvm-backup wrote"
            ),
            Error::UnsafeParams { member, log_n, r, p, work, cap } if work <= cap => {
                write!(f, "{member} asks for invalid scrypt parameters logN={log_n} r={r} p={p} (scrypt itself refuses them)")
            }
            Error::UnsafeParams { member, log_n, r, p, work, cap } => write!(
                f,
                "{member} asks for scrypt parameters logN={log_n} r={r} p={p}: 2^{:.1} units of work, over the 2^{:.0} \
                 allowed (the key derivation would run for hours); a real Qubes backup never asks for this",
                (*work as f64).log2(),
                (*cap as f64).log2()
            ),
            Error::UnsafePath { name, why } => {
                write!(f, "refused to write {name:?}: {why}; nothing was written outside the output folder")
            }
            Error::NotFound { what } => write!(f, "{what} does not exist in this backup"),
            Error::Io(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e.to_string())
    }
}
