//! The label rules a user's own labels and an admin's writes share (Barong's `Label` model).

/// Barong's `before_validation`: squished (whitespace runs become one space, ends trimmed) and
/// lower-cased.
pub fn normalize(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Length 3..=255 and `^[a-z0-9_-]+$`, as `<attr>.too_short|too_long|invalid`.
pub fn check(attr: &str, text: &str, errors: &mut Vec<String>) {
    let n = text.chars().count();
    if n < 3 {
        errors.push(format!("{attr}.too_short"));
    }
    if n > 255 {
        errors.push(format!("{attr}.too_long"));
    }
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        errors.push(format!("{attr}.invalid"));
    }
}
