//! Keys and cryptography: JWT signing keys (generated, loaded, provisioned for development) and
//! the symmetric key that encrypts secrets at rest.

pub mod bearer;
pub mod encryption;
pub mod hex;
pub mod jws;
pub mod keyring;
pub mod keys;
pub mod multisig;
pub mod password_hash;
pub mod tokens;
pub mod totp;

pub use keys::{KeyAlgorithm, KeyError, SigningKey};

/// Makes aws-lc-rs the process-wide rustls provider (idempotent; a second call is a no-op).
pub fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Compares two secrets (tokens, signatures, codes) in time independent of where they differ.
/// Different lengths compare unequal at once: lengths are public (fixed by the token format).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}
