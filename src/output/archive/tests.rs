use super::*;
use crate::format::inner_tar::tests::tmpdir;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A file as the page holds it: its size and its data runs, each filled with one byte value.
struct Restored {
    name: &'static str,
    size: u64,
    runs: Vec<(u64, u64, u8)>,
}

impl Restored {
    fn runs(&self) -> Vec<(u64, u64)> {
        self.runs.iter().map(|&(o, l, _)| (o, l)).collect()
    }
}

/// The archive the page assembles: each member's headers, its runs' bytes, its padding; the end.
fn write_archive(path: &Path, folder: &str, files: &[Restored]) {
    let mut out = std::fs::File::create(path).unwrap();
    for f in files {
        let m = member(&format!("{folder}/{}", f.name), f.size, &f.runs(), 1_700_000_000).unwrap();
        let data: Vec<u8> = f.runs.iter().flat_map(|&(_, len, byte)| std::iter::repeat_n(byte, len as usize)).collect();
        out.write_all(&m.header).unwrap();
        for piece in m.pieces {
            match piece {
                Piece::Zeros(n) => out.write_all(&vec![0; n as usize]).unwrap(),
                Piece::Data { from, to } => out.write_all(&data[from as usize..to as usize]).unwrap(),
            }
        }
        out.write_all(&vec![0; m.padding]).unwrap();
    }
    out.write_all(&end()).unwrap();
}

fn files() -> Vec<Restored> {
    vec![
        // ends in a hole, data at the start and in the middle
        Restored { name: "work-private.img", size: 64 * MIB, runs: vec![(0, 4096, 1), (10 * MIB + 512, 70_000, 2)] },
        // ends in data, offsets above 8 GiB (PAX numbers, no ustar octal); runs that start and
        // end inside blocks, two of them in one block
        Restored { name: "big-private.img", size: 9 * GIB, runs: vec![(4 * GIB + 100, 1000, 3), (4 * GIB + 1110, 10, 7), (9 * GIB - 4096, 4096, 4)] },
        // not a multiple of 512, ending in data
        Restored { name: "odd.img", size: 5 * MIB + 77, runs: vec![(5 * MIB - 300, 377, 8)] },
        Restored { name: "holes-only.img", size: 5 * MIB, runs: vec![] },
        Restored { name: "work-firewall.xml", size: 777, runs: vec![(0, 777, 5)] },
        Restored { name: "empty.txt", size: 0, runs: vec![] },
        Restored { name: "a-name-longer-than-ustar-allows-for-a-qube-whose-file-has-a-very-long-name-indeed-0123456789.img", size: 3000, runs: vec![(0, 3000, 6)] },
    ]
}

/// Every byte of the extracted file where the runs say, zeros elsewhere (big holes by size and
/// by a read at a few places), and holes that take no disk.
fn check_extracted(path: &Path, f: &Restored) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(meta.len(), f.size, "{} has its full size", f.name);
    let mut file = std::fs::File::open(path).unwrap();
    for &(off, len, byte) in &f.runs {
        let mut buf = vec![0; len as usize];
        file.seek(SeekFrom::Start(off)).unwrap();
        file.read_exact(&mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == byte), "{}: run at {off} is intact", f.name);
    }
    for probe in [f.size / 3, f.size / 2, f.size.saturating_sub(1)] {
        if probe >= f.size || f.runs.iter().any(|&(o, l, _)| probe >= o && probe < o + l) {
            continue;
        }
        let mut b = [9u8];
        file.seek(SeekFrom::Start(probe)).unwrap();
        file.read_exact(&mut b).unwrap();
        assert_eq!(b[0], 0, "{}: a hole reads as zero at {probe}", f.name);
    }
    let data: u64 = f.runs.iter().map(|&(_, l, _)| l).sum();
    assert!(meta.blocks() * 512 <= data + 2 * MIB, "{}: {} bytes on disk for {data} of data: holes are holes", f.name, meta.blocks() * 512);
}

fn extract_with(tool: &str, args: &[&str], label: &str) {
    let dir = tmpdir(&format!("archive-{label}"));
    let folder = folder(&["work".into(), "big".into()]);
    let files = files();
    write_archive(&dir.join("all.tar"), &folder, &files);
    let archive_size = std::fs::metadata(dir.join("all.tar")).unwrap().len();
    assert!(archive_size < 2 * MIB, "the archive stores data only: {archive_size} bytes for 9 GiB + 64 MiB of images");
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let status = Command::new(tool).args(args).arg(dir.join("all.tar")).current_dir(&out).output().unwrap();
    assert!(status.status.success(), "{tool}: {}", String::from_utf8_lossy(&status.stderr));
    for f in &files {
        check_extracted(&out.join(&folder).join(f.name), f);
    }
    let listed: Vec<_> = std::fs::read_dir(out.join(&folder)).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(listed.len(), files.len(), "nothing else is extracted (no GNUSparseFile.0 folder): {listed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gnu_tar_extracts_the_archive_with_every_file_byte_exact_and_holes_as_holes() {
    extract_with("tar", &["-xf"], "gnu");
}

#[test]
fn bsdtar_of_macos_and_windows_extracts_the_archive_with_every_file_byte_exact_and_holes_as_holes() {
    extract_with("bsdtar", &["-xf"], "bsd");
}

#[test]
fn runs_out_of_order_overlapping_empty_or_past_the_end_are_a_bug_not_an_archive() {
    for runs in [vec![(10, 5), (0, 5)], vec![(0, 10), (5, 10)], vec![(0, 0)], vec![(90, 20)]] {
        let e = member("x/y", 100, &runs, 0).unwrap_err();
        assert_eq!(e.class(), "internal", "{runs:?}");
    }
}

#[test]
fn one_qube_names_its_folder_and_several_are_counted() {
    assert_eq!(folder(&["work".into()]), "qubes-rescue-work");
    assert_eq!(folder(&["a".into(), "b".into(), "c".into()]), "qubes-rescue-3-qubes");
    assert_eq!(padding(0), 0);
    assert_eq!(padding(1), 511);
    assert_eq!(padding(512), 0);
}
