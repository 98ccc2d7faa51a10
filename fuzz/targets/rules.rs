//! The authz rules file (`BARONG_AUTHZ_RULES_FILE`, Barong's `authz_rules.yml` format) and the
//! prefix matching on the paths it lists.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/rules.rs` and the stable replay in
//! `tests/it/fuzz_replay.rs`.

use barong::authz::Rules;

/// One input: must never panic.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rules) = Rules::parse(text) {
        for path in rules.pass().chain(rules.block()) {
            let path = path.trim_start_matches('/');
            let _ = rules.is_blocked(path);
            let _ = rules.is_public(path);
        }
        let _ = rules.is_public("api/v2/barong/identity/sessions");
    }
}
