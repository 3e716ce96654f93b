//! The outer archive index: any bytes, no panic; members lie inside the file (or are marked
//! cut), are at most 100 MiB + 128, have plain relative names, and read back within their cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qubes_rescue::format::outer;

fuzz_target!(|data: &[u8]| {
    let Ok(members) = outer::index(data) else { return };
    let len = data.len() as u64;
    for (i, m) in members.iter().enumerate() {
        assert!(m.size <= outer::MAX_MEMBER);
        assert!(m.offset <= len);
        assert_eq!(m.cut, m.offset + m.size > len, "{m:?}");
        assert!(!m.cut || i == members.len() - 1, "only the last member can be cut");
        assert!(!m.name.starts_with('/') && !m.name.split('/').any(|c| c.is_empty() || c == "." || c == ".."));
        match m.read(data, 1 << 20) {
            Ok(bytes) => assert_eq!(bytes.len() as u64, m.size),
            Err(e) => assert!(m.cut || m.size > 1 << 20, "{e}"),
        }
    }
    let _ = outer::ends_cleanly(data, &members);
});
