//! The seeds file (`BARONG_SEEDS_FILE`, `barong seed --file`, Barong's `seeds.yml` format).
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/seeds.rs` and the stable replay in
//! `tests/it/fuzz_replay.rs`.

use barong::seed::Seeds;

/// One input: must never panic.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(seeds) = Seeds::parse(text) {
        for (index, level) in seeds.levels.iter().enumerate() {
            assert_eq!(level.id, index as i64 + 1);
        }
    }
}
