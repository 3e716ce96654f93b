//! `extract --salvage`: from a damaged volume, everything that can be placed is restored under
//! `<name>.salvaged`, the image ranges that cannot are listed in `<name>.salvage.json` and left
//! as zeros, the exit code still tells the damage, and no unauthenticated byte is ever used.
//! The expected lost ranges are computed here from the writer's sparse map and the position of
//! the damaged chunk in the stream, independently of the restore code.

mod common;
use common::*;
use qubes_rescue::format::container;
use qubes_rescue::format::decompress::Compression;
use qubes_rescue::restore::{Backup, FileRestore, Target};
use qubes_rescue::output::sink::MemorySink;
use qubes_rescue::writer::{gnu_seek_sparse_map, tarwriter_sparse_map, BackupWriter, Image, SparseEncoding};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;

const CHUNK: usize = 4096;

/// A 2 MiB image with incompressible data in four places (one not block-aligned).
fn image() -> Image {
    let size = 2 << 20;
    Image {
        size,
        runs: vec![
            (4096, noise(9000, 1)),
            (300_000, noise(20_000, 2)),
            (1_000_100, noise(3000, 3)),
            (size - 6000, noise(6000, 4)),
        ],
    }
}

fn backup(c: Compression, enc: SparseEncoding) -> Vec<u8> {
    let mut w = BackupWriter::new(PASS.as_bytes(), BACKUP_ID, c).chunk_size(CHUNK).scrypt_log_n(4);
    w.qubes_xml(qubes_xml(&[]).as_bytes());
    w.volume("vm5/", "private.img", &image(), enc);
    w.file("vm5/", "firewall.xml", b"<firewall version=\"2\"><rules/></firewall>\n");
    w.finish()
}

fn chunk_names(ms: &[(String, Vec<u8>)]) -> Vec<String> {
    ms.iter().map(|(n, _)| n.clone()).filter(|n| n.starts_with("vm5/private.img.")).collect()
}

/// The decrypted inner stream of vm5/private.img (decrypted with the library's container).
fn inner_stream(bytes: &[u8]) -> Vec<u8> {
    let ms = members(bytes);
    chunk_names(&ms)
        .iter()
        .flat_map(|name| {
            let data = ms.iter().find(|(n, _)| n == name).unwrap().1.clone();
            let pass = format!("{BACKUP_ID}!{}!{PASS}", name.strip_suffix(".enc").unwrap());
            container::open(name, pass.as_bytes(), data, &limits()).unwrap()
        })
        .collect()
}

/// The image's sparse map as the writer stored it, and where its data area starts in the
/// uncompressed stream (found by matching the map's runs: no tar parsing here).
fn layout(stream: &[u8], enc: SparseEncoding) -> (Vec<(u64, u64)>, usize) {
    let img = image();
    let map = match enc {
        SparseEncoding::Pax10 => tarwriter_sparse_map(&img),
        SparseEncoding::GnuOld => gnu_seek_sparse_map(&img).unwrap(),
    };
    let stored: Vec<u8> = map.iter().flat_map(|&(o, l)| img.read(o, l)).collect();
    let start = (0..stream.len())
        .step_by(512)
        .find(|&p| stream[p..].starts_with(&stored))
        .expect("the stored runs follow the headers");
    (map, start)
}

/// Image ranges holding the stored bytes `[a, b)` of the stream, merged.
fn image_ranges(map: &[(u64, u64)], data_start: usize, a: usize, b: usize) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut k = data_start as u64; // stream position of the current run
    for &(off, len) in map {
        let (s, e) = ((a as u64).max(k), (b as u64).min(k + len));
        if s < e {
            let r = (off + s - k, off + e - k);
            match out.last_mut() {
                Some(last) if last.1 == r.0 => last.1 = r.1,
                _ => out.push(r),
            }
        }
        k += len;
    }
    out
}

/// Flips a ciphertext byte of `name`: its MAC fails, so none of it may be used.
fn damage(bytes: &[u8], name: &str) -> Vec<(String, Vec<u8>)> {
    let mut ms = members(bytes);
    let data = &mut ms.iter_mut().find(|(n, _)| n == name).unwrap().1;
    let at = container::HEADER_LEN + 10;
    data[at] ^= 0x40;
    ms
}

struct Run {
    out: Output,
    dir: PathBuf,
}

impl Run {
    fn work(&self, name: &str) -> PathBuf {
        self.dir.join("work").join(name)
    }

    fn lost(&self) -> Vec<(u64, u64)> {
        let json: Value = serde_json::from_slice(&std::fs::read(self.work("private.img.salvage.json")).unwrap()).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 1, "the report is {{\"lost\": …}}: {json}");
        json["lost"].as_array().unwrap().iter().map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap())).collect()
    }

    /// The salvaged image is the original except in `lost`, which reads as zeros.
    fn check_image(&self, lost: &[(u64, u64)]) {
        let got = std::fs::read(self.work("private.img.salvaged")).unwrap();
        let mut want = image().to_bytes();
        assert_eq!(got.len(), want.len());
        for &(a, b) in lost {
            want[a as usize..b as usize].fill(0);
        }
        assert!(got == want, "the salvaged image differs outside the lost ranges");
        assert!(!self.work("private.img").exists(), "a damaged volume never gets the clean name");
        assert!(!self.work("private.img.partial").exists());
        assert!(self.work("firewall.xml").exists(), "the qube's other files are restored");
    }
}

fn salvage(name: &str, ms: &[(String, Vec<u8>)]) -> Run {
    let dir = scratch(&format!("salvage-{name}"));
    let bin = dir.join("backup.bin");
    std::fs::write(&bin, rebuild(ms)).unwrap();
    let dest = dir.join("out");
    let out = cli(PASS, &["extract", bin.to_str().unwrap(), "work", "-o", dest.to_str().unwrap(), "--salvage"]);
    Run { out, dir: dest }
}

fn nonzero(ranges: &[(u64, u64)]) -> u64 {
    ranges.iter().map(|(a, b)| b - a).sum()
}

fn uncompressed_damaged_middle_chunks_lose_exactly_their_stream_span(enc: SparseEncoding, tag: &str) {
    let bytes = backup(Compression::None, enc);
    let stream = inner_stream(&bytes);
    let (map, data_start) = layout(&stream, enc);
    let names = chunk_names(&members(&bytes));
    assert!(names.len() >= 8, "want many chunks, got {}", names.len());
    for (i, name) in names.iter().enumerate().take(names.len() - 1).skip(1) {
        let (a, b) = (i * CHUNK, ((i + 1) * CHUNK).min(stream.len()));
        let want = image_ranges(&map, data_start, a, b);
        let run = salvage(&format!("{tag}-{i}"), &damage(&bytes, name));
        let err = stderr(&run.out);
        assert_eq!(run.out.status.code(), Some(11), "{name}: {err}");
        assert_eq!(error_class(&run.out).as_deref(), Some("tampered"));
        assert!(err.contains(name) && err.contains("MAC"), "the message names the chunk and the check: {err}");
        assert!(String::from_utf8_lossy(&run.out.stdout).contains("SALVAGED"));
        let lost = run.lost();
        assert_eq!(lost, want, "{name} covers stream bytes {a}..{b}");
        run.check_image(&lost);
        // what the damaged chunk held is really gone: every lost byte range held data
        assert!(nonzero(&lost) <= (b - a) as u64);
    }
}

#[test]
fn uncompressed_tarwriter_volume_with_a_damaged_middle_chunk_keeps_everything_else() {
    uncompressed_damaged_middle_chunks_lose_exactly_their_stream_span(SparseEncoding::Pax10, "pax");
}

#[test]
fn uncompressed_gnu_sparse_volume_with_a_damaged_middle_chunk_keeps_everything_else() {
    uncompressed_damaged_middle_chunks_lose_exactly_their_stream_span(SparseEncoding::GnuOld, "gnu");
}

#[test]
fn gzip_volume_with_a_damaged_middle_chunk_keeps_everything_before_it() {
    let bytes = backup(Compression::Gzip, SparseEncoding::Pax10);
    let names = chunk_names(&members(&bytes));
    assert!(names.len() >= 8, "want many chunks, got {}", names.len());
    let name = &names[names.len() / 2];
    let run = salvage("gzip-middle", &damage(&bytes, name));
    assert_eq!(run.out.status.code(), Some(11), "{}", stderr(&run.out));
    assert!(stderr(&run.out).contains(name.as_str()));
    let lost = run.lost();
    run.check_image(&lost);
    let img = image();
    // Everything after the damage is lost, up to the end of the image's data...
    assert_eq!(lost.last().unwrap().1, img.size);
    // ...and everything before it is restored: the first two data runs came from earlier chunks.
    assert!(lost[0].0 >= 300_000, "lost starts at {}", lost[0].0);
    // Holes the sparse map declares are known zeros, not lost.
    assert!(lost.iter().all(|&(a, b)| img.read(a, b - a).iter().any(|&x| x != 0)));
}

#[test]
fn a_missing_last_chunk_is_truncated_and_salvaged() {
    for (c, tag) in [(Compression::None, "none"), (Compression::Gzip, "gzip")] {
        let bytes = backup(c, SparseEncoding::Pax10);
        let mut ms = members(&bytes);
        let last = chunk_names(&ms).pop().unwrap();
        ms.retain(|(n, _)| *n != last);
        let run = salvage(&format!("missing-last-{tag}"), &ms);
        assert_eq!(run.out.status.code(), Some(12), "{tag}: {}", stderr(&run.out));
        assert_eq!(error_class(&run.out).as_deref(), Some("truncated"));
        let lost = run.lost();
        run.check_image(&lost);
        assert_eq!(lost.last().unwrap().1, image().size, "{tag}: the end of the image is lost");
        if c == Compression::None {
            // Exactly the stored bytes of the missing chunk (the stream's last CHUNK bytes or less).
            let stream = inner_stream(&bytes);
            let (map, data_start) = layout(&stream, SparseEncoding::Pax10);
            let n = chunk_names(&members(&bytes)).len();
            assert_eq!(lost, image_ranges(&map, data_start, (n - 1) * CHUNK, stream.len()));
        }
    }
}

#[test]
fn a_backup_cut_inside_a_chunk_is_truncated_and_salvaged() {
    let bytes = backup(Compression::None, SparseEncoding::Pax10);
    let stream = inner_stream(&bytes);
    let (map, data_start) = layout(&stream, SparseEncoding::Pax10);
    let ms = members(&bytes);
    let names = chunk_names(&ms);
    let i = names.len() - 2;
    let whole = rebuild(&ms);
    let at = qubes_rescue::format::outer::index(&whole[..]).unwrap().into_iter().find(|m| m.name == names[i]).unwrap().offset;
    let dir = scratch("salvage-cut");
    let bin = dir.join("backup.bin");
    std::fs::write(&bin, &whole[..at as usize + 300]).unwrap();
    let dest = dir.join("out");
    let out = cli(PASS, &["extract", bin.to_str().unwrap(), "work", "-o", dest.to_str().unwrap(), "--salvage"]);
    let run = Run { out, dir: dest };
    assert_eq!(run.out.status.code(), Some(12), "{}", stderr(&run.out));
    assert!(stderr(&run.out).contains(names[i].as_str()));
    let lost = run.lost();
    // The cut chunk and everything after it (the last chunk is gone too).
    assert_eq!(lost, image_ranges(&map, data_start, i * CHUNK, stream.len()));
    let got = std::fs::read(run.work("private.img.salvaged")).unwrap();
    let mut want = image().to_bytes();
    for &(a, b) in &lost {
        want[a as usize..b as usize].fill(0);
    }
    assert!(got == want);
}

#[test]
fn a_damaged_first_chunk_leaves_nothing_to_salvage() {
    let bytes = backup(Compression::None, SparseEncoding::Pax10);
    let run = salvage("first", &damage(&bytes, "vm5/private.img.000.enc"));
    assert_eq!(run.out.status.code(), Some(11), "{}", stderr(&run.out));
    for name in ["private.img", "private.img.salvaged", "private.img.salvage.json", "private.img.partial"] {
        assert!(!run.work(name).exists(), "{name}");
    }
    assert!(String::from_utf8_lossy(&run.out.stdout).contains("nothing could be salvaged"));
}

#[test]
fn a_clean_backup_with_salvage_restores_under_the_normal_names() {
    let bytes = backup(Compression::Gzip, SparseEncoding::Pax10);
    let run = salvage("clean", &members(&bytes));
    assert!(run.out.status.success(), "{}", stderr(&run.out));
    assert_eq!(std::fs::read(run.work("private.img")).unwrap(), image().to_bytes());
    assert!(run.work("firewall.xml").exists());
    let mut listing: Vec<String> =
        std::fs::read_dir(run.dir.join("work")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    listing.sort();
    assert_eq!(listing, ["firewall.xml", "private.img"]);
}

#[test]
fn salvage_never_overwrites_an_existing_report() {
    let bytes = backup(Compression::None, SparseEncoding::Pax10);
    let dir = scratch("salvage-exists");
    let bin = dir.join("backup.bin");
    std::fs::write(&bin, rebuild(&damage(&bytes, "vm5/private.img.002.enc"))).unwrap();
    let dest = dir.join("out");
    std::fs::create_dir_all(dest.join("work")).unwrap();
    std::fs::write(dest.join("work/private.img.salvage.json"), b"mine").unwrap();
    let o = cli(PASS, &["extract", bin.to_str().unwrap(), "work", "-o", dest.to_str().unwrap(), "--salvage"]);
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(std::fs::read(dest.join("work/private.img.salvage.json")).unwrap(), b"mine");
    assert!(!dest.join("work/private.img.salvaged").exists());
}

/// The page's way: its coordinator pushes verified plaintexts and reports lost chunks by length.
#[test]
fn file_restore_push_api_salvages_like_the_cli() {
    let bytes = backup(Compression::None, SparseEncoding::Pax10);
    let stream = inner_stream(&bytes);
    let (map, data_start) = layout(&stream, SparseEncoding::Pax10);
    let backup = Backup::open(bytes.clone(), PASS.as_bytes(), &limits()).unwrap();
    let files = backup.files("work").unwrap();
    let file = files.iter().find(|f| f.name == "private.img").unwrap();
    let bad = [3usize, 4, 7];
    let mut sink = MemorySink::with_cap(1 << 30);
    let mut r = FileRestore::new(file, backup.compression(), Target::Volume(Box::new(&mut sink))).salvage();
    for (i, chunk) in file.chunks.iter().enumerate() {
        if bad.contains(&i) {
            let why = qubes_rescue::Error::tampered(&chunk.name, qubes_rescue::Check::FileMac);
            r.push_lost(Some(chunk.size - container::OVERHEAD as u64), why).unwrap();
        } else {
            r.push(&backup.open_chunk(chunk).unwrap()).unwrap();
        }
        assert!(r.wants_more());
    }
    let s = r.finish_salvage().unwrap();
    assert!(s.found);
    assert_eq!(s.damage.unwrap().class(), "tampered");
    let mut want = Vec::new();
    for i in bad {
        want.extend(image_ranges(&map, data_start, i * CHUNK, (i + 1) * CHUNK));
    }
    want.dedup();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in want {
        match merged.last_mut() {
            Some(l) if l.1 >= a => l.1 = l.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    assert_eq!(s.lost, merged);
    let mut expect = image().to_bytes();
    for &(a, b) in &s.lost {
        expect[a as usize..b as usize].fill(0);
    }
    assert!(sink.data == expect);
    // A compressed stream cannot be followed past a lost chunk: the restore says so.
    let gz = Backup::open(backup_bytes_gzip(), PASS.as_bytes(), &limits()).unwrap();
    let files = gz.files("work").unwrap();
    let file = files.iter().find(|f| f.name == "private.img").unwrap();
    let mut r = FileRestore::new(file, gz.compression(), Target::Verify).salvage();
    r.push(&gz.open_chunk(&file.chunks[0]).unwrap()).unwrap();
    r.push_lost(Some(CHUNK as u64), qubes_rescue::Error::tampered(&file.chunks[1].name, qubes_rescue::Check::FileMac)).unwrap();
    assert!(!r.wants_more());
}

fn backup_bytes_gzip() -> Vec<u8> {
    backup(Compression::Gzip, SparseEncoding::Pax10)
}

/// Restores `private.img` of `work` in salvage mode from the salvage listing, into memory.
fn salvage_in_memory(bytes: Vec<u8>) -> (qubes_rescue::restore::Salvaged, Vec<u8>) {
    let backup = Backup::open(bytes, PASS.as_bytes(), &limits()).unwrap();
    let files = backup.salvage_files("work").unwrap();
    let file = files.iter().find(|f| f.name == "private.img").unwrap();
    let mut sink = MemorySink::with_cap(1 << 30);
    let s = qubes_rescue::restore::salvage_file(&backup, file, Target::Volume(Box::new(&mut sink)), 2, &mut |_| {}).unwrap();
    (s, sink.data)
}

#[test]
fn uncompressed_volume_missing_middle_chunks_keeps_everything_after_the_gap() {
    let bytes = backup(Compression::None, SparseEncoding::Pax10);
    let stream = inner_stream(&bytes);
    let (map, data_start) = layout(&stream, SparseEncoding::Pax10);
    let names = chunk_names(&members(&bytes));
    assert!(names.len() >= 8, "want many chunks, got {}", names.len());
    // one chunk dropped, then two in a row
    for gap in [vec![2usize], vec![4, 5]] {
        let mut ms = members(&bytes);
        ms.retain(|(n, _)| !gap.iter().any(|&i| *n == names[i]));
        let damaged = rebuild(&ms);
        // Without salvage nothing changes: the listing refuses the gap, naming the chunk after it.
        let strict = Backup::open(damaged.clone(), PASS.as_bytes(), &limits()).unwrap().files("work").unwrap_err();
        let after = &names[gap.last().unwrap() + 1];
        assert_eq!(strict.class(), "tampered");
        assert!(strict.to_string().contains(after.as_str()), "{strict}");
        let (s, data) = salvage_in_memory(damaged);
        assert!(s.found);
        assert_eq!(s.damage.as_ref(), Some(&strict), "the same damage is reported");
        let (a, b) = (gap[0] * CHUNK, (gap.last().unwrap() + 1) * CHUNK);
        assert_eq!(s.lost, image_ranges(&map, data_start, a, b), "chunks {gap:?} cover stream bytes {a}..{b}");
        let mut want = image().to_bytes();
        for &(x, y) in &s.lost {
            want[x as usize..y as usize].fill(0);
        }
        assert!(data == want, "the image differs outside the lost ranges");
        assert!(nonzero(&s.lost) > 0 && nonzero(&s.lost) <= (b - a) as u64);
    }
}

#[test]
fn a_gap_and_a_damaged_chunk_are_both_salvaged_around() {
    let bytes = backup(Compression::None, SparseEncoding::GnuOld);
    let stream = inner_stream(&bytes);
    let (map, data_start) = layout(&stream, SparseEncoding::GnuOld);
    let names = chunk_names(&members(&bytes));
    let mut ms = damage(&bytes, &names[5]);
    ms.retain(|(n, _)| *n != names[2]);
    let (s, data) = salvage_in_memory(rebuild(&ms));
    let mut want = image_ranges(&map, data_start, 2 * CHUNK, 3 * CHUNK);
    want.extend(image_ranges(&map, data_start, 5 * CHUNK, 6 * CHUNK));
    assert_eq!(s.lost, want);
    assert!(s.damage.unwrap().to_string().contains("chunk .002 is missing"), "the first damage met is reported");
    let mut expect = image().to_bytes();
    for &(x, y) in &s.lost {
        expect[x as usize..y as usize].fill(0);
    }
    assert!(data == expect);
}

#[test]
fn gzip_volume_missing_a_middle_chunk_keeps_everything_before_it() {
    let bytes = backup(Compression::Gzip, SparseEncoding::Pax10);
    let names = chunk_names(&members(&bytes));
    let mut ms = members(&bytes);
    ms.retain(|(n, _)| *n != names[names.len() / 2]);
    let (s, data) = salvage_in_memory(rebuild(&ms));
    assert_eq!(s.damage.unwrap().class(), "tampered");
    let img = image();
    assert_eq!(s.lost.last().unwrap().1, img.size, "the stream cannot be followed past the gap");
    assert!(s.lost[0].0 >= 300_000, "the first data runs, in earlier chunks, are kept: {:?}", s.lost);
    let mut expect = img.to_bytes();
    for &(x, y) in &s.lost {
        expect[x as usize..y as usize].fill(0);
    }
    assert!(data == expect);
}

#[test]
fn a_plain_restore_of_a_file_with_a_gap_fails_like_the_strict_listing() {
    let bytes = backup(Compression::None, SparseEncoding::Pax10);
    let names = chunk_names(&members(&bytes));
    let mut ms = members(&bytes);
    ms.retain(|(n, _)| *n != names[3]);
    let backup = Backup::open(rebuild(&ms), PASS.as_bytes(), &limits()).unwrap();
    let strict = backup.files("work").unwrap_err();
    let files = backup.salvage_files("work").unwrap();
    let file = files.iter().find(|f| f.name == "private.img").unwrap();
    assert_eq!(file.missing, [3]);
    let e = qubes_rescue::restore::restore_file(&backup, file, Target::Verify, 2, &mut |_| {}).unwrap_err();
    assert_eq!(e, strict);
}

#[test]
fn cli_salvage_restores_past_a_missing_middle_chunk() {
    let bytes = backup(Compression::None, SparseEncoding::Pax10);
    let stream = inner_stream(&bytes);
    let (map, data_start) = layout(&stream, SparseEncoding::Pax10);
    let names = chunk_names(&members(&bytes));
    let mut ms = members(&bytes);
    ms.retain(|(n, _)| *n != names[3]);
    let run = salvage("cli-gap", &ms);
    assert_eq!(run.out.status.code(), Some(11), "{}", stderr(&run.out));
    assert_eq!(error_class(&run.out).as_deref(), Some("tampered"));
    let lost = run.lost();
    assert_eq!(lost, image_ranges(&map, data_start, 3 * CHUNK, 4 * CHUNK));
    run.check_image(&lost);
}
