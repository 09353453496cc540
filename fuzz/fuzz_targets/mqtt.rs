//! MQTT packets as a hostile broker could send them to a device agent.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    berth::fuzz::mqtt(data);
});
