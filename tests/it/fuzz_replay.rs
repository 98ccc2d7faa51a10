//! The cargo-fuzz targets (`fuzz/targets/`) on the stable toolchain, inside `cargo test`: each
//! target replays its committed seed inputs (`fuzz/seeds/<target>/`, a sample of the corpus
//! libFuzzer grew in `fuzz/run.sh` runs) and then a fixed number of inputs mutated from them by
//! a seeded generator. It is the short, deterministic stand-in for the coverage-guided runs,
//! which need the nightly toolchain and a build of their own (see `fuzz/run.sh`).
//!
//! A panic fails the test and leaves the input in `target/fuzz-replay/<target>.input`; copy it
//! into `fuzz/seeds/<target>/` with the fix so it stays a regression input.

#[path = "../../fuzz/targets/authz_request.rs"]
mod authz_request;
#[path = "../../fuzz/targets/jwt.rs"]
mod jwt;
#[path = "../../fuzz/targets/params.rs"]
mod params;
#[path = "../../fuzz/targets/rules.rs"]
mod rules;
#[path = "../../fuzz/targets/seeds.rs"]
mod seeds;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use crate::common::Rng;

/// Mutated inputs per target after the seeds (a few seconds each on a debug build).
const MUTATIONS: usize = 20_000;
/// libFuzzer's `-max_len` in `fuzz/run.sh`.
const MAX_LEN: usize = 4096;

/// Byte strings the parsers give meaning to, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b":",
    b";",
    b",",
    b"=",
    b"&",
    b"%",
    b"%2",
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b"/",
    b"..",
    b"//",
    b"?",
    b"#",
    b"--",
    b"\r\n",
    b"- ",
    b"  ",
    b"\\u0000",
    b"\xff",
    b"\xc3",
    b"api/v2/",
    b"cookie: ",
    b"_barong_session=",
    b"x-original-uri: ",
    b"x-auth-nonce: ",
    b"multipart/form-data; boundary=",
    b"application/json",
    b"eyJ",
    b"9999999999999999999",
];

/// One mutation of `input`, drawing on the other seeds for splices.
fn mutate(rng: &mut Rng, input: &[u8], pool: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            3 if !out.is_empty() => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            4 if !pool.is_empty() => {
                let other = &pool[rng.below(pool.len())];
                let from = rng.below(other.len() + 1);
                let end = (from + rng.below(64)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ => {
                let end = (at + rng.below(32)).min(out.len());
                let chunk = out[at..end].to_vec();
                out.splice(at..at, chunk);
            }
        }
    }
    out.truncate(MAX_LEN);
    out
}

fn seeds_of(target: &str, extra: &[&str]) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("fuzz/seeds").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    files.extend(extra.iter().map(|f| root.join(f)));
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("seed"))
        .collect();
    assert!(!seeds.is_empty(), "no seeds for {target}");
    seeds
}

/// Runs `target` on every seed, then on `MUTATIONS` mutated inputs.
fn replay(name: &str, extra_seeds: &[&str], target: fn(&[u8])) {
    let seeds = seeds_of(name, extra_seeds);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let mutated = (0..MUTATIONS).map(|_| {
        let base = &seeds[rng.below(seeds.len())];
        mutate(&mut rng, base, &seeds)
    });
    let mut runs = 0;
    for input in seeds.clone().into_iter().chain(mutated) {
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-replay");
            std::fs::create_dir_all(&dir).expect("dir");
            let path = dir.join(format!("{name}.input"));
            std::fs::write(&path, &input).expect("write input");
            panic!(
                "{name} panicked on input #{runs}, saved to {}",
                path.display()
            );
        }
        runs += 1;
    }
    eprintln!("{name}: {runs} inputs, no panic");
}

#[test]
fn authz_request_inputs() {
    replay("authz_request", &[], authz_request::run);
}

#[test]
fn params_inputs() {
    replay("params", &[], params::run);
}

#[test]
fn rules_inputs() {
    replay("rules", &["config/authz_rules.yml"], rules::run);
}

#[test]
fn seeds_inputs() {
    replay("seeds", &["config/seeds.yml"], seeds::run);
}

#[test]
fn jwt_inputs() {
    replay("jwt", &[], jwt::run);
}

/// The mutator really mutates, and reproducibly.
#[test]
fn mutations_are_seeded() {
    let pool = vec![b"abc".to_vec(), b"xyz".to_vec()];
    let run = || {
        let mut rng = Rng(7);
        (0..50)
            .map(|_| mutate(&mut rng, b"hello world", &pool))
            .collect::<Vec<_>>()
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    assert!(a.iter().filter(|m| m.as_slice() != b"hello world").count() > 40);
}
