//! Phones: numbers normalised to E.164, masked for users, verified by a code.
//! The number itself is personal data: stores keep it encrypted with a blind index beside it.

use chrono::{DateTime, Utc};
use phonenumber::{Mode, PhoneNumber};

/// A stored phone. `number_encrypted` holds the E.164 number under `BARONG_ENCRYPTION_KEY`;
/// `number_index` is its blind index (equal numbers, equal index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    pub id: i64,
    pub user_id: i64,
    /// ISO 3166 alpha-2 of the number's region (`US`).
    pub country: String,
    /// The 5-digit verification code (`twilio_sms` compares it; `send_code` re-sends it).
    pub code: Option<String>,
    pub number_encrypted: String,
    pub number_index: String,
    /// Set once the number is verified; a number may be verified by one account only.
    pub validated_at: Option<DateTime<Utc>>,
    /// Unix seconds of the last code sent (resend limits).
    pub code_sent_at: Option<i64>,
    /// Codes sent since `send_window_start` (resend limits).
    pub send_count: i64,
    /// Unix seconds when the current counting window of `send_count` began.
    pub send_window_start: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Phone {
    /// Verified means `validated_at` is set.
    pub fn is_verified(&self) -> bool {
        self.validated_at.is_some()
    }
}

/// A phone to insert. `validated` creates it already verified (the management API does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPhone {
    pub user_id: i64,
    pub country: String,
    pub code: Option<String>,
    pub number_encrypted: String,
    pub number_index: String,
    pub validated: bool,
}

/// A number that parsed and is valid for its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalisedPhone {
    /// `+` country calling code + national significant number (`+447418084106`).
    pub e164: String,
    /// ISO 3166 alpha-2 of the region (`GB`), `ZZ` when the number is valid but region-less.
    pub country: String,
}

impl NormalisedPhone {
    /// The digits without `+`, the form Barong stores and renders.
    pub fn digits(&self) -> &str {
        self.e164.trim_start_matches('+')
    }
}

/// Normalises a submitted number as Barong does: every non-digit dropped, parsed as an
/// international number, strict validity; `None` when it is not a valid number.
/// `+44 07418084106` and `447418084106` both give `+447418084106`.
pub fn normalise_phone(input: &str) -> Option<NormalisedPhone> {
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 17 {
        return None;
    }
    let parsed: PhoneNumber = phonenumber::parse(None, format!("+{digits}")).ok()?;
    if !phonenumber::is_valid(&parsed) {
        return None;
    }
    let country = parsed
        .country()
        .id()
        .map(|id| id.as_ref().to_owned())
        .unwrap_or_else(|| "ZZ".to_owned());
    Some(NormalisedPhone {
        e164: parsed.format().mode(Mode::E164).to_string(),
        country,
    })
}

/// Masks digits as Barong's phone masking: the country calling code kept (2 digits when it
/// cannot be found), the last 4 kept, `*` in between; unchanged when too short.
pub fn mask_phone(digits: &str) -> String {
    let head = phonenumber::parse(None, format!("+{digits}"))
        .ok()
        .filter(phonenumber::is_valid)
        .map(|n| n.code().value().to_string().len())
        .unwrap_or(2);
    let chars: Vec<char> = digits.chars().collect();
    if chars.len() <= head + 4 {
        return digits.to_owned();
    }
    let middle = chars.len() - head - 4;
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', middle));
    out.extend(&chars[chars.len() - 4..]);
    out
}

/// A 5-digit verification code from 4 random bytes supplied by the caller.
pub fn phone_code(random: [u8; 4]) -> String {
    format!("{:05}", u32::from_le_bytes(random) % 100_000)
}

/// The channels Barong accepts for a code.
pub const PHONE_CHANNELS: &[&str] = &["sms", "call"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_e164_and_refuses_invalid() {
        let n = normalise_phone("+44 07418084106").expect("valid");
        assert_eq!(n.e164, "+447418084106");
        assert_eq!(n.country, "GB");
        assert_eq!(n.digits(), "447418084106");
        let us = normalise_phone("1 (201) 555-0123").expect("valid");
        assert_eq!(us.e164, "+12015550123");
        assert_eq!(us.country, "US");
        assert!(normalise_phone("123").is_none());
        assert!(normalise_phone("").is_none());
        assert!(normalise_phone("abc").is_none());
        assert!(normalise_phone("11111111111").is_none());
    }

    #[test]
    fn masks_as_barong() {
        assert_eq!(mask_phone("79225551234"), "7******1234");
        assert_eq!(mask_phone("201112341923"), "20******1923");
        assert_eq!(mask_phone("380971232322"), "380*****2322");
        assert_eq!(mask_phone("1112222"), "11*2222");
        assert_eq!(mask_phone(""), "");
    }

    #[test]
    fn codes_have_five_digits() {
        assert_eq!(phone_code([0, 0, 0, 0]), "00000");
        assert_eq!(phone_code([255, 255, 255, 255]).len(), 5);
    }
}
