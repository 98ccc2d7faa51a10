//! The seeds file (`BARONG_SEEDS_FILE`, `barong seed --file`, Barong's `seeds.yml` format).
#![no_main]

use barong::seed::Seeds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(seeds) = Seeds::parse(text) {
        for (index, level) in seeds.levels.iter().enumerate() {
            assert_eq!(level.id, index as i64 + 1);
        }
    }
});
