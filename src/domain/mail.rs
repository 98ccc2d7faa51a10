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
