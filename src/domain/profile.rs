//! KYC profiles: states, the model validations with Barong's keys, and the masking of
//! personal data in user-facing entities.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use regex::Regex;

/// Barong's profile states, stored as its enum integers (drafted 0, submitted 1, verified 3,
/// rejected 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileState {
    Drafted,
    Submitted,
    Verified,
    Rejected,
}

impl ProfileState {
    /// Every state, in Barong's enum order.
    pub const ALL: [ProfileState; 4] = [
        ProfileState::Drafted,
        ProfileState::Submitted,
        ProfileState::Verified,
        ProfileState::Rejected,
    ];

    /// The wire name (also the value of the private `profile` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drafted => "drafted",
            Self::Submitted => "submitted",
            Self::Verified => "verified",
            Self::Rejected => "rejected",
        }
    }

    /// The stored integer (Barong's `enum state`).
    pub fn code(self) -> i16 {
        match self {
            Self::Drafted => 0,
            Self::Submitted => 1,
            Self::Verified => 3,
            Self::Rejected => 4,
        }
    }

    /// The state of a stored integer; `None` for anything Barong does not define.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| i64::from(s.code()) == code)
    }

    /// The state of a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Drafted and submitted profiles are still in progress: a user may have one at a time.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Drafted | Self::Submitted)
    }
}

/// The personal fields of a profile, in clear. `None` means "not given" (create) or
/// "unchanged" (update).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProfileData {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<NaiveDate>,
    pub address: Option<String>,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    /// JSON text (an object), stored as given.
    pub metadata: Option<String>,
}

/// Personal data stays out of logs, even debug ones.
impl std::fmt::Debug for ProfileData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProfileData([redacted])")
    }
}

/// A stored profile, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: i64,
    pub user_id: i64,
    /// Uid of the admin who created it (admin API), if any.
    pub author: Option<String>,
    /// The KYC provider's applicant id, once the applicant exists.
    pub applicant_id: Option<String>,
    pub data: ProfileData,
    pub state: ProfileState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to create a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProfile {
    pub data: ProfileData,
    pub state: ProfileState,
    pub author: Option<String>,
    pub applicant_id: Option<String>,
}

/// A change to a profile: fields given in `data` are replaced, the others kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub data: ProfileData,
    pub state: Option<ProfileState>,
    pub applicant_id: Option<String>,
    /// Apply the change only while the profile is in this state (so two requests cannot both
    /// edit a drafted profile, or both decide on a submitted one).
    pub only_in_state: Option<ProfileState>,
}

/// Barong's `squish`: runs of whitespace become one space, ends trimmed.
pub fn squish(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

// The four patterns are constants, compiled by the unit tests.
#[expect(clippy::expect_used, reason = "a constant pattern")]
static NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\w\s\-']+$").expect("static regex"));
#[expect(clippy::expect_used, reason = "a constant pattern")]
static CITY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\w\s\-'–.~]+$").expect("static regex"));
#[expect(clippy::expect_used, reason = "a constant pattern")]
static POSTCODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\w\s\-]+$").expect("static regex"));
#[expect(clippy::expect_used, reason = "a constant pattern")]
static ADDRESS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^[\w\s\-–,.~;/:\#"\\&'()]+$"#).expect("static regex"));

/// ISO 3166-1 alpha-2 and alpha-3 codes (249 countries, from Debian's iso-codes).
const ALPHA2: &str = include_str!("countries_alpha2.txt");
const ALPHA3: &str = include_str!("countries_alpha3.txt");

/// Whether `code` is an ISO 3166-1 alpha-2 or alpha-3 code (any case, as the countries gem).
pub fn country_is_valid(code: &str) -> bool {
    let upper = code.trim().to_ascii_uppercase();
    let list = match upper.len() {
        2 => ALPHA2,
        3 => ALPHA3,
        _ => return false,
    };
    list.split_whitespace().any(|c| c == upper)
}

fn check_text(
    attr: &str,
    value: Option<&str>,
    min: usize,
    pattern: &Regex,
    errors: &mut Vec<String>,
) {
    let Some(text) = value.filter(|t| !t.trim().is_empty()) else {
        return;
    };
    let n = text.chars().count();
    if n < min {
        errors.push(format!("{attr}.too_short"));
    }
    if n > 255 {
        errors.push(format!("{attr}.too_long"));
    }
    if !pattern.is_match(text) {
        errors.push(format!("{attr}.invalid"));
    }
}

/// Barong's Profile validations in its order. Only present fields are checked;
/// `open_profile_exists` adds `state.exists` (a create while a drafted or submitted profile
/// exists), `today` bounds `dob`.
pub fn validate_profile(
    data: &ProfileData,
    open_profile_exists: bool,
    today: NaiveDate,
) -> Vec<String> {
    let mut errors = Vec::new();
    check_text(
        "first_name",
        data.first_name.as_deref(),
        1,
        &NAME,
        &mut errors,
    );
    check_text(
        "last_name",
        data.last_name.as_deref(),
        1,
        &NAME,
        &mut errors,
    );
    check_text("city", data.city.as_deref(), 1, &CITY, &mut errors);
    if let Some(country) = data.country.as_deref().filter(|c| !c.trim().is_empty())
        && !country_is_valid(country)
    {
        errors.push("country.must have alpha2 or alpha3 format".into());
    }
    check_text(
        "postcode",
        data.postcode.as_deref(),
        2,
        &POSTCODE,
        &mut errors,
    );
    check_text("address", data.address.as_deref(), 1, &ADDRESS, &mut errors);
    if let Some(metadata) = data.metadata.as_deref().filter(|m| !m.trim().is_empty())
        && !matches!(
            serde_json::from_str::<serde_json::Value>(metadata),
            Ok(serde_json::Value::Object(_))
        )
    {
        errors.push("metadata.invalid_format".into());
    }
    if open_profile_exists {
        errors.push("state.exists".into());
    }
    if data.dob.is_some_and(|dob| dob > today) {
        errors.push("dob.invalid".into());
    }
    errors
}

/// Parses a `Date` parameter as Grape does for the usual spellings: `YYYY-MM-DD` (optionally
/// followed by a time), `YYYYMMDD`, `YYYY/MM/DD`, `DD-MM-YYYY`, `DD/MM/YYYY`, `DD.MM.YYYY`.
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    let text = raw.trim();
    let head = text.get(..10).unwrap_or(text);
    ["%Y-%m-%d", "%Y/%m/%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y"]
        .iter()
        .find_map(|format| NaiveDate::parse_from_str(head, format).ok())
        .filter(|_| head.len() == text.len() || text[head.len()..].starts_with(['T', ' ']))
        .or_else(|| NaiveDate::parse_from_str(text, "%Y%m%d").ok())
}

/// Masks a last name: the first character kept, every following one replaced by `*`.
pub fn mask_last_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// Masks a date of birth: `YYYY-MM-DD` with everything after the first 8 characters replaced
/// by `*` (`1990-05-17` → `1990-05-**`).
pub fn mask_dob(dob: NaiveDate) -> String {
    let text = dob.format("%Y-%m-%d").to_string();
    text.chars()
        .enumerate()
        .map(|(i, c)| if i < 8 { c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")
    }

    #[test]
    fn states_round_trip_barong_codes() {
        for state in ProfileState::ALL {
            assert_eq!(
                ProfileState::from_code(i64::from(state.code())),
                Some(state)
            );
            assert_eq!(ProfileState::parse(state.as_str()), Some(state));
        }
        assert_eq!(ProfileState::from_code(2), None);
        assert!(ProfileState::Drafted.is_open() && !ProfileState::Verified.is_open());
    }

    #[test]
    fn masks_as_barong() {
        assert_eq!(mask_last_name("Smith"), "S****");
        assert_eq!(mask_last_name("Ли"), "Л*");
        assert_eq!(mask_last_name(""), "");
        let dob = NaiveDate::from_ymd_opt(1990, 5, 17).expect("date");
        assert_eq!(mask_dob(dob), "1990-05-**");
    }

    #[test]
    fn validation_keys_in_barong_order() {
        let data = ProfileData {
            first_name: Some("J@hn".into()),
            last_name: Some("x".repeat(256)),
            city: Some("Kyiv!".into()),
            country: Some("XX".into()),
            postcode: Some("1".into()),
            address: Some("Main st. <1>".into()),
            metadata: Some("[1]".into()),
            dob: NaiveDate::from_ymd_opt(2030, 1, 1),
        };
        assert_eq!(
            validate_profile(&data, true, today()),
            [
                "first_name.invalid",
                "last_name.too_long",
                "city.invalid",
                "country.must have alpha2 or alpha3 format",
                "postcode.too_short",
                "address.invalid",
                "metadata.invalid_format",
                "state.exists",
                "dob.invalid",
            ]
        );
    }

    #[test]
    fn valid_profiles_pass() {
        let data = ProfileData {
            first_name: Some("김 민준".into()),
            last_name: Some("O'Neil-Smith".into()),
            city: Some("St. Louis".into()),
            country: Some("ukr".into()),
            postcode: Some("01-001".into()),
            address: Some(r#"Main st. 1, apt "2" / 3 (rear)"#.into()),
            metadata: Some(r#"{"a":1}"#.into()),
            dob: NaiveDate::from_ymd_opt(1990, 5, 17),
        };
        assert!(validate_profile(&data, false, today()).is_empty());
        assert!(validate_profile(&ProfileData::default(), false, today()).is_empty());
        assert!(country_is_valid("US") && country_is_valid("GBR") && !country_is_valid("USAA"));
    }

    #[test]
    fn dates_parse_like_grape() {
        let want = NaiveDate::from_ymd_opt(1990, 5, 17);
        for raw in [
            "1990-05-17",
            "19900517",
            "17/05/1990",
            "17.05.1990",
            "1990-05-17T00:00:00Z",
        ] {
            assert_eq!(parse_date(raw), want, "{raw}");
        }
        for raw in ["", "yesterday", "1990-13-01", "1990-05-17xyz"] {
            assert_eq!(parse_date(raw), None, "{raw}");
        }
    }
}
