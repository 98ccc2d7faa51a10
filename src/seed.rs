//! Seeds in Barong's `seeds.yml` format: levels, permissions, restrictions and users.
//! Loading is idempotent: rows that already exist are skipped, so `barong seed` can run on
//! every deploy.

use std::path::Path;

use serde::Deserialize;

use crate::crypto::password_hash::hash_password;
use crate::domain::{
    LabelScope, NewLabel, NewLevel, NewPermission, NewRestriction, NewUser, UserState,
    generate_uid, is_restriction_code, role,
};
use crate::store::{Store, StoreError};

/// Barong's default seeds: levels email/phone/document, the role permissions, disabled
/// example restrictions.
pub const DEFAULT_SEEDS: &str = include_str!("../config/seeds.yml");

/// The parsed file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seeds {
    #[serde(default)]
    pub levels: Vec<NewLevel>,
    #[serde(default)]
    pub permissions: Vec<NewPermission>,
    #[serde(default)]
    pub restrictions: Vec<NewRestriction>,
    #[serde(default)]
    pub users: Vec<SeedUser>,
}

/// A user entry of the seeds file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub email: String,
    pub password: String,
    #[serde(default = "default_role")]
    pub role: String,
    #[serde(default = "default_state")]
    pub state: UserState,
    #[serde(default)]
    pub level: i32,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

fn default_role() -> String {
    role::MEMBER.into()
}

fn default_state() -> UserState {
    UserState::Active
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("invalid seeds file: {0}")]
    Parse(String),
    #[error("cannot hash the password of {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many rows of each kind were inserted (the rest already existed).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub levels: usize,
    pub permissions: usize,
    pub restrictions: usize,
    pub users: usize,
}

impl Seeds {
    /// Parses the YAML text; level ids are 1..n in file order, as Barong's seeder numbers them.
    pub fn parse(text: &str) -> Result<Self, SeedError> {
        let mut seeds: Seeds =
            serde_yaml_ng::from_str(text).map_err(|e| SeedError::Parse(e.to_string()))?;
        for (index, level) in seeds.levels.iter_mut().enumerate() {
            level.id = index as i64 + 1;
        }
        if let Some(bad) = seeds
            .restrictions
            .iter()
            .find(|r| !is_restriction_code(i64::from(r.effective_code())))
        {
            return Err(SeedError::Parse(format!(
                "restriction {} {} {}: code {} is not a deny status (400-499)",
                bad.category,
                bad.scope,
                bad.value,
                bad.effective_code()
            )));
        }
        Ok(seeds)
    }

    /// Reads and parses a seeds file.
    pub fn from_file(path: &Path) -> Result<Self, SeedError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SeedError::Read(path.display().to_string(), e))?;
        Self::parse(&text)
    }

    /// Inserts what is missing.
    pub async fn apply(
        &self,
        store: &dyn Store,
        uid_prefix: &str,
    ) -> Result<SeedReport, SeedError> {
        let mut report = SeedReport::default();
        for level in &self.levels {
            report.levels += usize::from(store.insert_level_if_absent(level).await?);
        }
        for permission in &self.permissions {
            report.permissions += usize::from(store.insert_permission_if_absent(permission).await?);
        }
        for restriction in &self.restrictions {
            report.restrictions +=
                usize::from(store.insert_restriction_if_absent(restriction).await?);
        }
        for user in &self.users {
            if store.find_user_by_email(&user.email).await?.is_some() {
                continue;
            }
            store.create_user(&self.new_user(user, uid_prefix)?).await?;
            report.users += 1;
        }
        Ok(report)
    }

    /// A seeded user gets the private labels of levels 1..level, as Barong's seeder gives them.
    fn new_user(&self, user: &SeedUser, uid_prefix: &str) -> Result<NewUser, SeedError> {
        let labels = self
            .levels
            .iter()
            .take(usize::try_from(user.level).unwrap_or(0))
            .map(|level| NewLabel {
                key: level.key.clone(),
                value: level.value.clone(),
                scope: LabelScope::Private.as_str().into(),
            })
            .collect();
        let digest =
            hash_password(&user.password).map_err(|_| SeedError::Hash(user.email.clone()))?;
        Ok(NewUser {
            uid: user
                .uid
                .clone()
                .unwrap_or_else(|| generate_uid(uid_prefix, rand::random())),
            username: user.username.clone().map(|u| u.to_lowercase()),
            email: user.email.clone(),
            password_digest: digest,
            role: user.role.clone(),
            data: None,
            level: user.level,
            otp: false,
            state: user.state.clone(),
            referral_id: None,
            labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_seeds_parse_with_numbered_levels() {
        let seeds = Seeds::parse(DEFAULT_SEEDS).expect("default seeds");
        let keys: Vec<_> = seeds
            .levels
            .iter()
            .map(|l| (l.id, l.key.as_str()))
            .collect();
        assert_eq!(keys, [(1, "email"), (2, "phone"), (3, "document")]);
        assert!(seeds.permissions.iter().any(|p| p.role == "member"));
        assert!(seeds.permissions.iter().any(|p| p.role == "superadmin"));
        assert!(seeds.restrictions.iter().all(|r| r.state == "disabled"));
    }

    #[test]
    fn restriction_codes_must_deny() {
        let row = |code: i32| {
            format!(
                "restrictions:\n  - {{category: blacklist, scope: ip, value: 1.2.3.4, code: {code}}}\n"
            )
        };
        assert!(Seeds::parse(&row(403)).is_ok());
        for bad in [200, 302, 500, 0, -1] {
            assert!(
                matches!(Seeds::parse(&row(bad)), Err(SeedError::Parse(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(matches!(
            Seeds::parse("levelz: []"),
            Err(SeedError::Parse(_))
        ));
    }
}
