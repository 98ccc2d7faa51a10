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

use std::fmt;

use fancy_regex::Regex;

mod entropy;
mod ruby_regexp;

use entropy::{dictionary_entropy, lowercase, nist_entropy, qwerty_entropy};
use ruby_regexp::translate_ruby_regexp;

/// Barong's default `BARONG_PASSWORD_REGEXP` (Ruby syntax).
pub const DEFAULT_PASSWORD_REGEXP: &str =
    r"^(?=.*[[:lower:]])(?=.*[[:upper:]])(?=.*[[:digit:]])(?=.*[[:graph:]]).{8,80}$";

/// Barong's default `BARONG_PASSWORD_MIN_ENTROPY`.
pub const DEFAULT_MIN_ENTROPY: f64 = 14.0;

/// Barong's default `BARONG_PASSWORD_USE_DICTIONARY`.
pub const DEFAULT_USE_DICTIONARY: bool = true;

/// The gem only looks at this many leading characters, which bounds the work per password.
const PASSWORD_LIMIT: usize = 1_000;

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

#[cfg(test)]
mod tests {
    use super::entropy::*;
    use super::ruby_regexp::*;
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
