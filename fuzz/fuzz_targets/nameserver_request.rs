//! libFuzzer target: see `dnstrail::fuzzing::nameserver_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dnstrail::fuzzing::nameserver_request(data));
