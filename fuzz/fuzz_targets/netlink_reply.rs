//! rtnetlink replies: message walk, error and done messages, attributes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    berth::fuzz::netlink_reply(data);
});
