//! Mail in the outbox: written in the transaction that causes it, delivered by `mail::worker`.

/// A mail to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    /// What it is: `email_confirmation`, `password_reset`, `new_login`.
    pub kind: String,
    pub recipient: String,
    /// Lower-case language code of the template used.
    pub language: String,
    pub subject: String,
    pub body_html: String,
    /// The one-time claim of the confirmation token the mail carries, stored with the mail.
    pub confirmation: Option<OneTimeClaim>,
}

/// A one-time claim of a mailed token and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeClaim {
    pub token: String,
    pub expires_at: i64,
}

/// A queued mail claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub language: String,
    pub subject: String,
    pub body_html: String,
    /// Delivery attempts so far, this one included.
    pub attempts: i32,
}
