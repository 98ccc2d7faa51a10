//! The entropy estimate of the `strong_password` gem (0.0.9), number for number: NIST
//! entropy with repeats weakened, bonus bits, keyboard runs and the dictionary.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use fancy_regex::Regex;

/// The gem ignores dictionary words shorter than this (its `min_word_length` default).
pub(super) const MIN_WORD_LENGTH: usize = 4;

// ---------------------------------------------------------------------------------------
// NIST entropy with repeats weakened
// ---------------------------------------------------------------------------------------

/// Each further use of the same character is worth this much of the previous use.
pub(super) const REPEAT_WEAKENING: f64 = 0.75;

/// NIST entropy where every repeat of a character counts for less, plus the bonus bits.
pub(super) fn nist_entropy(chars: &[char]) -> f64 {
    let mut weights: HashMap<char, f64> = HashMap::new();
    let mut bits = 0.0;
    for (index, &c) in chars.iter().enumerate() {
        let weight = weights.entry(c).or_insert(1.0);
        bits += position_bits(index, *weight);
        *weight *= REPEAT_WEAKENING;
    }
    bits + f64::from(bonus_bits(chars))
}

/// What the character at `index` is worth: early characters count more, and the first
/// counts 4 whatever its weight (the gem ignores the weight there).
pub(super) fn position_bits(index: usize, weight: f64) -> f64 {
    match index {
        0 => 4.0,
        1..=7 => weight * 2.0,
        8..=19 => weight * 1.5,
        _ => weight,
    }
}

/// NIST bonus bits for mixed character classes, minus 2 without a space, plus 1 for a
/// passphrase of more than three words.
pub(super) fn bonus_bits(chars: &[char]) -> i32 {
    let upper = chars.iter().any(|c| c.is_uppercase());
    let lower = chars.iter().any(|c| c.is_lowercase());
    let numeric = chars.iter().any(|&c| is_decimal_digit(c));
    let other = chars
        .iter()
        .any(|&c| !(c.is_ascii_alphanumeric() || c == ' '));
    let space = chars.contains(&' ');

    let mut bonus = match (upper, lower, other, numeric) {
        (true, true, true, true) => 6,
        (true, true, true, false) => 5,
        (false, false, true, true) => -2,
        (false, false, false, true) => -6,
        _ => 0,
    };
    if !space {
        bonus -= 2;
    } else if ruby_word_count(chars) > 3 {
        bonus += 1;
    }
    bonus
}

/// Ruby's `[[:digit:]]`: any Unicode decimal digit (general category Nd).
pub(super) fn is_decimal_digit(c: char) -> bool {
    #[expect(clippy::expect_used, reason = "a constant pattern")]
    static DECIMAL_DIGIT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\p{Nd}").expect("\\p{Nd} compiles"));
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    let mut buf = [0u8; 4];
    DECIMAL_DIGIT
        .is_match(c.encode_utf8(&mut buf))
        .unwrap_or(false)
}

/// Ruby's `\s`: ASCII white space, vertical tab included.
pub(super) fn is_ruby_space(c: &char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// `chars.split(/\s+/).length` in Ruby: runs of white space separate fields, a leading
/// empty field is kept, trailing empty fields are dropped.
pub(super) fn ruby_word_count(chars: &[char]) -> usize {
    let words = chars
        .split(is_ruby_space)
        .filter(|field| !field.is_empty())
        .count();
    let leading_empty = chars.first().is_some_and(is_ruby_space);
    if words > 0 && leading_empty {
        words + 1
    } else {
        words
    }
}

/// Ruby's `String#downcase`: full Unicode lower-casing, character by character (Ruby has no
/// context-dependent final sigma).
pub(super) fn lowercase(chars: &[char]) -> Vec<char> {
    chars.iter().flat_map(|c| c.to_lowercase()).collect()
}

/// The characters in reverse order (Ruby's `String#reverse`).
pub(super) fn reversed(chars: &[char]) -> Vec<char> {
    chars.iter().rev().copied().collect()
}

// ---------------------------------------------------------------------------------------
// Keyboard runs
// ---------------------------------------------------------------------------------------

/// Keyboard rows, columns and diagonals, and the alphabet, in the gem's order.
pub(super) const QWERTY_STRINGS: [&str; 14] = [
    "1234567890-",
    "qwertyuiop",
    "asdfghjkl;",
    "zxcvbnm,./",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/-['=]:?_{\"+}",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmik,ol.p;/-['=]:?_{\"+}",
    "qazwsxedcrfvtgbyhnujmikolp",
    "]\"/=[;.-pl,0okm9ijn8uhb7ygv6tfc5rdx4esz3wa2q1",
    "pl0okm9ijn8uhb7ygv6tfc5rdx4esz3wa2q1",
    "]\"/[;.pl,okmijnuhbygvtfcrdxeszwaq",
    "plokmijnuhbygvtfcrdxeszwaq",
    "014725836914702583697894561230258/369*+-*/",
    "abcdefghijklmnopqrstuvwxyz",
];

/// All runs of 6, 5, 4 and 3 characters, bucketed by first character. Within a bucket the
/// order is the gem's alternation order, so the first run that matches is the one the gem's
/// regexp picks.
pub(super) static QWERTY_RUNS: LazyLock<HashMap<char, Vec<Vec<char>>>> = LazyLock::new(|| {
    let mut buckets: HashMap<char, Vec<Vec<char>>> = HashMap::new();
    for run in QWERTY_STRINGS.iter().flat_map(|s| qwerty_runs_of(s)) {
        if let Some(&first) = run.first() {
            buckets.entry(first).or_default().push(run);
        }
    }
    buckets
});

/// The runs of one keyboard string: longest first, then by start offset.
pub(super) fn qwerty_runs_of(source: &str) -> Vec<Vec<char>> {
    let chars: Vec<char> = source.chars().collect();
    (3..=6)
        .rev()
        .flat_map(|len| chars.windows(len).map(with_dash_quirk))
        .collect()
}

/// The gem "escapes" the first `-` of a run as `\-` and then escapes that again, so the run
/// only matches a literal backslash followed by a dash. Kept for identical results.
pub(super) fn with_dash_quirk(run: &[char]) -> Vec<char> {
    let mut out = run.to_vec();
    if let Some(dash) = out.iter().position(|&c| c == '-') {
        out.insert(dash, '\\');
    }
    out
}

/// Replaces every keyboard run (leftmost first, non-overlapping) by `*`.
pub(super) fn mask_qwerty_runs(chars: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let matched = QWERTY_RUNS
            .get(&chars[i])
            .and_then(|runs| runs.iter().find(|run| rest.starts_with(run)));
        match matched {
            Some(run) => {
                out.push('*');
                i += run.len();
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// The gem's keyboard-locality estimate. It stops as soon as the estimate is below
/// `threshold`, which changes the number it reports, so the early exits are kept.
pub(super) fn qwerty_entropy(chars: &[char], threshold: f64) -> f64 {
    let reverse = reversed(chars);
    let mut lowest = nist_entropy(chars).min(nist_entropy(&reverse));
    for candidate in [chars, reverse.as_slice()] {
        if lowest < threshold {
            return lowest;
        }
        let masked = mask_qwerty_runs(candidate);
        if masked != candidate {
            lowest = lowest.min(nist_entropy(&masked));
        }
    }
    lowest
}

// ---------------------------------------------------------------------------------------
// Dictionary
// ---------------------------------------------------------------------------------------

/// The common passwords the gem knows, one per line.
pub(super) const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Common passwords of at least [`MIN_WORD_LENGTH`] characters, looked up by slice.
pub(super) struct Dictionary {
    pub(super) words: HashSet<Vec<char>>,
    longest: usize,
}

pub(super) static DICTIONARY: LazyLock<Dictionary> = LazyLock::new(|| {
    let words: HashSet<Vec<char>> = COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .map(|word| word.chars().collect::<Vec<char>>())
        .filter(|word| word.len() >= MIN_WORD_LENGTH)
        .collect();
    let longest = words.iter().map(Vec::len).max().unwrap_or(0);
    Dictionary { words, longest }
});

impl Dictionary {
    /// Replaces the first dictionary word by `*`: the leftmost position wins, and there the
    /// longest word (the gem sorts its alternation longest first).
    pub(super) fn mask_first_word(&self, chars: &[char]) -> Vec<char> {
        for start in 0..chars.len() {
            let longest = self.longest.min(chars.len() - start);
            let found = (MIN_WORD_LENGTH..=longest)
                .rev()
                .find(|&len| self.words.contains(&chars[start..start + len]));
            if let Some(len) = found {
                let mut out = chars[..start].to_vec();
                out.push('*');
                out.extend_from_slice(&chars[start + len..]);
                return out;
            }
        }
        chars.to_vec()
    }
}

/// The gem's dictionary estimate: the lower-cased password and its keyboard-shifted and
/// leet-speak variants, each with its first common word masked.
pub(super) fn dictionary_entropy(chars: &[char]) -> f64 {
    let base = lowercase(chars);
    dictionary_variants(&base)
        .iter()
        .map(|variant| nist_entropy(&DICTIONARY.mask_first_word(variant)))
        .fold(nist_entropy(&base), f64::min)
}

/// Leet-speak substitutions (`p@55w0rd` is `password`).
pub(super) const LEET: &[(char, char)] = &[
    ('@', 'a'),
    ('!', 'i'),
    ('$', 's'),
    ('1', 'i'),
    ('2', 'z'),
    ('3', 'e'),
    ('4', 'a'),
    ('5', 's'),
    ('6', 'g'),
    ('7', 't'),
    ('8', 'b'),
    ('9', 'g'),
    ('0', 'o'),
];

/// Leet-speak with `1` read as `l` instead of `i`.
pub(super) const LEET_ALT: &[(char, char)] = &[
    ('@', 'a'),
    ('!', 'i'),
    ('$', 's'),
    ('1', 'l'),
    ('2', 'z'),
    ('3', 'e'),
    ('4', 'a'),
    ('5', 's'),
    ('6', 'g'),
    ('7', 't'),
    ('8', 'b'),
    ('9', 'g'),
    ('0', 'o'),
];

/// Characters that trigger the leet-speak variants.
pub(super) const LEET_TRIGGERS: &[char] = &[
    '@', '!', '$', '1', '2', '3', '4', '5', '6', '7', '8', '9', '0',
];

/// Each key mapped to the key below and to the right (typing one row too high).
pub(super) const DOWN_RIGHT: &[(char, char)] = &[
    ('a', 'z'),
    ('q', 'a'),
    ('1', 'q'),
    ('s', 'x'),
    ('w', 's'),
    ('2', 'w'),
    ('d', 'c'),
    ('e', 'd'),
    ('3', 'e'),
    ('f', 'v'),
    ('r', 'f'),
    ('4', 'r'),
    ('g', 'b'),
    ('t', 'g'),
    ('5', 't'),
    ('h', 'n'),
    ('y', 'h'),
    ('6', 'y'),
    ('j', 'm'),
    ('u', 'j'),
    ('7', 'u'),
    ('i', 'k'),
    ('8', 'i'),
    ('o', 'l'),
    ('9', 'o'),
    ('0', 'p'),
];

/// Each key mapped to the key below and to the left.
pub(super) const DOWN_LEFT: &[(char, char)] = &[
    ('2', 'q'),
    ('w', 'a'),
    ('3', 'w'),
    ('s', 'z'),
    ('e', 's'),
    ('4', 'e'),
    ('d', 'x'),
    ('r', 'd'),
    ('5', 'r'),
    ('f', 'c'),
    ('t', 'f'),
    ('6', 't'),
    ('g', 'v'),
    ('y', 'g'),
    ('7', 'y'),
    ('h', 'b'),
    ('u', 'h'),
    ('8', 'u'),
    ('j', 'n'),
    ('i', 'j'),
    ('9', 'i'),
    ('k', 'm'),
    ('o', 'k'),
    ('0', 'o'),
    ('p', 'l'),
    ('-', 'p'),
];

/// Keys of the bottom row: a password using them was not typed one row too high, so the
/// gem skips the keyboard-shift variants.
pub(super) const BOTTOM_ROW: &[char] = &[
    'z', 'x', 'c', 'v', 'b', 'n', 'm', ',', '.', '/', '<', '>', '?',
];

/// The lower-cased password and its variants, without duplicates, in the gem's order.
pub(super) fn dictionary_variants(base: &[char]) -> Vec<Vec<char>> {
    let mut maps: Vec<&[(char, char)]> = Vec::new();
    if !base.iter().any(|c| BOTTOM_ROW.contains(c)) {
        maps.extend([DOWN_RIGHT, DOWN_LEFT]);
    }
    if base.iter().any(|c| LEET_TRIGGERS.contains(c)) {
        maps.extend([LEET, LEET_ALT]);
    }

    let mut variants = vec![base.to_vec()];
    for map in maps {
        let variant = translate(base, map);
        let reverse = reversed(&variant);
        for candidate in [variant, reverse] {
            if !variants.contains(&candidate) {
                variants.push(candidate);
            }
        }
    }
    variants
}

/// Ruby's `String#tr` with a plain one-to-one map.
pub(super) fn translate(chars: &[char], map: &[(char, char)]) -> Vec<char> {
    chars
        .iter()
        .map(|&c| {
            map.iter()
                .find(|&&(from, _)| from == c)
                .map_or(c, |&(_, to)| to)
        })
        .collect()
}
