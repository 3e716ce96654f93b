//! `backup-header` grammar: any bytes, no panic; what parses is ASCII and names a backup-id.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = qubes_rescue::format::header::parse(data) {
        assert!(data.is_ascii());
        assert!(h.version <= 4 && h.version >= 1, "{h:?}");
    }
});
