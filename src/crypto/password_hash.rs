//! Password hashing: argon2id for every new hash, bcrypt (Barong's format) accepted on
//! verification so users imported from Barong can sign in and be rehashed.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with argon2id and a fresh random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Ok(hasher()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// The outcome of checking a password against a stored digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password, or a digest we cannot read.
    Mismatch,
    /// Correct, and the digest is current.
    Match,
    /// Correct, but the digest is bcrypt (or weaker argon2): rehash and store.
    MatchNeedsRehash,
}

/// Checks `password` against an argon2 PHC string or a bcrypt `$2a$/$2b$/$2y$` digest.
pub fn verify_password(password: &str, digest: &str) -> Verification {
    if digest.starts_with("$2") {
        return match bcrypt::verify(password, digest) {
            Ok(true) => Verification::MatchNeedsRehash,
            _ => Verification::Mismatch,
        };
    }
    let Ok(parsed) = PasswordHash::new(digest) else {
        return Verification::Mismatch;
    };
    if hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verification::Mismatch;
    }
    let current = Params::try_from(&parsed)
        .map(|p| p.m_cost() >= 19 * 1024 && p.t_cost() >= 2)
        .unwrap_or(false);
    if current && parsed.algorithm == Algorithm::Argon2id.ident() {
        Verification::Match
    } else {
        Verification::MatchNeedsRehash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip() {
        let digest = hash_password("Tecohvi0").expect("hash");
        assert!(digest.starts_with("$argon2id$"));
        assert_eq!(verify_password("Tecohvi0", &digest), Verification::Match);
        assert_eq!(verify_password("wrong", &digest), Verification::Mismatch);
    }

    #[test]
    fn bcrypt_digests_from_barong_verify_and_ask_for_rehash() {
        let digest = bcrypt::hash("Tecohvi0", 4).expect("bcrypt");
        assert_eq!(
            verify_password("Tecohvi0", &digest),
            Verification::MatchNeedsRehash
        );
        assert_eq!(verify_password("nope", &digest), Verification::Mismatch);
        assert_eq!(verify_password("x", "garbage"), Verification::Mismatch);
    }
}
