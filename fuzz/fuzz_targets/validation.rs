//! Request validation never panics on any input, and whatever it accepts satisfies the rules it states
//! (the property lives in `eventdata::fuzzing`, which CI also runs with proptest).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| eventdata::fuzzing::validation(data));
