//! Registry JSON from a hostile registry: manifests and indexes (with a
//! Content-Type), bearer token answers, WWW-Authenticate challenges and
//! image references, each with berth's caps.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    berth::fuzz::registry(data);
});
