//! Helpers shared by the integration tests.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

pub fn sha256_file(path: &Path) -> String {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    hex(&Sha256::digest(&data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh empty folder under the target dir, removed at the start of each use.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the CLI with the passphrase in the environment.
pub fn cli(passphrase: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qubes-rescue"))
        .args(args)
        .env("QUBES_RESCUE_PASSPHRASE", passphrase)
        .output()
        .expect("running qubes-rescue")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The error class the CLI printed (`error[<class>]`), if any.
pub fn error_class(o: &Output) -> Option<String> {
    let err = stderr(o);
    let start = err.find("error[")? + 6;
    let end = err[start..].find(']')? + start;
    Some(err[start..end].to_string())
}

use qubes_rescue::format::container::{self, Limits};
use qubes_rescue::format::decompress::Compression;
use qubes_rescue::format::outer;
use qubes_rescue::restore::{self, Backup, FileReport, Target};
use qubes_rescue::output::sink::MemorySink;
use qubes_rescue::writer::{BackupWriter, HomeEntry, Image, SparseEncoding};
use qubes_rescue::Error;

pub const PASS: &str = "correct horse";
pub const BACKUP_ID: &str = "20240101T120000-4242";

/// A minimal R4 qubes.xml listing `work` (vm5/) with a private volume and dom0's home.
pub fn qubes_xml(extra_volumes: &[&str]) -> String {
    let vols: String = ["private"]
        .iter()
        .chain(extra_volumes)
        .map(|v| format!(r#"<volume name="{v}" pool="lvm" rw="True" save_on_stop="True" size="1048576"/>"#))
        .collect();
    format!(
        r#"<?xml version='1.0' encoding='UTF-8'?>
<qubes><labels><label color="0xcc0000" id="label-1">red</label></labels><pools/><properties/><domains>
<domain id="domain-0" class="AdminVM"><properties/><features><feature name="backup-content">1</feature><feature name="backup-path">dom0-home/user</feature><feature name="backup-size">100</feature></features><tags/></domain>
<domain id="domain-5" class="AppVM"><properties><property name="label">label-1</property><property name="name">work</property><property name="qid">5</property><property name="template">fedora-40</property></properties>
<features><feature name="backup-content">1</feature><feature name="backup-path">vm5/</feature><feature name="backup-size">4096</feature></features><tags/>
<volume-config>{vols}</volume-config></domain>
</domains></qubes>"#
    )
}

/// A small image with data in a few places.
pub fn sample_image(size: u64) -> Image {
    Image {
        size,
        runs: vec![(0, b"first block".to_vec()), (size / 3, noise(5000, 1)), (size - 700, noise(700, 2))],
    }
}

/// Incompressible bytes, reproducible from `seed`.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A backup of `work` (private.img over several chunks) and dom0's home, made by our writer.
pub fn sample_backup(c: Compression, chunk: usize) -> (Vec<u8>, Image) {
    let image = sample_image(1 << 20);
    let mut w = BackupWriter::new(PASS.as_bytes(), BACKUP_ID, c).chunk_size(chunk).scrypt_log_n(4);
    w.qubes_xml(qubes_xml(&[]).as_bytes());
    w.volume("vm5/", "private.img", &image, SparseEncoding::Pax10);
    w.file("vm5/", "firewall.xml", b"<firewall version=\"2\"><rules/></firewall>\n");
    w.home("user", &[HomeEntry::Dir("Documents".into()), HomeEntry::File("Documents/a.txt".into(), b"hello".to_vec())]);
    (w.finish(), image)
}

pub fn limits() -> Limits {
    Limits::default()
}

/// Restores one file of `qube` into memory.
pub fn restore_to_memory(backup: &Backup<Vec<u8>>, qube: &str, name: &str) -> Result<(Vec<u8>, FileReport), Error> {
    let files = backup.files(qube)?;
    let file = files.iter().find(|f| f.name == name).expect("file in backup");
    let mut sink = MemorySink::with_cap(1 << 30);
    let report = restore::restore_file(backup, file, Target::Volume(Box::new(&mut sink)), 2, &mut |_| {})?;
    Ok((sink.data, report))
}

/// Verifies every file of every qube; returns the first error.
pub fn verify_all(bytes: Vec<u8>) -> Result<(), Error> {
    let backup = Backup::open(bytes, PASS.as_bytes(), &limits())?;
    let names: Vec<String> = backup.qubes().iter().map(|q| q.name.clone()).collect();
    for q in names {
        let files = backup.files(&q)?;
        for f in &files {
            restore::restore_file(&backup, f, Target::Verify, 2, &mut |_| {})?;
        }
        if let Some(e) = backup.missing(&q, &files)?.into_iter().next() {
            return Err(e);
        }
    }
    Ok(())
}

/// The outer members of a backup, as (name, data).
pub fn members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    outer::index(bytes).unwrap().into_iter().map(|m| (m.name.clone(), bytes[m.offset as usize..(m.offset + m.size) as usize].to_vec())).collect()
}

/// Rebuilds an outer archive like `tar -cO --posix`, one archive per member (ustar
/// header, data padded to 512, two zero blocks, padded to 10240).
pub fn rebuild(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in members {
        let start = out.len();
        out.extend(tar_member(name.as_bytes(), b'0', b"", data));
        out.resize(out.len() + 1024, 0);
        out.resize(start + (out.len() - start).div_ceil(10240) * 10240, 0);
    }
    out
}

/// Encrypts `plaintext` as chunk `name` (`vm5/private.img.000.enc`) of the sample backup.
pub fn seal_chunk(name: &str, plaintext: &[u8]) -> Vec<u8> {
    let stem = name.strip_suffix(".enc").unwrap();
    let pass = format!("{BACKUP_ID}!{stem}!{PASS}");
    container::seal(pass.as_bytes(), plaintext, 4, 8, 1, [9; 32])
}

/// One tar member with a raw name (no checks: hostile names are the point).
pub fn tar_member(name: &[u8], flag: u8, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = flag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h;
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A PAX GNU sparse 1.0 member as Qubes' tarwriter writes it, with any map (even a lying one).
pub fn pax_sparse(name: &str, realsize: u64, map: &[(u64, u64)], data: &[u8]) -> Vec<u8> {
    let records: String = [
        "GNU.sparse.major=1".to_string(),
        "GNU.sparse.minor=0".to_string(),
        format!("GNU.sparse.name={name}"),
        format!("GNU.sparse.realsize={realsize}"),
    ]
    .iter()
    .map(|r| {
        let mut len = r.len() + 3;
        while format!("{len} {r}\n").len() != len {
            len += 1;
        }
        format!("{len} {r}\n")
    })
    .collect();
    let mut body = format!("{}\n", map.len());
    for (o, s) in map {
        body.push_str(&format!("{o}\n{s}\n"));
    }
    let mut stored = body.into_bytes();
    stored.resize(stored.len().div_ceil(512) * 512, 0);
    stored.extend_from_slice(data);
    let mut out = tar_member(b"././@PaxHeader", b'x', b"", records.as_bytes());
    let (dir, base) = name.rsplit_once('/').unwrap();
    out.extend(tar_member(format!("{dir}/GNUSparseFile.1/{base}").as_bytes(), b'0', b"", &stored));
    out
}

/// The sample backup with the chunks of `file` (e.g. `vm5/private.img`) replaced by one
/// chunk holding `inner` (an inner tar stream), gzip-compressed and sealed as Qubes would.
pub fn with_inner_stream(file: &str, inner: &[u8]) -> Vec<u8> {
    let (bytes, _) = sample_backup(Compression::Gzip, 1 << 20);
    let mut ms: Vec<(String, Vec<u8>)> = members(&bytes).into_iter().filter(|(n, _)| !n.starts_with(&format!("{file}."))).collect();
    let name = format!("{file}.000.enc");
    ms.push((name.clone(), seal_chunk(&name, &qubes_rescue::writer::compress(Compression::Gzip, inner))));
    rebuild(&ms)
}
