//! libFuzzer target: see `dnstrail::fuzzing::web_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dnstrail::fuzzing::web_request(data));
