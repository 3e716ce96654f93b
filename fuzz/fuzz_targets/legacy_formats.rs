//! Formats 3 and 2 (`format::legacy`): every parser of unauthenticated or merely HMAC'd bytes,
//! chosen by the first input byte. No panic, no unbounded allocation; what is accepted keeps
//! its promises (a header names version 2 or 3; joined volumes never grow the stream; a
//! backup_path never escapes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use qubes_rescue::format::legacy::{header, hmac_text, multivolume, openssl_cbc, pieces, qubes_xml, LegacyBackup};
use qubes_rescue::format::outer::Member;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 7 {
        0 => {
            if let Ok(h) = header::parse(rest) {
                assert!(rest.is_ascii());
                assert!(h.version == 2 || h.version == 3, "{h:?}");
            }
        }
        1 => {
            if let Ok(tag) = hmac_text::parse(rest, "x.hmac") {
                assert!(!tag.is_empty() && tag.len() <= rest.len() / 2);
            }
        }
        2 => {
            // Ciphertext in pieces of the size the second byte says.
            let (piece, body) = rest.split_first().map(|(p, b)| (*p as usize + 1, b)).unwrap_or((1, &[]));
            let mut s = openssl_cbc::CbcStream::new(b"qubes");
            let mut total = 0usize;
            let mut count = |b: &[u8]| {
                total += b.len();
                Ok(())
            };
            let ok = body.chunks(piece).try_for_each(|p| s.feed("fuzz", p, &mut count)).and_then(|()| s.finish("fuzz", &mut count));
            if ok.is_ok() {
                // Salt header, whole blocks, at least one; the padding (1..=16 bytes) is dropped.
                assert!(body.len() >= 32 && (body.len() - 16) % 16 == 0);
                assert!(total < body.len() - 16 && total + 16 >= body.len() - 16);
            }
        }
        3 => {
            if let Ok(qubes) = qubes_xml::parse(rest) {
                for q in qubes {
                    assert!(!q.backup_path.is_empty() && !q.backup_path.starts_with('/'));
                    assert!(q.backup_path.split('/').all(|c| c != ".." && c != "." && !c.is_empty()));
                }
            }
        }
        4 => {
            // Volumes cut where the bytes 0xFF 0xFE appear.
            let mut j = multivolume::VolumeJoiner::new();
            let mut total = 0usize;
            let mut count = |b: &[u8]| {
                total += b.len();
                Ok(())
            };
            let mut ok = Ok(());
            for v in rest.split(|&b| b == 0xFF) {
                ok = ok.and_then(|()| j.feed("fuzz", v, &mut count)).and_then(|()| j.end_volume("fuzz"));
            }
            if ok.and_then(|()| j.finish("fuzz")).is_ok() {
                assert!(total <= rest.len());
            }
        }
        5 => {
            let text = String::from_utf8_lossy(rest);
            let members: Vec<Member> = text
                .lines()
                .take(2000)
                .map(|l| {
                    let (name, size) = l.rsplit_once(' ').unwrap_or((l, "1"));
                    Member { name: name.to_string(), offset: 0, size: size.parse().unwrap_or(1), cut: false }
                })
                .collect();
            if let Ok(files) = pieces::group(&members) {
                for f in files {
                    for (i, p) in f.pieces.iter().enumerate() {
                        assert_eq!(pieces::split_piece_name(&p.data.name), Some((f.base.as_str(), i)));
                    }
                }
            }
        }
        _ => {
            // A whole backup: the outer index, the header's HMAC, pieces, qubes.xml, every file.
            if let Ok(backup) = LegacyBackup::open(rest.to_vec(), b"qubes") {
                for q in backup.qubes().to_vec() {
                    for f in backup.files(&q.name).into_iter().flatten() {
                        let mut stream = backup.stream(&f);
                        while let Ok(true) = stream.next_piece(&mut |_| Ok(())) {}
                    }
                }
            }
        }
    }
});
