//! An image archive imported into a store in a temp dir: compression sniffing,
//! the safe untar, OCI layouts and docker-save archives.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(dir) = tempfile::tempdir() {
        let _ = berth::fuzz::image(data, dir.path());
    }
});
