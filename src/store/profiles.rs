//! KYC profiles. Personal fields are sealed (encrypted) before
//! they reach SQL and opened after, so no SQL statement, row or log line holds them in clear.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::label_rows::set_label;
use super::labels::relabelled;
use super::rows::user_by_id;
use super::sql::{Database, Exec, Row, Value, all, args};
use super::{Clash, EventDomain, StoreError, StoreResult, UserChange, events};
use crate::crypto::encryption::Encryptor;
use crate::domain::{
    LabelScope, NewProfile, Profile, ProfileChanges, ProfileData, ProfileState, StateRules, User,
};

/// The stored form of [`ProfileData`]: the six personal fields encrypted, country and
/// metadata as they are.
#[derive(Clone, Default)]
struct SealedProfile {
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
struct ProfileRow {
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
fn seal(data: &ProfileData, enc: &Encryptor) -> SealedProfile {
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
fn open(row: ProfileRow, enc: &Encryptor) -> StoreResult<Profile> {
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
fn open_all(rows: Vec<ProfileRow>, enc: &Encryptor) -> StoreResult<Vec<Profile>> {
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
    /// `Conflict(Clash::OpenProfile)` (Barong's `state.exists`), checked atomically.
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

fn row_from(row: &Row) -> StoreResult<ProfileRow> {
    Ok(ProfileRow {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        author: row.get("author")?,
        applicant_id: row.get("applicant_id")?,
        sealed: SealedProfile {
            first_name: row.get("first_name_encrypted")?,
            last_name: row.get("last_name_encrypted")?,
            dob: row.get("dob_encrypted")?,
            address: row.get("address_encrypted")?,
            postcode: row.get("postcode_encrypted")?,
            city: row.get("city_encrypted")?,
            country: row.get("country")?,
            metadata: row.get("metadata")?,
        },
        state: row.get("state")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// The label follows the profile, then state and level follow the labels.
async fn after_write(
    c: &mut impl Exec,
    domain: &EventDomain,
    before: &User,
    state: i64,
    rules: &StateRules,
) -> StoreResult<UserChange> {
    let name = ProfileState::from_code(state).map_or("drafted", ProfileState::as_str);
    set_label(
        c,
        domain,
        before.id,
        "profile",
        name,
        LabelScope::Private.as_str(),
    )
    .await?;
    relabelled(c, domain, before, rules).await
}

/// The profiles `WHERE <condition>`, opened.
async fn profiles_where(
    c: &mut impl Exec,
    condition: &str,
    args: &[Value],
    enc: &Encryptor,
) -> StoreResult<Vec<Profile>> {
    let rows = c
        .query(&format!("SELECT * FROM profiles WHERE {condition}"), args)
        .await?;
    open_all(all(rows, row_from)?, enc)
}

#[async_trait]
impl<S: Database> ProfileStore for S {
    async fn create_profile(
        &self,
        user_id: i64,
        profile: &NewProfile,
        enc: &Encryptor,
        rules: &StateRules,
    ) -> StoreResult<(Profile, UserChange)> {
        let domain = self.event_domain();
        let s = seal(&profile.data, enc);
        let mut tx = self.begin().await?;
        // One writer per user at a time, so the "one open profile" check below holds.
        tx.lock(
            "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
            args![user_id],
        )
        .await?;
        if profile.state.is_open() {
            let exists: bool = tx
                .scalar(
                    "SELECT EXISTS (SELECT 1 FROM profiles WHERE user_id = $1 AND state IN (0, 1))",
                    args![user_id],
                )
                .await?;
            if exists {
                return Err(StoreError::Conflict(Clash::OpenProfile));
            }
        }
        let before = user_by_id(&mut tx, user_id).await?;
        let row = tx
            .query_one(
                "INSERT INTO profiles (user_id, author, applicant_id, first_name_encrypted,
                     last_name_encrypted, dob_encrypted, address_encrypted,
                     postcode_encrypted, city_encrypted, country, state, metadata,
                     created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now(), now())
                 RETURNING *",
                args![
                    user_id,
                    &profile.author,
                    &profile.applicant_id,
                    s.first_name,
                    s.last_name,
                    s.dob,
                    s.address,
                    s.postcode,
                    s.city,
                    s.country,
                    profile.state.code(),
                    s.metadata,
                ],
            )
            .await?;
        let row = row_from(&row)?;
        let change = after_write(&mut tx, &domain, &before, row.state, rules).await?;
        let profile = open(row, enc)?;
        events::profile_changed(&mut tx, &domain, None, &profile, enc).await?;
        tx.commit().await?;
        Ok((profile, change))
    }

    async fn update_profile(
        &self,
        id: i64,
        changes: &ProfileChanges,
        enc: &Encryptor,
        rules: &StateRules,
    ) -> StoreResult<Option<(Profile, UserChange)>> {
        let domain = self.event_domain();
        let s = seal(&changes.data, enc);
        let state = changes.state.map(ProfileState::code);
        let only = changes.only_in_state.map(ProfileState::code);
        let mut tx = self.begin().await?;
        let Some(found) = tx
            .query_opt(
                "SELECT * FROM profiles
                 WHERE id = $1 AND (CAST($2 AS SMALLINT) IS NULL OR state = $2) FOR UPDATE",
                args![id, only],
            )
            .await?
        else {
            return Ok(None);
        };
        let found = row_from(&found)?;
        let before = user_by_id(&mut tx, found.user_id).await?;
        let row = tx
            .query_one(
                "UPDATE profiles SET
                     first_name_encrypted = COALESCE(CAST($2 AS TEXT), first_name_encrypted),
                     last_name_encrypted = COALESCE(CAST($3 AS TEXT), last_name_encrypted),
                     dob_encrypted = COALESCE(CAST($4 AS TEXT), dob_encrypted),
                     address_encrypted = COALESCE(CAST($5 AS TEXT), address_encrypted),
                     postcode_encrypted = COALESCE(CAST($6 AS TEXT), postcode_encrypted),
                     city_encrypted = COALESCE(CAST($7 AS TEXT), city_encrypted),
                     country = COALESCE(CAST($8 AS TEXT), country),
                     metadata = COALESCE(CAST($9 AS TEXT), metadata),
                     state = COALESCE(CAST($10 AS SMALLINT), state),
                     applicant_id = COALESCE(CAST($11 AS TEXT), applicant_id),
                     updated_at = now()
                 WHERE id = $1 RETURNING *",
                args![
                    id,
                    s.first_name,
                    s.last_name,
                    s.dob,
                    s.address,
                    s.postcode,
                    s.city,
                    s.country,
                    s.metadata,
                    state,
                    &changes.applicant_id,
                ],
            )
            .await?;
        let row = row_from(&row)?;
        let change = after_write(&mut tx, &domain, &before, row.state, rules).await?;
        let (before, after) = (open(found, enc)?, open(row, enc)?);
        events::profile_changed(&mut tx, &domain, Some(&before), &after, enc).await?;
        tx.commit().await?;
        Ok(Some((after, change)))
    }

    async fn list_user_profiles(&self, user_id: i64, enc: &Encryptor) -> StoreResult<Vec<Profile>> {
        let mut c = self.conn().await?;
        profiles_where(&mut c, "user_id = $1 ORDER BY id", args![user_id], enc).await
    }

    async fn find_user_profile_in_state(
        &self,
        user_id: i64,
        state: ProfileState,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        let condition = "user_id = $1 AND state = $2 ORDER BY id DESC LIMIT 1";
        let mut c = self.conn().await?;
        let found = profiles_where(&mut c, condition, args![user_id, state.code()], enc).await?;
        Ok(found.into_iter().next())
    }

    async fn find_profile(&self, id: i64, enc: &Encryptor) -> StoreResult<Option<Profile>> {
        let mut c = self.conn().await?;
        let found = profiles_where(&mut c, "id = $1", args![id], enc).await?;
        Ok(found.into_iter().next())
    }

    async fn find_profile_by_applicant_id(
        &self,
        applicant_id: &str,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        let condition = "applicant_id = $1 ORDER BY id DESC LIMIT 1";
        let mut c = self.conn().await?;
        let found = profiles_where(&mut c, condition, args![applicant_id], enc).await?;
        Ok(found.into_iter().next())
    }

    async fn list_profiles(
        &self,
        limit: i64,
        offset: i64,
        enc: &Encryptor,
    ) -> StoreResult<(Vec<Profile>, i64)> {
        let mut c = self.conn().await?;
        let total = c.scalar("SELECT COUNT(*) FROM profiles", args![]).await?;
        let page = profiles_where(
            &mut c,
            "TRUE ORDER BY id LIMIT $1 OFFSET $2",
            args![limit, offset],
            enc,
        )
        .await?;
        Ok((page, total))
    }
}
