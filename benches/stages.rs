//! Per-stage native throughput of the restore pipeline (`cargo bench --bench stages`):
//! scrypt KDF per chunk (at Qubes-like parameters), HMAC-SHA256, AES-256-CTR, and the
//! decompressors, each over a 100 MiB buffer. Prints numbers; asserts nothing.

use qubes_rescue::format::container::{self, Header, Keys, Limits};
use qubes_rescue::format::decompress::{decoder, Compression};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

const MIB: usize = 1 << 20;

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// Mixed data that compresses about 3:1, like a filesystem image with text and binaries.
fn payload(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut x: u64 = 0x9E3779B97F4A7C15;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (x >> 60) < 5 {
            v.extend_from_slice(&x.to_le_bytes());
        } else {
            v.extend_from_slice(b"lorem ipsum dolor sit amet qubes ");
        }
    }
    v.truncate(len);
    v
}

fn compress(tool: &[&str], data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool[0]).args(&tool[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect(tool[0]);
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap().stdout;
    writer.join().unwrap().unwrap();
    out
}

fn main() {
    let log_n: u8 = std::env::var("BENCH_LOGN").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let chunk = seal_header(log_n);
    let kdf = best_of(2, || container::derive_keys("bench", b"pw", &chunk, &Limits::default()).is_err());
    println!("scrypt KDF logN={log_n} r=8 p=1 ({} MiB): {:.2} s per chunk", chunk.kdf_memory() >> 20, kdf);

    let data = payload(100 * MIB);
    let keys = Keys { enc: [1; 32], hmac: [2; 32] };
    let mut buf = data.clone();
    let aes = best_of(3, || container::apply_keystream(&keys, &mut buf));
    println!("AES-256-CTR: {:.0} MB/s", 100.0 * MIB as f64 / aes / 1e6);
    let mut sealed = data.clone();
    sealed.extend_from_slice(&[0u8; 32]);
    let hmac = best_of(3, || container::verify("bench", &keys, &sealed).is_err());
    println!("HMAC-SHA256: {:.0} MB/s", 100.0 * MIB as f64 / hmac / 1e6);

    for (name, c, tool) in [
        ("gzip", Compression::Gzip, &["gzip", "-6", "-c"][..]),
        ("bzip2", Compression::Bzip2, &["bzip2", "-c"][..]),
        ("xz", Compression::Xz, &["xz", "-c", "-T1"][..]),
        ("zstd", Compression::Zstd, &["zstd", "-c", "-q"][..]),
    ] {
        let input = if name == "gzip" || name == "zstd" { &data[..] } else { &data[..20 * MIB] };
        let packed = compress(tool, input);
        let secs = best_of(2, || {
            let mut d = decoder(c);
            let mut n = 0usize;
            for piece in packed.chunks(4 * MIB) {
                d.feed("bench", piece, &mut |out| {
                    n += out.len();
                    Ok(())
                })
                .unwrap();
            }
            d.finish("bench", &mut |out| {
                n += out.len();
                Ok(())
            })
            .unwrap();
            assert_eq!(n, input.len());
        });
        println!("{name} decode: {:.0} MB/s of output ({} MiB in, ratio {:.2})", input.len() as f64 / secs / 1e6, packed.len() >> 20, input.len() as f64 / packed.len() as f64);
    }
}

/// A container header with the given logN, as `scrypt enc` would write.
fn seal_header(log_n: u8) -> Header {
    let sealed = container::seal(b"pw", b"", 1, 8, 1, [3; 32]);
    let mut raw = sealed[..96].to_vec();
    raw[7] = log_n;
    use sha2::Digest;
    let sum = sha2::Sha256::digest(&raw[..48]);
    raw[48..64].copy_from_slice(&sum[..16]);
    raw.extend_from_slice(&[0u8; 32]);
    // the header MAC no longer matches; derive_keys then reports WrongPassphrase after the
    // full KDF, which is exactly the work being measured
    Header::parse("bench", &raw).unwrap()
}
