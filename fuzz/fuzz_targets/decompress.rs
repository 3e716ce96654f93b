//! The push decoders. Byte 0 picks the compressor (and the mode), byte 1 seeds the piece sizes.
//! Even modes: the rest is a compressed stream fed in random pieces; no panic, output bounded
//! (a bomb hits the cap as an error, not as memory). Odd modes: the rest is compressed by the
//! writer and must decode back to itself, in any pieces.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qubes_rescue::format::decompress::{decoder, Compression};
use qubes_rescue::error::Error;

const ALL: [Compression; 6] =
    [Compression::None, Compression::Gzip, Compression::Bzip2, Compression::Xz, Compression::Lzma, Compression::Zstd];
const CAP: u64 = 64 << 20;

fn pieces(data: &[u8], mut seed: u32) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
        let n = match (seed >> 16) % 4 {
            0 => 1,
            1 => 1 + (seed >> 8) as usize % 16,
            2 => 1 + (seed >> 4) as usize % 4096,
            _ => rest.len(),
        }
        .min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

fn decode(c: Compression, data: &[u8], seed: u32) -> Result<Vec<u8>, Error> {
    let mut d = decoder(c);
    let mut got = Vec::new();
    let mut total = 0u64;
    let mut out = |o: &[u8]| {
        assert!(o.len() <= 256 << 10, "output pieces are at most 256 KiB");
        total += o.len() as u64;
        if total > CAP {
            return Err(Error::Io("fuzz output cap".into()));
        }
        if got.len() < 1 << 20 {
            got.extend_from_slice(o);
        }
        Ok(())
    };
    for p in pieces(data, seed) {
        d.feed("fuzz", p, &mut out)?;
    }
    d.finish("fuzz", &mut out)?;
    Ok(got)
}

fuzz_target!(|data: &[u8]| {
    let [sel, seed, rest @ ..] = data else { return };
    let c = ALL[(*sel as usize / 2) % ALL.len()];
    if sel % 2 == 0 {
        let _ = decode(c, rest, *seed as u32);
        return;
    }
    let plain = &rest[..rest.len().min(64 << 10)];
    let packed = qubes_rescue::writer::compress(c, plain);
    assert_eq!(decode(c, &packed, *seed as u32).unwrap(), plain);
    // Cut short, the stream must not pass as complete (unless nothing was cut).
    if packed.len() > 1 && c != Compression::None {
        let cut = &packed[..packed.len() - 1 - (*seed as usize % (packed.len() - 1))];
        assert!(decode(c, cut, *seed as u32).is_err(), "{c:?} cut to {} of {} bytes passed", cut.len(), packed.len());
    }
});
