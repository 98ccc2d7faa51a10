//! Documents and addresses: KYC uploads with their type, number
//! and expiry. The number is personal data (stored encrypted, blind index beside it); the file
//! lives in object storage under `upload`.

use chrono::{DateTime, NaiveDate, Utc};

/// A stored document row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: i64,
    pub user_id: i64,
    /// Object-store key of the file (`documents/<uid>/<random>.<ext>`).
    pub upload: String,
    pub doc_type: String,
    pub doc_expire: Option<NaiveDate>,
    /// The document number under `BARONG_ENCRYPTION_KEY` (None for addresses).
    pub doc_number_encrypted: Option<String>,
    /// Blind index of the normalised number ([`normalise_doc_number`]).
    pub doc_number_index: Option<String>,
    pub doc_issue: Option<NaiveDate>,
    /// `front_side`, `back_side` or `selfie`.
    pub doc_category: Option<String>,
    /// Shared by the files of one request (16 random bytes, hex, unless given).
    pub identificator: Option<String>,
    /// JSON text.
    pub metadata: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A document to insert (the file is already in object storage under `upload`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDocument {
    pub user_id: i64,
    pub upload: String,
    pub doc_type: String,
    pub doc_expire: Option<NaiveDate>,
    pub doc_number_encrypted: Option<String>,
    pub doc_number_index: Option<String>,
    pub doc_category: Option<String>,
    pub identificator: Option<String>,
    pub metadata: Option<String>,
}

/// The `doc_type` of address proofs (`POST resource/addresses`); no KYC document label for them.
pub const ADDRESS_DOC_TYPE: &str = "Address";

/// The `doc_category` values Barong accepts.
pub const DOC_CATEGORIES: &[&str] = &["front_side", "back_side", "selfie"];

/// The file kinds accepted, recognised from their first bytes (never from a name or header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    Jpeg,
    Png,
    Pdf,
}

impl UploadKind {
    /// Recognises a file from its first bytes (at least 8 are needed for PNG): JPEG `FF D8 FF`,
    /// PNG `89 50 4E 47 0D 0A 1A 0A`, PDF `%PDF-`. Anything else is `None`.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if head.starts_with(b"%PDF-") {
            Some(Self::Pdf)
        } else {
            None
        }
    }

    /// How many leading bytes [`UploadKind::sniff`] needs to decide.
    pub const SNIFF_LEN: usize = 8;

    /// The extension the stored file gets.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Pdf => "pdf",
        }
    }

    /// The MIME type of the kind.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Pdf => "application/pdf",
        }
    }
}

/// The form a document number is compared in: trimmed, inner whitespace squeezed, upper case.
pub fn normalise_doc_number(number: &str) -> String {
    number
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// Barong's rule: at most 128 characters of letters, digits, `-` and whitespace.
pub fn doc_number_is_valid(number: &str) -> bool {
    number.chars().count() <= 128
        && number
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c.is_whitespace())
}

/// Barong's document-number masking: first 2 and last 2 kept, `*` between; unchanged when
/// 4 characters or fewer.
pub fn mask_doc_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 4 {
        return number.to_owned();
    }
    let mut out: String = chars[..2].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - 4));
    out.extend(&chars[chars.len() - 2..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic_bytes_only() {
        assert_eq!(
            UploadKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(UploadKind::Jpeg)
        );
        assert_eq!(
            UploadKind::sniff(b"\x89PNG\r\n\x1a\nrest"),
            Some(UploadKind::Png)
        );
        assert_eq!(UploadKind::sniff(b"%PDF-1.7"), Some(UploadKind::Pdf));
        assert_eq!(UploadKind::sniff(b"\x7fELF\x02\x01\x01\x00"), None);
        assert_eq!(
            UploadKind::sniff(b"\x89PNG"),
            None,
            "truncated PNG signature"
        );
        assert_eq!(UploadKind::sniff(b""), None);
    }

    #[test]
    fn numbers_mask_normalise_and_validate() {
        assert_eq!(mask_doc_number("AA1234BB"), "AA****BB");
        assert_eq!(mask_doc_number("BO231283013DSAS23"), "BO*************23");
        assert_eq!(mask_doc_number("ABCD"), "ABCD");
        assert_eq!(normalise_doc_number("  ab 12\t34 "), "AB 12 34");
        assert!(doc_number_is_valid("AB-123 456"));
        assert!(!doc_number_is_valid("AB_123"));
        assert!(!doc_number_is_valid(&"A".repeat(129)));
    }
}
