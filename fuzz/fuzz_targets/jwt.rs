//! cargo-fuzz entry point; the target itself is `fuzz/targets/jwt.rs`.
#![no_main]

#[path = "../targets/jwt.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
