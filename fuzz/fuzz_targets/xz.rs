//! berth's .xz container reader (streams, blocks, index, checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    berth::fuzz::xz(data);
});
