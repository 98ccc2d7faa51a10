//! Storage: one [`Store`] trait that the rest of the server talks to, with an embedded SQLite
//! implementation (the zero-setup default) and a PostgreSQL one (production, several instances).
//!
//! The trait speaks in domain types; SQL stays inside the two implementations. Both run the same
//! test suite (`tests/it/storage.rs`), so a behaviour that differs between them is a bug.

mod admin_sql;
mod migrate;
mod passkeys;
mod postgres;
mod profiles;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::crypto::encryption::Encryptor;
use crate::domain::session::DeviceSighting;
use crate::domain::{
    Activity, ActivityFilter, ApiKey, Comment, DataStorage, Document, KeyHolder, Label, LabelWrite,
    Level, NewActivity, NewApiKey, NewDocument, NewEvent, NewLevel, NewMail, NewPermission,
    NewPhone, NewProfile, NewRestriction, NewServiceAccount, NewSession, NewUser, OutboxEvent,
    OutboxMail, Permission, Phone, Profile, ProfileChanges, ProfileState, Restriction,
    ServiceAccount, Session, StateRules, StoredSigningKey, User, UserFilter, UserUpdate,
};

pub use passkeys::PasskeyStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// What can go wrong below the domain: the HTTP layer maps these to Barong's keys in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connect refused, pool timeout): callers answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint refused the write; carries the column (or constraint) that clashed.
    #[error("conflict on {0}")]
    Conflict(String),
    /// A migration failed; the message names the file.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Anything else the driver reported.
    #[error("database error: {0}")]
    Backend(String),
}

/// The Event API switch of a store: `BARONG_DOMAIN` (the `domain` of system events) when the
/// Event API is on; `None`, the default, writes no event at all.
pub type EventDomain = Option<Arc<String>>;

/// What `create_documents` needs for the sealed `model.document.created` events: the encryption
/// key (to read the number and seal the payload) and the public URL of each document's upload,
/// in the order of the documents (the store does not know the object storage).
#[derive(Clone)]
pub struct DocumentEvents {
    pub enc: Encryptor,
    pub upload_urls: Vec<String>,
}

impl DocumentEvents {
    /// The event record of the `i`-th inserted document.
    pub(crate) fn record(
        &self,
        i: usize,
        d: &Document,
        user: serde_json::Value,
    ) -> serde_json::Value {
        let number = d
            .doc_number_encrypted
            .as_deref()
            .and_then(|n| self.enc.decrypt(n).ok());
        let url = self.upload_urls.get(i).map_or("", String::as_str);
        crate::domain::event::document_json(d, url, number.as_deref(), user)
    }
}

/// Shorthand used by every store method.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which implementation is behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open a store: the URL from `BARONG_DATABASE_URL` plus pool limits.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    pub pool_size: usize,
    pub connect_timeout: Duration,
}

/// The persistence interface of the server.
/// A one-time token being used: the e-mail it was sent to, its one-time claim, and its `jti`
/// with the time until which the `jti` is remembered as used.
#[derive(Debug, Clone, Copy)]
pub struct ClaimUse<'a> {
    pub email: &'a str,
    pub token: &'a str,
    pub jti: &'a str,
    pub expires_at: i64,
}

#[async_trait]
pub trait Store: PasskeyStore + Send + Sync + 'static {
    /// Which backend this is (for logs and `barong config`).
    fn backend(&self) -> Backend;

    /// Applies pending migrations from `sql/<backend>/`; returns the versions it applied.
    /// Safe to run twice and from two processes at once.
    async fn migrate(&self) -> StoreResult<Vec<String>>;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    /// True when no level and no permission exists yet: the signal to load the default seeds.
    async fn is_unseeded(&self) -> StoreResult<bool>;

    /// Inserts a level unless one with the same key and value exists; true when inserted.
    async fn insert_level_if_absent(&self, level: &NewLevel) -> StoreResult<bool>;
    async fn list_levels(&self) -> StoreResult<Vec<Level>>;

    /// Inserts a permission unless an identical (role, verb, path, action) exists.
    async fn insert_permission_if_absent(&self, p: &NewPermission) -> StoreResult<bool>;
    async fn list_permissions(&self) -> StoreResult<Vec<Permission>>;

    /// Inserts a restriction unless an identical (category, scope, value, state) exists.
    async fn insert_restriction_if_absent(&self, r: &NewRestriction) -> StoreResult<bool>;
    async fn list_restrictions(&self) -> StoreResult<Vec<Restriction>>;

    /// Creates a user together with its private labels, in one transaction.
    /// A clash on e-mail, uid or username is [`StoreError::Conflict`] naming the column.
    async fn create_user(&self, user: &NewUser) -> StoreResult<User>;
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn find_user_by_uid(&self, uid: &str) -> StoreResult<Option<User>>;
    async fn count_users(&self) -> StoreResult<i64>;

    // ---- sessions -------------------------------------------------------------------------
    /// Stores a new session (its id is already the hash of the cookie value).
    async fn create_session(&self, session: &NewSession) -> StoreResult<()>;
    async fn find_session(&self, id: &str) -> StoreResult<Option<Session>>;
    /// Deletes one session; true when it existed.
    async fn delete_session(&self, id: &str) -> StoreResult<bool>;
    /// Deletes every session of every user (a `blocklogin` restriction was enabled); returns
    /// how many.
    async fn delete_all_sessions(&self) -> StoreResult<u64>;
    /// Deletes every session of a user except `keep`; returns the deleted ids so caches can
    /// forget them.
    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>>;
    /// Pushes sliding expiries forward in one batch (the write-behind of the authz path);
    /// an expiry never moves backwards.
    async fn extend_sessions(&self, expiries: &[(String, i64)]) -> StoreResult<()>;
    /// A user's sessions not expired at `now` (epoch seconds), newest first.
    async fn list_user_sessions(&self, user_id: i64, now: i64) -> StoreResult<Vec<Session>>;
    /// Deletes the user's session with this public id; its storage id (for the caches), or
    /// `None` when the user has no session by that id (another user's id included).
    async fn delete_user_session(
        &self,
        user_id: i64,
        public_id: &str,
    ) -> StoreResult<Option<String>>;
    /// Remembers a login of the user from `device` on `network` at `at` (epoch seconds) and
    /// says whether the pair was known.
    async fn record_user_device(
        &self,
        user_id: i64,
        device: &str,
        network: &str,
        at: i64,
    ) -> StoreResult<DeviceSighting>;

    // ---- activities ------------------------------------------------------------------------
    /// Inserts a batch of activities in one transaction, skipping invalid rows (Barong drops
    /// them silently) and rows whose `target_uid` names no user; returns how many were stored.
    async fn insert_activities(&self, activities: &[NewActivity]) -> StoreResult<usize>;
    /// A user's activities, newest first (filters are applied by the caller's query builder).
    async fn list_user_activities(&self, user_id: i64) -> StoreResult<Vec<Activity>>;

    // ---- authz -----------------------------------------------------------------------------
    async fn find_user_by_id(&self, id: i64) -> StoreResult<Option<User>>;
    /// Changes what the authz decision depends on; the caller publishes the invalidation.
    async fn update_user_access(
        &self,
        id: i64,
        role: &str,
        state: &str,
        level: i32,
        otp: bool,
    ) -> StoreResult<()>;
    /// A clash on `kid` is [`StoreError::Conflict`].
    async fn create_api_key(&self, key: &NewApiKey) -> StoreResult<ApiKey>;
    async fn find_api_key(&self, kid: &str) -> StoreResult<Option<ApiKey>>;
    /// Sets a key's state; true when the key exists.
    async fn set_api_key_state(&self, kid: &str, state: &str) -> StoreResult<bool>;
    /// Records the last authenticated use of keys in one batch (the authz path's write-behind);
    /// a use never moves backwards.
    async fn record_api_key_uses(&self, uses: &[(String, i64)]) -> StoreResult<()>;
    async fn create_service_account(
        &self,
        account: &NewServiceAccount,
    ) -> StoreResult<ServiceAccount>;
    async fn find_service_account_by_id(&self, id: i64) -> StoreResult<Option<ServiceAccount>>;
    /// Deletes a permission row; true when it existed.
    async fn delete_permission(&self, id: i64) -> StoreResult<bool>;
    /// Announces an invalidation to every instance sharing this database (PostgreSQL
    /// `NOTIFY`; a no-op for the single-process SQLite backend).
    async fn notify_invalidation(&self, message: &str) -> StoreResult<()>;
    /// Streams invalidations announced by any instance into `sink` until it closes or the
    /// connection drops (PostgreSQL `LISTEN`; SQLite returns at once).
    async fn listen_invalidations(
        &self,
        sink: tokio::sync::mpsc::Sender<String>,
    ) -> StoreResult<()>;

    // ---- signing keys ----------------------------------------------------------------------
    /// The current key and the keys retired after `retired_after`, newest first.
    async fn list_signing_keys(&self, retired_after: i64) -> StoreResult<Vec<StoredSigningKey>>;
    /// Makes `new` the current key in one transaction: the current one (or, on the first
    /// rotation, `first`: the configured key, recorded so it keeps verifying) is retired at
    /// `new.created_at`. Concurrent rotations are serialised.
    async fn rotate_signing_key(
        &self,
        new: &StoredSigningKey,
        first: &StoredSigningKey,
    ) -> StoreResult<()>;

    // ---- identity --------------------------------------------------------------------------
    /// Exact (already lower-cased) username.
    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// A user's labels of every scope, oldest first.
    async fn list_user_labels(&self, user_id: i64) -> StoreResult<Vec<Label>>;
    /// Sign-up in one transaction: inserts the user; if `superadmin_if_first` and it is now the
    /// only user, it becomes an active `superadmin` (the role only when a `superadmin`
    /// permission exists) with the private label `email:verified` and its level recomputed;
    /// otherwise `mail` (the confirmation) is queued. Clashes are [`StoreError::Conflict`].
    async fn register_user(
        &self,
        user: &NewUser,
        superadmin_if_first: bool,
        mail: Option<&NewMail>,
        rules: &StateRules,
    ) -> StoreResult<User>;
    /// E-mail confirmation in one transaction: consumes the stored confirmation claim of the
    /// e-mail (it must be `claim.token` and unexpired), marks `jti` used (until `expires_at`),
    /// sets the private label `email:verified` and recomputes state and level. `None` when the
    /// claim does not match or the token was already used.
    async fn confirm_email(
        &self,
        user_id: i64,
        claim: &ClaimUse<'_>,
        rules: &StateRules,
    ) -> StoreResult<Option<User>>;
    /// Queues one mail.
    async fn queue_mail(&self, mail: &NewMail) -> StoreResult<()>;
    /// Marks `key` used until `expires_at`; `false` when it already was (a replay).
    async fn use_once(&self, key: &str, expires_at: i64) -> StoreResult<bool>;
    /// Remembers `reset_token` as the only valid reset for `email` and queues its mail, in one
    /// transaction.
    async fn set_reset_token(
        &self,
        email: &str,
        reset_token: &str,
        expires_at: i64,
        mail: &NewMail,
    ) -> StoreResult<()>;
    /// The latest unexpired reset token of `email`.
    async fn find_reset_token(&self, email: &str, now: i64) -> StoreResult<Option<String>>;
    /// Password reset in one transaction: consumes the stored reset token of the e-mail (it
    /// must be `claim.token` and unexpired), marks `jti` used, stores the new digest and
    /// deletes every session of the user (their ids are returned). `None` when the claim does
    /// not match or the token was already used.
    async fn reset_password(
        &self,
        user_id: i64,
        claim: &ClaimUse<'_>,
        digest: &str,
    ) -> StoreResult<Option<Vec<String>>>;
    /// Replaces a password digest (rehash of a Barong bcrypt digest at login).
    async fn update_password_digest(&self, user_id: i64, digest: &str) -> StoreResult<()>;
    /// Claims up to `limit` unsent mails that are due, oldest first: their attempt count goes
    /// up and they are not due again for `lease_secs` (so another worker skips them).
    async fn claim_mails(&self, limit: i64, lease_secs: i64) -> StoreResult<Vec<OutboxMail>>;
    /// Marks a mail delivered (once; a second call changes nothing).
    async fn mark_mail_sent(&self, id: i64) -> StoreResult<()>;
    /// Records a failed delivery and when to try again.
    async fn mark_mail_failed(&self, id: i64, error: &str, retry_in_secs: i64) -> StoreResult<()>;
    /// Deletes mails delivered more than `older_than_secs` ago; returns how many.
    async fn purge_sent_mails(&self, older_than_secs: i64) -> StoreResult<u64>;
    /// Counts mails not delivered yet.
    async fn count_unsent_mails(&self) -> StoreResult<i64>;
    /// Stores an active whitelink token until `expires_at`.
    async fn create_whitelink_token(&self, token: &str, expires_at: i64) -> StoreResult<()>;
    /// Whether `token` is an active, unexpired whitelink token.
    async fn whitelink_token_valid(&self, token: &str, now: i64) -> StoreResult<bool>;

    // ---- resource ----------------------------------------------------------------------------
    /// Replaces a user's `data` (already validated).
    async fn update_user_data(&self, user_id: i64, data: &str) -> StoreResult<User>;
    /// Replaces the password digest and deletes the user's sessions except `keep`, in one
    /// transaction; returns the deleted session ids.
    async fn change_password(
        &self,
        user_id: i64,
        digest: &str,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>>;
    /// Self-deletion in one transaction: private label `delete:by_user`, state and level
    /// recomputed (the `delete` trigger makes the user `deleted`), the side effects of a state
    /// change (keys deactivated, service accounts get the state), every session deleted.
    async fn delete_own_account(&self, user_id: i64, rules: &StateRules)
    -> StoreResult<UserChange>;
    /// Creates a label and recomputes state and level, in one transaction. A clash on
    /// (user, key, scope) is [`StoreError::Conflict`]`("key")`.
    async fn create_label(
        &self,
        user_id: i64,
        key: &str,
        value: &str,
        scope: &str,
        rules: &StateRules,
    ) -> StoreResult<(Label, UserChange)>;
    /// Changes the value of the user's label (key, scope) and recomputes; `None` when absent.
    async fn update_label_value(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        value: &str,
        rules: &StateRules,
    ) -> StoreResult<Option<(Label, UserChange)>>;
    /// Deletes the user's label (key, scope) and recomputes; `None` when absent.
    async fn delete_label(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>>;
    /// Stores (or overwrites, as `generate_qrcode` does) the user's encrypted TOTP secret; a new
    /// secret starts with no accepted step (codes of the old one mean nothing for it).
    async fn set_otp_secret(&self, user_id: i64, secret_encrypted: &str) -> StoreResult<()>;
    /// The encrypted TOTP secret and the last accepted time step.
    async fn find_otp_secret(&self, user_id: i64) -> StoreResult<Option<(String, i64)>>;
    /// Records `step` as the last accepted one; false (a replay) when a step at or after it was
    /// already accepted. Atomic, so two concurrent uses of one code cannot both pass.
    async fn accept_otp_step(&self, user_id: i64, step: i64) -> StoreResult<bool>;
    /// Turns 2FA on (otp=true, private label `otp:enabled`, the user's sessions except `keep`
    /// deleted) or off (otp=false, labels with key `otp` deleted, active keys of the user and of
    /// its service accounts deactivated), with state and level recomputed, in one transaction.
    async fn set_user_otp(
        &self,
        user_id: i64,
        enabled: bool,
        keep: Option<&str>,
        rules: &StateRules,
    ) -> StoreResult<UserChange>;
    /// One page of a holder's keys ordered by `order_by` (a column name from
    /// [`API_KEY_COLUMNS`]; others are refused by the caller), with the total count.
    async fn list_api_keys(
        &self,
        holder: KeyHolder,
        order_by: &str,
        descending: bool,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ApiKey>, i64)>;
    /// Replaces a key's scope and, when given, its state; the updated key.
    async fn update_api_key(
        &self,
        id: i64,
        scope: &[String],
        state: Option<&str>,
    ) -> StoreResult<Option<ApiKey>>;
    /// Deletes a key; true when it existed.
    async fn delete_api_key(&self, id: i64) -> StoreResult<bool>;
    /// Stores a data storage row and sets the private label `<title>:recorded` (state and level
    /// recomputed), in one transaction; a title the user already has (any case) is
    /// [`StoreError::Conflict`]`("title")`.
    async fn create_data_storage(
        &self,
        user_id: i64,
        title: &str,
        data: &str,
        rules: &StateRules,
    ) -> StoreResult<(DataStorage, UserChange)>;
    /// A user's data storage rows, oldest first.
    async fn list_data_storages(&self, user_id: i64) -> StoreResult<Vec<DataStorage>>;
    /// The service accounts a user owns, by id.
    async fn list_owned_service_accounts(&self, owner_id: i64) -> StoreResult<Vec<ServiceAccount>>;
    async fn find_service_account_by_uid(&self, uid: &str) -> StoreResult<Option<ServiceAccount>>;
    async fn find_service_account_by_email(
        &self,
        email: &str,
    ) -> StoreResult<Option<ServiceAccount>>;
    /// One page of the service accounts (of one owner, or all), by id, with the total.
    async fn list_service_accounts(
        &self,
        owner_id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ServiceAccount>, i64)>;
    /// Sets the account `disabled` and its active keys `inactive`, in one transaction; the
    /// account now and the deactivated kids, `None` when there is no such account.
    async fn disable_service_account(
        &self,
        id: i64,
    ) -> StoreResult<Option<(ServiceAccount, Vec<String>)>>;
    /// Gives the account to `owner_id` with that owner's `state` and `level`, in one
    /// transaction; when the state becomes `disabled` its active keys become `inactive`. The
    /// account now and the deactivated kids, `None` when there is no such account.
    async fn reassign_service_account(
        &self,
        id: i64,
        owner_id: i64,
        state: &str,
        level: i32,
    ) -> StoreResult<Option<(ServiceAccount, Vec<String>)>>;

    // ---- admin -------------------------------------------------------------------------------
    // The admin API. Every write returns what the caller must publish on the
    // invalidation bus; none publishes by itself.
    /// One page of users matching `filter` (distinct, ordered), with the total count.
    async fn admin_list_users(
        &self,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)>;
    /// Applies one admin change with Barong's after-update side effects (keys deactivated
    /// when 2FA goes off or the state leaves `active`, service accounts follow a non-active
    /// state); a changed `otp` flag deletes the private `otp` label. An e-mail clash is
    /// [`StoreError::Conflict`]`("email")`.
    async fn admin_update_user(&self, user_id: i64, update: &UserUpdate)
    -> StoreResult<UserChange>;
    /// Creates or updates the label (key, scope) of a user with its description, and recomputes
    /// state and level, in one transaction. `None` when an update finds no label; a create
    /// that finds one is [`StoreError::Conflict`]`("key")`.
    async fn admin_write_label(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        value: &str,
        write: &LabelWrite,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>>;
    /// Private labels counted by (key, value), ordered by key then value.
    async fn count_private_labels(&self) -> StoreResult<Vec<(String, String, i64)>>;
    /// One page of the users having a label that matches the filter, by user id, with the
    /// total (each user once).
    async fn users_with_label(
        &self,
        filter: &crate::domain::LabelFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)>;
    /// Users with the private label `document` at `pending` or `replaced`, by that label's
    /// `updated_at`.
    async fn users_with_pending_documents(&self) -> StoreResult<Vec<User>>;
    async fn create_comment(
        &self,
        user_id: i64,
        author_uid: &str,
        title: &str,
        data: &str,
    ) -> StoreResult<Comment>;
    async fn find_comment(&self, id: i64) -> StoreResult<Option<Comment>>;
    /// Replaces the given fields; `None` when the comment does not exist.
    async fn update_comment(
        &self,
        id: i64,
        title: Option<&str>,
        data: Option<&str>,
    ) -> StoreResult<Option<Comment>>;
    /// Deletes a comment and returns it; `None` when it did not exist.
    async fn delete_comment(&self, id: i64) -> StoreResult<Option<Comment>>;
    /// A user's comments by id.
    async fn list_comments(&self, user_id: i64) -> StoreResult<Vec<Comment>>;
    /// Deletes the user's data storage row `title` (any case; its label stays); true when it
    /// existed.
    async fn delete_data_storage(&self, user_id: i64, title: &str) -> StoreResult<bool>;
    /// Inserts a permission as given (verb and action already upper-cased).
    async fn create_permission(&self, p: &NewPermission) -> StoreResult<Permission>;
    /// Replaces every field of a permission; `None` when it does not exist.
    async fn update_permission(
        &self,
        id: i64,
        p: &NewPermission,
    ) -> StoreResult<Option<Permission>>;
    /// Replaces the whole permissions table in one transaction; returns how many rows it holds.
    async fn replace_permissions(&self, permissions: &[NewPermission]) -> StoreResult<usize>;
    /// Inserts a restriction with its effective code.
    async fn create_restriction(&self, r: &NewRestriction) -> StoreResult<Restriction>;
    /// Replaces every field of a restriction (code as given); `None` when it does not exist.
    async fn update_restriction(
        &self,
        id: i64,
        r: &NewRestriction,
    ) -> StoreResult<Option<Restriction>>;
    /// Deletes a restriction; true when it existed.
    async fn delete_restriction(&self, id: i64) -> StoreResult<bool>;
    /// One page of activities matching `filter`, newest first, with the total count.
    async fn admin_list_activities(
        &self,
        filter: &ActivityFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Activity>, i64)>;
    /// Activities `topic`/`action`/`result` of category `user` counted per UTC day
    /// (`YYYY-MM-DD`), oldest day first.
    async fn activity_counts_per_day(
        &self,
        topic: &str,
        action: &str,
        result: &str,
    ) -> StoreResult<Vec<(String, i64)>>;

    // ---- KYC: profiles ----------------------------------------------------------------
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

    // ---- KYC: phones and documents ---------------------------------------------------
    // Numbers are stored encrypted by the caller (`Encryptor::encrypt`) with their blind index
    // (`Encryptor::blind_index` of the E.164 number / `normalise_doc_number`); stores compare
    // indexes only and never see a number in clear.

    /// Inserts a phone (verified at once when `phone.validated`). The user already having the
    /// number is [`StoreError::Conflict`]`("number")`; creating it verified while another account
    /// verified it is `Conflict("verified")`.
    async fn create_phone(&self, phone: &NewPhone) -> StoreResult<Phone>;
    /// A user's phones, oldest first.
    async fn list_user_phones(&self, user_id: i64) -> StoreResult<Vec<Phone>>;
    /// The user's phone with this number index.
    async fn find_user_phone(&self, user_id: i64, number_index: &str)
    -> StoreResult<Option<Phone>>;
    /// Every phone with this number index, any user, oldest first (at most one is verified).
    async fn list_phones_by_number_index(&self, number_index: &str) -> StoreResult<Vec<Phone>>;
    /// Records that a code is being sent to the phone, if the resend limits allow it: the last
    /// code at least `min_interval` s before `now` (unix seconds) and fewer than `max_in_window`
    /// codes in the current `window` s. Atomic; false (nothing recorded) when refused.
    async fn claim_phone_code_send(
        &self,
        phone_id: i64,
        now: i64,
        min_interval: i64,
        window: i64,
        max_in_window: i64,
    ) -> StoreResult<bool>;
    /// Marks the phone verified, sets the private label `phone: verified` and recomputes state
    /// and level, in one transaction. `None` when the phone is gone; `Conflict("verified")` when
    /// another account verified the number first.
    async fn verify_phone(
        &self,
        phone_id: i64,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>>;
    /// Deletes a phone; true when it existed.
    async fn delete_phone(&self, phone_id: i64) -> StoreResult<bool>;
    /// Inserts the documents of one upload request (files already stored) and, when given, sets
    /// the private `label` (key, value) with state and level recomputed, in one transaction.
    async fn create_documents(
        &self,
        user_id: i64,
        documents: &[NewDocument],
        label: Option<(&str, &str)>,
        rules: &StateRules,
        events: &DocumentEvents,
    ) -> StoreResult<(Vec<Document>, UserChange)>;
    /// How many documents the user has (of one `identificator` when given).
    async fn count_user_documents(
        &self,
        user_id: i64,
        identificator: Option<&str>,
    ) -> StoreResult<i64>;
    /// A user's documents (addresses included), oldest first.
    async fn list_user_documents(&self, user_id: i64) -> StoreResult<Vec<Document>>;
    /// Every document with this number index, any user, oldest first (duplicate numbers).
    async fn list_documents_by_number_index(&self, index: &str) -> StoreResult<Vec<Document>>;
    /// One page of the documents of users whose private `document` label is `pending` (awaiting
    /// review), oldest first, with the total count.
    async fn list_pending_documents(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Document>, i64)>;

    // ---- events (Barong's Event API) ------------------------------------------
    // Model events (`model.user.*`, `model.label.*`) and `system.user.email.confirmed` are written
    // by the store methods above inside their own transactions once `enable_events` was called.
    /// Turns event recording on; `domain` is the `domain` field of system events.
    fn enable_events(&self, domain: &str);
    /// Writes events in one transaction of their own (for events that follow a single write,
    /// such as `system.session.create`); nothing when events are off.
    async fn queue_events(&self, events: &[NewEvent]) -> StoreResult<()>;
    /// Claims up to `limit` undelivered due events, oldest first, leasing them for `lease_secs`.
    async fn claim_events(&self, limit: i64, lease_secs: i64) -> StoreResult<Vec<OutboxEvent>>;
    /// Marks an event delivered (once).
    async fn mark_event_sent(&self, id: i64) -> StoreResult<()>;
    /// Records a failed delivery and when to try again.
    async fn mark_event_failed(&self, id: i64, error: &str, retry_in_secs: i64) -> StoreResult<()>;
    /// Counts events not delivered yet.
    async fn count_unsent_events(&self) -> StoreResult<i64>;

    // ---- Observability (hardening) -------------------------------------------------------------
    /// The connection pool's usage now, for `/metrics`.
    fn pool_status(&self) -> PoolStatus;

    /// Abuse-limit counters every instance on this database shares, when the backend can hold
    /// them; `None` (SQLite: one process per database file) keeps them in process.
    fn shared_counters(&self) -> Option<Arc<dyn SharedCounters>> {
        None
    }
}

/// Fixed-window counters kept in the database, so several instances enforce one limit.
///
/// Every method is one atomic statement: two instances taking the last slot of a window at the
/// same moment cannot both get it, and no increment is lost.
#[async_trait]
pub trait SharedCounters: Send + Sync + 'static {
    /// Takes one of the `limit` slots of `key` in `bucket`, opening a `window_secs` window when
    /// none is open; false (nothing counted) when the window's slots are used up.
    async fn take_slot(
        &self,
        bucket: &str,
        key: &str,
        limit: u32,
        window_secs: u64,
    ) -> StoreResult<bool>;

    /// Whether the open window of `key` has no slot left (counts nothing).
    async fn slots_used_up(&self, bucket: &str, key: &str, limit: u32) -> StoreResult<bool>;

    /// Gives one slot of `key` back (an attempt that turned out not to count).
    async fn give_back(&self, bucket: &str, key: &str) -> StoreResult<()>;

    /// Closes the window of `key`.
    async fn forget(&self, bucket: &str, key: &str) -> StoreResult<()>;

    /// Deletes the windows that have ended; returns how many.
    async fn purge_ended(&self) -> StoreResult<u64>;
}

/// Connections of a store's pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// The most connections the pool opens.
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    /// Open connections idle now.
    pub available: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// The api_keys columns a listing may be ordered by (Barong accepts any column of the model).
pub const API_KEY_COLUMNS: &[&str] = &[
    "id",
    "key_holder_account_type",
    "key_holder_account_id",
    "kid",
    "algorithm",
    "scope",
    "secret_encrypted",
    "state",
    "created_at",
    "updated_at",
];

/// A user after a change, with what the caches must forget: deleted session ids and the kids
/// of API keys that were deactivated.
#[derive(Debug, Clone)]
pub struct UserChange {
    pub user: User,
    pub sessions: Vec<String>,
    pub kids: Vec<String>,
}

/// A new session's public id: 128 random bits, unrelated to the cookie.
pub(crate) fn new_public_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Names the two unique rules of phones the same way on both backends (see
/// [`Store::create_phone`]).
pub(crate) fn phone_conflict(error: StoreError) -> StoreError {
    match error {
        StoreError::Conflict(column) if column.contains("user_id") => {
            StoreError::Conflict("number".into())
        }
        StoreError::Conflict(_) => StoreError::Conflict("verified".into()),
        other => other,
    }
}

/// Opens the store named by `options.url` (`sqlite://PATH` or `postgres://...`).
pub async fn open(options: &StoreOptions) -> StoreResult<Arc<dyn Store>> {
    let url = options.url.as_str();
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(SqliteStore::open(path, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(options).await?))
    } else {
        Err(StoreError::Backend(
            "BARONG_DATABASE_URL must start with sqlite:// or postgres://".into(),
        ))
    }
}
