//! Synthetic volumes laid out as GNU tar writes them; the real ones (GNU tar 1.34,
//! `--tape-length 20`) are read in tests/legacy_fixtures.rs.
use super::*;

fn header(name: &str, flag: u8, size: u64, magic: bool) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[156] = flag;
    if magic {
        h[257..265].copy_from_slice(b"ustar  \0");
    }
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(512) * 512, 0);
    v
}

/// One tar of member `a` (3000 bytes) then `b` (10 bytes), and the same cut after 1536 bytes
/// of `a`'s data into two volumes.
fn archive() -> (Vec<u8>, Vec<Vec<u8>>) {
    let a: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8 + 1).collect();
    let whole = [header("vm5/a", b'0', 3000, true), padded(&a), header("vm5/b", b'0', 10, true), padded(b"0123456789"), vec![0; 1024]]
        .concat();
    let v1 = whole[..512 + 1536].to_vec();
    let v2 = [header("vm5/a", b'M', 3000 - 1536, false), whole[512 + 1536..].to_vec()].concat();
    (whole, vec![v1, v2])
}

fn join(volumes: &[Vec<u8>], piece: usize) -> Result<Vec<u8>> {
    let mut j = VolumeJoiner::new();
    let mut got = Vec::new();
    for v in volumes {
        for p in v.chunks(piece) {
            j.feed("v", p, &mut |b| {
                got.extend_from_slice(b);
                Ok(())
            })?;
        }
        j.end_volume("v")?;
    }
    j.finish("v")?;
    Ok(got)
}

#[test]
fn volumes_join_into_the_tar_they_were_cut_from() {
    let (whole, volumes) = archive();
    for piece in [1, 100, 512, 4096] {
        assert_eq!(join(&volumes, piece).unwrap(), whole, "piece {piece}");
    }
}

#[test]
fn a_volume_label_is_dropped() {
    let (whole, mut volumes) = archive();
    volumes[1] = [header("label", b'V', 0, false), volumes[1].clone()].concat();
    assert_eq!(join(&volumes, 512).unwrap(), whole);
}

#[test]
fn a_continuation_of_the_wrong_member_or_size_is_tampered() {
    let (_, volumes) = archive();
    let rest = volumes[1][512..].to_vec();
    for bad in [header("vm5/x", b'M', 1464, false), header("vm5/a", b'M', 1465, false), header("vm5/a", b'0', 1464, true)] {
        let v = vec![volumes[0].clone(), [bad, rest.clone()].concat()];
        assert!(matches!(join(&v, 512), Err(Error::Tampered { .. })));
    }
}

/// An `'M'` header claiming `offset` bytes of the member were in earlier volumes.
fn continuation(name: &str, size: u64, offset: u64) -> Vec<u8> {
    let mut h = header(name, b'M', size, false);
    h[369..380].copy_from_slice(format!("{offset:011o}").as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

#[test]
fn a_continuation_where_nothing_continues_is_tampered() {
    let (whole, _) = archive();
    let v1 = whole[..512 + 3072].to_vec(); // member a complete
    let v2 = [continuation("vm5/b", 10, 1536), whole[512 + 3072..].to_vec()].concat();
    assert!(matches!(join(&[v1, v2], 512), Err(Error::Tampered { .. })));
}

#[test]
fn a_continuation_announcing_the_member_that_starts_the_volume_is_dropped() {
    // GNU tar writes it when the volume starts exactly at a member's header (offset 0).
    let (whole, _) = archive();
    let v1 = whole[..512 + 3072].to_vec();
    let v2 = [continuation("vm5/b", 10, 0), whole[512 + 3072..].to_vec()].concat();
    assert_eq!(join(&[v1, v2], 512).unwrap(), whole);
}

/// Real GNU tar volumes: `tar -c -M --sparse --tape-length=10 [-V label]` of a file spanning
/// volumes, a sparse image, a small file and a long name, joined and read by the inner tar.
#[test]
fn gnu_tar_multi_volume_archives_join_and_read_back() {
    use crate::format::inner_tar::{Entry, InnerTar, Visitor};
    use std::collections::BTreeMap;
    struct Files(BTreeMap<String, Vec<u8>>, String);
    impl Visitor for Files {
        fn entry(&mut self, e: &Entry) -> Result<()> {
            self.1 = String::from_utf8_lossy(&e.path).into_owned();
            self.0.insert(self.1.clone(), vec![0; e.size as usize]);
            Ok(())
        }
        fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
            let f = self.0.get_mut(&self.1).unwrap();
            f[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
            Ok(())
        }
        fn end_entry(&mut self) -> Result<()> {
            Ok(())
        }
    }
    let dir = std::env::temp_dir().join(format!("qr-multivolume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let mut want = BTreeMap::new();
    let noise = |n: usize, seed: u32| -> Vec<u8> { (0..n as u32).map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8 | 1).collect() };
    want.insert("a.bin".to_string(), noise(30001, 1));
    let mut img = vec![0u8; 1 << 20];
    img[4096..13096].copy_from_slice(&noise(9000, 2));
    img[700000..705000].copy_from_slice(&noise(5000, 3));
    want.insert("b.img".to_string(), img);
    want.insert("c.txt".to_string(), b"c\n".to_vec());
    want.insert(format!("{}.txt", "n".repeat(120)), b"long name\n".to_vec());
    for (n, d) in &want {
        // Written with holes (only the non-zero 4 KiB blocks), so GNU tar stores b.img sparse.
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(dir.join("src").join(n)).unwrap();
        f.set_len(d.len() as u64).unwrap();
        for (i, block) in d.chunks(4096).enumerate().filter(|(_, b)| b.iter().any(|&x| x != 0)) {
            f.seek(SeekFrom::Start(i as u64 * 4096)).unwrap();
            f.write_all(block).unwrap();
        }
    }
    for label in [None, Some("qubes")] {
        for v in std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('v')) {
            std::fs::remove_file(v.path()).unwrap();
        }
        let mut cmd = std::process::Command::new("tar");
        cmd.current_dir(dir.join("src")).args(["-c", "-M", "--sparse", "--tape-length=10"]);
        if let Some(l) = label {
            cmd.args(["-V", l]);
        }
        for i in 0..30 {
            cmd.arg("-f").arg(dir.join(format!("v{i:02}")));
        }
        let out = cmd.args(want.keys()).output().unwrap();
        assert!(out.status.success(), "tar: {}", String::from_utf8_lossy(&out.stderr));
        let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        names.sort();
        let volumes: Vec<Vec<u8>> = names.iter().map(|p| std::fs::read(p).unwrap()).collect();
        assert!(volumes.len() >= 5, "{} volumes", volumes.len());
        let joined = join(&volumes, 4096).unwrap();
        let mut files = Files(BTreeMap::new(), String::new());
        let mut tar = InnerTar::new();
        tar.feed("t", &joined, &mut files).unwrap();
        tar.finish("t", &mut files).unwrap();
        assert_eq!(files.0, want, "label {label:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_volume_split_at_a_member_boundary_needs_no_continuation() {
    let (whole, _) = archive();
    let v = vec![whole[..512 + 3072].to_vec(), whole[512 + 3072..].to_vec()];
    assert_eq!(join(&v, 512).unwrap(), whole);
}

#[test]
fn a_missing_last_volume_is_truncated() {
    let (_, volumes) = archive();
    assert!(matches!(join(&volumes[..1], 512), Err(Error::Truncated { .. })));
}

#[test]
fn a_volume_of_partial_blocks_is_tampered() {
    let (_, volumes) = archive();
    let v = vec![volumes[0][..2000].to_vec(), volumes[1].clone()];
    assert!(join(&v, 512).is_err());
}
