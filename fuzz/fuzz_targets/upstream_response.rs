//! libFuzzer target: see `dnstrail::fuzzing::upstream_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dnstrail::fuzzing::upstream_response(data));
