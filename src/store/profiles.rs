//! What both backends share for KYC profiles: personal fields are sealed (encrypted) before
//! they reach SQL and opened after, so no SQL statement, row or log line holds them in clear.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::crypto::encryption::Encryptor;
use crate::domain::ProfileData;

/// The stored form of [`ProfileData`]: the six personal fields encrypted, country and
/// metadata as they are.
#[derive(Clone, Default)]
pub(crate) struct SealedProfile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<String>,
    pub address: Option<String>,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub metadata: Option<String>,
}

/// A profile row as read from either backend, still sealed.
pub(crate) struct ProfileRow {
    pub id: i64,
    pub user_id: i64,
    pub author: Option<String>,
    pub applicant_id: Option<String>,
    pub sealed: SealedProfile,
    pub state: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Encrypts the personal fields of `data` (each with a fresh nonce).
pub(crate) fn seal(data: &ProfileData, enc: &Encryptor) -> SealedProfile {
    let lock = |v: &Option<String>| v.as_deref().map(|t| enc.encrypt(t));
    SealedProfile {
        first_name: lock(&data.first_name),
        last_name: lock(&data.last_name),
        dob: data
            .dob
            .map(|d| enc.encrypt(&d.format("%Y-%m-%d").to_string())),
        address: lock(&data.address),
        postcode: lock(&data.postcode),
        city: lock(&data.city),
        country: data.country.clone(),
        metadata: data.metadata.clone(),
    }
}

/// Decrypts a row. A value that does not decrypt (another key, tampering) is an error naming
/// the profile, never the value.
pub(crate) fn open(row: ProfileRow, enc: &Encryptor) -> StoreResult<Profile> {
    let id = row.id;
    let fail = || StoreError::Backend(format!("profile {id}: personal data cannot be decrypted"));
    let unlock = |v: &Option<String>| -> StoreResult<Option<String>> {
        v.as_deref()
            .map(|t| enc.decrypt(t).map_err(|_| fail()))
            .transpose()
    };
    let dob = unlock(&row.sealed.dob)?
        .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| fail()))
        .transpose()?;
    let state = ProfileState::from_code(row.state)
        .ok_or_else(|| StoreError::Backend(format!("profile {id}: unknown state {}", row.state)))?;
    Ok(Profile {
        id,
        user_id: row.user_id,
        author: row.author,
        applicant_id: row.applicant_id,
        data: ProfileData {
            first_name: unlock(&row.sealed.first_name)?,
            last_name: unlock(&row.sealed.last_name)?,
            dob,
            address: unlock(&row.sealed.address)?,
            postcode: unlock(&row.sealed.postcode)?,
            city: unlock(&row.sealed.city)?,
            country: row.sealed.country,
            metadata: row.sealed.metadata,
        },
        state,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Opens every row, in order.
pub(crate) fn open_all(rows: Vec<ProfileRow>, enc: &Encryptor) -> StoreResult<Vec<Profile>> {
    rows.into_iter().map(|r| open(r, enc)).collect()
}

#[async_trait]
pub trait ProfileStore: Send + Sync {
    // Personal fields (first/last name, dob, address, postcode, city) are encrypted with `enc`
    // before they reach SQL and decrypted on the way out: callers pass and get clear values.
    // Every create/update sets the private label `profile` to the profile's state and
    // recomputes the user's state and level in the same transaction (Barong's `profile_step`).
    /// Creates a profile. When its state is drafted or submitted and the user already has a
    /// drafted or submitted profile, nothing is written and the answer is
    /// [`StoreError::Conflict`]`("state")` (Barong's `state.exists`), checked atomically.
    async fn create_profile(
        &self,
        user_id: i64,
        profile: &NewProfile,
        enc: &Encryptor,
        rules: &StateRules,
    ) -> StoreResult<(Profile, UserChange)>;

    /// Applies `changes` to profile `id` (given fields replaced, state and applicant id set
    /// when given); `None` when the profile does not exist or is not in
    /// `changes.only_in_state`.
    async fn update_profile(
        &self,
        id: i64,
        changes: &ProfileChanges,
        enc: &Encryptor,
        rules: &StateRules,
    ) -> StoreResult<Option<(Profile, UserChange)>>;

    /// Every profile of a user, oldest first (history included).
    async fn list_user_profiles(&self, user_id: i64, enc: &Encryptor) -> StoreResult<Vec<Profile>>;

    /// The user's newest profile in `state` (the drafted one a PUT edits, the submitted one an
    /// admin decides on).
    async fn find_user_profile_in_state(
        &self,
        user_id: i64,
        state: ProfileState,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>>;

    /// One profile by id.
    async fn find_profile(&self, id: i64, enc: &Encryptor) -> StoreResult<Option<Profile>>;

    /// The newest profile carrying the KYC provider's `applicant_id` (the KYC callback).
    async fn find_profile_by_applicant_id(
        &self,
        applicant_id: &str,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>>;

    /// One page of every user's profiles in id order, with the total count (admin listing).
    async fn list_profiles(
        &self,
        limit: i64,
        offset: i64,
        enc: &Encryptor,
    ) -> StoreResult<(Vec<Profile>, i64)>;
}
