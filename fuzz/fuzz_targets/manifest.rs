//! A manifest as a fleet origin could serve it: render, parse, validate.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        berth::fuzz::manifest(text);
    }
});
