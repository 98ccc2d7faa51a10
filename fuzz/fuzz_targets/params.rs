//! cargo-fuzz entry point; the target itself is `fuzz/targets/params.rs`.
#![no_main]

#[path = "../targets/params.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
