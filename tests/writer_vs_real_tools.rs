//! The backup writer checked against the real tools: every backup it writes is restored with the
//! Qubes emergency recipe only (GNU tar -i, scrypt dec, sort -V, gzip/bzip2/xz/zstd -d, GNU tar),
//! and its tar layouts are compared with what GNU tar 1.34 and Python's tarfile write.

#![cfg(not(target_arch = "wasm32"))]

use qubes_rescue::format::decompress::Compression;
use qubes_rescue::writer::{BackupWriter, HomeEntry, Image, SparseEncoding};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const PASS: &str = "correct horse";
const ID: &str = "20240101T120000-4242";
const RECORD: usize = 10240;

// ---------------------------------------------------------------------------------------------
// helpers

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "qr-writer-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command, feeding `stdin` from a thread, and returns stdout; panics with stderr.
fn run(cmd: &mut Command, stdin: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// 4 MiB with an unaligned run, a run with a zero gap inside it, and data or a hole at the end.
fn sample_image(seed: u64, ends_in_data: bool) -> Image {
    let mut gap = noise(seed + 1, 4096);
    gap[1024..3072].fill(0);
    let mut runs = vec![(1 << 20, noise(seed, 3000)), ((2 << 20) + 100, gap)];
    if ends_in_data {
        runs.push(((4 << 20) - 1024, noise(seed + 2, 1024)));
    }
    Image { size: 4 << 20, runs }
}

const QUBES_XML: &[u8] = br#"<?xml version='1.0' encoding='UTF-8'?>
<qubes><labels><label color="0xcc0000" id="label-1">red</label></labels><pools/><properties/><domains>
<domain id="domain-5" class="AppVM"><properties><property name="name">work</property></properties>
<features><feature name="backup-content">1</feature><feature name="backup-path">vm5/</feature></features></domain>
</domains></qubes>
"#;

fn home_entries() -> Vec<HomeEntry> {
    let long_dir = "a-directory-name-long-enough-that-the-full-member-path-needs-a-gnu-long-name-header";
    vec![
        HomeEntry::File(".bashrc".into(), b"export EDITOR=vi\n".to_vec()),
        HomeEntry::Dir("Documents".into()),
        HomeEntry::Dir(format!("Documents/{long_dir}")),
        HomeEntry::File(format!("Documents/{long_dir}/notes-with-a-long-file-name.txt"), noise(9, 700)),
        HomeEntry::File("Documents/a.txt".into(), b"hello\n".to_vec()),
        HomeEntry::Symlink("Documents/link-absolute".into(), "/etc/hostname".into()),
        HomeEntry::Symlink("link-relative".into(), "user/Documents/a.txt".into()),
    ]
}

/// One member's byte ranges in the outer file: (name, start, length).
fn outer_members(backup: &[u8]) -> Vec<(String, usize, usize)> {
    let oct = |f: &[u8]| {
        let s = std::str::from_utf8(f).unwrap().trim_end_matches('\0').trim();
        usize::from_str_radix(s, 8).unwrap()
    };
    let mut out = Vec::new();
    let mut off = 0;
    while off < backup.len() {
        let x = &backup[off..off + 512];
        assert_eq!(x[156], b'x', "member at {off} starts with a pax header");
        let rec = oct(&x[124..136]);
        let h = off + 512 + rec.div_ceil(512) * 512;
        let name = String::from_utf8(backup[h..h + 100].split(|&b| b == 0).next().unwrap().to_vec()).unwrap();
        let size = oct(&backup[h + 124..h + 136]);
        let len = (h + 512 + size.div_ceil(512) * 512 + 1024 - off).div_ceil(RECORD) * RECORD;
        out.push((name, off, len));
        off += len;
    }
    out
}

/// The Qubes emergency recipe, step by step, with the real tools only.
struct Restored {
    outer: TempDir,
}

impl Restored {
    /// Steps 1–4: `tar -i -xf`, then `backup-header.hmac` must `scrypt dec` to `backup-header`.
    fn open(backup: &[u8]) -> Restored {
        let outer = TempDir::new("outer");
        let file = outer.path().join("backup.bin");
        std::fs::write(&file, backup).unwrap();
        let x = outer.path().join("x");
        std::fs::create_dir(&x).unwrap();
        run(Command::new("tar").arg("-i").arg("-xf").arg(&file).arg("-C").arg(&x), b"");
        let header = std::fs::read(x.join("backup-header")).unwrap();
        let dec = run(
            Command::new("scrypt")
                .args(["dec", "--passphrase", "env:QPASS"])
                .arg(x.join("backup-header.hmac"))
                .env("QPASS", format!("backup-header!{PASS}")),
            b"",
        );
        assert_eq!(dec, header, "scrypt dec of backup-header.hmac is the header");
        Restored { outer }
    }

    fn dir(&self) -> PathBuf {
        self.outer.path().join("x")
    }

    fn header(&self) -> String {
        String::from_utf8(std::fs::read(self.dir().join("backup-header")).unwrap()).unwrap()
    }

    /// The chunk files of `base` as `ls | sort -V` orders them.
    fn chunks(&self, base: &str) -> Vec<String> {
        let script = format!("ls -1 {base}.*.enc | sort -V");
        let out = run(Command::new("sh").arg("-c").arg(script).current_dir(self.dir()), b"");
        let names: Vec<String> = String::from_utf8(out).unwrap().lines().map(str::to_string).collect();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(n, &format!("{base}.{i:03}.enc"), "chunks are contiguous and sort -V orders them");
        }
        names
    }

    /// Steps 6–7: `scrypt dec` every chunk with `backup_id!<path.NNN>!P`, concatenate.
    fn stream(&self, base: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for name in self.chunks(base) {
            let rel = name.strip_suffix(".enc").unwrap();
            out.extend(run(
                Command::new("scrypt")
                    .args(["dec", "--passphrase", "env:QPASS"])
                    .arg(self.dir().join(&name))
                    .env("QPASS", format!("{ID}!{rel}!{PASS}")),
                b"",
            ));
        }
        out
    }

    /// Step 8: the filter's `-d`, then GNU tar into a fresh directory.
    fn extract(&self, base: &str, c: Compression) -> TempDir {
        let tar = decompress(c, &self.stream(base));
        let dir = TempDir::new("inner");
        run(Command::new("tar").args(["-xf", "-", "--sparse", "-C"]).arg(dir.path()), &tar);
        dir
    }
}

fn decompress(c: Compression, data: &[u8]) -> Vec<u8> {
    let args: &[&str] = match c {
        Compression::None => return data.to_vec(),
        Compression::Gzip => &["gzip", "-d"],
        Compression::Bzip2 => &["bzip2", "-d"],
        Compression::Xz => &["xz", "-d"],
        Compression::Lzma => &["xz", "--format=lzma", "-d"],
        Compression::Zstd => &["zstd", "-d"],
    };
    run(Command::new(args[0]).args(&args[1..]), data)
}

fn assert_image(path: &Path, image: &Image) {
    let got = std::fs::read(path).unwrap();
    assert_eq!(got.len() as u64, image.size, "{} has the image size", path.display());
    assert!(got == image.to_bytes(), "{} restores byte-exact", path.display());
}

fn assert_outer_records(backup: &[u8], expected_members: usize) {
    let members = outer_members(backup);
    assert_eq!(members.len(), expected_members);
    for (name, _, len) in &members {
        assert_eq!(len % RECORD, 0, "{name} fills whole 10240-byte records");
    }
    assert_eq!(members.iter().map(|m| m.2).sum::<usize>(), backup.len());
}

/// A full backup (qubes.xml, two VMs with both sparse encodings, firewall, notes, dom0 home)
/// written with `c`, restored with the real tools, compared with the input.
fn full_backup_restores(c: Compression, chunk: usize) {
    let pax_img = sample_image(1, true);
    let gnu_img = sample_image(2, false);
    let mut w = BackupWriter::new(PASS.as_bytes(), ID, c).chunk_size(chunk).scrypt_log_n(10);
    w.qubes_xml(QUBES_XML);
    w.volume("vm5/", "private.img", &pax_img, SparseEncoding::Pax10);
    w.file("vm5/", "firewall.xml", b"<firewall version=\"2\"><rules/></firewall>\n");
    w.volume("vm7/", "private.img", &gnu_img, SparseEncoding::GnuOld);
    w.file("vm7/", "notes.txt", "Notes — UTF-8\n".as_bytes());
    w.home("user", &home_entries());
    let backup = w.finish();

    let r = Restored::open(&backup);
    let (compressed, filter) = match c {
        Compression::None => ("False", "gzip"),
        Compression::Gzip => ("True", "gzip"),
        Compression::Bzip2 => ("True", "bzip2"),
        Compression::Xz => ("True", "xz"),
        Compression::Lzma => ("True", "lzma"),
        Compression::Zstd => ("True", "zstd"),
    };
    assert_eq!(
        r.header(),
        format!("version=4\nencrypted=True\ncompressed={compressed}\ncompression-filter={filter}\nhmac-algorithm=scrypt\nbackup-id={ID}\n")
    );
    let mut members = 2;
    for base in
        ["qubes.xml", "vm5/private.img", "vm5/firewall.xml", "vm7/private.img", "vm7/notes.txt", "dom0-home/user"]
    {
        members += r.chunks(base).len();
    }
    assert!(r.chunks("vm5/private.img").len() > 3, "volumes span several chunks");
    assert_outer_records(&backup, members);

    assert_eq!(std::fs::read(r.extract("qubes.xml", c).path().join("qubes.xml")).unwrap(), QUBES_XML);
    assert_image(&r.extract("vm5/private.img", c).path().join("vm5/private.img"), &pax_img);
    assert_image(&r.extract("vm7/private.img", c).path().join("vm7/private.img"), &gnu_img);
    let fw = r.extract("vm5/firewall.xml", c);
    assert_eq!(
        std::fs::read(fw.path().join("vm5/firewall.xml")).unwrap(),
        b"<firewall version=\"2\"><rules/></firewall>\n"
    );
    let notes = r.extract("vm7/notes.txt", c);
    assert_eq!(std::fs::read(notes.path().join("vm7/notes.txt")).unwrap(), "Notes — UTF-8\n".as_bytes());

    let home = r.extract("dom0-home/user", c);
    let root = home.path().join("dom0-home/user");
    for e in home_entries() {
        match e {
            HomeEntry::Dir(p) => assert!(root.join(p).is_dir()),
            HomeEntry::File(p, data) => assert_eq!(std::fs::read(root.join(p)).unwrap(), data),
            HomeEntry::Symlink(p, target) => {
                let got = std::fs::read_link(root.join(p)).unwrap();
                // Qubes' --xform also rewrote relative targets starting with the user name.
                let want = if target.starts_with("user") { format!("dom0-home/{target}") } else { target };
                assert_eq!(got, PathBuf::from(want));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// every compressor, both sparse encodings

#[test]
fn gzip_backup_restores_with_the_emergency_recipe() {
    full_backup_restores(Compression::Gzip, 200);
}

#[test]
fn bzip2_backup_restores_with_the_emergency_recipe() {
    full_backup_restores(Compression::Bzip2, 200);
}

#[test]
fn xz_backup_restores_with_the_emergency_recipe() {
    full_backup_restores(Compression::Xz, 200);
}

#[test]
fn lzma_backup_restores_with_the_emergency_recipe() {
    full_backup_restores(Compression::Lzma, 200);
}

#[test]
fn zstd_backup_restores_with_the_emergency_recipe() {
    full_backup_restores(Compression::Zstd, 200);
}

#[test]
fn uncompressed_backup_restores_with_the_emergency_recipe() {
    full_backup_restores(Compression::None, 1000);
}

// ---------------------------------------------------------------------------------------------
// chunking quirks

#[test]
fn exact_multiple_stream_ends_with_an_empty_chunk_and_indices_grow_past_999() {
    // An uncompressed GNU tar stream is a multiple of 10240, so 64-byte chunks divide it.
    let image = Image { size: 1 << 20, runs: vec![(8192, noise(5, 62000))] };
    let mut w = BackupWriter::new(PASS.as_bytes(), ID, Compression::None).chunk_size(64);
    w.volume("vm3/", "root.img", &image, SparseEncoding::GnuOld);
    let backup = w.finish();
    let r = Restored::open(&backup);
    let chunks = r.chunks("vm3/root.img");
    assert!(chunks.len() > 1001, "{} chunks", chunks.len());
    assert!(chunks.contains(&"vm3/root.img.1000.enc".to_string()));
    let last = r.dir().join(chunks.last().unwrap());
    assert_eq!(std::fs::metadata(&last).unwrap().len(), 128, "the last chunk is scrypt of nothing");
    let second_last = r.dir().join(&chunks[chunks.len() - 2]);
    assert_eq!(std::fs::metadata(second_last).unwrap().len(), 64 + 128);
    assert_eq!(r.stream("vm3/root.img").len(), (chunks.len() - 1) * 64);
    assert_outer_records(&backup, 2 + chunks.len());
    assert_image(&r.extract("vm3/root.img", Compression::None).path().join("vm3/root.img"), &image);
}

#[test]
fn pax_sparse_stream_of_exact_chunk_multiple_ends_with_an_empty_chunk() {
    // tarwriter output is 512-aligned for 512-aligned data: 3 header/map blocks + 2 data + 2 end.
    let image = Image { size: 1 << 20, runs: vec![(4096, noise(6, 1024))] };
    let mut w = BackupWriter::new(PASS.as_bytes(), ID, Compression::None).chunk_size(512);
    w.volume("vm4/", "private.img", &image, SparseEncoding::Pax10);
    let backup = w.finish();
    let r = Restored::open(&backup);
    let chunks = r.chunks("vm4/private.img");
    assert_eq!(chunks.len(), 9, "8 full chunks of 512 and an empty one");
    assert_eq!(std::fs::metadata(r.dir().join(&chunks[8])).unwrap().len(), 128);
    assert_image(&r.extract("vm4/private.img", Compression::None).path().join("vm4/private.img"), &image);
}

// ---------------------------------------------------------------------------------------------
// > 8 GiB

#[test]
fn volumes_over_8_gib_restore_in_both_sparse_encodings() {
    let size = 10u64 << 30;
    let image = Image {
        size,
        runs: vec![(0, noise(7, 4096)), ((9 << 30) + 12345, noise(8, 5000)), (size - 4096, noise(9, 4096))],
    };
    let mut w = BackupWriter::new(PASS.as_bytes(), ID, Compression::Gzip).chunk_size(4096);
    w.volume("vm5/", "root.img", &image, SparseEncoding::Pax10);
    w.volume("vm6/", "root.img", &image, SparseEncoding::GnuOld);
    let backup = w.finish();
    let r = Restored::open(&backup);
    // GNU old sparse: realsize and the offsets past 8 GiB are base-256.
    let gnu = decompress(Compression::Gzip, &r.stream("vm6/root.img"));
    assert_eq!(gnu[156], b'S');
    assert_eq!(&gnu[483..495], &[0x80, 0, 0, 0, 0, 0, 0, 2, 0x80, 0, 0, 0]);
    for (base, name) in [("vm5/root.img", "vm5/root.img"), ("vm6/root.img", "vm6/root.img")] {
        let dir = r.extract(base, Compression::Gzip);
        let path = dir.path().join(name);
        let mut f = std::fs::File::open(&path).unwrap();
        assert_eq!(f.metadata().unwrap().len(), size, "{base} realsize");
        for (off, data) in &image.runs {
            let mut buf = vec![0u8; data.len() + 2048];
            let start = off.saturating_sub(1024);
            f.seek(SeekFrom::Start(start)).unwrap();
            let n = f.read(&mut buf).unwrap();
            buf.truncate(n);
            assert!(buf == image.read(start, n as u64), "{base} bytes around {off}");
        }
        let mut hole = vec![0u8; 1 << 16];
        f.seek(SeekFrom::Start(8 << 30)).unwrap();
        f.read_exact(&mut hole).unwrap();
        assert!(hole.iter().all(|&b| b == 0), "{base} hole at 8 GiB reads as zeros");
    }
}

// ---------------------------------------------------------------------------------------------
// byte layouts against the tools that write them in Qubes

/// Every difference between two tar streams lies in a header's mtime, checksum, uid/gid or
/// uname/gname field (which depend on the clock and on who runs the test).
fn assert_same_tar_modulo_owner_and_time(ours: &[u8], theirs: &[u8], what: &str) {
    if let Ok(dir) = std::env::var("QR_WRITER_DUMP") {
        let stem = what.replace('/', "_");
        std::fs::write(format!("{dir}/{stem}.ours.tar"), ours).unwrap();
        std::fs::write(format!("{dir}/{stem}.theirs.tar"), theirs).unwrap();
    }
    assert_eq!(ours.len(), theirs.len(), "{what}: same length");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        if a == b {
            continue;
        }
        let (blk, off) = (i / 512 * 512, i % 512);
        let is_header = |s: &[u8]| &s[blk + 257..blk + 262] == b"ustar";
        let masked = (108..124).contains(&off) || (136..156).contains(&off) || (265..329).contains(&off);
        assert!(
            is_header(ours) && is_header(theirs) && masked,
            "{what}: byte {i} (block {}, offset {off}) differs: ours {a:#04x}, GNU tar {b:#04x}",
            blk / 512
        );
    }
}

#[test]
fn outer_members_match_gnu_tar_posix_byte_for_byte_except_times() {
    let mut w = BackupWriter::new(PASS.as_bytes(), ID, Compression::Gzip).chunk_size(300);
    w.qubes_xml(QUBES_XML);
    w.volume("vm12/", "private.img", &sample_image(3, true), SparseEncoding::Pax10);
    let backup = w.finish();
    let r = Restored::open(&backup);
    for (name, start, len) in outer_members(&backup) {
        let ours = &backup[start..start + len];
        let theirs = run(Command::new("tar").args(["-cO", "--posix", "-C"]).arg(r.dir()).arg(&name), b"");
        assert_eq!(ours.len(), theirs.len(), "{name}: same length");
        // pax header block: same name, type, mode, owner (size and mtime follow the clock).
        let mask = |h: &[u8]| [&h[..124], &h[156..512]].concat();
        assert_eq!(mask(&ours[..512]), mask(&theirs[..512]), "{name}: pax header block");
        let keys = |s: &[u8]| -> Vec<String> {
            let rec = std::str::from_utf8(&s[512..1024]).unwrap().trim_end_matches('\0');
            rec.lines().map(|l| l.split_once(' ').unwrap().1.split_once('=').unwrap().0.to_string()).collect()
        };
        assert_eq!(keys(ours), keys(&theirs), "{name}: pax record keys in order");
        assert_eq!(keys(ours), ["mtime", "atime", "ctime"]);
        let h = 1024;
        assert_eq!(mask(&ours[h..h + 512]), mask(&theirs[h..h + 512]), "{name}: ustar header");
        assert_eq!(&ours[h + 512..], &theirs[h + 512..], "{name}: data, end blocks and record padding");
        let dir = name.rsplit_once('/').map_or(".", |(d, _)| d);
        let base = name.rsplit('/').next().unwrap();
        assert!(ours.starts_with(format!("{dir}/PaxHeaders/{base}\0").as_bytes()));
    }
}

#[test]
fn gnu_sparse_volume_matches_gnu_tar_1_34_byte_for_byte() {
    // Enough runs for 'S' extension blocks (4 in the header, 21 per extension block).
    let mut runs: Vec<(u64, Vec<u8>)> =
        (0..30).map(|i| (i * 65536 + (i % 3) * 1000, noise(i + 20, 700 + i as usize * 50))).collect();
    runs.push(((3 << 20) - 100, noise(99, 100))); // unaligned tail run, file ends in data
    let image = Image { size: 3 << 20, runs };
    let src = TempDir::new("gnusrc");
    let mut f = std::fs::File::create(src.path().join("private.img")).unwrap();
    f.set_len(image.size).unwrap();
    for (off, data) in &image.runs {
        f.seek(SeekFrom::Start(*off)).unwrap();
        f.write_all(data).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    std::fs::set_permissions(src.path().join("private.img"), std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .unwrap();
    // The Qubes command line for a file-pool volume (§6.1), uncompressed.
    let theirs = run(
        Command::new("tar").args(["-Pc", "--sparse", "-C"]).arg(src.path()).args([
            "--dereference",
            "--xform=s:^private.img:vm7/\\0:",
            "private.img",
        ]),
        b"",
    );
    assert_eq!(theirs[156], b'S', "GNU tar saw holes (SEEK_HOLE works here)");

    let mut w = BackupWriter::new(PASS.as_bytes(), ID, Compression::None).chunk_size(1 << 20);
    w.volume("vm7/", "private.img", &image, SparseEncoding::GnuOld);
    let ours = Restored::open(&w.finish()).stream("vm7/private.img");
    assert_same_tar_modulo_owner_and_time(&ours, &theirs, "vm7/private.img");
}

#[test]
fn regular_files_and_home_tree_match_gnu_tar_1_34_byte_for_byte() {
    let src = TempDir::new("homesrc");
    let user = src.path().join("user");
    std::fs::create_dir(&user).unwrap();
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap();
    mode(&user, 0o700);
    let mut entries = home_entries();
    for e in &entries {
        match e {
            HomeEntry::Dir(p) => {
                std::fs::create_dir(user.join(p)).unwrap();
                mode(&user.join(p), 0o755);
            }
            HomeEntry::File(p, data) => {
                std::fs::write(user.join(p), data).unwrap();
                mode(&user.join(p), 0o644);
            }
            HomeEntry::Symlink(p, target) => std::os::unix::fs::symlink(target, user.join(p)).unwrap(),
        }
    }
    // GNU tar walks a directory, then its entries; `--sort=name` makes that order predictable.
    let key = |e: &HomeEntry| match e {
        HomeEntry::Dir(p) | HomeEntry::File(p, _) | HomeEntry::Symlink(p, _) => p.clone(),
    };
    entries.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.split('/').cmp(kb.split('/'))
    });
    let theirs = run(
        Command::new("tar")
            .args(["-Pc", "--sparse", "--sort=name", "-C"])
            .arg(src.path())
            .args(["--xform=s:^user:dom0-home/\\0:", "user"]),
        b"",
    );
    let fw = src.path().join("firewall.xml");
    std::fs::write(&fw, b"<firewall version=\"2\"><rules/></firewall>\n").unwrap();
    mode(&fw, 0o644);
    let theirs_fw = run(
        Command::new("tar").args(["-Pc", "--sparse", "-C"]).arg(src.path()).args([
            "--dereference",
            "--xform=s:^firewall.xml:vm5/\\0:",
            "firewall.xml",
        ]),
        b"",
    );

    let mut w = BackupWriter::new(PASS.as_bytes(), ID, Compression::None).chunk_size(1 << 20);
    w.home("user", &entries);
    w.file("vm5/", "firewall.xml", b"<firewall version=\"2\"><rules/></firewall>\n");
    let r = Restored::open(&w.finish());
    let ours = r.stream("dom0-home/user");
    assert!(ours.windows(13).any(|w| w == b"././@LongLink"), "the tree has a GNU long name");
    assert_same_tar_modulo_owner_and_time(&ours, &theirs, "dom0-home/user");
    assert_same_tar_modulo_owner_and_time(&r.stream("vm5/firewall.xml"), &theirs_fw, "vm5/firewall.xml");
}

#[test]
fn tarwriter_headers_match_python_tarfile_byte_for_byte() {
    let image = sample_image(4, false);
    let mut w = BackupWriter::new(PASS.as_bytes(), ID, Compression::None).chunk_size(1 << 20);
    w.volume("vm5/", "private.img", &image, SparseEncoding::Pax10);
    let ours = Restored::open(&w.finish()).stream("vm5/private.img");
    let name_end = 1024 + ours[1024..1124].iter().position(|&b| b == 0).unwrap();
    let name = std::str::from_utf8(&ours[1024..name_end]).unwrap();
    let size = u64::from_str_radix(std::str::from_utf8(&ours[1024 + 124..1024 + 135]).unwrap(), 8).unwrap();
    // What qubes.tarwriter asks of Python's tarfile: a TarInfo with four GNU.sparse records.
    let script = format!(
        "import sys, tarfile\n\
         t = tarfile.TarInfo({name:?})\n\
         t.size = {size}\n\
         t.pax_headers = {{'GNU.sparse.major': '1', 'GNU.sparse.minor': '0',\n\
           'GNU.sparse.name': 'vm5/private.img', 'GNU.sparse.realsize': '{}'}}\n\
         sys.stdout.buffer.write(t.tobuf(tarfile.PAX_FORMAT))\n",
        image.size
    );
    let python = run(Command::new("python3").arg("-c").arg(script), b"");
    if let Ok(dir) = std::env::var("QR_WRITER_DUMP") {
        std::fs::write(format!("{dir}/pax.ours.tar"), &ours).unwrap();
        std::fs::write(format!("{dir}/pax.python.tar"), &python).unwrap();
    }
    assert_eq!(python.len(), 1536);
    assert!(ours[..1536] == python[..], "pax header, records and ustar header equal Python's");
    // Map: the 3000-byte run → 6 blocks; the run with a 2048-byte zero gap → two entries.
    let map = std::str::from_utf8(&ours[1536..2048]).unwrap().trim_end_matches('\0');
    assert_eq!(map, "4\n1048576\n3072\n2097152\n1536\n2100224\n1536\n4194304\n0\n");
    assert_eq!(ours.len(), 2048 + 3072 + 1536 + 1536 + 1024, "no record padding after tarwriter's end blocks");
}

/// The format 3 writer's two halves that come from OpenSSL agree with the real `openssl`: its
/// `openssl enc` stream decrypts with `openssl enc -d -aes-256-cbc -md md5` (what the restore
/// recipe and R3 ran), and its `.hmac` text is what `openssl dgst -<alg> -hmac` prints (hex).
#[test]
fn the_format_3_writer_encrypts_and_macs_like_the_real_openssl() {
    use qubes_rescue::format::legacy::hmac_text::HmacAlgorithm;
    use qubes_rescue::writer::{openssl_enc, LegacyWriter};
    for n in [0usize, 1, 15, 16, 17, 4096, 100_000] {
        let plain = noise(n as u64 + 3, n);
        let enc = openssl_enc(b"qubes pass", &plain);
        let dec = run(Command::new("openssl").args(["enc", "-d", "-aes-256-cbc", "-md", "md5", "-pass", "pass:qubes pass"]), &enc);
        assert!(dec == plain, "{n} bytes: openssl enc -d gives other bytes");
    }
    for alg in HmacAlgorithm::ALL {
        let mut w = LegacyWriter::new(b"qubes pass", Compression::Gzip, true, alg);
        w.qubes_xml(b"<QubesVmCollection/>");
        let backup = w.finish();
        let members = qubes_rescue::format::outer::index(&backup[..]).unwrap();
        let get = |name: &str| {
            let m = members.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("{name} missing"));
            backup[m.offset as usize..(m.offset + m.size) as usize].to_vec()
        };
        let header = get("backup-header");
        let ours = String::from_utf8(get("backup-header.hmac")).unwrap();
        let theirs = String::from_utf8(run(
            Command::new("openssl").args(["dgst", &format!("-{}", alg.name().to_lowercase()), "-hmac", "qubes pass"]),
            &header,
        ))
        .unwrap();
        let hex = |t: &str| t.rsplit_once('=').unwrap().1.trim().to_string();
        assert_eq!(hex(&ours), hex(&theirs), "{alg:?}");
    }
}
