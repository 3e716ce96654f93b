//! One error type for every layer, split into the classes a user must tell apart.
//! The CLI maps a class to an exit code, the page to a sentence; both come from here.
//!
//! Like ext4-view's `Corrupt`, a failure says *what* failed with a typed kind ([`Check`],
//! [`Cut`], [`Limit`]) and *where* with a [`Location`] (the member, and a byte offset where the
//! layer knows it). A layer that only sees bytes (a decoder, the inner tar) is handed the member
//! it is reading with every call, so no error is ever patched with a name afterwards.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a failure is: the outer member (in format 4 it names its chunk, `vm5/private.img.003.enc`,
/// so the chunk index is in it) and, when the failing layer knows it, a byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub member: String,
    pub offset: Option<Offset>,
}

/// A byte offset, and what it counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// In the backup file (the outer archive).
    File(u64),
    /// In the decompressed stream of a volume or file, counted from its first chunk.
    Stream(u64),
}

impl Location {
    pub fn file(member: impl Into<String>, offset: u64) -> Location {
        Location { member: member.into(), offset: Some(Offset::File(offset)) }
    }

    pub fn stream(member: impl Into<String>, offset: u64) -> Location {
        Location { member: member.into(), offset: Some(Offset::Stream(offset)) }
    }
}

impl From<&str> for Location {
    fn from(member: &str) -> Location {
        Location { member: member.into(), offset: None }
    }
}

impl From<&String> for Location {
    fn from(member: &String) -> Location {
        Location { member: member.clone(), offset: None }
    }
}

impl From<String> for Location {
    fn from(member: String) -> Location {
        Location { member, offset: None }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.member)?;
        match self.offset {
            Some(Offset::File(o)) => write!(f, " at offset {o}"),
            Some(Offset::Stream(o)) => write!(f, " (byte {o} of its decompressed stream)"),
            None => Ok(()),
        }
    }
}

/// The integrity check a `tampered` member failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    // The outer archive (not authenticated, so only its structure can be checked).
    TarChecksum,
    TarSize,
    PaxHeader,
    /// The same member name twice.
    Uniqueness,
    // The scrypt container.
    ScryptMagic,
    ScryptHeaderChecksum,
    /// A chunk's header MAC, after `backup-header` proved the passphrase right.
    ChunkHeaderMac,
    FileMac,
    // Chunk sequences.
    ChunkName,
    ChunkDuplicate,
    /// Chunk `.NNN` is missing before this one.
    ChunkMissing(usize),
    /// More than this many chunks are missing before this one.
    ChunkGap(usize),
    ChunkSize,
    // The authenticated documents; the text says which field or rule.
    BackupHeader(String),
    /// `backup-header` differs from the copy authenticated in `backup-header.hmac`.
    HeaderCopy,
    QubesXml(String),
    // Streams.
    /// The named compressor's stream is corrupt.
    Stream(&'static str),
    /// Bytes after the end of the named compressor's stream.
    Trailing(&'static str),
    InnerTar(TarFault),
    /// The page lost a chunk it was reading (salvage).
    Salvage,
    // Formats 3 and 2.
    /// A piece's HMAC (named algorithm) does not match its bytes.
    PieceMac(&'static str),
    /// A `.hmac` text that is not what OpenSSL prints.
    HmacText(String),
    /// The rule a member name breaks (pieces are `<file>.NNN`, dom0's home is one file, …).
    Name(String),
    PieceDuplicate,
    /// Piece `.NNN` is missing before this one.
    PieceMissing(usize),
    /// An empty piece before the last.
    PieceEmpty,
    /// A piece pushed after its stream failed or ended.
    PieceAfterEnd,
    /// The openssl `enc` container (`Salted__` header, or a stream used after it ended).
    OpensslEnc(&'static str),
    /// The PKCS#7 padding of the last AES-CBC block.
    CbcPadding,
    /// GNU multi-volume tar continuation (format 2).
    MultiVolume(String),
}

/// What is wrong in an inner tar (the archive inside a volume's stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TarFault {
    HeaderChecksum,
    HeaderNumber,
    SparseMap,
    PaxHeader,
    ExtendedWithoutMember,
    DataAfterEnd,
    /// A second member where the backup stores one file.
    SecondMember(String),
    /// Holds `found`, where the backup stores the file `expected`.
    Unexpected { found: String, expected: String },
    /// Data beyond the size its header gave the member.
    BeyondSize(String),
}

/// Where data ends early, for a `truncated` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    /// A read past the end of the backup file.
    Read { want: u64, at: u64, len: u64 },
    /// The file read back fewer bytes than asked: it changed since it was picked.
    Changed { read: u64, want: u64 },
    /// The backup file ends inside a tar header of the outer archive.
    TarHeader,
    /// The backup file ends inside this member's data.
    Member,
    /// An scrypt container shorter than its fixed overhead.
    Container { len: u64, min: u64 },
    /// Fewer bytes read than the index says the member holds.
    ShortRead { read: u64, size: u64 },
    /// The named compressor's stream ends early.
    Stream(&'static str),
    InnerTar(TarEnd),
    /// dom0's home tar ends inside a header (`file: false`) or inside a file.
    HomeTar { file: bool },
    /// A file of dom0's home whose data stopped before its size.
    Incomplete(String),
    /// The member is not in the backup at all.
    Missing,
    /// qubes.xml lists this file, the backup does not hold it.
    NotHeld,
    /// qubes.xml lists this qube, the backup holds none of its files.
    QubeNotHeld(String),
    /// The stream ended without the file it should hold.
    NoMember(String),
    /// A file listed in a home or image whose data never came.
    NeverCame(String),
    /// The openssl `enc` stream ends early (where).
    OpensslEnc(&'static str),
    /// A format 2 multi-volume tar ends early (where).
    MultiVolume(String),
}

/// Where an inner tar ends early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TarEnd {
    Header,
    AfterExtended,
    Extended,
    /// Inside this member's data.
    Member(String),
    /// Salvage gave up on the stream before this point.
    Lost,
}

/// A cap this tool puts on what a hostile backup may make it allocate or do. Exceeding one is
/// `tampered` where no real Qubes backup can (a member over Qubes' chunk size), and
/// `unsupported` where a real but unusual one might.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Bytes of one outer member (Qubes' 100 MiB chunk plus the scrypt overhead).
    MemberSize,
    /// Bytes of a pax extended header or GNU long name in the outer or the inner tar.
    TarMetadata,
    /// Bytes of qubes.xml (Qubes reads at most 1 MiB).
    QubesXml,
    /// Bytes of a file whose size the backup states elsewhere.
    FileSize,
    /// Entries in dom0's home.
    HomeEntries,
    /// Bytes of one path in dom0's home.
    HomePath,
    /// Memory a decompressor's stream asks for, in bytes.
    DecoderMemory,
}

impl Limit {
    fn tampers(self) -> bool {
        matches!(self, Limit::MemberSize | Limit::TarMetadata)
    }

    fn what(self) -> &'static str {
        match self {
            Limit::MemberSize => "member size",
            Limit::TarMetadata => "tar metadata size",
            Limit::QubesXml => "qubes.xml size",
            Limit::FileSize => "file size",
            Limit::HomeEntries => "number of entries in dom0's home",
            Limit::HomePath => "path length in dom0's home",
            Limit::DecoderMemory => "decompressor memory",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The passphrase does not open `member` (the scrypt header MAC did not match).
    WrongPassphrase { member: String },
    /// The member at `at` was altered, or belongs to another file or backup.
    Tampered { at: Location, check: Check },
    /// Data ends early: a chunk, a member, a stream or a whole file is missing.
    Truncated { at: Location, cut: Cut },
    /// A value over one of this tool's caps.
    OverLimit { at: Location, limit: Limit, value: u64, cap: u64 },
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
    /// A bug in this tool (a call out of order), not a property of the backup or the machine.
    Internal(String),
}

impl Error {
    /// The stable class name used by the CLI (`error[<class>]`) and the page (`data-error`).
    pub fn class(&self) -> &'static str {
        match self {
            Error::WrongPassphrase { .. } => "wrong-passphrase",
            Error::Tampered { .. } => "tampered",
            Error::Truncated { .. } => "truncated",
            Error::OverLimit { limit, .. } if limit.tampers() => "tampered",
            Error::Unsupported { .. } | Error::OverLimit { .. } => "unsupported",
            Error::NotABackup { .. } => "not-a-backup",
            Error::UnsafeParams { .. } => "unsafe-params",
            Error::UnsafePath { .. } => "unsafe-path",
            Error::NotFound { .. } => "not-found",
            Error::Io(_) => "io",
            Error::Internal(_) => "internal",
        }
    }

    /// The CLI's exit code for this class (part of the CLI contract).
    pub fn exit_code(&self) -> i32 {
        match self.class() {
            "wrong-passphrase" => 10,
            "tampered" => 11,
            "truncated" => 12,
            "unsupported" => 13,
            "not-a-backup" => 14,
            "unsafe-params" => 15,
            "unsafe-path" => 16,
            "not-found" => 3,
            // sysexits' EX_SOFTWARE: report it as a bug
            "internal" => 70,
            _ => 1,
        }
    }

    /// Damage found in the backup (what salvage records and goes on after), as opposed to a
    /// failure of the machine (`io`) or of this tool (`internal`), which stops a restore.
    pub fn is_damage(&self) -> bool {
        !matches!(self, Error::Io(_) | Error::Internal(_))
    }

    /// Where the failure is, for the classes that have a place in the backup.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Tampered { at, .. } | Error::Truncated { at, .. } | Error::OverLimit { at, .. } => Some(at),
            _ => None,
        }
    }

    /// The check a `tampered` member failed.
    pub fn check(&self) -> Option<&Check> {
        match self {
            Error::Tampered { check, .. } => Some(check),
            _ => None,
        }
    }

    /// Where a `truncated` member's data ends.
    pub fn cut(&self) -> Option<&Cut> {
        match self {
            Error::Truncated { cut, .. } => Some(cut),
            _ => None,
        }
    }

    pub fn tampered(at: impl Into<Location>, check: Check) -> Error {
        Error::Tampered { at: at.into(), check }
    }

    pub fn truncated(at: impl Into<Location>, cut: Cut) -> Error {
        Error::Truncated { at: at.into(), cut }
    }

    pub fn over_limit(at: impl Into<Location>, limit: Limit, value: u64, cap: u64) -> Error {
        Error::OverLimit { at: at.into(), limit, value, cap }
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

    pub fn internal(what: impl Into<String>) -> Error {
        Error::Internal(what.into())
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::TarChecksum => write!(f, "tar header checksum"),
            Check::TarSize => write!(f, "tar size field"),
            Check::PaxHeader => write!(f, "pax extended header"),
            Check::Uniqueness => write!(f, "uniqueness (the member appears twice)"),
            Check::ScryptMagic => write!(f, "scrypt magic"),
            Check::ScryptHeaderChecksum => write!(f, "scrypt header checksum"),
            Check::ChunkHeaderMac => {
                write!(f, "scrypt header MAC (the chunk was altered, renamed, or belongs to another file or backup)")
            }
            Check::FileMac => write!(f, "scrypt file MAC"),
            Check::ChunkName => write!(f, "member name (format 4 chunks are named <file>.NNN.enc)"),
            Check::ChunkDuplicate => write!(f, "chunk sequence (duplicate chunk)"),
            Check::ChunkMissing(i) => write!(f, "chunk sequence (chunk .{i:03} is missing before it)"),
            Check::ChunkGap(max) => write!(f, "chunk sequence (more than {max} chunks missing before it)"),
            Check::ChunkSize => write!(f, "chunk sequence (chunks of one file have one size)"),
            Check::BackupHeader(why) | Check::QubesXml(why) => write!(f, "{why}"),
            Check::HeaderCopy => write!(f, "comparison with its authenticated copy"),
            Check::Stream(codec) => write!(f, "{codec} stream"),
            Check::Trailing(codec) => write!(f, "{codec} trailing data"),
            Check::InnerTar(fault) => write!(f, "inner tar ({fault})"),
            Check::Salvage => write!(f, "salvage"),
            Check::PieceMac(alg) => write!(f, "HMAC-{alg} (its .hmac does not match its bytes)"),
            Check::HmacText(why) => write!(f, "HMAC text ({why})"),
            Check::Name(why) => write!(f, "member name ({why})"),
            Check::PieceDuplicate => write!(f, "piece sequence (duplicate piece)"),
            Check::PieceMissing(i) => write!(f, "piece sequence (piece .{i:03} is missing before it)"),
            Check::PieceEmpty => write!(f, "piece sequence (an empty piece before the last)"),
            Check::PieceAfterEnd => write!(f, "piece sequence (a piece pushed after the stream failed or ended)"),
            Check::OpensslEnc(what) => write!(f, "openssl enc {what}"),
            Check::CbcPadding => write!(f, "AES-CBC padding"),
            Check::MultiVolume(why) => write!(f, "multi-volume tar ({why})"),
        }
    }
}

impl fmt::Display for TarFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TarFault::HeaderChecksum => write!(f, "header checksum"),
            TarFault::HeaderNumber => write!(f, "header number"),
            TarFault::SparseMap => write!(f, "sparse map"),
            TarFault::PaxHeader => write!(f, "pax header"),
            TarFault::ExtendedWithoutMember => write!(f, "extended header without a member"),
            TarFault::DataAfterEnd => write!(f, "data after its end"),
            TarFault::SecondMember(path) => write!(f, "a second member {path:?}"),
            TarFault::Unexpected { found, expected } => write!(f, "holds {found:?}, expected the file {expected:?}"),
            TarFault::BeyondSize(name) => write!(f, "{name} data beyond its size"),
        }
    }
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cut::Read { want, at, len } => write!(f, "wanted {want} bytes at offset {at}, the file has {len}"),
            Cut::Changed { read, want } => write!(f, "read {read} of {want} bytes; it changed since it was picked"),
            Cut::TarHeader => write!(f, "it ends inside a tar header"),
            Cut::Member => write!(f, "the backup file ends inside it"),
            Cut::Container { len, min } => write!(f, "{len} bytes, an encrypted file has at least {min}"),
            Cut::ShortRead { read, size } => {
                write!(f, "read {read} of {size} bytes; the backup file is shorter than its index says")
            }
            Cut::Stream(codec) => write!(f, "{codec} stream ends early"),
            Cut::InnerTar(TarEnd::Header) => write!(f, "inner tar ends inside a header"),
            Cut::InnerTar(TarEnd::AfterExtended) => write!(f, "inner tar ends after an extended header"),
            Cut::InnerTar(TarEnd::Extended) => write!(f, "inner tar ends inside an extended header"),
            Cut::InnerTar(TarEnd::Member(path)) => write!(f, "inner tar ends inside {path}"),
            Cut::InnerTar(TarEnd::Lost) => write!(f, "inner tar: the stream was lost before this point"),
            Cut::HomeTar { file: false } => write!(f, "the home folder's tar ends inside a header"),
            Cut::HomeTar { file: true } => write!(f, "the home folder's tar ends inside a file"),
            Cut::Incomplete(path) => write!(f, "{path} is incomplete"),
            Cut::Missing => write!(f, "missing from the backup"),
            Cut::NotHeld => write!(f, "qubes.xml lists it, the backup does not hold it"),
            Cut::QubeNotHeld(qube) => write!(f, "qubes.xml lists {qube}, the backup holds none of its files"),
            Cut::NoMember(file) => write!(f, "the stream holds no {file}"),
            Cut::NeverCame(path) => write!(f, "{path} is listed but its data never came"),
            Cut::OpensslEnc(what) => write!(f, "the openssl enc stream {what}"),
            Cut::MultiVolume(what) => write!(f, "{what}"),
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
            Error::Tampered { at, check } => write!(
                f,
                "{at} failed its {check} check: it was altered, damaged, or belongs to another file or backup; \
                 restore from another copy of the backup"
            ),
            Error::Truncated { at, cut } => write!(
                f,
                "{at} ends early ({cut}); the backup file is incomplete, copy it again from its source"
            ),
            Error::OverLimit { at, limit, value, cap } if limit.tampers() => write!(
                f,
                "{at} failed its size check ({value} bytes where a Qubes backup has at most {cap}): it was altered, \
                 damaged, or belongs to another file or backup; restore from another copy of the backup"
            ),
            Error::OverLimit { at, limit, value, cap } => {
                let at = if at.member.is_empty() { String::new() } else { format!("{at}: ") };
                write!(f, "not supported: {at}a {} of {value}, over this tool's limit of {cap}", limit.what())
            }
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
            Error::Internal(what) => write!(f, "internal error in qubes-rescue ({what}); please report it"),
        }
    }
}

impl std::error::Error for Error {}

/// What a layer that sees only bytes (a decoder, the inner tar) finds: a fault of the stream,
/// not yet placed, or an error from further down the line (a sink), placed already. Such a
/// layer's public calls take the member being read and place the fault ([`Fault::at`]), so the
/// compiler sees to it that no error leaves without its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    Tampered(Check),
    Truncated(Cut),
    OverLimit { limit: Limit, value: u64, cap: u64 },
    Placed(Error),
}

pub(crate) type Step<T> = std::result::Result<T, Fault>;

impl From<Error> for Fault {
    fn from(e: Error) -> Fault {
        Fault::Placed(e)
    }
}

impl Fault {
    pub(crate) fn at(self, at: impl Into<Location>) -> Error {
        match self {
            Fault::Tampered(check) => Error::tampered(at, check),
            Fault::Truncated(cut) => Error::truncated(at, cut),
            Fault::OverLimit { limit, value, cap } => Error::over_limit(at, limit, value, cap),
            Fault::Placed(e) => e,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e.to_string())
    }
}
