//! libFuzzer target: see `dnstrail::fuzzing::zone_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dnstrail::fuzzing::zone_file(data));
