//! Importing users from Barong's export: the rule of one row, shared by the management
//! `users/import` call and `barong users import FILE`, and the reading of such a file (CSV with
//! a header row, or a JSON array of objects, in the columns of `users/import`).
//!
//! A row creates a pending member with the given bcrypt digest kept as it is (login accepts it
//! and rehashes), then, as Barong does, a verified phone when `phone` is given and always a
//! profile from the profile columns. A refused phone or profile leaves the user created (the
//! profile is not attempted after a refused phone), so a second run skips the row by its e-mail.

use std::path::Path;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::crypto::encryption::Encryptor;
use crate::domain::{
    NewPhone, NewProfile, NewUser, NormalisedPhone, Profile, ProfileData, ProfileState, StateRules,
    User, UserState, generate_uid, normalise_phone, role, squish, validate_profile,
};
use crate::store::{Clash, Store, StoreError, UserChange};

/// A row's or a request's fields, by name (strings; numbers and booleans as their text).
pub type Fields = Map<String, Value>;

/// A field given as text and not blank.
fn present(fields: &Fields, name: &str) -> Option<String> {
    let text = match fields.get(name)? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!text.trim().is_empty()).then_some(text)
}

/// A parameter that does not parse, refused before anything is written (Grape's coercion).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is invalid")]
pub struct InvalidParam(pub &'static str);

/// The profile fields of `profiles` and `users/import`: the data, and the state as given.
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub data: ProfileData,
    pub state: Option<String>,
}

impl ProfileInput {
    /// Reads the fields; a `dob` that is not a date is refused. `metadata` only when
    /// `with_metadata` (`users/import` does not declare it).
    pub fn parse(fields: &Fields, with_metadata: bool) -> Result<Self, InvalidParam> {
        let dob: Option<NaiveDate> = match present(fields, "dob") {
            Some(raw) => Some(crate::domain::parse_date(&raw).ok_or(InvalidParam("dob"))?),
            None => None,
        };
        let data = ProfileData {
            first_name: present(fields, "first_name").as_deref().map(squish),
            last_name: present(fields, "last_name").as_deref().map(squish),
            dob,
            address: present(fields, "address"),
            postcode: present(fields, "postcode").as_deref().map(squish),
            city: present(fields, "city").as_deref().map(squish),
            country: present(fields, "country"),
            metadata: with_metadata.then(|| present(fields, "metadata")).flatten(),
        };
        Ok(Self {
            data,
            state: present(fields, "state"),
        })
    }
}

/// One user to import.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub email: String,
    pub password_digest: String,
    pub referral_uid: Option<String>,
    pub phone: Option<String>,
    pub profile: ProfileInput,
}

/// Why a row cannot be imported at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("email and password_digest are required")]
    Missing,
    #[error(transparent)]
    Invalid(#[from] InvalidParam),
}

impl ImportRow {
    /// Reads a row; `email` and `password_digest` are required.
    pub fn parse(fields: &Fields) -> Result<Self, RowError> {
        let (Some(email), Some(password_digest)) =
            (present(fields, "email"), present(fields, "password_digest"))
        else {
            return Err(RowError::Missing);
        };
        Ok(Self {
            email: email.trim().to_owned(),
            password_digest: password_digest.trim().to_owned(),
            referral_uid: present(fields, "referral_uid"),
            phone: present(fields, "phone"),
            profile: ProfileInput::parse(fields, false)?,
        })
    }
}

/// The part of an imported row that was refused, with Rails full messages; the user stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartRefused {
    /// The phone (and so the profile was not attempted).
    Phone(Vec<String>),
    Profile(Vec<String>),
}

impl std::fmt::Display for PartRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Phone(messages) => write!(
                f,
                "user created without phone and profile: {}",
                messages.join(", ")
            ),
            Self::Profile(messages) => {
                write!(f, "user created without profile: {}", messages.join(", "))
            }
        }
    }
}

/// A created user and what came with it.
#[derive(Debug)]
pub struct Imported {
    /// The user now (the profile's label may have changed its state and level).
    pub user: User,
    /// The profile and what creating it changed (for the caller to publish).
    pub profile: Option<(Profile, UserChange)>,
    pub refused: Option<PartRefused>,
}

/// What importing a row did.
#[derive(Debug)]
pub enum Outcome {
    /// A user with that e-mail exists: nothing written.
    Exists,
    Created(Box<Imported>),
}

/// What a row needs besides the store.
pub struct ImportContext<'a> {
    pub store: &'a dyn Store,
    pub encryptor: &'a Encryptor,
    pub rules: &'a StateRules,
    pub uid_prefix: &'a str,
}

/// Inserts a pending member with a fresh uid (retried on the rare uid clash); `None` when the
/// e-mail is taken.
pub async fn insert_member(
    ctx: &ImportContext<'_>,
    email: &str,
    digest: &str,
    referral_id: Option<i64>,
) -> Result<Option<User>, StoreError> {
    for _ in 0..5 {
        let new_user = NewUser {
            uid: generate_uid(ctx.uid_prefix, rand::random()),
            username: None,
            email: email.to_owned(),
            password_digest: digest.to_owned(),
            role: role::MEMBER.into(),
            data: None,
            level: 0,
            otp: false,
            state: UserState::Pending,
            referral_id,
            labels: Vec::new(),
        };
        match ctx
            .store
            .register_user(&new_user, false, None, ctx.rules)
            .await
        {
            Ok(user) => return Ok(Some(user)),
            Err(StoreError::Conflict(Clash::Uid)) => continue,
            Err(StoreError::Conflict(_)) => return Ok(None),
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::Conflict(Clash::Uid))
}

/// A phone row already verified (imported and management phones are never sent a code).
pub fn verified_phone(encryptor: &Encryptor, user_id: i64, number: &NormalisedPhone) -> NewPhone {
    NewPhone {
        user_id,
        country: number.country.clone(),
        code: None,
        number_encrypted: encryptor.encrypt(&number.e164),
        number_index: encryptor.blind_index(&number.e164),
        validated: true,
    }
}

/// Adds a verified phone; the full messages when the number is refused.
async fn add_phone(
    ctx: &ImportContext<'_>,
    user_id: i64,
    number: &str,
) -> Result<Result<(), Vec<String>>, StoreError> {
    let Some(normalised) = normalise_phone(number) else {
        return Ok(Err(vec!["Number is invalid".into()]));
    };
    match ctx
        .store
        .create_phone(&verified_phone(ctx.encryptor, user_id, &normalised))
        .await
    {
        Ok(_) => Ok(Ok(())),
        Err(StoreError::Conflict(_)) => Ok(Err(vec!["Number has already been taken".into()])),
        Err(other) => Err(other),
    }
}

/// Creates a profile under Barong's model rules (state default `drafted`); the validation
/// keys when refused.
pub async fn add_profile(
    store: &dyn Store,
    encryptor: &Encryptor,
    rules: &StateRules,
    user_id: i64,
    input: &ProfileInput,
) -> Result<Result<(Profile, UserChange), Vec<String>>, StoreError> {
    let state = match input.state.as_deref() {
        None => ProfileState::Drafted,
        Some(name) => match ProfileState::parse(name) {
            Some(state) => state,
            None => return Ok(Err(vec!["state.inclusion".into()])),
        },
    };
    let open_exists = state.is_open()
        && store
            .list_user_profiles(user_id, encryptor)
            .await?
            .iter()
            .any(|p| p.state.is_open());
    let errors = validate_profile(&input.data, open_exists, chrono::Utc::now().date_naive());
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let new = NewProfile {
        data: input.data.clone(),
        state,
        author: None,
        applicant_id: None,
    };
    match store.create_profile(user_id, &new, encryptor, rules).await {
        Ok(done) => Ok(Ok(done)),
        Err(StoreError::Conflict(_)) => Ok(Err(vec!["state.exists".into()])),
        Err(other) => Err(other),
    }
}

/// Imports one row: the user (unless its e-mail exists), its verified phone, its profile.
/// `full_messages` turns validation keys into the messages reported for a refused part.
pub async fn import_row(
    ctx: &ImportContext<'_>,
    row: &ImportRow,
    full_messages: impl Fn(&[String]) -> Vec<String>,
) -> Result<Outcome, StoreError> {
    if ctx.store.find_user_by_email(&row.email).await?.is_some() {
        return Ok(Outcome::Exists);
    }
    let referral_id = match &row.referral_uid {
        Some(uid) => ctx.store.find_user_by_uid(uid).await?.map(|u| u.id),
        None => None,
    };
    let Some(user) = insert_member(ctx, &row.email, &row.password_digest, referral_id).await?
    else {
        // Created meanwhile by someone else.
        return Ok(Outcome::Exists);
    };
    if let Some(number) = &row.phone
        && let Err(messages) = add_phone(ctx, user.id, number).await?
    {
        return Ok(Outcome::Created(Box::new(Imported {
            user,
            profile: None,
            refused: Some(PartRefused::Phone(messages)),
        })));
    }
    let imported =
        match add_profile(ctx.store, ctx.encryptor, ctx.rules, user.id, &row.profile).await? {
            Ok((profile, change)) => Imported {
                user: change.user.clone(),
                profile: Some((profile, change)),
                refused: None,
            },
            Err(keys) => Imported {
                user,
                profile: None,
                refused: Some(PartRefused::Profile(full_messages(&keys))),
            },
        };
    Ok(Outcome::Created(Box::new(imported)))
}

/// What an import of a file did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub skipped: usize,
    /// `(row number, reason)` of rows not imported.
    pub refused: Vec<(usize, String)>,
    /// `(row number, reason)` of rows whose user was created but whose phone or profile was
    /// refused (counted in `created` too).
    pub incomplete: Vec<(usize, String)>,
}

/// Why a file cannot be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Reads the rows of a CSV (header row first) or JSON (array of objects) export. Empty CSV
/// cells are absent fields; blank lines are skipped.
pub fn read_rows(path: &Path) -> Result<Vec<Fields>, ImportError> {
    let fail = |e: &dyn std::fmt::Display| ImportError::File(format!("{}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(&e))?;
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(&text).map_err(|e| fail(&e));
    }
    parse_csv(&text).map_err(|e| fail(&e))
}

/// CSV (RFC 4180: quoted fields may hold commas, newlines and doubled quotes) with a header.
fn parse_csv(text: &str) -> Result<Vec<Fields>, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        rows.push(
            header
                .iter()
                .zip(record.iter())
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), Value::String(v.to_owned())))
                .collect(),
        );
    }
    Ok(rows)
}

/// Imports the rows in order (a referral may name a user imported earlier in the same file).
/// Unlike the management call, an e-mail that is not one is refused: a file is not a
/// trusted back office. `full_messages` as for [`import_row`].
pub async fn import_users(
    ctx: &ImportContext<'_>,
    rows: &[Fields],
    full_messages: fn(&[String]) -> Vec<String>,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    for (index, fields) in rows.iter().enumerate() {
        let number = index + 1;
        let row = match ImportRow::parse(fields) {
            Ok(row) => row,
            Err(error) => {
                report.refused.push((number, error.to_string()));
                continue;
            }
        };
        if !crate::domain::email_is_valid(&row.email) {
            report.refused.push((number, "Email is invalid".into()));
            continue;
        }
        match import_row(ctx, &row, full_messages).await? {
            Outcome::Exists => report.skipped += 1,
            Outcome::Created(imported) => {
                report.created += 1;
                if let Some(part) = imported.refused {
                    report.incomplete.push((number, part.to_string()));
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes_commas_newlines_and_blank_lines() {
        let rows = parse_csv(
            "email,city\r\n\"a@b.c\",\"Paris, \"\"FR\"\"\"\n\nx@y.z,\"multi\nline\"\nq@r.s,\n",
        )
        .expect("csv");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["city"], "Paris, \"FR\"");
        assert_eq!(rows[1]["city"], "multi\nline");
        assert!(!rows[2].contains_key("city"), "empty cells are absent");
    }

    #[test]
    fn a_row_needs_email_and_digest_and_a_date_of_birth_that_is_one() {
        let fields = |v: Value| v.as_object().cloned().expect("object");
        assert_eq!(
            ImportRow::parse(&fields(serde_json::json!({"email": "a@b.c"}))).err(),
            Some(RowError::Missing)
        );
        let bad_dob =
            fields(serde_json::json!({"email": "a@b.c", "password_digest": "x", "dob": "soon"}));
        assert_eq!(
            ImportRow::parse(&bad_dob).err().map(|e| e.to_string()),
            Some("dob is invalid".into())
        );
    }
}
