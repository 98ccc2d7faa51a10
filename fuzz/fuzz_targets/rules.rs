//! cargo-fuzz entry point; the target itself is `fuzz/targets/rules.rs`.
#![no_main]

#[path = "../targets/rules.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
