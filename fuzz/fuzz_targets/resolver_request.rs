//! libFuzzer target: see `dnstrail::fuzzing::resolver_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dnstrail::fuzzing::resolver_request(data));
