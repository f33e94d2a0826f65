#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| picoshare::fuzz_targets::proxy(data));
