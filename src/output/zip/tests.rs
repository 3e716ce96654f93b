    use super::*;

    enum Item<'a> {
        Dir(&'a [u8], i64, u16),
        File(&'a [u8], i64, u16, &'a [u8]),
    }

    /// Writes `items` into memory; file data goes in pieces of 1000 bytes.
    fn build(items: &[Item]) -> Vec<u8> {
        let mut zip = Vec::new();
        let mut w = ZipWriter::new();
        let mut out = |b: &[u8]| -> Result<()> {
            zip.extend_from_slice(b);
            Ok(())
        };
        for item in items {
            match *item {
                Item::Dir(name, mtime, mode) => w.add_dir(name, mtime, mode, &mut out).unwrap(),
                Item::File(name, mtime, mode, data) => {
                    w.start_file(name, mtime, mode, &mut out).unwrap();
                    for piece in data.chunks(1000) {
                        w.file_data(piece, &mut out).unwrap();
                    }
                    w.end_file(&mut out).unwrap();
                }
            }
        }
        w.finish(&mut out).unwrap();
        assert_eq!(w.offset(), zip.len() as u64);
        zip
    }

    /// One central directory entry as a reader sees it, ZIP64 fields applied.
    #[derive(Debug)]
    struct Central {
        name: Vec<u8>,
        crc: u32,
        size: u64,
        offset: u64,
        /// The ZIP64 extra field's values, empty when there is none.
        zip64: Vec<u64>,
        unix_mtime: Option<i32>,
        len: usize,
    }

    fn le16(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
    }
    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn le64(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    fn parse_central(b: &[u8]) -> Central {
        assert_eq!(le32(b, 0), CENTRAL_HEADER);
        let (name_len, extra_len) = (le16(b, 28) as usize, le16(b, 30) as usize);
        let name = b[46..46 + name_len].to_vec();
        let extra = &b[46 + name_len..46 + name_len + extra_len];
        let mut c = Central {
            name,
            crc: le32(b, 16),
            size: le32(b, 24).into(),
            offset: le32(b, 42).into(),
            zip64: Vec::new(),
            unix_mtime: None,
            len: 46 + name_len + extra_len,
        };
        assert_eq!(le32(b, 20), le32(b, 24), "STORE: compressed size == size");
        let mut at = 0;
        while at < extra.len() {
            let (tag, len) = (le16(extra, at), le16(extra, at + 2) as usize);
            let field = &extra[at + 4..at + 4 + len];
            match tag {
                0x0001 => c.zip64 = field.chunks(8).map(|v| le64(v, 0)).collect(),
                0x5455 => c.unix_mtime = Some(le32(field, 1) as i32),
                _ => panic!("unexpected extra field {tag:#x}"),
            }
            at += 4 + len;
        }
        let mut zip64 = c.zip64.iter();
        if c.size == MAX32 {
            c.size = *zip64.next().unwrap();
            assert_eq!(zip64.next(), Some(&c.size));
        }
        if c.offset == MAX32 {
            c.offset = *zip64.next().unwrap();
        }
        assert_eq!(zip64.next(), None, "no ZIP64 value without an all-ones field");
        c
    }

    /// The central directory of an archive `len` bytes long whose last bytes are `tail`;
    /// also whether it has the ZIP64 end record and locator.
    fn parse_tail(tail: &[u8], len: u64) -> (Vec<Central>, bool) {
        let base = len - tail.len() as u64;
        let end = tail.len() - 22;
        assert_eq!(le32(tail, end), END);
        let (mut count, mut cd_size, mut cd_start) =
            (u64::from(le16(tail, end + 10)), u64::from(le32(tail, end + 12)), u64::from(le32(tail, end + 16)));
        let zip64 = end >= 20 && le32(tail, end - 20) == ZIP64_LOCATOR;
        if zip64 {
            let at = (le64(tail, end - 12) - base) as usize;
            assert_eq!(at + 56, end - 20, "the locator points at the ZIP64 end record");
            assert_eq!(le32(tail, at), ZIP64_END);
            assert_eq!(le64(tail, at + 24), le64(tail, at + 32));
            (count, cd_size, cd_start) = (le64(tail, at + 32), le64(tail, at + 40), le64(tail, at + 48));
        }
        let mut at = (cd_start - base) as usize;
        let entries: Vec<Central> = (0..count)
            .map(|_| {
                let c = parse_central(&tail[at..]);
                at += c.len;
                c
            })
            .collect();
        assert_eq!(at as u64, cd_start - base + cd_size);
        (entries, zip64)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn tmpdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("qr-zip-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Runs a reader and returns its stdout; None when it is not installed (the other readers
    /// and the structural checks still run). Any failure of an installed reader fails the test.
    #[cfg(not(target_arch = "wasm32"))]
    fn run(cmd: &mut std::process::Command, stdin: Option<&[u8]>) -> Option<String> {
        use std::io::Write;
        use std::process::Stdio;
        cmd.env("LC_ALL", "C.UTF-8").stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("skipped, not installed: {cmd:?}");
                return None;
            }
            Err(e) => panic!("{cmd:?}: {e}"),
        };
        let mut pipe = child.stdin.take();
        let output = std::thread::scope(|s| {
            s.spawn(|| {
                if let (Some(p), Some(data)) = (pipe.as_mut(), stdin) {
                    p.write_all(data).unwrap();
                }
                drop(pipe);
            });
            child.wait_with_output().unwrap()
        });
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{cmd:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        Some(stdout)
    }

    /// Python's `zipfile`: `testzip()` must pass; returns each entry's raw name, flags, size,
    /// CRC, MS-DOS date_time, Unix mode and (unless `with_data` is false) data, as JSON.
    #[cfg(not(target_arch = "wasm32"))]
    fn python_reads(zip: &std::path::Path, with_data: bool) -> Option<serde_json::Value> {
        const SCRIPT: &str = r#"
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
out = []
for i in z.infolist():
    raw = i.filename.encode("utf-8" if i.flag_bits & 0x800 else "cp437")
    e = {"name": raw.hex(), "flags": i.flag_bits, "size": i.file_size, "crc": i.CRC,
         "date_time": list(i.date_time), "mode": i.external_attr >> 16, "dos": i.external_attr & 0xFFFF,
         "system": i.create_system}
    if sys.argv[2] == "data":
        e["data"] = z.read(i).hex()
    out.append(e)
print(json.dumps(out))
"#;
        let mut cmd = std::process::Command::new("python3");
        cmd.args(["-c", SCRIPT]).arg(zip).arg(if with_data { "data" } else { "nodata" });
        run(&mut cmd, None).map(|s| serde_json::from_str(&s).unwrap())
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn small_archive_reads_back_in_python_unzip_7zip_and_libarchive() {
        use std::os::unix::fs::PermissionsExt;
        use std::process::Command;
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
        let items = [
            Item::Dir(b"docs", 1_600_000_000, 0o755),
            Item::File(b"docs/empty.txt", 1_700_000_001, 0o644, b""),
            Item::File(b"docs/hello.txt", 1_700_000_001, 0o644, b"hello, zip\n"),
            Item::Dir(b"docs/deep", 1_600_000_002, 0o700),
            Item::Dir(b"docs/deep/er", 1_600_000_004, 0o750),
            Item::File(b"docs/deep/er/data.bin", 1_709_208_000, 0o600, &data),
            Item::File("héllo wörld 日本.txt".as_bytes(), 0, 0o640, b"utf-8\n"),
            Item::File(b"caf\xe9.txt", 1_700_000_001, 0o644, b"latin-1 name\n"),
            Item::File(b"run.sh", 4_000_000_000, 0o755, b"#!/bin/sh\n"),
            Item::File(b"old.txt", -86_400, 0o644, b"old\n"),
        ];
        let zip = build(&items);
        let dir = tmpdir("small");
        let path = dir.join("small.zip");
        std::fs::write(&path, &zip).unwrap();

        let (central, zip64_end) = parse_tail(&zip, zip.len() as u64);
        assert!(!zip64_end, "a small archive needs no ZIP64 end record");
        assert_eq!(central.len(), items.len());
        for c in &central {
            assert!(c.zip64.is_empty(), "{:?}: small values need no ZIP64 extra field", c.name);
        }

        if let Some(py) = python_reads(&path, true) {
            let got = py.as_array().unwrap();
            assert_eq!(got.len(), items.len());
            for (item, e) in items.iter().zip(got) {
                let (name, mode, data, is_dir) = match *item {
                    Item::Dir(n, _, m) => ([n, b"/"].concat(), m, &b""[..], true),
                    Item::File(n, _, m, d) => (n.to_vec(), m, d, false),
                };
                assert_eq!(e["name"], hex(&name));
                let utf8 = if std::str::from_utf8(&name).is_ok() { 0x800 } else { 0 };
                assert_eq!(e["flags"], utf8 | if is_dir { 0 } else { 8 }, "{e}");
                assert_eq!(e["size"], data.len());
                assert_eq!(e["data"], hex(data));
                assert_eq!(e["crc"], crc32fast::hash(data));
                let kind = if is_dir { 0o040000 } else { 0o100000 };
                assert_eq!(e["mode"], kind | u32::from(mode));
                assert_eq!(e["dos"], if is_dir { 0x10 } else { 0 });
                assert_eq!(e["system"], 3, "made by Unix");
            }
            // MS-DOS times: 2-second steps, clamped to 1980..=2107.
            assert_eq!(got[2]["date_time"], serde_json::json!([2023, 11, 14, 22, 13, 20]));
            assert_eq!(got[5]["date_time"], serde_json::json!([2024, 2, 29, 12, 0, 0]));
            assert_eq!(got[6]["date_time"], serde_json::json!([1980, 1, 1, 0, 0, 0]));
        }

        if run(Command::new("unzip").arg("-tq").arg(&path), None).is_some() {
            let x = dir.join("unzip");
            run(Command::new("unzip").arg("-q").arg(&path).arg("-d").arg(&x), None).unwrap();
            let meta = |p: &str| std::fs::metadata(x.join(p)).unwrap();
            let mtime = |p: &str| {
                let t = meta(p).modified().unwrap();
                match t.duration_since(std::time::UNIX_EPOCH) {
                    Ok(d) => d.as_secs() as i64,
                    Err(e) => -(e.duration().as_secs() as i64),
                }
            };
            assert_eq!(std::fs::read(x.join("docs/hello.txt")).unwrap(), b"hello, zip\n");
            assert_eq!(std::fs::read(x.join("docs/deep/er/data.bin")).unwrap(), data);
            assert_eq!(std::fs::read(x.join("docs/empty.txt")).unwrap(), b"");
            assert_eq!(std::fs::read(x.join("héllo wörld 日本.txt")).unwrap(), b"utf-8\n");
            // Exact times come from the extended timestamp, not the 2-second MS-DOS field.
            assert_eq!(mtime("docs/hello.txt"), 1_700_000_001);
            assert_eq!(mtime("héllo wörld 日本.txt"), 0);
            assert_eq!(mtime("run.sh"), i64::from(i32::MAX), "clamped to 32 bits");
            // unzip 6.0 ignores a negative extended timestamp and takes the clamped MS-DOS
            // time; what must never happen is a sign-bit time read as a date after 2038.
            assert!([-86_400, 315_532_800].contains(&mtime("old.txt")), "{}", mtime("old.txt"));
            assert_eq!(mtime("docs/deep/er"), 1_600_000_004);
            assert_eq!(meta("run.sh").permissions().mode() & 0o7777, 0o755);
            assert_eq!(meta("docs/deep/er/data.bin").permissions().mode() & 0o7777, 0o600);
            assert_eq!(meta("docs/deep").permissions().mode() & 0o7777, 0o700);
        }

        if let Some(out) = run(Command::new("7zz").arg("t").arg(&path), None) {
            assert!(out.contains("Everything is Ok"), "{out}");
            assert!(out.contains("Folders: 3") && out.contains("Files: 7"), "{out}");
        }

        // libarchive reads a piped archive front to back: local headers and data descriptors
        // only, never the central directory.
        let x = dir.join("bsdtar");
        std::fs::create_dir_all(&x).unwrap();
        if run(Command::new("bsdtar").arg("-xf").arg("-").arg("-C").arg(&x), Some(&zip)).is_some() {
            assert_eq!(std::fs::read(x.join("docs/hello.txt")).unwrap(), b"hello, zip\n");
            assert_eq!(std::fs::read(x.join("docs/deep/er/data.bin")).unwrap(), data);
            assert_eq!(std::fs::read(x.join("run.sh")).unwrap(), b"#!/bin/sh\n");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// 4 GiB + 1 MiB of zeros between two small entries, so both a size and the following
    /// offsets need ZIP64. Zero pieces are skipped on disk (a sparse file), so the test costs
    /// reading time, not 4 GiB of disk writes.
    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn file_over_4_gib_uses_zip64_and_reads_back() {
        use std::io::{Read, Seek, SeekFrom, Write};
        use std::process::Command;
        const BIG: u64 = (4 << 30) + (1 << 20);
        let dir = tmpdir("big");
        let path = dir.join("big.zip");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut out = |b: &[u8]| -> Result<()> {
            if b.len() >= 4096 && b.iter().all(|&x| x == 0) {
                file.seek(SeekFrom::Current(b.len() as i64))?;
            } else {
                file.write_all(b)?;
            }
            Ok(())
        };
        let mut w = ZipWriter::new();
        w.start_file(b"a.txt", 1_700_000_000, 0o644, &mut out).unwrap();
        w.file_data(b"before\n", &mut out).unwrap();
        w.end_file(&mut out).unwrap();
        w.start_file(b"big.bin", 1_700_000_000, 0o644, &mut out).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..BIG >> 20 {
            w.file_data(&zeros, &mut out).unwrap();
        }
        w.end_file(&mut out).unwrap();
        let after = w.offset();
        w.add_dir(b"after", 1_700_000_000, 0o755, &mut out).unwrap();
        w.start_file(b"after/z.txt", 1_700_000_000, 0o644, &mut out).unwrap();
        w.file_data(b"after\n", &mut out).unwrap();
        w.end_file(&mut out).unwrap();
        w.finish(&mut out).unwrap();
        let len = w.offset();
        file.set_len(len).unwrap();
        drop(file);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);

        let mut tail = Vec::new();
        let mut f = std::fs::File::open(&path).unwrap();
        f.seek(SeekFrom::Start(len - 4096)).unwrap();
        f.read_to_end(&mut tail).unwrap();
        let (central, zip64_end) = parse_tail(&tail, len);
        assert!(zip64_end, "the central directory starts past 4 GiB");
        let names: Vec<&[u8]> = central.iter().map(|c| &c.name[..]).collect();
        assert_eq!(names, [&b"a.txt"[..], b"big.bin", b"after/", b"after/z.txt"]);
        assert_eq!((central[1].size, central[1].zip64.len()), (BIG, 2), "sizes only, offset fits");
        assert_eq!((central[2].offset, central[2].zip64.clone()), (after, vec![after]));
        assert_eq!(central[3].zip64.len(), 1, "offset only");
        assert!(central[0].zip64.is_empty());
        // The CRC of BIG zeros, computed apart from the writer.
        let mut crc = crc32fast::Hasher::new();
        for _ in 0..BIG >> 20 {
            crc.update(&zeros);
        }
        let big_crc = crc.finalize();
        assert_eq!(central[1].crc, big_crc);

        if let Some(py) = python_reads(&path, false) {
            assert_eq!(py[1]["size"], BIG);
            assert_eq!(py[1]["crc"], big_crc);
            assert_eq!(py[3]["size"], 6);
        }
        if let Some(out) = run(Command::new("unzip").arg("-t").arg(&path), None) {
            assert!(out.contains("No errors detected"), "{out}");
            assert!(out.contains("testing: big.bin") && out.contains("testing: after/z.txt"), "{out}");
        }
        if let Some(out) = run(Command::new("7zz").arg("t").arg(&path), None) {
            assert!(out.contains("Everything is Ok") && out.contains("Files: 3"), "{out}");
        }
        // Streamed through a pipe, so libarchive reads the ZIP64 data descriptors.
        let cmd = format!("cat '{}' | bsdtar -xOf - after/z.txt", path.display());
        if let Some(out) = run(Command::new("sh").args(["-c", &cmd]), None) {
            assert_eq!(out, "after\n");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn more_than_65535_entries_use_zip64_end_records() {
        use std::process::Command;
        const N: usize = 70_000;
        let names: Vec<String> = (0..N).map(|i| format!("f/{i:05}")).collect();
        let mut items = vec![Item::Dir(b"f", 1_700_000_000, 0o755)];
        items.extend(names.iter().map(|n| Item::File(n.as_bytes(), 1_700_000_000, 0o644, &n.as_bytes()[2..])));
        let zip = build(&items);
        let (central, zip64_end) = parse_tail(&zip, zip.len() as u64);
        assert!(zip64_end);
        assert_eq!(central.len(), N + 1);
        assert_eq!(le16(&zip, zip.len() - 22 + 10), 0xFFFF, "the classic end record points to ZIP64");
        assert_eq!(central[N].name, b"f/69999");

        let dir = tmpdir("many");
        let path = dir.join("many.zip");
        std::fs::write(&path, &zip).unwrap();
        if let Some(py) = python_reads(&path, true) {
            let got = py.as_array().unwrap();
            assert_eq!(got.len(), N + 1);
            for (i, e) in got[1..].iter().enumerate() {
                assert_eq!(e["data"], hex(format!("{i:05}").as_bytes()));
            }
        }
        if let Some(out) = run(Command::new("unzip").arg("-tq").arg(&path), None) {
            assert!(out.contains("No errors detected"), "{out}");
        }
        if let Some(out) = run(Command::new("7zz").arg("t").arg(&path), None) {
            assert!(out.contains("Everything is Ok") && out.contains("Files: 70000"), "{out}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_value_of_exactly_all_ones_moves_to_the_zip64_field() {
        let (_, record) = one_record(b"x");
        let at = |size, offset| parse_central(&central_header(&Record { size, offset, ..record.clone() }));
        let c = at(MAX32, MAX32 - 1);
        assert_eq!((c.size, c.offset, c.zip64), (MAX32, MAX32 - 1, vec![MAX32, MAX32]));
        let c = at(MAX32 - 1, MAX32);
        assert_eq!((c.size, c.offset, c.zip64), (MAX32 - 1, MAX32, vec![MAX32]));
        let c = at(MAX32 - 1, MAX32 - 1);
        assert!(c.zip64.is_empty());
    }

    /// The bytes and the central record of a one-file archive.
    fn one_record(name: &[u8]) -> (Vec<u8>, Record) {
        let mut zip = Vec::new();
        let mut out = |b: &[u8]| -> Result<()> {
            zip.extend_from_slice(b);
            Ok(())
        };
        let mut w = ZipWriter::new();
        w.start_file(name, 0, 0o644, &mut out).unwrap();
        w.end_file(&mut out).unwrap();
        let record = w.records[0].clone();
        w.finish(&mut out).unwrap();
        (zip, record)
    }

    #[test]
    fn local_header_announces_a_zip64_data_descriptor() {
        let (zip, _) = one_record(b"empty");
        assert_eq!(le32(&zip, 0), LOCAL_HEADER);
        assert_eq!(le16(&zip, 4), 45);
        assert_eq!(le16(&zip, 6), FLAG_DESCRIPTOR | FLAG_UTF8);
        assert_eq!((le32(&zip, 18), le32(&zip, 22)), (0xFFFF_FFFF, 0xFFFF_FFFF));
        let extra = 30 + 5;
        assert_eq!((le16(&zip, extra), le16(&zip, extra + 2)), (0x0001, 16));
        let descriptor = extra + 20 + 9;
        assert_eq!(le32(&zip, descriptor), DATA_DESCRIPTOR);
        assert_eq!(le32(&zip, descriptor + 4), 0, "CRC of nothing");
        assert_eq!((le64(&zip, descriptor + 8), le64(&zip, descriptor + 16)), (0, 0));
        assert_eq!(le32(&zip, descriptor + 24), CENTRAL_HEADER);
    }

    #[test]
    fn non_utf8_names_are_stored_raw_without_the_utf8_flag() {
        let (zip, record) = one_record(b"caf\xe9");
        assert_eq!(record.flags, FLAG_DESCRIPTOR);
        assert_eq!(&zip[30..34], b"caf\xe9");
    }

    #[test]
    fn unsafe_names_are_refused_before_any_byte_is_written() {
        let long = vec![b'a'; 65536];
        let bad: [&[u8]; 12] =
            [b"", b"/etc/passwd", b"a//b", b"a/", b"./a", b"a/./b", b"..", b"a/../b", b"a/..", b"a\0b", b"a\\b", &long];
        for name in bad {
            let mut w = ZipWriter::new();
            let mut written = 0;
            let mut out = |b: &[u8]| -> Result<()> {
                written += b.len();
                Ok(())
            };
            assert!(matches!(w.start_file(name, 0, 0o644, &mut out), Err(Error::Io(_))), "{name:?}");
            assert!(matches!(w.add_dir(name, 0, 0o755, &mut out), Err(Error::Io(_))), "{name:?}");
            assert_eq!((written, w.offset()), (0, 0), "{name:?}");
        }
        let mut w = ZipWriter::new();
        let mut out = |_: &[u8]| -> Result<()> { Ok(()) };
        for name in [&b"..."[..], b"a..b", b".hidden", b"a/b/c", &long[1..]] {
            w.start_file(name, 0, 0o644, &mut out).unwrap();
            w.end_file(&mut out).unwrap();
        }
        // A folder's stored name has the '/' added, so 65535 bytes are one too many.
        assert!(w.add_dir(&long[1..], 0, 0o755, &mut out).is_err());
        w.add_dir(&long[2..], 0, 0o755, &mut out).unwrap();
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let mut written = 0u64;
        let mut out = |b: &[u8]| -> Result<()> {
            written += b.len() as u64;
            Ok(())
        };
        let mut w = ZipWriter::new();
        assert!(matches!(w.file_data(b"x", &mut out), Err(Error::Internal(_))));
        assert!(matches!(w.end_file(&mut out), Err(Error::Internal(_))));
        w.start_file(b"a", 0, 0o644, &mut out).unwrap();
        assert!(matches!(w.start_file(b"b", 0, 0o644, &mut out), Err(Error::Internal(_))));
        assert!(matches!(w.add_dir(b"d", 0, 0o755, &mut out), Err(Error::Internal(_))));
        assert!(matches!(w.finish(&mut out), Err(Error::Internal(_))));
        w.file_data(b"still fine", &mut out).unwrap();
        w.end_file(&mut out).unwrap();
        w.finish(&mut out).unwrap();
        let done = w.offset();
        assert!(matches!(w.add_dir(b"d", 0, 0o755, &mut out), Err(Error::Internal(_))));
        assert!(matches!(w.start_file(b"b", 0, 0o644, &mut out), Err(Error::Internal(_))));
        assert!(matches!(w.file_data(b"x", &mut out), Err(Error::Internal(_))));
        assert!(matches!(w.end_file(&mut out), Err(Error::Internal(_))));
        assert!(matches!(w.finish(&mut out), Err(Error::Internal(_))));
        assert_eq!((w.offset(), written), (done, done), "nothing written after finish");
    }

    #[test]
    fn a_failed_write_closes_the_writer() {
        let disk_full = std::cell::Cell::new(false);
        let mut out = |_: &[u8]| -> Result<()> {
            if disk_full.get() {
                Err(Error::Io("disk full".into()))
            } else {
                Ok(())
            }
        };
        let mut w = ZipWriter::new();
        w.start_file(b"a", 0, 0o644, &mut out).unwrap();
        let before = w.offset();
        disk_full.set(true);
        assert_eq!(w.file_data(b"x", &mut out), Err(Error::Io("disk full".into())));
        assert_eq!(w.offset(), before, "bytes the sink refused are not counted");
        disk_full.set(false);
        let Err(Error::Io(why)) = w.end_file(&mut out) else { panic!("end_file after a failed write") };
        assert!(why.contains("earlier write failed"), "{why}");
        assert!(w.finish(&mut out).is_err());
    }

    #[test]
    fn dos_times_are_utc_in_two_second_steps_within_1980_to_2107() {
        let dos = |y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64| {
            (((y - 1980) << 9 | mo << 5 | d) as u16, (h << 11 | mi << 5 | (s / 2)) as u16)
        };
        assert_eq!(dos_date_time(1_700_000_001), dos(2023, 11, 14, 22, 13, 21));
        assert_eq!(dos_date_time(1_709_208_000), dos(2024, 2, 29, 12, 0, 0));
        assert_eq!(dos_date_time(315_532_800), dos(1980, 1, 1, 0, 0, 0));
        assert_eq!(dos_date_time(0), dos(1980, 1, 1, 0, 0, 0));
        assert_eq!(dos_date_time(i64::MIN), dos(1980, 1, 1, 0, 0, 0));
        assert_eq!(dos_date_time(4_354_819_199), dos(2107, 12, 31, 23, 59, 59));
        assert_eq!(dos_date_time(i64::MAX), dos(2107, 12, 31, 23, 59, 59));
    }
