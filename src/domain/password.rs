//! Password policy: Barong's `BARONG_PASSWORD_*` rules and the entropy estimate of the
//! `strong_password` gem (0.0.9), reproduced number for number.
//!
//! Barong rejects a password with `password.requirements` when it does not match the
//! configured regexp, and with `password.weak` when its entropy is below the configured
//! minimum. The entropy is also what `POST /password/validate` reports, so every quirk of
//! the gem (repeat weakening, bonus bits, keyboard runs, dictionary masking, the dash
//! escaping bug) is kept on purpose.
//!
//! The dictionary (`common_passwords.txt`) is Mark Burnett's "10,000 Top Passwords" list,
//! in the same order and with the same words as the gem's built-in list.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::LazyLock;

use fancy_regex::Regex;

/// Barong's default `BARONG_PASSWORD_REGEXP` (Ruby syntax).
pub const DEFAULT_PASSWORD_REGEXP: &str =
    r"^(?=.*[[:lower:]])(?=.*[[:upper:]])(?=.*[[:digit:]])(?=.*[[:graph:]]).{8,80}$";

/// Barong's default `BARONG_PASSWORD_MIN_ENTROPY`.
pub const DEFAULT_MIN_ENTROPY: f64 = 14.0;

/// Barong's default `BARONG_PASSWORD_USE_DICTIONARY`.
pub const DEFAULT_USE_DICTIONARY: bool = true;

/// The gem only looks at this many leading characters, which bounds the work per password.
const PASSWORD_LIMIT: usize = 1_000;

/// The gem ignores dictionary words shorter than this (its `min_word_length` default).
const MIN_WORD_LENGTH: usize = 4;

/// Why a password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordProblem {
    /// The password does not match the configured regexp.
    Requirements,
    /// The password matches the regexp but its entropy is below the minimum.
    Weak,
}

impl PasswordProblem {
    /// Barong's error key for this problem.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Requirements => "password.requirements",
            Self::Weak => "password.weak",
        }
    }
}

impl fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl std::error::Error for PasswordProblem {}

/// A compiled password policy: regexp, minimum entropy and dictionary switch.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    regexp: Regex,
    min_entropy: f64,
    use_dictionary: bool,
}

impl PasswordPolicy {
    /// Compiles a policy. `regexp` is written in Ruby syntax, as in `BARONG_PASSWORD_REGEXP`:
    /// `^`/`$` are line anchors, POSIX brackets such as `[[:lower:]]` are Unicode-aware and
    /// `\d`, `\w`, `\s`, `\h` are ASCII-only, exactly as Ruby reads them.
    #[allow(
        clippy::result_large_err,
        reason = "built once at start-up; callers want the regex error as is"
    )]
    pub fn new(
        regexp: &str,
        min_entropy: f64,
        use_dictionary: bool,
    ) -> Result<Self, fancy_regex::Error> {
        let regexp = Regex::new(&format!("(?m){}", translate_ruby_regexp(regexp)))?;
        Ok(Self {
            regexp,
            min_entropy,
            use_dictionary,
        })
    }

    /// The policy Barong uses when no `BARONG_PASSWORD_*` variable is set.
    #[expect(
        clippy::expect_used,
        reason = "a constant pattern, compiled by the unit tests"
    )]
    pub fn barong_default() -> Self {
        Self::new(
            DEFAULT_PASSWORD_REGEXP,
            DEFAULT_MIN_ENTROPY,
            DEFAULT_USE_DICTIONARY,
        )
        .expect("the default password regexp compiles")
    }

    /// The minimum entropy a password needs.
    pub fn min_entropy(&self) -> f64 {
        self.min_entropy
    }

    /// Whether the common-password dictionary lowers the entropy.
    pub fn use_dictionary(&self) -> bool {
        self.use_dictionary
    }

    /// Barong's `validate!`: the regexp first, then the entropy.
    pub fn check(&self, password: &str) -> Result<(), PasswordProblem> {
        if !self.meets_requirements(password) {
            Err(PasswordProblem::Requirements)
        } else if self.entropy(password) < self.min_entropy {
            Err(PasswordProblem::Weak)
        } else {
            Ok(())
        }
    }

    /// The gem's `calculate_entropy`: the lowest of the plain, lower-cased, keyboard-run
    /// and (when enabled) dictionary estimates of the first 1000 characters.
    pub fn entropy(&self, password: &str) -> f64 {
        let chars: Vec<char> = password.chars().take(PASSWORD_LIMIT).collect();
        let mut lowest = nist_entropy(&chars)
            .min(nist_entropy(&lowercase(&chars)))
            .min(qwerty_entropy(&chars, self.min_entropy));
        if self.use_dictionary {
            lowest = lowest.min(dictionary_entropy(&chars));
        }
        lowest
    }

    /// Whether the password matches the configured regexp.
    fn meets_requirements(&self, password: &str) -> bool {
        // A match that gives up (backtracking limit) is treated as a failed match: refusing
        // the password is the safe side.
        self.regexp.is_match(password).unwrap_or(false)
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self::barong_default()
    }
}

// ---------------------------------------------------------------------------------------
// Ruby regexp syntax
// ---------------------------------------------------------------------------------------

/// Rewrites the parts of a Ruby regexp whose meaning differs in the `regex` crate.
///
/// The `regex` crate reads `[[:lower:]]` as ASCII-only and `\d` as Unicode, Ruby the other
/// way round, and Ruby's `(?m)` is the crate's `(?s)`. Everything else is copied as is.
fn translate_ruby_regexp(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 32);
    // Nesting depth of bracket expressions: POSIX brackets only exist inside one.
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += copy_escape(&chars[i..], &mut out);
        } else if c == '['
            && depth > 0
            && let Some((len, class)) = posix_bracket(&chars[i..])
        {
            out.push_str(&class);
            i += len;
        } else if c == '[' {
            depth += 1;
            i += open_bracket(&chars[i..], &mut out);
        } else if c == ']' && depth > 0 {
            depth -= 1;
            out.push(']');
            i += 1;
        } else if c == '(' && depth == 0 {
            i += copy_group_open(&chars[i..], &mut out);
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Copies an escape sequence starting at `chars[0] == '\\'`, rewriting Ruby's ASCII-only
/// shorthand classes. Returns how many characters were consumed.
fn copy_escape(chars: &[char], out: &mut String) -> usize {
    let Some(&next) = chars.get(1) else {
        out.push('\\');
        return 1;
    };
    match perl_class(next) {
        Some(class) => out.push_str(class),
        None => {
            out.push('\\');
            out.push(next);
        }
    }
    2
}

/// Copies the opening of a bracket expression. A `^` and then a `]` right after `[` are part
/// of the opening (the `]` is a literal there), so they must not change the depth.
fn open_bracket(chars: &[char], out: &mut String) -> usize {
    out.push('[');
    let mut len = 1;
    if chars.get(len) == Some(&'^') {
        out.push('^');
        len += 1;
    }
    if chars.get(len) == Some(&']') {
        out.push(']');
        len += 1;
    }
    len
}

/// Copies `(`, translating Ruby inline options `(?imx-imx)` / `(?imx-imx:`: Ruby's `m` is
/// "dot matches newline", which the `regex` crate calls `s`.
fn copy_group_open(chars: &[char], out: &mut String) -> usize {
    out.push('(');
    if chars.get(1) != Some(&'?') {
        return 1;
    }
    let flags_len = chars[2..]
        .iter()
        .take_while(|c| matches!(c, 'i' | 'm' | 'x' | '-'))
        .count();
    let closes = matches!(chars.get(2 + flags_len), Some(')' | ':'));
    if flags_len == 0 || !closes {
        return 1;
    }
    out.push('?');
    out.extend(
        chars[2..2 + flags_len]
            .iter()
            .map(|&c| if c == 'm' { 's' } else { c }),
    );
    2 + flags_len
}

/// Ruby's ASCII-only shorthand classes, spelled out for the `regex` crate (whose own are
/// Unicode). Nested brackets work both inside and outside a bracket expression.
fn perl_class(letter: char) -> Option<&'static str> {
    Some(match letter {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        's' => r"[\t\n\x0B\x0C\r\x20]",
        'S' => r"[^\t\n\x0B\x0C\r\x20]",
        'h' => "[0-9A-Fa-f]",
        'H' => "[^0-9A-Fa-f]",
        _ => return None,
    })
}

/// Parses `[:name:]` or `[:^name:]` at the start of `chars` and returns its length and the
/// equivalent nested class, with Onigmo's Unicode definitions (as Ruby 3 applies them).
fn posix_bracket(chars: &[char]) -> Option<(usize, String)> {
    if chars.get(1) != Some(&':') {
        return None;
    }
    let negated = chars.get(2) == Some(&'^');
    let name_start = if negated { 3 } else { 2 };
    let name_len = chars[name_start..]
        .iter()
        .take_while(|c| c.is_ascii_lowercase())
        .count();
    let name_end = name_start + name_len;
    if chars.get(name_end) != Some(&':') || chars.get(name_end + 1) != Some(&']') {
        return None;
    }
    let name: String = chars[name_start..name_end].iter().collect();
    let (items, complemented) = posix_items(&name)?;
    // `complemented` classes are defined as "everything except items".
    let open = if negated != complemented { "[^" } else { "[" };
    Some((name_end + 2, format!("{open}{items}]")))
}

/// The members of a POSIX bracket class, and whether the class is their complement.
fn posix_items(name: &str) -> Option<(&'static str, bool)> {
    // Excluded from [[:graph:]]: white space, controls and unassigned points (Ruby also
    // excludes surrogates, which a Rust string cannot hold).
    const NOT_GRAPH: &str = r"\p{White_Space}\p{Cc}\p{Cn}";
    // [[:print:]] is [[:graph:]] plus space separators.
    const NOT_PRINT: &str = r"[\p{White_Space}--\p{Zs}]\p{Cc}\p{Cn}";
    Some(match name {
        "alnum" => (r"\p{Alphabetic}\p{Nd}", false),
        "alpha" => (r"\p{Alphabetic}", false),
        "ascii" => (r"\x00-\x7F", false),
        "blank" => (r"\p{Zs}\t", false),
        "cntrl" => (r"\p{Cc}", false),
        "digit" => (r"\p{Nd}", false),
        "graph" => (NOT_GRAPH, true),
        "lower" => (r"\p{Lowercase}", false),
        "print" => (NOT_PRINT, true),
        "punct" => (r"\p{P}\x24\x2B\x3C\x3D\x3E\x5E\x60\x7C\x7E", false),
        "space" => (r"\p{White_Space}", false),
        "upper" => (r"\p{Uppercase}", false),
        "xdigit" => ("0-9A-Fa-f", false),
        "word" => (r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}", false),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// NIST entropy with repeats weakened
// ---------------------------------------------------------------------------------------

/// Each further use of the same character is worth this much of the previous use.
const REPEAT_WEAKENING: f64 = 0.75;

/// NIST entropy where every repeat of a character counts for less, plus the bonus bits.
fn nist_entropy(chars: &[char]) -> f64 {
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
fn position_bits(index: usize, weight: f64) -> f64 {
    match index {
        0 => 4.0,
        1..=7 => weight * 2.0,
        8..=19 => weight * 1.5,
        _ => weight,
    }
}

/// NIST bonus bits for mixed character classes, minus 2 without a space, plus 1 for a
/// passphrase of more than three words.
fn bonus_bits(chars: &[char]) -> i32 {
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
fn is_decimal_digit(c: char) -> bool {
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
fn is_ruby_space(c: &char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// `chars.split(/\s+/).length` in Ruby: runs of white space separate fields, a leading
/// empty field is kept, trailing empty fields are dropped.
fn ruby_word_count(chars: &[char]) -> usize {
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
fn lowercase(chars: &[char]) -> Vec<char> {
    chars.iter().flat_map(|c| c.to_lowercase()).collect()
}

/// The characters in reverse order (Ruby's `String#reverse`).
fn reversed(chars: &[char]) -> Vec<char> {
    chars.iter().rev().copied().collect()
}

// ---------------------------------------------------------------------------------------
// Keyboard runs
// ---------------------------------------------------------------------------------------

/// Keyboard rows, columns and diagonals, and the alphabet, in the gem's order.
const QWERTY_STRINGS: [&str; 14] = [
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
static QWERTY_RUNS: LazyLock<HashMap<char, Vec<Vec<char>>>> = LazyLock::new(|| {
    let mut buckets: HashMap<char, Vec<Vec<char>>> = HashMap::new();
    for run in QWERTY_STRINGS.iter().flat_map(|s| qwerty_runs_of(s)) {
        if let Some(&first) = run.first() {
            buckets.entry(first).or_default().push(run);
        }
    }
    buckets
});

/// The runs of one keyboard string: longest first, then by start offset.
fn qwerty_runs_of(source: &str) -> Vec<Vec<char>> {
    let chars: Vec<char> = source.chars().collect();
    (3..=6)
        .rev()
        .flat_map(|len| chars.windows(len).map(with_dash_quirk))
        .collect()
}

/// The gem "escapes" the first `-` of a run as `\-` and then escapes that again, so the run
/// only matches a literal backslash followed by a dash. Kept for identical results.
fn with_dash_quirk(run: &[char]) -> Vec<char> {
    let mut out = run.to_vec();
    if let Some(dash) = out.iter().position(|&c| c == '-') {
        out.insert(dash, '\\');
    }
    out
}

/// Replaces every keyboard run (leftmost first, non-overlapping) by `*`.
fn mask_qwerty_runs(chars: &[char]) -> Vec<char> {
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
fn qwerty_entropy(chars: &[char], threshold: f64) -> f64 {
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
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Common passwords of at least [`MIN_WORD_LENGTH`] characters, looked up by slice.
struct Dictionary {
    words: HashSet<Vec<char>>,
    longest: usize,
}

static DICTIONARY: LazyLock<Dictionary> = LazyLock::new(|| {
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
    fn mask_first_word(&self, chars: &[char]) -> Vec<char> {
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
fn dictionary_entropy(chars: &[char]) -> f64 {
    let base = lowercase(chars);
    dictionary_variants(&base)
        .iter()
        .map(|variant| nist_entropy(&DICTIONARY.mask_first_word(variant)))
        .fold(nist_entropy(&base), f64::min)
}

/// Leet-speak substitutions (`p@55w0rd` is `password`).
const LEET: &[(char, char)] = &[
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
const LEET_ALT: &[(char, char)] = &[
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
const LEET_TRIGGERS: &[char] = &[
    '@', '!', '$', '1', '2', '3', '4', '5', '6', '7', '8', '9', '0',
];

/// Each key mapped to the key below and to the right (typing one row too high).
const DOWN_RIGHT: &[(char, char)] = &[
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
const DOWN_LEFT: &[(char, char)] = &[
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
const BOTTOM_ROW: &[char] = &[
    'z', 'x', 'c', 'v', 'b', 'n', 'm', ',', '.', '/', '<', '>', '?',
];

/// The lower-cased password and its variants, without duplicates, in the gem's order.
fn dictionary_variants(base: &[char]) -> Vec<Vec<char>> {
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
fn translate(chars: &[char], map: &[(char, char)]) -> Vec<char> {
    chars
        .iter()
        .map(|&c| {
            map.iter()
                .find(|&&(from, _)| from == c)
                .map_or(c, |&(_, to)| to)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy::barong_default()
    }

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn string(chars: &[char]) -> String {
        chars.iter().collect()
    }

    #[test]
    fn spec_weak_passwords() {
        for pw in ["Password1", "Password1123", "Qq123123", "QqQq123123"] {
            assert_eq!(policy().check(pw), Err(PasswordProblem::Weak), "{pw}");
        }
    }

    #[test]
    fn spec_passwords_failing_requirements() {
        for pw in ["password", "password1", "X2qL32", "eoV0qu", "Simple"] {
            assert_eq!(
                policy().check(pw),
                Err(PasswordProblem::Requirements),
                "{pw}"
            );
        }
    }

    #[test]
    fn spec_strong_passwords() {
        for pw in [
            "Iequ4geiEWQw",
            "Xwqe213PZCXwe",
            "Kal31ewwqXrew",
            "Tecohvi0",
            "Gol4aid1",
            "ZahSh8ei",
            "eeC2BiCucxWEQ",
            "Fai5aesoLEcx",
        ] {
            assert_eq!(policy().check(pw), Ok(()), "{pw}");
        }
    }

    #[test]
    fn entropies_match_the_gem() {
        // Values printed by strong_password 0.0.9 (min_entropy 14, use_dictionary true).
        let expected = [
            ("Password1", 2.0),
            ("Password1123", 6.0),
            ("Qq123123", 5.5),
            ("QqQq123123", 10.5),
            ("password", 2.0),
            ("X2qL32", 11.5),
            ("Simple", 2.0),
            ("Iequ4geiEWQw", 19.59375),
            ("Xwqe213PZCXwe", 21.21875),
            ("Kal31ewwqXrew", 20.59375),
            ("Tecohvi0", 15.5),
            ("Gol4aid1", 15.0),
            ("ZahSh8ei", 15.5),
            ("eeC2BiCucxWEQ", 21.1875),
            ("Fai5aesoLEcx", 17.0),
        ];
        for (pw, entropy) in expected {
            assert_eq!(policy().entropy(pw), entropy, "{pw}");
        }
    }

    #[test]
    fn nist_entropy_of_the_worked_example() {
        // 4+2+2+1.5+2+2+2+2+1.5 = 19, no space so the bonus is -2.
        assert_eq!(nist_entropy(&chars("Password1")), 17.0);
    }

    #[test]
    fn repeats_are_weakened() {
        // 4 + 2*0.75 + 2*0.5625, and -2 for having no space.
        assert_eq!(nist_entropy(&chars("aaa")), 4.0 + 1.5 + 1.125 - 2.0);
    }

    #[test]
    fn position_values() {
        assert_eq!(position_bits(0, 0.5), 4.0);
        assert_eq!(position_bits(7, 1.0), 2.0);
        assert_eq!(position_bits(8, 1.0), 1.5);
        assert_eq!(position_bits(19, 1.0), 1.5);
        assert_eq!(position_bits(20, 1.0), 1.0);
    }

    #[test]
    fn bonus_bits_cases() {
        assert_eq!(bonus_bits(&chars("Ab1!")), 4);
        assert_eq!(bonus_bits(&chars("Ab!")), 3);
        assert_eq!(bonus_bits(&chars("12!")), -4);
        assert_eq!(bonus_bits(&chars("1234")), -8);
        assert_eq!(bonus_bits(&chars("ab cd")), 0);
        assert_eq!(bonus_bits(&chars("ab cd ef gh")), 1);
        // Ruby's split keeps a leading empty field.
        assert_eq!(bonus_bits(&chars(" ab cd ef")), 1);
        assert_eq!(bonus_bits(&chars("ab cd ef  ")), 0);
    }

    #[test]
    fn ruby_split_word_count() {
        assert_eq!(ruby_word_count(&chars("a b")), 2);
        assert_eq!(ruby_word_count(&chars(" a b c")), 4);
        assert_eq!(ruby_word_count(&chars("a\x0Bb")), 2);
        assert_eq!(ruby_word_count(&chars("   ")), 0);
    }

    #[test]
    fn keyboard_runs_are_masked_leftmost_longest_source_first() {
        assert_eq!(string(&mask_qwerty_runs(&chars("xqwertyx"))), "x*x");
        assert_eq!(string(&mask_qwerty_runs(&chars("1234567"))), "*7");
        assert_eq!(string(&mask_qwerty_runs(&chars("asdQWE"))), "*QWE");
        assert_eq!(string(&mask_qwerty_runs(&chars("Hello"))), "Hello");
    }

    #[test]
    fn runs_with_a_dash_match_only_backslash_dash() {
        // The gem's double escaping: "890-" is never found, "890\-" is.
        assert_eq!(string(&mask_qwerty_runs(&chars("ab890-cd"))), "ab*-cd");
        assert_eq!(string(&mask_qwerty_runs(&chars("ab890\\-cd"))), "ab*cd");
        assert_eq!(string(&mask_qwerty_runs(&chars("x-['=]:"))), "x-*");
    }

    #[test]
    fn qwerty_entropy_stops_below_threshold() {
        let pw = chars("Qwerty12!");
        let plain = nist_entropy(&pw).min(nist_entropy(&reversed(&pw)));
        // Already below the threshold: the keyboard runs are not even looked at...
        assert_eq!(qwerty_entropy(&pw, plain + 1.0), plain);
        // ...otherwise the masked password counts.
        assert!(qwerty_entropy(&pw, plain) < plain);
    }

    #[test]
    fn dictionary_masks_the_longest_word_at_the_leftmost_position() {
        let dict = &*DICTIONARY;
        assert_eq!(string(&dict.mask_first_word(&chars("xpassword1y"))), "x*y");
        assert_eq!(string(&dict.mask_first_word(&chars("zzmonkeyzz"))), "zz*zz");
        assert_eq!(
            string(&dict.mask_first_word(&chars("tecohvi0"))),
            "tecohvi0"
        );
    }

    #[test]
    fn dictionary_skips_short_words() {
        assert!(DICTIONARY.words.iter().all(|w| w.len() >= MIN_WORD_LENGTH));
        assert!(DICTIONARY.words.contains(&chars("letmein")));
    }

    #[test]
    fn variants_follow_the_gem() {
        let base = chars("p@ss");
        let variants: Vec<String> = dictionary_variants(&base)
            .iter()
            .map(|v| string(v))
            .collect();
        assert_eq!(
            variants,
            ["p@ss", "p@xx", "xx@p", "l@zz", "zz@l", "pass", "ssap"]
        );
        // Bottom-row keys disable the keyboard-shift variants, no trigger no leet.
        let variants = dictionary_variants(&chars("zebra"));
        assert_eq!(variants, [chars("zebra")]);
    }

    #[test]
    fn dictionary_catches_leet_and_shifted_words() {
        let with = PasswordPolicy::new(DEFAULT_PASSWORD_REGEXP, 14.0, true).unwrap();
        let without = PasswordPolicy::new(DEFAULT_PASSWORD_REGEXP, 14.0, false).unwrap();
        // "m0nk3y" is "monkey" in leet speak.
        let pw = "Xm0nk3yQ#9z";
        assert!(with.entropy(pw) < without.entropy(pw));
    }

    #[test]
    fn use_dictionary_false_ignores_common_words() {
        let without = PasswordPolicy::new(DEFAULT_PASSWORD_REGEXP, 14.0, false).unwrap();
        assert_eq!(without.entropy("Password1"), 17.0);
        assert_eq!(without.check("Password1"), Ok(()));
        assert_eq!(policy().check("Password1"), Err(PasswordProblem::Weak));
    }

    #[test]
    fn entropy_looks_at_the_first_thousand_characters() {
        let prefix: String = (0..PASSWORD_LIMIT)
            .map(|i| char::from_u32(0x4E00 + i as u32).unwrap_or('x'))
            .collect();
        let longer = format!("{prefix}Z9!");
        assert_eq!(policy().entropy(&longer), policy().entropy(&prefix));
        let shorter: String = prefix.chars().take(PASSWORD_LIMIT - 1).collect();
        assert_ne!(policy().entropy(&shorter), policy().entropy(&prefix));
    }

    #[test]
    fn empty_password() {
        // The gem gives -2 (no characters, minus 2 bonus bits for having no space).
        assert_eq!(policy().entropy(""), -2.0);
        assert_eq!(policy().check(""), Err(PasswordProblem::Requirements));
    }

    #[test]
    fn problem_keys() {
        assert_eq!(PasswordProblem::Requirements.key(), "password.requirements");
        assert_eq!(PasswordProblem::Weak.key(), "password.weak");
        assert_eq!(PasswordProblem::Weak.to_string(), "password.weak");
    }

    #[test]
    fn regexp_uses_line_anchors_like_ruby() {
        // Ruby's ^ and $ match at line boundaries, so one good line is enough.
        assert_eq!(policy().check("x\nTecohvi0\ny"), Ok(()));
        let too_long = format!("Tecohvi0{}", "x".repeat(80));
        assert_eq!(
            policy().check(&too_long),
            Err(PasswordProblem::Requirements)
        );
    }

    #[test]
    fn posix_brackets_are_unicode_aware() {
        // Cyrillic only: Ruby's [[:lower:]] and [[:upper:]] accept it.
        assert!(policy().meets_requirements("Пароль12слово"));
        let re = |p: &str| PasswordPolicy::new(p, 0.0, false).unwrap();
        assert!(re("[[:lower:]]").meets_requirements("ª"));
        assert!(re("[[:upper:]]").meets_requirements("Ⓐ"));
        assert!(re("[[:digit:]]").meets_requirements("٣"));
        assert!(!re("[[:digit:]]").meets_requirements("²"));
        assert!(re("[[:graph:]]").meets_requirements("\u{200B}"));
        assert!(!re("[[:graph:]]").meets_requirements("\u{A0}"));
        assert!(re("[[:print:]]").meets_requirements("\u{A0}"));
        assert!(!re("[[:print:]]").meets_requirements("\u{2028}"));
        assert!(re("[[:punct:]]").meets_requirements("$"));
        assert!(re("[[:^alpha:]]").meets_requirements("1"));
        assert!(!re("[[:^alpha:]]").meets_requirements("é"));
        assert!(re("[x[:word:]]").meets_requirements("\u{301}"));
    }

    #[test]
    fn perl_shorthands_are_ascii_like_ruby() {
        let re = |p: &str| PasswordPolicy::new(p, 0.0, false).unwrap();
        assert!(re(r"\d").meets_requirements("5"));
        assert!(!re(r"\d").meets_requirements("٣"));
        assert!(!re(r"\w").meets_requirements("é"));
        assert!(re(r"[\s]").meets_requirements("\x0B"));
        assert!(re(r"^\S+$").meets_requirements("\u{A0}"));
        assert!(re(r"\h").meets_requirements("f"));
        assert!(re(r"[\]]").meets_requirements("]"));
    }

    #[test]
    fn ruby_m_option_is_dot_all() {
        let re = PasswordPolicy::new("(?m:a.b)", 0.0, false).unwrap();
        assert!(re.meets_requirements("a\nb"));
        let re = PasswordPolicy::new("a.b", 0.0, false).unwrap();
        assert!(!re.meets_requirements("a\nb"));
    }

    #[test]
    fn translation_keeps_other_syntax() {
        assert_eq!(translate_ruby_regexp(r"[]a]\.(?<n>x)"), r"[]a]\.(?<n>x)");
        assert_eq!(translate_ruby_regexp("[^]:]"), "[^]:]");
        assert_eq!(translate_ruby_regexp("[:lower:]"), "[:lower:]");
        assert_eq!(translate_ruby_regexp("(?i-m)"), "(?i-s)");
    }

    #[test]
    fn invalid_regexp_is_an_error() {
        assert!(PasswordPolicy::new("(", 14.0, true).is_err());
    }
}
