//! minisign signature and key files and a trusted comment's signed facts,
//! as a hostile fleet server or mirror could serve them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    berth::fuzz::signature(data);
});
