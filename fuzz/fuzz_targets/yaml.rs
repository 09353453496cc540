//! berth's YAML front end (events to positioned nodes, aliases, tags).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        berth::fuzz::yaml(text);
    }
});
