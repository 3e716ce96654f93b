//! Partition tables of a disk image (GPT, MBR), read with gptman and mbrman.

use super::*;
use std::io::{Read, Seek, SeekFrom};
/// A partition of a disk image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// 1-based, as `sgdisk -p` / `fdisk -l` number them.
    pub number: u32,
    /// Byte offset and length in the image.
    pub start: u64,
    pub size: u64,
    /// `Linux filesystem`, or the type GUID / MBR code.
    pub kind: String,
    /// The GPT partition name (empty for MBR).
    pub name: String,
    /// Typed as a Linux filesystem (GPT 0FC63DAF-…, MBR 0x83).
    pub linux: bool,
    /// Holds an ext2/3/4 superblock.
    pub ext4: bool,
}

/// `std::io` access to a [`ReadAt`] for the partition-table crates.
pub(super) struct Cursor<'a> {
    src: &'a dyn ReadAt,
    pos: u64,
}

impl Read for Cursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.src.len().saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        self.src.read_at(self.pos, &mut buf[..n]).map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Cursor<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.src.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}

pub(super) fn has_ext_magic(src: &dyn ReadAt, start: u64) -> bool {
    let mut m = [0u8; 2];
    start.checked_add(1024 + 56).is_some_and(|at| src.read_at(at, &mut m).is_ok()) && u16::from_le_bytes(m) == EXT_MAGIC
}

pub(super) fn guid_text(g: &[u8; 16]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}",
        u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        g[8],
        g[9],
        g[10..].iter().map(|b| format!("{b:02X}")).collect::<String>()
    )
}

/// A GPT partition type by its usual name, else its GUID.
pub(super) fn gpt_kind(g: &[u8; 16]) -> String {
    let text = guid_text(g);
    let name = match text.as_str() {
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "Linux filesystem",
        "21686148-6449-6E6F-744E-656564454649" => "BIOS boot",
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "EFI system",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "Linux swap",
        "E6D6D379-F507-44C2-A23C-238F2A3DF928" => "Linux LVM",
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" => "Linux root (x86-64)",
        _ => return text,
    };
    name.to_string()
}

/// The partitions of a disk image, or `None` when it has no partition table (a bare
/// filesystem, like `private.img`).
pub fn partitions(src: &dyn ReadAt) -> Result<Option<Vec<Partition>>> {
    let mut sig = [0u8; 8];
    let gpt_at = [512u64, 4096].into_iter().find(|&at| src.read_at(at, &mut sig).is_ok() && &sig == b"EFI PART");
    if let Some(sector) = gpt_at {
        let gpt = gptman::GPT::read_from(&mut Cursor { src, pos: 0 }, sector)
            .map_err(|e| Error::Io(format!("the disk's GPT partition table is damaged ({e})")))?;
        let parts = gpt
            .iter()
            .filter(|(_, p)| p.is_used() && p.ending_lba >= p.starting_lba)
            .filter_map(|(n, p)| {
                let start = p.starting_lba.checked_mul(sector)?;
                let size = (p.ending_lba - p.starting_lba + 1).checked_mul(sector)?;
                let linux = p.partition_type_guid == GPT_LINUX_FS || gpt_kind(&p.partition_type_guid).starts_with("Linux root");
                Some(Partition {
                    number: n,
                    start,
                    size,
                    kind: gpt_kind(&p.partition_type_guid),
                    name: p.partition_name.as_str().to_string(),
                    linux,
                    ext4: has_ext_magic(src, start),
                })
            })
            .collect();
        return Ok(Some(parts));
    }
    let mut boot = [0u8; 2];
    let mbr = src.read_at(510, &mut boot).is_ok() && boot == [0x55, 0xaa] && !has_ext_magic(src, 0);
    if !mbr {
        return Ok(None);
    }
    // mbrman 0.6 panics (an unwrap in its alignment guess) when every used partition starts
    // at sector 0, where the MBR itself lies: no real disk has one, so it is damage.
    let mut entries = [0u8; 64];
    src.read_at(446, &mut entries)?;
    if let Some(i) = entries.chunks(16).position(|e| e[4] != 0 && e[8..12] == [0; 4]) {
        return Err(Error::Io(format!("the disk's MBR partition table is damaged (partition {} starts on the MBR itself)", i + 1)));
    }
    let table = mbrman::MBR::read_from(&mut Cursor { src, pos: 0 }, 512)
        .map_err(|e| Error::Io(format!("the disk's MBR partition table is damaged ({e})")))?;
    let parts = table
        .iter()
        .filter(|(_, p)| p.is_used() && p.sys != 0x05 && p.sys != 0x0f && p.sys != 0x85)
        .map(|(n, p)| {
            let start = u64::from(p.starting_lba) * 512;
            Partition {
                number: n as u32,
                start,
                size: u64::from(p.sectors) * 512,
                kind: if p.sys == MBR_LINUX { "Linux".into() } else { format!("type 0x{:02x}", p.sys) },
                name: String::new(),
                linux: p.sys == MBR_LINUX,
                ext4: has_ext_magic(src, start),
            }
        })
        .collect();
    Ok(Some(parts))
}
