//! An HTTP/1.1 response from a hostile server: status line, headers, chunked
//! and sized bodies, a redirect's Location, within the manifest limits.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    berth::fuzz::http_response(data);
});
