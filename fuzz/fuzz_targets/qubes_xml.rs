//! qubes.xml: any bytes, no panic; every listed qube has a name that is safe as a folder name.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(qubes) = qubes_rescue::format::qubes_xml::parse(data) {
        for q in &qubes {
            assert!(qubes_rescue::format::qubes_xml::valid_qube_name(&q.name), "{:?}", q.name);
        }
    }
});
