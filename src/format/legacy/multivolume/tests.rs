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
            j.feed(p, &mut |b| {
                got.extend_from_slice(b);
                Ok(())
            })?;
        }
        j.end_volume()?;
    }
    j.finish()?;
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

#[test]
fn a_continuation_where_nothing_continues_is_tampered() {
    let (whole, _) = archive();
    let v1 = whole[..512 + 3072].to_vec(); // member a complete
    let v2 = [header("vm5/a", b'M', 0, false), whole[512 + 3072..].to_vec()].concat();
    assert!(matches!(join(&[v1, v2], 512), Err(Error::Tampered { .. })));
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
