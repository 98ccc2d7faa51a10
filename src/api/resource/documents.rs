//! `resource/documents` and `resource/addresses`: KYC uploads.
//!
//! Each file is streamed from the multipart body into object storage as it arrives (never held
//! whole in memory), checked by size (`BARONG_UPLOAD_SIZE_MAX_RANGE` MiB) and by its real type
//! (JPEG, PNG or PDF recognised from its first bytes; the client's content type is ignored).
//! Rows are written only after every file is stored and every rule passed, in one transaction;
//! on any failure the files stored by the request are deleted, so nothing is left behind.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::entities;
use crate::api::error::ApiError;
use crate::api::params::{FileField, Params, StreamingForm, Validator};
use crate::domain::{
    ADDRESS_DOC_TYPE, DOC_CATEGORIES, NewDocument, UploadKind, doc_number_is_valid,
    normalise_doc_number,
};
use crate::service::changes::publish_change;
use crate::service::documents::{
    discard, document_label, extension_refused, max_file_size, parse_date, storage_error,
    too_small, unknown_type, upload_key, write_capped,
};
use crate::service::error::Key;

/// `GET documents`: the user's documents (`upload`, `doc_type`, masked `doc_number`,
/// `doc_expire`).
pub async fn list(
    State(state): State<ApiState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let mask = state.config.users.api_data_masking_enabled;
    let documents = state.store.list_user_documents(current.user.id).await?;
    Ok(Json(Value::Array(
        documents
            .iter()
            .map(|d| entities::document_summary(d, &state.encryptor, &state.uploads, mask))
            .collect(),
    )))
}

/// What the body of one request left in storage, and the first upload rule a file broke.
#[derive(Debug, Default)]
struct Stored {
    keys: Vec<String>,
    /// Files in the `upload` field (stored or refused).
    files: usize,
    /// `upload.<message>` keys of the first refused file.
    refused: Option<Vec<String>>,
}

/// Reads the whole request: text fields into the parameters, every `upload` file streamed to
/// storage. Any error after a file was stored deletes what was stored.
async fn read_form(
    state: &ApiState,
    uid: &str,
    request: Request,
) -> Result<(Params, Stored), ApiError> {
    let max_file = max_file_size(state);
    let stream_limit = max_file
        .saturating_mul(u64::from(state.config.kyc.doc_num_limit) + 1)
        .saturating_add(state.max_body_size as u64);
    let mut form = StreamingForm::new(request, stream_limit, state.max_body_size).await?;
    let mut stored = Stored::default();
    loop {
        let field = match form.next_file().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => {
                discard(state, &stored.keys).await;
                return Err(error);
            }
        };
        if field.name != "upload[]" && field.name != "upload" {
            continue;
        }
        stored.files += 1;
        match store_file(state, uid, field).await {
            Ok(Ok(key)) => stored.keys.push(key),
            Ok(Err(refused)) => {
                stored.refused.get_or_insert(refused);
            }
            Err(error) => {
                discard(state, &stored.keys).await;
                return Err(error);
            }
        }
    }
    Ok((form.into_params(), stored))
}

/// Streams one file into storage. `Ok(Err(keys))` when a rule refused it (the rest of the file
/// is read and dropped, so the answer reaches the client); `Err` when the request itself failed.
async fn store_file(
    state: &ApiState,
    uid: &str,
    mut field: FileField,
) -> Result<Result<String, Vec<String>>, ApiError> {
    let extension = field
        .filename
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_lowercase())
        .unwrap_or_default();
    if let Some(refused) = extension_refused(state, &extension) {
        drain(&mut field).await?;
        return Ok(Err(refused));
    }
    // Enough leading bytes to recognise the type before anything is stored.
    let mut head = Vec::with_capacity(UploadKind::SNIFF_LEN);
    let mut pending = Vec::new();
    while head.len() < UploadKind::SNIFF_LEN {
        let Some(chunk) = field.chunk().await? else {
            break;
        };
        let take = (UploadKind::SNIFF_LEN - head.len()).min(chunk.len());
        head.extend_from_slice(&chunk[..take]);
        pending.push(chunk);
    }
    if head.is_empty() {
        return Ok(Err(too_small(state)));
    }
    let Some(kind) = UploadKind::sniff(&head) else {
        drain(&mut field).await?;
        return Ok(Err(unknown_type()));
    };
    let key = upload_key(uid, kind);
    let mut writer = state.uploads.writer(&key).await.map_err(storage_error)?;
    for chunk in pending {
        if let Err(refused) = write_capped(state, &mut writer, &chunk).await {
            writer.abort().await;
            drain(&mut field).await?;
            return Ok(Err(refused?));
        }
    }
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(error) => {
                writer.abort().await;
                return Err(error);
            }
        };
        if let Err(refused) = write_capped(state, &mut writer, &chunk).await {
            writer.abort().await;
            drain(&mut field).await?;
            return Ok(Err(refused?));
        }
    }
    if writer.written() < state.config.uploads.upload_size_min_range {
        writer.abort().await;
        return Ok(Err(too_small(state)));
    }
    writer.finish().await.map_err(storage_error)?;
    Ok(Ok(key))
}

/// Reads the rest of a refused file and drops it (bounded by the request's stream limit).
async fn drain(field: &mut FileField) -> Result<(), ApiError> {
    while field.chunk().await?.is_some() {}
    Ok(())
}

/// Refuses a request whose files are already stored: deletes them first.
async fn refuse(state: &ApiState, stored: &Stored, error: ApiError) -> Result<Response, ApiError> {
    discard(state, &stored.keys).await;
    Err(error)
}

/// `POST documents` (multipart): one document per `upload[]` file; 201.
pub async fn create(
    State(state): State<ApiState>,
    current: CurrentUser,
    request: Request,
) -> Result<Response, ApiError> {
    let user = &current.user;
    let (params, stored) = read_form(&state, &user.uid, request).await?;
    match check_document(&state, user.id, &params, &stored).await {
        Ok(new) => save(&state, user.id, new, &stored).await,
        Err(error) => refuse(&state, &stored, error).await,
    }
}

/// Barong's checks in order: parameters, expiry, limits, then the model rules.
async fn check_document(
    state: &ApiState,
    user_id: i64,
    params: &Params,
    stored: &Stored,
) -> Result<(Vec<NewDocument>, Option<(&'static str, &'static str)>), ApiError> {
    let mut v = Validator::new("resource.document", params);
    let doc_type = v.required_string("doc_type");
    let doc_number = v.required_string("doc_number");
    if stored.files == 0 && v.raw("upload").is_none() {
        v.error("resource.document.missing_upload");
    }
    let doc_expire = v.optional_string("doc_expire");
    let doc_category = v.optional_string("doc_category");
    let identificator = v.optional_string("identificator");
    let metadata = v.optional_string("metadata");
    let expire = match doc_expire.as_deref().map(parse_date) {
        Some(Err(())) => {
            v.error("resource.documents.expire_not_a_date");
            None
        }
        Some(Ok(date)) => date,
        None => None,
    };
    if doc_category
        .as_deref()
        .is_some_and(|c| !DOC_CATEGORIES.contains(&c))
    {
        v.error("resource.documents.doc_category");
    }
    v.finish()?;
    let (doc_type, doc_number) = (doc_type.unwrap_or_default(), doc_number.unwrap_or_default());
    if state.config.kyc.required_docs_expire {
        let today = chrono::Utc::now().date_naive();
        match expire {
            None => return Err(ApiError::from(Key::ResourceDocumentsInvalidFormat)),
            Some(date) if date < today => {
                return Err(ApiError::from(Key::ResourceDocumentsAlreadyExpired));
            }
            Some(_) => {}
        }
    }
    let limit = i64::from(state.config.kyc.doc_num_limit);
    let count = state.store.count_user_documents(user_id, None).await?;
    if count > limit {
        return Err(ApiError::from(Key::ResourceDocumentsLimitReached));
    }
    if count + stored.files as i64 > limit {
        return Err(ApiError::from(Key::ResourceDocumentsLimitWillBeReached));
    }
    let mut errors = Vec::new();
    if !state.config.barong_yml.document_types.contains(&doc_type) {
        errors.push("doc_type.inclusion".to_owned());
    }
    if let Some(refused) = &stored.refused {
        errors.extend(refused.iter().cloned());
    }
    // `upload[]` sent as a plain form value, not a file: the model's upload is blank.
    if stored.files == 0 {
        errors.push("upload.blank".to_owned());
    }
    if metadata
        .as_deref()
        .is_some_and(|m| serde_json::from_str::<Value>(m).is_err())
    {
        errors.push("metadata.invalid_format".to_owned());
    }
    if !doc_number_is_valid(&doc_number) {
        errors.push("doc_number.invalid".to_owned());
    }
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    let identificator = identificator
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()));
    let before = state
        .store
        .count_user_documents(user_id, Some(&identificator))
        .await?;
    let label = document_label(
        state.config.kyc.kyc_provider,
        &doc_type,
        before,
        stored.keys.len(),
    );
    let normalised = normalise_doc_number(&doc_number);
    let new = stored
        .keys
        .iter()
        .map(|key| NewDocument {
            user_id,
            upload: key.clone(),
            doc_type: doc_type.clone(),
            doc_expire: expire,
            doc_number_encrypted: Some(state.encryptor.encrypt(&doc_number)),
            doc_number_index: Some(state.encryptor.blind_index(&normalised)),
            doc_category: doc_category.clone(),
            identificator: Some(identificator.clone()),
            metadata: metadata.clone(),
        })
        .collect();
    Ok((new, label))
}

/// Writes the rows (and label) in one transaction; 201. A failed write deletes the files.
async fn save(
    state: &ApiState,
    user_id: i64,
    (documents, label): (Vec<NewDocument>, Option<(&'static str, &'static str)>),
    stored: &Stored,
) -> Result<Response, ApiError> {
    let events = state.document_events(&documents);
    match state
        .store
        .create_documents(user_id, &documents, label, &state.state_rules, &events)
        .await
    {
        Ok((_, change)) => {
            publish_change(state, &change).await;
            Ok((StatusCode::CREATED, Json(json!(201))).into_response())
        }
        Err(error) => refuse(state, stored, error.into()).await,
    }
}

/// `POST addresses` (multipart): proof-of-address files as documents of type `Address`, and
/// the private label `address: pending`; 201.
pub async fn create_address(
    State(state): State<ApiState>,
    current: CurrentUser,
    request: Request,
) -> Result<Response, ApiError> {
    let user = &current.user;
    let (params, stored) = read_form(&state, &user.uid, request).await?;
    match check_address(&state, user.id, &params, &stored) {
        Ok(new) => {
            save(
                &state,
                user.id,
                (new, Some(("address", "pending"))),
                &stored,
            )
            .await
        }
        Err(error) => refuse(&state, &stored, error).await,
    }
}

fn check_address(
    state: &ApiState,
    user_id: i64,
    params: &Params,
    stored: &Stored,
) -> Result<Vec<NewDocument>, ApiError> {
    let mut v = Validator::new("resource.address", params);
    v.required_string("country");
    v.required_string("address");
    if stored.files == 0 && v.raw("upload").is_none() {
        v.error("resource.address.missing_upload");
    }
    if v.raw("city").is_none() {
        v.error("resource.address.missing_city");
    }
    if v.raw("postcode").is_none() {
        v.error("resource.address.missing_postcode");
    }
    v.finish()?;
    // The Document model applies: Barong passes no expiry, so a required one fails.
    let mut errors = Vec::new();
    if state.config.kyc.required_docs_expire {
        errors.push("doc_expire.blank".to_owned());
    }
    if let Some(refused) = &stored.refused {
        errors.extend(refused.iter().cloned());
    }
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    let identificator = hex::encode(rand::random::<[u8; 16]>());
    Ok(stored
        .keys
        .iter()
        .map(|key| NewDocument {
            user_id,
            upload: key.clone(),
            doc_type: ADDRESS_DOC_TYPE.to_owned(),
            doc_expire: None,
            doc_number_encrypted: None,
            doc_number_index: None,
            doc_category: None,
            identificator: Some(identificator.clone()),
            metadata: None,
        })
        .collect())
}
