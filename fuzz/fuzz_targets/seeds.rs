//! cargo-fuzz entry point; the target itself is `fuzz/targets/seeds.rs`.
#![no_main]

#[path = "../targets/seeds.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
