//! cargo-fuzz entry point; the target itself is `fuzz/targets/authz_request.rs`.
#![no_main]

#[path = "../targets/authz_request.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
