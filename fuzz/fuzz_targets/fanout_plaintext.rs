#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mimi_onion::fuzzing::fanout_plaintext(data));
