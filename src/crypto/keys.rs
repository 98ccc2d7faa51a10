//! Signing keys for the JWTs the authz path mints, and the encryption key for data at rest.
//!
//! Keys are PKCS#8 PEM files. Outside production a missing key is generated once into the data
//! directory and reused on every later start, so a development server keeps its sessions valid
//! across restarts; production refuses to start without explicit keys (checked in `config`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};

/// The JWT signature algorithms we sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rs256,
    Es256,
    EdDsa,
}

impl KeyAlgorithm {
    /// The JOSE `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Parses a JOSE name as the CLI and the settings spell it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }
}

/// What can go wrong with key files.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a PEM private key usable for {algorithm}")]
    Invalid {
        path: PathBuf,
        algorithm: &'static str,
    },
    #[error("key generation failed")]
    Generation,
}

/// A private signing key, checked against its algorithm when loaded.
#[derive(Clone)]
pub struct SigningKey {
    pub algorithm: KeyAlgorithm,
    /// PKCS#8 (or PKCS#1 for RSA) DER of the private key.
    pub private_der: Vec<u8>,
    /// The PEM text as read, for libraries that want PEM.
    pub pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PEM file and checks that it parses as a key of `algorithm`.
    pub fn load(path: &Path, algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        let pem_text = fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(pem_text, algorithm, path)
    }

    /// Parses PEM text (`origin` names it in errors) and checks it against `algorithm`.
    pub fn from_pem(
        pem_text: String,
        algorithm: KeyAlgorithm,
        origin: &Path,
    ) -> Result<Self, KeyError> {
        let invalid = || KeyError::Invalid {
            path: origin.to_owned(),
            algorithm: algorithm.name(),
        };
        let der = pem::parse(&pem_text)
            .map_err(|_| invalid())?
            .into_contents();
        if !der_matches(&der, algorithm) {
            return Err(invalid());
        }
        Ok(Self {
            algorithm,
            private_der: der,
            pem: pem_text,
        })
    }
}

fn der_matches(der: &[u8], algorithm: KeyAlgorithm) -> bool {
    match algorithm {
        KeyAlgorithm::Rs256 => {
            aws_lc_rs::rsa::KeyPair::from_pkcs8(der).is_ok()
                || aws_lc_rs::rsa::KeyPair::from_der(der).is_ok()
        }
        KeyAlgorithm::Es256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map(|k| !k.public_key().as_ref().is_empty())
            .unwrap_or(false),
        KeyAlgorithm::EdDsa => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).is_ok(),
    }
}

/// Generates a new private key as PKCS#8 PEM (RSA keys are 2048-bit).
pub fn generate_private_key_pem(algorithm: KeyAlgorithm) -> Result<String, KeyError> {
    let der: Vec<u8> = match algorithm {
        KeyAlgorithm::Rs256 => {
            let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| KeyError::Generation)?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> =
                key.as_der().map_err(|_| KeyError::Generation)?;
            der.as_ref().to_vec()
        }
        KeyAlgorithm::Es256 => {
            let rng = SystemRandom::new();
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| KeyError::Generation)?
                .as_ref()
                .to_vec()
        }
        KeyAlgorithm::EdDsa => {
            let rng = SystemRandom::new();
            Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError::Generation)?
                .as_ref()
                .to_vec()
        }
    };
    Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der)))
}

/// Writes `contents` to a new file readable only by its owner; never overwrites.
pub fn write_secret_file(path: &Path, contents: &str) -> Result<(), KeyError> {
    let write_err = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(write_err)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(write_err)?;
    file.write_all(contents.as_bytes()).map_err(write_err)?;
    file.sync_all().map_err(write_err)
}

/// Where a generated development key of `algorithm` lives inside the data directory.
pub fn dev_signing_key_path(data_dir: &Path, algorithm: KeyAlgorithm) -> PathBuf {
    data_dir.join(format!("jwt-{}.pem", algorithm.name().to_lowercase()))
}

/// Loads the development signing key from the data directory, generating it on first use.
/// Returns the key and whether it was generated now.
pub fn ensure_dev_signing_key(
    data_dir: &Path,
    algorithm: KeyAlgorithm,
) -> Result<(SigningKey, bool), KeyError> {
    let path = dev_signing_key_path(data_dir, algorithm);
    let generated = !path.exists();
    if generated {
        write_secret_file(&path, &generate_private_key_pem(algorithm)?)?;
    }
    Ok((SigningKey::load(&path, algorithm)?, generated))
}

/// A 32-byte key for AES-256-GCM, hex-encoded in its file and in `BARONG_ENCRYPTION_KEY`.
#[derive(Clone)]
pub struct EncryptionKey(pub [u8; 32]);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

impl EncryptionKey {
    /// Parses 64 hex characters or standard base64 of 32 bytes.
    pub fn parse(text: &str) -> Option<Self> {
        use base64::Engine;
        let text = text.trim();
        let bytes = hex::decode(text)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())?;
        bytes.try_into().ok().map(Self)
    }
}

/// Loads the development encryption key from the data directory, generating it on first use.
pub fn ensure_dev_encryption_key(data_dir: &Path) -> Result<(EncryptionKey, bool), KeyError> {
    let path = data_dir.join("encryption.key");
    let generated = !path.exists();
    if generated {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| KeyError::Generation)?;
        write_secret_file(&path, &hex::encode(bytes))?;
    }
    let text = fs::read_to_string(&path).map_err(|source| KeyError::Read {
        path: path.clone(),
        source,
    })?;
    let key = EncryptionKey::parse(&text).ok_or(KeyError::Invalid {
        path,
        algorithm: "AES-256-GCM",
    })?;
    Ok((key, generated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_back_for_their_algorithm_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        for algorithm in [
            KeyAlgorithm::Rs256,
            KeyAlgorithm::Es256,
            KeyAlgorithm::EdDsa,
        ] {
            let path = dir.path().join(algorithm.name());
            write_secret_file(
                &path,
                &generate_private_key_pem(algorithm).expect("generate"),
            )
            .expect("write");
            assert!(SigningKey::load(&path, algorithm).is_ok(), "{algorithm:?}");
            let other = if algorithm == KeyAlgorithm::Es256 {
                KeyAlgorithm::EdDsa
            } else {
                KeyAlgorithm::Es256
            };
            assert!(
                SigningKey::load(&path, other).is_err(),
                "{algorithm:?} as {other:?}"
            );
        }
    }

    #[test]
    fn dev_keys_are_generated_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, generated) =
            ensure_dev_signing_key(dir.path(), KeyAlgorithm::Es256).expect("first");
        assert!(generated);
        let (second, generated) =
            ensure_dev_signing_key(dir.path(), KeyAlgorithm::Es256).expect("second");
        assert!(!generated);
        assert_eq!(first.pem, second.pem);
        let (k1, g1) = ensure_dev_encryption_key(dir.path()).expect("enc");
        let (k2, g2) = ensure_dev_encryption_key(dir.path()).expect("enc again");
        assert!(g1 && !g2);
        assert_eq!(k1.0, k2.0);
    }

    #[test]
    fn encryption_key_accepts_hex_and_base64_of_32_bytes() {
        assert!(EncryptionKey::parse(&"ab".repeat(32)).is_some());
        assert!(EncryptionKey::parse("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=").is_some());
        assert!(EncryptionKey::parse("short").is_none());
    }
}
