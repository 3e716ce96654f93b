//! ext4 / GPT / MBR glue (`fs::Fs`, `fs::partitions`) and dom0's home index (`fs::TarIndex`) on
//! any image: no panic, every error is one of the classes the browser reports (io, not-found,
//! unsupported, truncated, tampered), and what is read stays within what was asked for.
//!
//! Input: `[mode][size: u32 LE]` then data runs `[offset: u32 LE][len: u16 LE][bytes]`, written
//! into a `SparseImage` of `size` bytes (≤ 64 MiB). Sparse, so a 1 MiB ext4 image with a journal
//! is a ~30 KiB seed, and mutations land in metadata rather than in zeros.
//! `mode`: bits 0–2 = partition asked for (0: the default choice), bit 7 = the image is a tar of
//! dom0's home (`TarIndex::index_stream`) rather than a disk.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qubes_rescue::error::Error;
use qubes_rescue::browse::fs::{self, Fs, Kind, TarIndex};
use qubes_rescue::output::image::SparseImage;
use qubes_rescue::output::sink::VolumeSink;

const MAX_IMAGE: u64 = 64 << 20;
/// Entries one walk may visit, files read per input, pieces read per file: bounds the harness's
/// own work (the library's bounds, 50 M entries and 256 levels, are too large to fuzz quickly).
const WALK_ENTRIES: usize = 2000;
const FILES: usize = 16;
const PIECES: usize = 4;
const PIECE: usize = 4096;

fn image(data: &[u8]) -> Option<SparseImage> {
    let size = u64::from(u32::from_le_bytes(data.get(..4)?.try_into().ok()?)).min(MAX_IMAGE);
    let mut img = SparseImage::new();
    img.set_len(size).ok()?;
    let mut rest = &data[4..];
    while rest.len() >= 6 {
        let offset = u64::from(u32::from_le_bytes(rest[..4].try_into().unwrap()));
        let len = usize::from(u16::from_le_bytes([rest[4], rest[5]])).min(rest.len() - 6);
        let bytes = &rest[6..6 + len];
        // Runs past the declared size are dropped (the image keeps its size).
        if offset + len as u64 <= size {
            img.write_at(offset, bytes).ok()?;
        }
        rest = &rest[6 + len..];
    }
    Some(img)
}

fn check(e: &Error) {
    assert!(
        matches!(e.class(), "io" | "not-found" | "unsupported" | "truncated" | "tampered"),
        "unexpected class {}: {e}",
        e.class()
    );
}

fn disk(img: SparseImage, number: Option<u32>) {
    let len = img.size();
    let parts = match fs::partitions(&img) {
        Ok(parts) => parts.unwrap_or_default(),
        Err(e) => {
            check(&e);
            Vec::new()
        }
    };
    assert!(parts.iter().all(|p| p.number >= 1));
    let fs = match Fs::open(img, number) {
        Ok(fs) => fs,
        Err(e) => return check(&e),
    };
    if let Some(p) = &fs.partition {
        assert!(p.start.checked_add(p.size).is_some_and(|end| end <= len), "{p:?} past {len}");
    }
    match fs.list(b"/") {
        Ok(l) => {
            assert!(l.entries.windows(2).all(|w| w[0].name <= w[1].name), "sorted by name");
            l.errors.iter().for_each(check);
        }
        Err(e) => check(&e),
    }
    let mut seen = 0usize;
    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut links: Vec<Vec<u8>> = Vec::new();
    let walked = fs.walk(b"/", &mut |w| {
        seen += 1;
        if seen > WALK_ENTRIES {
            return Err(Error::Io("harness budget".into()));
        }
        assert!(w.rel.len() <= fs::MAX_DEPTH);
        assert!(w.entry.path.starts_with(b"/"));
        if let Some(e) = &w.entry.error {
            check(e);
        }
        match w.entry.kind {
            Kind::File if files.len() < FILES => files.push(w.entry.path.clone()),
            Kind::Symlink if links.len() < FILES => links.push(w.entry.path.clone()),
            _ => {}
        }
        Ok(true)
    });
    if let Err(e) = walked {
        check(&e);
    }
    // Symbolic links are followed only inside the filesystem, at most 40 deep: no hang.
    for path in &links {
        if let Err(e) = fs.stat_follow(path) {
            check(&e);
        }
        match fs.open_file(path) {
            Ok(mut f) => {
                let size = f.size();
                read_some(|buf| f.read(buf), size)
            }
            Err(e) => check(&e),
        }
    }
    for path in &files {
        if let Err(e) = fs.stat(path) {
            check(&e);
        }
        match fs.open_file(path) {
            Ok(mut f) => {
                let size = f.size();
                read_some(|buf| f.read(buf), size)
            }
            Err(e) => check(&e),
        }
    }
}

/// Reads a few pieces: never more than asked for, never past the file's size.
fn read_some(mut read: impl FnMut(&mut [u8]) -> Result<usize, Error>, size: u64) {
    let mut buf = vec![0u8; PIECE];
    let mut total = 0u64;
    for _ in 0..PIECES {
        match read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                assert!(n <= PIECE);
                total += n as u64;
                assert!(total <= size, "read {total} bytes of a {size}-byte file");
            }
            Err(e) => return check(&e),
        }
    }
}

fn home(img: SparseImage) {
    let index = match TarIndex::index_stream(&img) {
        Ok(i) => i,
        Err(e) => return check(&e),
    };
    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut seen = 0usize;
    let walked = index.walk(b"/", &mut |w| {
        seen += 1;
        assert!(seen <= 1 << 20, "the index holds at most one entry per header block");
        assert!(w.entry.path.starts_with(b"/home"), "{:?}", w.entry.path);
        if w.entry.kind == Kind::File && files.len() < FILES {
            files.push(w.entry.path.clone());
        }
        Ok(true)
    });
    if let Err(e) = walked {
        check(&e);
    }
    for path in &files {
        match index.open_file(path) {
            Ok(mut f) => {
                let size = f.size();
                read_some(|buf| f.read(&img, buf), size)
            }
            Err(e) => check(&e),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some(img) = image(rest) else { return };
    if mode & 0x80 != 0 {
        home(img);
    } else {
        disk(img, Some(u32::from(mode & 7)).filter(|&n| n != 0));
    }
});
