//! Page-token decoding never panics, and accepts only tokens this service signed for the same query
//! (the property lives in `eventdata::fuzzing`, which CI also runs with proptest).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| eventdata::fuzzing::page_token(data));
