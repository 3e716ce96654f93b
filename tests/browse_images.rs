//! `ls` and `get` read single files out of restored volumes, never mounting and never writing
//! the image: real ext4 images made by `mke2fs -d` (then `e2fsck -fyD` for htree folders, as
//! real private images have), a GPT root.img made by `sgdisk`, inside backups made by our
//! writer, compared byte for byte with their source trees; and the real-tool fixtures.

mod common;
use common::*;
use qubes_rescue::format::decompress::Compression;
use qubes_rescue::writer::{BackupWriter, Image, SparseEncoding};
use serde_json::Value;
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// The tree every variant holds: names, links, holes, nesting.
fn populate(src: &Path, many: usize) {
    let w = |rel: &[u8], data: &[u8]| {
        let p = src.join(OsStr::from_bytes(rel));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    w(b"hello.txt", b"hello\n");
    w(b"Documents/report.txt", b"quarterly report\n");
    w(b"Documents/empty", b"");
    w(b"Documents/big.bin", &noise(3 << 20, 7));
    w(b"with space.txt", b"spaces\n");
    w("Ünïcödé-名前.txt".as_bytes(), b"utf-8\n");
    w(b"caf\xe9-latin1.bin", b"not utf-8\n");
    w(b"line\nbreak", b"newline in the name\n");
    w(b"a/b/c/d/e/deep.txt", b"deep\n");
    let long = "a-rather-long-file-name-so-that-the-link-target-is-over-sixty-bytes.txt";
    w(format!("Documents/{long}").as_bytes(), b"slow link target\n");
    let f = std::fs::File::create(src.join("holes.bin")).unwrap();
    f.set_len(10 << 20).unwrap();
    f.write_all_at(b"in the middle", 5 << 20).unwrap();
    let link = |name: &str, target: &str| std::os::unix::fs::symlink(target, src.join(name)).unwrap();
    link("fast", "hello.txt");
    link("slow", &format!("Documents/{long}"));
    assert!(format!("Documents/{long}").len() > 60);
    link("absolute", "/Documents/report.txt");
    link("dangling", "/no/such/file");
    link("loop1", "loop2");
    link("loop2", "loop1");
    link("docs", "Documents");
    if many > 0 {
        std::fs::create_dir_all(src.join("many")).unwrap();
        for i in 0..many {
            std::fs::write(src.join(format!("many/entry-{i:05}")), format!("{i}\n")).unwrap();
        }
    }
}

/// `mke2fs -t ext4 -d src` into a sparse file of `size`, then `e2fsck -fyD` (htree folders).
fn mkfs(src: &Path, img: &Path, size: &str, opts: &[&str]) {
    let _ = std::fs::remove_file(img);
    run(Command::new("truncate").args(["-s", size]).arg(img));
    let mut c = Command::new("mke2fs");
    c.args(["-q", "-F", "-t", "ext4", "-E", "root_owner=0:0"]).args(opts).arg("-d").arg(src).arg(img);
    run(&mut c);
    let o = Command::new("e2fsck").arg("-fyD").arg(img).output().unwrap();
    assert!(o.status.code().unwrap_or(8) < 4, "e2fsck: {}", String::from_utf8_lossy(&o.stdout));
}

/// The image's data runs, as SEEK_DATA / SEEK_HOLE report them.
fn image_of(path: &Path) -> Image {
    use std::os::fd::AsRawFd;
    let mut f = std::fs::File::open(path).unwrap();
    let size = f.metadata().unwrap().len();
    let fd = f.as_raw_fd();
    let mut runs = Vec::new();
    let mut pos = 0i64;
    while (pos as u64) < size {
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            break;
        }
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let mut buf = vec![0u8; (hole - data) as usize];
        f.seek(SeekFrom::Start(data as u64)).unwrap();
        f.read_exact(&mut buf).unwrap();
        runs.push((data as u64, buf));
        pos = hole;
    }
    Image { size, runs }
}

/// Writes the filesystem image `fs` into the disk image `disk` at `offset` (its partition),
/// keeping holes.
fn put_partition(disk: &Path, offset: u64, fs: &Path) {
    let d = std::fs::OpenOptions::new().write(true).open(disk).unwrap();
    for (o, data) in &image_of(fs).runs {
        d.write_all_at(data, offset + o).unwrap();
    }
}

/// A backup holding `work` with these volumes (`private.img`, `root.img`).
fn backup(dir: &Path, volumes: &[(&str, &Image)], c: Compression) -> PathBuf {
    let extra: Vec<&str> = volumes.iter().filter(|(n, _)| *n != "private.img").map(|(n, _)| n.trim_end_matches(".img")).collect();
    let mut w = BackupWriter::new(PASS.as_bytes(), BACKUP_ID, c).chunk_size(8 << 20).scrypt_log_n(4);
    w.qubes_xml(qubes_xml(&extra).as_bytes());
    for (name, image) in volumes {
        w.volume("vm5/", name, image, SparseEncoding::Pax10);
    }
    w.home("user", &[qubes_rescue::writer::HomeEntry::File("a.txt".into(), b"a".to_vec())]);
    let path = dir.join("backup.bin");
    std::fs::write(&path, w.finish()).unwrap();
    path
}

fn ls(b: &Path, target: &str, path: &str, extra: &[&str]) -> Output {
    let mut args = vec!["ls", b.to_str().unwrap(), target, path];
    args.extend_from_slice(extra);
    cli(PASS, &args)
}

fn ls_json(b: &Path, target: &str, path: &str) -> Vec<Value> {
    let o = ls(b, target, path, &["--json"]);
    assert!(o.status.success(), "ls {path}: {}", stderr(&o));
    serde_json::from_slice::<Value>(&o.stdout).unwrap().as_array().unwrap().clone()
}

fn get(b: &Path, target: &str, path: &str, dest: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["get", b.to_str().unwrap(), target, path, "-o", dest.to_str().unwrap()];
    args.extend_from_slice(extra);
    cli(PASS, &args)
}

/// How `get` names an entry on disk (control characters become `_`).
fn safe(name: &[u8]) -> Vec<u8> {
    name.iter().map(|&b| if b < 0x20 || b == 0x7f { b'_' } else { b }).collect()
}

/// Every entry of `src` is in `out`, the same kind, byte-equal content, equal link targets
/// (`skip`: names not compared, e.g. the 5 GiB file checked apart).
fn same_tree(src: &Path, out: &Path, skip: &[&str]) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if skip.iter().any(|s| OsStr::new(s) == name) {
            continue;
        }
        let got = out.join(OsStr::from_bytes(&safe(name.as_bytes())));
        let what = got.display().to_string();
        let md = std::fs::symlink_metadata(&got).unwrap_or_else(|e| panic!("{what}: {e}"));
        let ft = e.file_type().unwrap();
        n += 1;
        if ft.is_symlink() {
            assert!(md.file_type().is_symlink(), "{what} is a symlink");
            assert_eq!(std::fs::read_link(&got).unwrap(), std::fs::read_link(e.path()).unwrap(), "{what}");
        } else if ft.is_dir() {
            assert!(md.is_dir(), "{what} is a folder");
            n += same_tree(&e.path(), &got, &[]);
        } else {
            assert!(md.is_file(), "{what} is a file");
            assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(e.path()).unwrap(), "{what} content");
            assert_eq!(md.mode() & 0o777, e.metadata().unwrap().mode() & 0o777, "{what} mode");
            assert_eq!(md.mtime(), e.metadata().unwrap().mtime(), "{what} mtime");
        }
    }
    n
}

struct Variant {
    dir: PathBuf,
    src: PathBuf,
    backup: PathBuf,
}

fn variant(name: &str, opts: &[&str], many: usize, c: Compression) -> Variant {
    let dir = scratch(&format!("browse-{name}"));
    let src = dir.join("src");
    populate(&src, many);
    let img = dir.join("private.img");
    mkfs(&src, &img, "64M", opts);
    let image = image_of(&img);
    std::fs::remove_file(&img).unwrap();
    let backup = backup(&dir, &[("private.img", &image)], c);
    Variant { dir, src, backup }
}

/// Lists, gets single files and the whole tree, and compares with the source.
fn browses_byte_exact(v: &Variant) {
    let b = &v.backup;
    let root = ls_json(b, "work", "/");
    let names: Vec<&str> = root.iter().map(|e| e["name"].as_str().unwrap()).collect();
    for want in ["Documents", "hello.txt", "with space.txt", "Ünïcödé-名前.txt", "fast", "slow", "holes.bin", "lost+found"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let by = |n: &str| root.iter().find(|e| e["name"] == n).unwrap_or_else(|| panic!("{n}")).clone();
    assert_eq!(by("Documents")["type"], "dir");
    assert_eq!(by("hello.txt")["type"], "file");
    assert_eq!(by("hello.txt")["size"], 6);
    assert_eq!(by("fast")["type"], "symlink");
    assert_eq!(by("fast")["target"], "hello.txt");
    assert!(by("slow")["target"].as_str().unwrap().len() > 60);
    assert_eq!(by("absolute")["target"], "/Documents/report.txt");
    let latin = root.iter().find(|e| e["name_hex"].as_str() == Some(&"caf\u{e9}-latin1.bin".chars().map(|c| format!("{:02x}", c as u32)).collect::<String>())).expect("non-UTF-8 name, with its bytes");
    assert_eq!(latin["name"], "caf\u{fffd}-latin1.bin");
    assert_eq!(by("line\nbreak")["type"], "file");
    // One line per entry: type, size, mtime, name (control characters escaped).
    let text = String::from_utf8(ls(b, "work/private.img", "/", &[]).stdout).unwrap();
    assert_eq!(text.lines().count(), root.len());
    let hello = text.lines().find(|l| l.ends_with(" hello.txt") && !l.contains(" -> ")).unwrap();
    let cols: Vec<&str> = hello.split_whitespace().collect();
    assert_eq!((cols[0], cols[1]), ("file", "6"));
    assert!(cols[2].ends_with('Z') && cols[2].contains('T'), "{hello}");
    assert!(text.contains("fast -> hello.txt"));
    assert!(text.contains("line\\nbreak"));

    let out = v.dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    // A file, through a symlink in the path and through a link inside the filesystem.
    for (path, want) in [("/Documents/big.bin", "Documents/big.bin"), ("/docs/report.txt", "Documents/report.txt"), ("/absolute", "Documents/report.txt"), ("/slow", "Documents/a-rather-long-file-name-so-that-the-link-target-is-over-sixty-bytes.txt")] {
        let dest = out.join("one");
        let o = get(b, "work", path, &dest, &[]);
        assert!(o.status.success(), "get {path}: {}", stderr(&o));
        assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(v.src.join(want)).unwrap(), "{path}");
        std::fs::remove_file(&dest).unwrap();
    }
    // A hole stays a hole.
    let o = get(b, "work", "/holes.bin", &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::metadata(out.join("holes.bin")).unwrap();
    assert_eq!(std::fs::read(out.join("holes.bin")).unwrap(), std::fs::read(v.src.join("holes.bin")).unwrap());
    assert!(md.blocks() * 512 < 2 << 20, "holes.bin takes {} bytes on disk", md.blocks() * 512);
    // Never overwrites.
    let again = get(b, "work", "/holes.bin", &out, &[]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(stderr(&again).contains("already exists"));
    // The whole tree under DEST/.
    let tree = v.dir.join("tree");
    let _ = std::fs::remove_dir_all(&tree);
    let o = get(b, "work", "/", &tree, &[]);
    assert!(o.status.success(), "get /: {}", stderr(&o));
    let n = same_tree(&v.src, &tree, &[]);
    assert!(n > 20, "{n} entries compared");
    // A folder's tree, into an existing empty folder.
    let sub = v.dir.join("sub");
    let _ = std::fs::remove_dir_all(&sub);
    std::fs::create_dir_all(&sub).unwrap();
    let o = get(b, "work", "/a/b", &sub, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(sub.join("c/d/e/deep.txt")).unwrap(), b"deep\n");
}

#[test]
fn metadata_csum_64bit_orphan_file_4k_image_browses_byte_exact_with_a_5000_entry_folder() {
    let v = variant("csum", &["-b", "4096", "-O", "metadata_csum,64bit,orphan_file"], 5000, Compression::Gzip);
    browses_byte_exact(&v);
    let started = Instant::now();
    let many = ls_json(&v.backup, "work", "/many");
    let secs = started.elapsed().as_secs_f64();
    eprintln!("ls of a 5000-entry folder (restore + list): {secs:.2} s");
    assert_eq!(many.len(), 5000);
    assert_eq!(many[0]["name"], "entry-00000");
    assert_eq!(many[4999]["name"], "entry-04999");
    let text = ls(&v.backup, "work", "/many", &[]);
    assert_eq!(String::from_utf8_lossy(&text.stdout).lines().count(), 5000);
    // The folder is an htree (e2fsck -D), found by name.
    let out = v.dir.join("one-of-many");
    let o = get(&v.backup, "work", "/many/entry-03141", &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), b"3141\n");
}

#[test]
fn no_checksum_1k_block_image_browses_byte_exact() {
    let v = variant("nocsum-1k", &["-b", "1024", "-O", "^metadata_csum"], 300, Compression::None);
    browses_byte_exact(&v);
    assert_eq!(ls_json(&v.backup, "work", "/many").len(), 300);
}

#[test]
fn missing_paths_volumes_and_qubes_are_not_found_exit_3() {
    let v = variant("notfound", &[], 0, Compression::None);
    let b = &v.backup;
    for (target, path) in [("work", "/no/such"), ("work", "/hello.txt/below"), ("work/root.img", "/"), ("nobody", "/")] {
        let o = ls(b, target, path, &[]);
        assert_eq!(o.status.code(), Some(3), "ls {target} {path}: {}", stderr(&o));
        assert_eq!(error_class(&o).as_deref(), Some("not-found"), "{}", stderr(&o));
        let o = get(b, target, path, &v.dir.join("nothing"), &[]);
        assert_eq!(o.status.code(), Some(3), "get {target} {path}: {}", stderr(&o));
        assert!(!v.dir.join("nothing").exists());
    }
    assert!(stderr(&ls(b, "work", "/no/such", &[])).contains("work/private.img:/no/such"));
    // A dangling link lists as itself, and there is nothing to get.
    let l = ls_json(b, "work", "/dangling");
    assert_eq!((l.len(), l[0]["type"].as_str(), l[0]["target"].as_str()), (1, Some("symlink"), Some("/no/such/file")));
    let o = get(b, "work", "/dangling", &v.dir.join("nothing"), &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // A symlink loop is an error, not a hang.
    let o = get(b, "work", "/loop1", &v.dir.join("loop"), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("symbolic links"), "{}", stderr(&o));
    // A wrong passphrase is reported as for the other commands.
    let o = cli("wrong", &["ls", b.to_str().unwrap(), "work"]);
    assert_eq!(o.status.code(), Some(10));
    // dom0's home is a tree: /home/user/…; it has no volumes.
    let home = ls_json(b, "dom0", "/home/user");
    assert_eq!((home.len(), home[0]["name"].as_str()), (1, Some("a.txt")));
    for (target, path) in [("dom0", "/home/nobody"), ("dom0/private.img", "/")] {
        let o = ls(b, target, path, &[]);
        assert_eq!(o.status.code(), Some(3), "ls {target} {path}: {}", stderr(&o));
    }
    // Usage.
    assert_eq!(cli(PASS, &["get", b.to_str().unwrap(), "work", "/hello.txt"]).status.code(), Some(2));
    assert_eq!(cli(PASS, &["ls", b.to_str().unwrap(), "work", "relative"]).status.code(), Some(2));
}

#[test]
fn features_the_browser_cannot_read_are_named_and_the_raw_image_offered() {
    let dir = scratch("browse-inline");
    let src = dir.join("src");
    populate(&src, 0);
    let img = dir.join("private.img");
    mkfs(&src, &img, "32M", &["-O", "inline_data"]);
    let image = image_of(&img);
    let b = backup(&dir, &[("private.img", &image)], Compression::None);
    let o = ls(&b, "work", "/", &[]);
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    assert_eq!(error_class(&o).as_deref(), Some("unsupported"));
    let err = stderr(&o);
    assert!(err.contains("inline_data") && err.contains("extract"), "{err}");
}

#[test]
fn a_damaged_inode_is_reported_for_its_entry_and_the_listing_goes_on() {
    let dir = scratch("browse-damaged");
    let src = dir.join("src");
    populate(&src, 0);
    let img = dir.join("private.img");
    mkfs(&src, &img, "32M", &["-b", "4096", "-O", "metadata_csum"]);
    // Where debugfs says hello.txt's inode is; flip a byte of it (its checksum no longer matches).
    let o = run(Command::new("debugfs").args(["-R", "imap /hello.txt"]).arg(&img));
    let text = String::from_utf8_lossy(&o.stdout);
    let block: u64 = text.split("located at block ").nth(1).unwrap().split(',').next().unwrap().trim().parse().unwrap();
    let offset = u64::from_str_radix(text.split("offset 0x").nth(1).unwrap().trim(), 16).unwrap();
    let f = std::fs::OpenOptions::new().write(true).read(true).open(&img).unwrap();
    let at = block * 4096 + offset + 0x10; // i_mtime
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, at).unwrap();
    f.write_all_at(&[byte[0] ^ 0x5a], at).unwrap();
    drop(f);
    let image = image_of(&img);
    let b = backup(&dir, &[("private.img", &image)], Compression::None);
    let o = ls(&b, "work", "/", &["--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("damaged"), "{}", stderr(&o));
    let list: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let hello = list.iter().find(|e| e["name"] == "hello.txt").expect("listed anyway");
    assert!(hello["error"]["message"].as_str().unwrap().contains("damaged"));
    assert!(list.iter().any(|e| e["name"] == "Documents" && e.get("error").is_none()), "the others are fine");
    // get of the whole tree writes everything else and reports the one failure.
    let out = dir.join("out");
    let o = get(&b, "work", "/", &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(out.join("Documents/report.txt")).unwrap(), b"quarterly report\n");
    assert!(!out.join("hello.txt").exists());
}

#[test]
fn gpt_root_img_opens_its_linux_partition_and_others_can_be_chosen() {
    let dir = scratch("browse-gpt");
    let src = dir.join("src");
    populate(&src, 0);
    let part = dir.join("part.img");
    mkfs(&src, &part, "40M", &[]);
    let disk = dir.join("root.img");
    run(Command::new("truncate").args(["-s", "64M"]).arg(&disk));
    run(Command::new("sgdisk").args(["-n", "1:2048:+1M", "-t", "1:EF02", "-n", "2:0:+4M", "-t", "2:EF00", "-n", "3:0:0", "-t", "3:8300", "-c", "3:Root filesystem"]).arg(&disk));
    let o = run(Command::new("sgdisk").args(["-i", "3"]).arg(&disk));
    let first: u64 = String::from_utf8_lossy(&o.stdout).split("First sector: ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    // The filesystem goes into partition 3 (40 MiB fits in the ~58 MiB left).
    put_partition(&disk, first * 512, &part);
    let root = image_of(&disk);
    let privimg = {
        let p = dir.join("private.img");
        mkfs(&src, &p, "16M", &[]);
        image_of(&p)
    };
    let b = backup(&dir, &[("private.img", &privimg), ("root.img", &root)], Compression::Gzip);
    let list = ls_json(&b, "work/root.img", "/Documents");
    assert!(list.iter().any(|e| e["name"] == "report.txt"));
    let tree = dir.join("tree");
    let o = get(&b, "work/root.img", "/", &tree, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    same_tree(&src, &tree, &[]);
    let o = get(&b, "work/root.img", "/", &dir.join("tree3"), &["--partition", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Partition 1 (BIOS boot) holds no filesystem; partition 9 does not exist.
    let o = ls(&b, "work/root.img", "/", &["--partition", "1"]);
    assert_eq!(error_class(&o).as_deref(), Some("unsupported"), "{}", stderr(&o));
    let o = ls(&b, "work/root.img", "/", &["--partition", "9"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // A bare filesystem has no partitions to choose from.
    let o = ls(&b, "work", "/", &["--partition", "2"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

#[test]
fn a_5_gib_sparse_file_streams_out_without_allocating_5_gib() {
    let dir = scratch("browse-5g");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("small.txt"), b"small\n").unwrap();
    let big = src.join("disk.vmdk");
    run(Command::new("truncate").args(["-s", "5G"]).arg(&big));
    let f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
    f.write_all_at(&noise(1 << 20, 3), 0).unwrap();
    f.write_all_at(b"past four gibibytes", (4 << 30) + 12345).unwrap();
    f.write_all_at(b"at the very end", (5 << 30) - 15).unwrap();
    drop(f);
    let img = dir.join("private.img");
    mkfs(&src, &img, "6G", &[]);
    let image = image_of(&img);
    let data: u64 = image.runs.iter().map(|(_, d)| d.len() as u64).sum();
    std::fs::remove_file(&img).unwrap();
    let b = backup(&dir, &[("private.img", &image)], Compression::None);
    drop(image);
    let list = ls_json(&b, "work", "/");
    let e = list.iter().find(|e| e["name"] == "disk.vmdk").unwrap();
    assert_eq!(e["size"], 5u64 << 30);

    let out = dir.join("disk.vmdk");
    let started = Instant::now();
    let o = get(&b, "work", "/disk.vmdk", &out, &[]);
    let secs = started.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", stderr(&o));
    let peak = max_child_rss();
    eprintln!("get of a 5 GiB sparse file ({} MiB of image data): {secs:.1} s, peak RSS of the largest child so far {} MiB", data >> 20, peak >> 20);
    // ru_maxrss of children also counts this test process's own size when spawning (vfork),
    // so this bound is loose; it still shows 5 GiB was never allocated.
    assert!(peak < 1 << 30, "a child used {} MiB", peak >> 20);
    let md = std::fs::metadata(&out).unwrap();
    assert_eq!(md.len(), 5 << 30);
    assert!(md.blocks() * 512 < 64 << 20, "the holes stayed holes ({} bytes on disk)", md.blocks() * 512);
    let f = std::fs::File::open(&out).unwrap();
    let at = |o: u64, n: usize| {
        let mut v = vec![0u8; n];
        f.read_exact_at(&mut v, o).unwrap();
        v
    };
    assert_eq!(at(0, 1 << 20), noise(1 << 20, 3));
    assert_eq!(at((4 << 30) + 12345, 19), b"past four gibibytes");
    assert_eq!(at((5 << 30) - 15, 15), b"at the very end");
    assert!(at(3 << 30, 1 << 20).iter().all(|&b| b == 0));
}

/// The largest resident set of any child this test process waited for (ru_maxrss is in KiB).
fn max_child_rss() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) }, 0);
    ru.ru_maxrss as u64 * 1024
}

fn manifest_fs(backup: &str, qube: &str, volume: &str) -> (Value, Vec<String>) {
    let m: Value = serde_json::from_str(&std::fs::read_to_string(fixture("made/manifest.json")).unwrap()).unwrap();
    let b = m["backups"].as_array().unwrap().iter().find(|b| b["file"] == backup).unwrap().clone();
    let q = b["qubes"].as_array().unwrap().iter().find(|q| q["name"] == qube).unwrap();
    let f = q["files"].as_array().unwrap().iter().find(|f| f["path"] == volume).unwrap();
    let files = f["fs"]["files"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    (b, files)
}

/// Lists the tree `get` wrote like the manifest does: `dir/`, `file`, `link -> target`.
fn listing(root: &Path, rel: &str, out: &mut Vec<String>) {
    let mut names: Vec<_> = std::fs::read_dir(root.join(rel)).unwrap().map(|e| e.unwrap()).collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = format!("{rel}{}", e.file_name().to_str().unwrap());
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            out.push(format!("{name} -> {}", std::fs::read_link(e.path()).unwrap().display()));
        } else if ft.is_dir() {
            if name == "lost+found" {
                continue;
            }
            out.push(format!("{name}/"));
            listing(root, &format!("{name}/"), out);
        } else {
            out.push(name);
        }
    }
}

fn fixture_browses_as_the_manifest_says(file: &str, qube: &str, volume: &str) {
    let (b, mut want) = manifest_fs(file, qube, volume);
    let bin = fixture(&format!("made/{file}"));
    let pass = b["passphrase"].as_str().unwrap();
    let target = format!("{qube}/{volume}");
    let out = scratch(&format!("browse-fixture-{file}-{qube}-{volume}"));
    let o = cli(pass, &["get", bin.to_str().unwrap(), &target, "/", "-o", out.join("tree").to_str().unwrap()]);
    assert!(o.status.success(), "{target}: {}", stderr(&o));
    let mut got = Vec::new();
    listing(&out.join("tree"), "", &mut got);
    got.sort();
    want.sort();
    assert_eq!(got, want, "{file} {target}");
    // ls of the root lists the manifest's top-level entries (and lost+found).
    let o = cli(pass, &["ls", bin.to_str().unwrap(), &target, "/", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let top: Vec<&String> = want.iter().filter(|w| !w.split(" -> ").next().unwrap().trim_end_matches('/').contains('/')).collect();
    assert_eq!(list.iter().filter(|e| e["name"] != "lost+found").count(), top.len(), "{top:?}");
}

#[test]
fn real_tool_fixture_private_img_browses_as_the_manifest_says() {
    fixture_browses_as_the_manifest_says("gzip-pax.bin", "work", "private.img");
    fixture_browses_as_the_manifest_says("gzip-gnu.bin", "work", "private.img");
}

#[test]
fn real_tool_fixture_gpt_root_img_browses_as_the_manifest_says() {
    fixture_browses_as_the_manifest_says("gzip-pax.bin", "standalone", "root.img");
    fixture_browses_as_the_manifest_says("xz.bin", "debian-12-min", "root.img");
    let (b, _) = manifest_fs("gzip-pax.bin", "standalone", "root.img");
    let bin = fixture("made/gzip-pax.bin");
    let dest = scratch("browse-fixture-hostname").join("hostname");
    let o = cli(b["passphrase"].as_str().unwrap(), &["get", bin.to_str().unwrap(), "standalone/root.img", "/etc/hostname", "-o", dest.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!std::fs::read(&dest).unwrap().is_empty());
}

#[test]
fn randomly_damaged_filesystems_never_panic_or_hang() {
    use qubes_rescue::browse::fs::{Fs, Kind};
    use qubes_rescue::output::image::SparseImage;
    use qubes_rescue::output::sink::VolumeSink;
    let dir = scratch("browse-fuzz");
    let src = dir.join("src");
    populate(&src, 200);
    let (mut checked, mut damaged) = (0, 0);
    for (opts, seeds) in [(&["-b", "1024", "-O", "^metadata_csum"][..], 0..120u64), (&["-b", "4096"][..], 120..160)] {
        let img = dir.join("private.img");
        mkfs(&src, &img, "16M", opts);
        let clean = image_of(&img);
        for seed in seeds {
            let mut image = SparseImage::new();
            image.set_len(clean.size).unwrap();
            let mut bytes = clean.read(0, 512 << 10);
            // 16 flipped bytes among the used ones of the first 512 KiB: superblock, descriptors,
            // bitmaps, inodes, folders, extent trees.
            let used: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != 0).collect();
            for r in noise(48, seed).chunks(3) {
                let at = used[(usize::from(r[0]) << 8 | usize::from(r[1])) * used.len() / 65536];
                bytes[at] ^= r[2] | 1;
            }
            for (o, d) in &clean.runs {
                image.write_at(*o, d).unwrap();
            }
            image.write_at(0, &bytes).unwrap();
            let Ok(fs) = Fs::open(image, None) else { continue };
            let mut files = Vec::new();
            let _ = fs.walk(b"/", &mut |w| {
                damaged += usize::from(w.entry.error.is_some());
                if w.entry.kind == Kind::File && w.entry.error.is_none() {
                    files.push(w.entry.path.clone());
                }
                Ok(true)
            });
            for f in files.iter().take(50) {
                if let Ok(mut r) = fs.open_file(f) {
                    let mut buf = vec![0u8; 1 << 20];
                    for _ in 0..4 {
                        if !matches!(r.read(&mut buf), Ok(n) if n > 0) {
                            break;
                        }
                    }
                }
            }
            let _ = fs.list(b"/many");
            let _ = fs.stat_follow(b"/loop1");
            checked += 1;
        }
    }
    eprintln!("{checked} of 160 damaged images opened, walked and read without a panic ({damaged} damaged entries seen)");
    assert!(checked > 20, "only {checked} damaged images opened at all");
}

/// Runs the CLI and reads its peak RSS (VmHWM) once it has started printing: by then the volume
/// is in memory and the listing made, and with a listing larger than a pipe buffer it is still
/// blocked writing. (wait4's ru_maxrss would count this test process, which spawned it.)
fn ls_peak_rss(args: &[&str]) -> (Vec<u8>, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qubes-rescue"))
        .args(args)
        .env("QUBES_RESCUE_PASSPHRASE", PASS)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let kib: u64 = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    ([&first[..], &rest].concat(), kib * 1024)
}

#[test]
fn browsing_a_20_gib_image_costs_its_data_not_its_size() {
    let dir = scratch("browse-20g");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("Documents")).unwrap();
    std::fs::write(src.join("Documents/data.bin"), noise(48 << 20, 11)).unwrap();
    for i in 0..3000 {
        std::fs::write(src.join(format!("Documents/note-{i:04}.txt")), b"note\n").unwrap();
    }
    let img = dir.join("private.img");
    mkfs(&src, &img, "20G", &[]);
    let image = image_of(&img);
    std::fs::remove_file(&img).unwrap();
    let data: u64 = image.runs.iter().map(|(_, d)| d.len() as u64).sum();
    let b = backup(&dir, &[("private.img", &image)], Compression::None);
    drop(image);
    let started = Instant::now();
    let (out, peak) = ls_peak_rss(&["ls", b.to_str().unwrap(), "work", "/Documents", "--json"]);
    let secs = started.elapsed().as_secs_f64();
    assert!(out.len() > 256 << 10, "the listing outgrows a pipe buffer");
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap().as_array().unwrap().len(), 3001);
    eprintln!("ls in a 20 GiB image with {} MiB of data: peak RSS {} MiB, {secs:.1} s", data >> 20, peak >> 20);
    assert!(peak < data + (64 << 20), "peak RSS {} MiB for {} MiB of data", peak >> 20, data >> 20);
    let out = dir.join("data.bin");
    let o = get(&b, "work", "/Documents/data.bin", &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), noise(48 << 20, 11));
}

#[test]
fn real_tool_fixture_dom0_home_browses_and_gets_as_the_manifest_says() {
    let m: Value = serde_json::from_str(&std::fs::read_to_string(fixture("made/manifest.json")).unwrap()).unwrap();
    let b = m["backups"].as_array().unwrap().iter().find(|b| b["file"] == "gzip-pax.bin").unwrap().clone();
    let files = b["qubes"].as_array().unwrap().iter().find(|q| q["name"] == "dom0").unwrap()["files"].as_array().unwrap().clone();
    let pass = b["passphrase"].as_str().unwrap();
    let bin = fixture("made/gzip-pax.bin");
    let bin = bin.to_str().unwrap();
    let dir = scratch("browse-dom0");
    let tree = dir.join("tree");
    let o = cli(pass, &["get", bin, "dom0", "/home/user", "-o", tree.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut n = 0;
    for f in &files {
        let rel = f["path"].as_str().unwrap();
        let Some(rel) = rel.strip_prefix("home/user/") else { continue };
        let p = tree.join(rel);
        let md = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
        match f["type"].as_str().unwrap() {
            "dir" => assert!(md.is_dir(), "{rel}"),
            "symlink" => assert_eq!(std::fs::read_link(&p).unwrap().to_str(), f["target"].as_str(), "{rel}"),
            _ => {
                assert_eq!(md.len(), f["size"].as_u64().unwrap(), "{rel}");
                if let Some(sum) = f["sha256"].as_str() {
                    assert_eq!(sha256_file(&p), sum, "{rel}");
                }
            }
        }
        n += 1;
    }
    assert!(n > 20, "{n} entries checked");
    // ls lists a folder of the home, one entry per line or as JSON.
    let o = cli(pass, &["ls", bin, "dom0", "/home/user/Documents", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let want = files.iter().filter(|f| f["path"].as_str().unwrap().strip_prefix("home/user/Documents/").is_some_and(|r| !r.contains('/'))).count();
    assert_eq!(list.len(), want);
    assert!(list.iter().any(|e| e["name"] == "odd-link" && e["type"] == "symlink" && e["target"] == "odd name  with   spaces & (parens).txt"));
    // One file, and a hard link (its data is the file it links to).
    for (path, name) in [("/home/user/Pictures/sunset.png", "sunset.png"), ("/home/user/.bashrc-hardlink", ".bashrc")] {
        let dest = dir.join(name);
        let o = cli(pass, &["get", bin, "dom0/home", path, "-o", dest.to_str().unwrap()]);
        assert!(o.status.success(), "{path}: {}", stderr(&o));
        let want = files.iter().find(|f| f["path"] == format!("home/user/{}", path.rsplit('/').next().unwrap())).or_else(|| files.iter().find(|f| f["path"].as_str().unwrap().ends_with(name))).unwrap();
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), want["size"].as_u64().unwrap(), "{path}");
    }
    assert_eq!(std::fs::read(dir.join(".bashrc")).unwrap(), std::fs::read(tree.join(".bashrc")).unwrap());
    // Missing: exit 3; a symbolic link is not followed (its target may be outside the home).
    let o = cli(pass, &["get", bin, "dom0", "/home/user/nothing", "-o", dir.join("x").to_str().unwrap()]);
    assert_eq!((o.status.code(), error_class(&o).as_deref()), (Some(3), Some("not-found")), "{}", stderr(&o));
    let o = cli(pass, &["get", bin, "dom0", "/home/user/absolute-link", "-o", dir.join("x").to_str().unwrap()]);
    assert_eq!(error_class(&o).as_deref(), Some("unsupported"), "{}", stderr(&o));
    assert!(!dir.join("x").exists());
}

/// Salvage: the files whose blocks lie in a lost range (zeros in a `.salvaged` image) are the
/// ones flagged. Where each file's blocks are comes from the real `debugfs`, not from us.
#[test]
fn files_reading_lost_ranges_of_a_salvaged_image_are_flagged() {
    use qubes_rescue::browse::fs::{Fs, LostWatch};
    let dir = scratch("lost-files");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for (name, len, seed) in [("a.bin", 200_000, 1), ("b.bin", 300_000, 2), ("c.txt", 5, 3)] {
        std::fs::write(src.join(name), noise(len, seed)).unwrap();
    }
    let img = dir.join("private.img");
    mkfs(&src, &img, "16M", &["-b", "4096"]);
    // debugfs's "blocks" prints the file's physical block numbers.
    let out = run(Command::new("debugfs").args(["-R", "blocks /b.bin"]).arg(&img));
    let blocks: Vec<u64> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(|b| b.parse().unwrap()).collect();
    assert!(blocks.len() >= 70, "b.bin spans {} blocks", blocks.len());
    // Lose 3 blocks in the middle of b.bin, as a salvage would (zeros there).
    let lost = vec![(blocks[10] * 4096, (blocks[10] + 3) * 4096)];
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[lost[0].0 as usize..lost[0].1 as usize].fill(0);
    let hit = std::rc::Rc::new(std::cell::Cell::new(false));
    let fs = Fs::open(LostWatch { inner: bytes, lost, hit: hit.clone() }, None).unwrap();
    let names = |v: Vec<qubes_rescue::browse::fs::Entry>| v.iter().map(|e| String::from_utf8_lossy(&e.name).into_owned()).collect::<Vec<_>>();
    let (flagged, unchecked) = fs.lost_files(b"/", &hit, u64::MAX).unwrap();
    assert_eq!(names(flagged), ["b.bin"]);
    assert!(unchecked.is_empty());
    // Over the budget, files are left unchecked rather than read.
    let (flagged, unchecked) = fs.lost_files(b"/", &hit, 250_000).unwrap();
    assert_eq!((names(flagged), names(unchecked)), (vec![], vec!["b.bin".to_string()]));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Found by fuzz/fs_image: ext4-view reads a link's target whole, sized by its inode, so a
/// damaged slow symlink claiming 4 GiB made it allocate 4 GiB. The link is now an entry with an
/// error, and paths through it fail, without reading it.
#[test]
fn a_symlink_claiming_a_huge_target_is_damage_not_an_allocation() {
    use qubes_rescue::browse::fs::Fs;
    let dir = scratch("huge-link");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("docs/a.txt"), b"a\n").unwrap();
    let long = format!("docs/{}", "x".repeat(80)); // over 60 bytes: a slow link, target in a block
    std::os::unix::fs::symlink(&long, src.join("bad")).unwrap();
    std::os::unix::fs::symlink("docs", src.join("good")).unwrap();
    let img = dir.join("private.img");
    mkfs(&src, &img, "4M", &["-b", "1024"]);
    run(Command::new("debugfs").args(["-w", "-R", "sif /bad size 4294967300"]).arg(&img));
    let fs = Fs::open(std::fs::read(&img).unwrap(), None).unwrap();
    let listing = fs.list(b"/").unwrap();
    let bad = listing.entries.iter().find(|e| e.name == b"bad").unwrap();
    let err = bad.error.as_ref().expect("the damaged link carries an error");
    assert!(err.to_string().contains("symbolic link whose target would be 4294967300 bytes"), "{err}");
    assert!(listing.entries.iter().any(|e| e.name == b"good" && e.target.as_deref() == Some(&b"docs"[..])));
    assert!(fs.open_file(b"/bad/x").is_err());
    assert!(fs.stat_follow(b"/bad").is_err());
    assert_eq!(fs.list(b"/good").unwrap().entries.len(), 1, "a sound link still leads on");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_folder_that_contains_itself_ends_walks_and_links_at_the_depth_cap_in_few_lookups() {
    use qubes_rescue::browse::fs::{Fs, MAX_DEPTH};
    let dir = scratch("folder-loop");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    std::fs::write(src.join("a/b/note.txt"), b"n\n").unwrap();
    // A link whose ~1 KB target (a 1 KiB block holds it) runs round the loop made below: 285
    // folders deep.
    let deep = format!("a{}", "/b/loop".repeat(142));
    std::os::unix::fs::symlink(&deep, src.join("deep")).unwrap();
    let img = dir.join("private.img");
    mkfs(&src, &img, "4M", &["-b", "1024"]);
    // A damaged filesystem: /a/b/loop is another name of /a (debugfs links any inode).
    run(Command::new("debugfs").args(["-w", "-R", "link /a /a/b/loop"]).arg(&img));
    let fs = Fs::open(std::fs::read(&img).unwrap(), None).unwrap();
    assert!(fs.stat(b"/a/b/loop/b/loop/b/note.txt").is_ok(), "the loop is there");
    let before = fs.components_resolved();
    let (mut seen, mut deepest) = (0usize, 0usize);
    let err = fs
        .walk(b"/", &mut |w| {
            seen += 1;
            deepest = deepest.max(w.rel.len());
            Ok(true)
        })
        .unwrap_err();
    assert!(err.to_string().contains(&format!("nested over {MAX_DEPTH} deep")), "{err}");
    assert_eq!(deepest, MAX_DEPTH);
    assert!(seen < 3 * MAX_DEPTH, "{seen} entries");
    // Each folder's path is resolved once: ~depth²/2 lookups in all, where resolving every
    // folder's path link by link cost ~depth³/6 (2.8 M here, 8 s).
    let lookups = fs.components_resolved() - before;
    assert!(lookups < 100_000, "{lookups} path lookups for a walk of {seen} entries");
    // Following the link stops at the depth cap.
    let before = fs.components_resolved();
    let err = fs.stat_follow(b"/deep").unwrap_err();
    assert!(err.to_string().contains(&format!("over {MAX_DEPTH} folders deep")), "{err}");
    let lookups = fs.components_resolved() - before;
    assert!(lookups < 100_000, "{lookups} path lookups to follow one link");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_mbr_root_img_opens_its_linux_partition_and_a_partition_on_the_mbr_is_damage() {
    let dir = scratch("browse-mbr");
    let src = dir.join("src");
    populate(&src, 0);
    let part = dir.join("part.img");
    mkfs(&src, &part, "24M", &[]);
    let disk = dir.join("root.img");
    run(Command::new("truncate").args(["-s", "32M"]).arg(&disk));
    // The real sfdisk: a small FAT-typed partition, then Linux (0x83) holding the filesystem.
    let mut sf = Command::new("sfdisk");
    sf.arg("--quiet").arg(&disk).stdin(std::process::Stdio::piped());
    let mut child = sf.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"label: dos\nstart=2048, size=4096, type=c\nstart=8192, type=83\n").unwrap();
    assert!(child.wait().unwrap().success());
    put_partition(&disk, 8192 * 512, &part);
    let b = backup(&dir, &[("root.img", &image_of(&disk))], Compression::Gzip);
    let tree = dir.join("tree");
    let o = get(&b, "work/root.img", "/", &tree, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    same_tree(&src, &tree, &[]);
    let o = ls(&b, "work/root.img", "/", &["--partition", "1"]);
    assert_eq!(error_class(&o).as_deref(), Some("unsupported"), "partition 1 holds no ext4: {}", stderr(&o));
    // Damage: both partitions now claim to start at sector 0, on the MBR itself (mbrman 0.6
    // panicked when every used partition does: found by fuzz/fs_image).
    let d = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    d.write_all_at(&[0u8; 4], 446 + 16 + 8).unwrap();
    d.write_all_at(&[0u8; 4], 446 + 8).unwrap();
    drop(d);
    std::fs::create_dir_all(dir.join("damaged")).unwrap();
    let b = backup(&dir.join("damaged"), &[("root.img", &image_of(&disk))], Compression::Gzip);
    let o = ls(&b, "work/root.img", "/", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("MBR partition table is damaged (partition 1 starts on the MBR itself)"), "{}", stderr(&o));
}

#[test]
fn folders_named_twice_stop_the_walk_once_it_enters_more_folders_than_inodes() {
    use qubes_rescue::browse::fs::Fs;
    let dir = scratch("folder-dag");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let img = dir.join("private.img");
    mkfs(&src, &img, "8M", &[]);
    // A damaged filesystem: /d0 … /d13, each naming the next twice (a, b), so 2^13 paths lead
    // to /d13 (made with the real debugfs, which links any inode).
    let mut cmds = String::new();
    for i in 0..14 {
        cmds += &format!("mkdir /d{i}\n");
    }
    for i in 0..13 {
        cmds += &format!("link /d{} /d{i}/a\nlink /d{} /d{i}/b\n", i + 1, i + 1);
    }
    std::fs::write(dir.join("cmds"), cmds).unwrap();
    run(Command::new("debugfs").arg("-w").arg("-f").arg(dir.join("cmds")).arg(&img));
    let inodes: usize = {
        let o = run(Command::new("dumpe2fs").arg("-h").arg(&img));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        out.lines().find_map(|l| l.strip_prefix("Inode count:")).unwrap().trim().parse().unwrap()
    };
    let fs = Fs::open(std::fs::read(&img).unwrap(), None).unwrap();
    assert_eq!(fs.list(b"/d0/b/a/b").unwrap().entries.len(), 2, "the damage is there");
    let mut seen = 0usize;
    let err = fs
        .walk(b"/d0", &mut |_| {
            seen += 1;
            Ok(true)
        })
        .unwrap_err();
    assert!(err.to_string().contains(&format!("more folders than the filesystem's {inodes} inodes")), "{err}");
    // Every folder entered costs at most its two entries: ~2 × inodes, not 2^14 paths.
    assert!(seen <= 2 * inodes + 2, "{seen} entries for {inodes} inodes");
    std::fs::remove_dir_all(dir).unwrap();
}
