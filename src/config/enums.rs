//! The enumerated settings: each variant with its spelling, parsed strictly (an unknown value
//! stops the start with the list of the allowed ones).

use std::fmt;

use super::value::Value;

/// Declares an enumerated setting: its variants, their spellings and the "expected one of" text.
macro_rules! string_enum {
    (
        $(#[$attr:meta])*
        $name:ident (case_insensitive = $ci:literal) {
            $($(#[$vattr:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vattr])* $variant,)+
        }

        impl $name {
            /// Every variant, in the order the settings documentation lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The canonical spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(raw: &str) -> Result<Self, String> {
                let matches = |text: &str| if $ci { raw.eq_ignore_ascii_case(text) } else { raw == text };
                Self::ALL.iter().copied().find(|v| matches(v.as_str())).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("expected one of {}", names.join(", "))
                })
            }
        }

        impl Value for $name {
            fn parse(raw: &str) -> Result<Self, String> {
                raw.parse()
            }
            fn show(&self) -> String {
                self.as_str().to_owned()
            }
        }
    };
}

string_enum! {
    /// `BARONG_ENV`: production refuses to start without explicit keys and database.
    Environment (case_insensitive = false) {
        /// Generated keys and SQLite are fine.
        Development = "development",
        /// As development; for test suites.
        Test = "test",
        /// Keys, encryption key and database must be given explicitly.
        Production = "production",
    }
}

string_enum! {
    /// Where API-key replay protection remembers the requests it has seen
    /// (`BARONG_APIKEY_REPLAY_STORE`).
    ReplayStore (case_insensitive = false) {
        /// In this process: a replay sent to another instance is not recognised.
        Memory = "memory",
        /// In Redis (`BARONG_REDIS_URL`), shared by every instance.
        Redis = "redis",
    }
}

string_enum! {
    /// JWT signing algorithm (`BARONG_JWT_ALGORITHM`, `JWT_ALGORITHM`).
    JwtAlgorithm (case_insensitive = false) {
        /// RSA PKCS#1 v1.5 with SHA-256, Barong's only algorithm.
        Rs256 = "RS256",
        /// ECDSA P-256 with SHA-256.
        Es256 = "ES256",
        /// Ed25519.
        EdDsa = "EdDSA",
    }
}

string_enum! {
    /// `BARONG_LOG_FORMAT`.
    LogFormat (case_insensitive = false) {
        /// Human-readable lines.
        Text = "text",
        /// One JSON object per line.
        Json = "json",
    }
}

string_enum! {
    /// `BARONG_GATEWAY`: which CDN header carries the client IP.
    Gateway (case_insensitive = false) {
        /// `True-Client-IP` is trusted when non-empty.
        Akamai = "akamai",
        /// The default: `X-Forwarded-For`.
        Cloudflare = "cloudflare",
    }
}

string_enum! {
    /// `BARONG_KYC_PROVIDER`.
    KycProvider (case_insensitive = false) {
        /// KYCAID applicants and callbacks.
        Kycaid = "kycaid",
        /// Admins verify by hand; the KYC callback answers 422.
        Local = "local",
    }
}

string_enum! {
    /// `BARONG_CAPTCHA`.
    CaptchaType (case_insensitive = false) {
        /// No captcha is enforced.
        None = "none",
        /// Google reCAPTCHA v2.
        Recaptcha = "recaptcha",
        /// GeeTest.
        Geetest = "geetest",
    }
}

string_enum! {
    /// `BARONG_PHONE_VERIFICATION`.
    PhoneVerification (case_insensitive = false) {
        /// Codes are not sent; any code is accepted as Barong's mock does.
        Mock = "mock",
        /// Codes sent by SMS through Twilio.
        TwilioSms = "twilio_sms",
        /// Twilio Verify service.
        TwilioVerify = "twilio_verify",
    }
}

string_enum! {
    /// `BARONG_STORAGE_PROVIDER`; Barong compares it case-insensitively (`Google`, `AWS`, `AliCloud`).
    StorageProvider (case_insensitive = true) {
        /// Files on the local disk.
        Local = "local",
        /// Google Cloud Storage.
        Google = "google",
        /// Amazon S3 or compatible.
        Aws = "aws",
        /// Alibaba Cloud OSS.
        AliCloud = "alicloud",
    }
}

string_enum! {
    /// `BARONG_GEOIP_LANG`: language of country and continent names.
    GeoipLang (case_insensitive = false) {
        /// English.
        En = "en",
        /// German.
        De = "de",
        /// Spanish.
        Es = "es",
        /// French.
        Fr = "fr",
        /// Japanese.
        Ja = "ja",
        /// Russian.
        Ru = "ru",
    }
}
