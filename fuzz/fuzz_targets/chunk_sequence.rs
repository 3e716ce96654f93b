//! Chunk sequencing: outer members (one per input line, `name size`) grouped into files the way
//! `Backup::files` does. What is accepted is a contiguous `.000, .001, …` sequence per file,
//! each chunk once, non-final chunks of one size, under the asked path only. The salvage listing
//! (`sequences_with_gaps`) differs only in recording chunks missing between present ones.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qubes_rescue::format::outer::Member;
use qubes_rescue::format::chunks::{sequences, sequences_with_gaps, FileKind, MAX_MISSING_CHUNKS};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let members: Vec<Member> = text
        .lines()
        .take(2000)
        .map(|l| {
            let (name, size) = l.rsplit_once(' ').unwrap_or((l, "1"));
            Member { name: name.to_string(), offset: 0, size: size.parse().unwrap_or(1), cut: false }
        })
        .collect();
    for (path, whole) in [("vm5", None), ("dom0-home/user", Some(FileKind::Home)), ("qubes.xml", Some(FileKind::Small))] {
        let gappy = sequences_with_gaps(&members, path, whole);
        for f in gappy.iter().flatten() {
            let n = f.chunks.len() + f.missing.len();
            let mut present = f.chunks.iter();
            for i in 0..n {
                if f.missing.binary_search(&i).is_ok() {
                    assert!(i + 1 < n, "a missing chunk is never the last");
                } else {
                    assert_eq!(present.next().unwrap().name, format!("{}.{i:03}.enc", f.path), "present chunks in order");
                }
            }
            assert!(f.missing.windows(2).all(|w| w[0] < w[1]), "ascending (the binary search above relies on it)");
            assert!(f.missing.len() <= MAX_MISSING_CHUNKS);
        }
        let Ok(files) = sequences(&members, path, whole) else { continue };
        assert_eq!(gappy.as_ref().ok(), Some(&files), "without a gap both listings agree");
        let mut seen = std::collections::HashSet::new();
        for f in &files {
            assert!(!f.chunks.is_empty());
            assert!(seen.insert(f.path.clone()), "one file per path");
            if whole.is_some() {
                assert_eq!(f.path, path);
            } else {
                assert!(f.path.starts_with("vm5/") && !f.path[4..].contains('/') && f.path.len() > 4, "{}", f.path);
            }
            for (i, c) in f.chunks.iter().enumerate() {
                assert_eq!(c.name, format!("{}.{i:03}.enc", f.path), "contiguous and canonical");
            }
            let first = f.chunks[0].size;
            assert!(f.chunks[..f.chunks.len() - 1].iter().all(|c| c.size == first));
        }
    }
});
