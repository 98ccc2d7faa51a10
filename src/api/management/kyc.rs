//! Management `profiles`, `phones/*` and `documents`: KYC data
//! written by a trusted back office. Phones are created already verified; documents arrive
//! base64-encoded and are stored under the same rules as the resource uploads.

use axum::http::StatusCode;
use base64::Engine;
use serde_json::{Value, json};

use super::{
    MgmtError, MgmtResult, Params, boolean, full_messages, present, publish_profile, require, text,
    user_entity,
};
use crate::api::ApiState;
use crate::api::entities::admin::kyc_phones;
use crate::api::entities::phone;
use crate::domain::{
    ADDRESS_DOC_TYPE, NewDocument, User, doc_number_is_valid, normalise_doc_number, normalise_phone,
};
use crate::import::{ProfileInput, add_profile, verified_phone};
use crate::service::changes::publish_change;
use crate::service::documents::{discard, document_label, parse_date, store_bytes};
use crate::store::StoreError;

/// The user named by `uid`, else `422 {"error":"user.doesnt_exist"}`.
async fn target(state: &ApiState, params: &Params) -> Result<User, MgmtError> {
    let uid = text(params, "uid").unwrap_or_default();
    state
        .store
        .find_user_by_uid(&uid)
        .await?
        .ok_or_else(|| MgmtError::unprocessable("user.doesnt_exist"))
}

fn bad_request(message: &str) -> MgmtError {
    MgmtError::message(StatusCode::BAD_REQUEST, message)
}

/// Creates the user's profile from the request (model rules as full messages); the user now.
pub(super) async fn create_profile(
    state: &ApiState,
    user: &User,
    params: &Params,
) -> Result<User, MgmtError> {
    let input = ProfileInput::parse(params, true)
        .map_err(|invalid| MgmtError::unprocessable(&invalid.to_string()))?;
    let (profile, change) = add_profile(
        state.store.as_ref(),
        &state.encryptor,
        &state.state_rules,
        user.id,
        &input,
    )
    .await?
    .map_err(|keys| MgmtError::model(full_messages(&keys)))?;
    publish_profile(state, &profile, &change).await;
    Ok(change.user)
}

/// POST /profiles: a profile in the given state (default `drafted`); 201 UserWithProfile.
pub async fn profiles_create(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["uid"])?;
    let user = target(&state, &params).await?;
    let user = create_profile(&state, &user, &params).await?;
    Ok((StatusCode::CREATED, user_entity(&state, &user).await?))
}

/// POST /phones/get: the user's phones, unmasked; 201.
pub async fn phones_get(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["uid"])?;
    let user = target(&state, &params).await?;
    Ok((
        StatusCode::CREATED,
        Value::Array(kyc_phones(&state, user.id).await?),
    ))
}

/// POST /phones: adds the number already verified (no code is sent); 201 Phone, unmasked.
pub async fn phones_create(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["uid", "number"])?;
    let user = target(&state, &params).await?;
    let number = text(&params, "number").unwrap_or_default();
    let normalised =
        normalise_phone(&number).ok_or_else(|| bad_request("management.phone.invalid_num"))?;
    let index = state.encryptor.blind_index(&normalised.e164);
    let holders = state.store.list_phones_by_number_index(&index).await?;
    if holders
        .iter()
        .any(|p| p.is_verified() && p.user_id != user.id)
    {
        return Err(bad_request("management.phone.number_exist"));
    }
    if holders.iter().any(|p| p.user_id == user.id) {
        return Err(bad_request("management.phone.exists"));
    }
    let new = verified_phone(&state.encryptor, user.id, &normalised);
    let created = match state.store.create_phone(&new).await {
        Ok(created) => created,
        Err(StoreError::Conflict(_)) => return Err(bad_request("management.phone.number_exist")),
        Err(other) => return Err(other.into()),
    };
    Ok((
        StatusCode::CREATED,
        phone(&created, &state.encryptor, false),
    ))
}

/// POST /phones/delete: removes the user's phone with that number; 201, the deleted Phone.
pub async fn phones_delete(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["uid", "number"])?;
    let user = target(&state, &params).await?;
    let missing = || MgmtError::unprocessable("management.phone.doesnt_exists");
    let number = text(&params, "number").unwrap_or_default();
    let normalised = normalise_phone(&number).ok_or_else(missing)?;
    let index = state.encryptor.blind_index(&normalised.e164);
    let found = state
        .store
        .find_user_phone(user.id, &index)
        .await?
        .ok_or_else(missing)?;
    if !state.store.delete_phone(found.id).await? {
        return Err(missing());
    }
    Ok((StatusCode::CREATED, phone(&found, &state.encryptor, false)))
}

/// Rails' `to_sentence`: `a`, `a and b`, `a, b, and c`.
fn sentence(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

/// Full messages of the document model keys.
fn document_messages(keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|key| match key.as_str() {
            "doc_type.inclusion" => "Doc type is not included in the list".to_owned(),
            "doc_number.invalid" => "Doc number is invalid".to_owned(),
            "doc_expire.invalid" => "Doc expire is invalid".to_owned(),
            "metadata.invalid_format" => "Metadata is invalid".to_owned(),
            "upload.blank" => "Upload can't be blank".to_owned(),
            other => match other.strip_prefix("upload.") {
                Some(message) => format!("Upload {message}"),
                None => other.to_owned(),
            },
        })
        .collect()
}

/// The declared parameters of POST /documents, in Grape's message form.
struct DocumentParams {
    doc_type: String,
    doc_number: String,
    file_ext: String,
    upload: Vec<u8>,
    doc_expire: Option<chrono::NaiveDate>,
    metadata: Option<String>,
}

fn document_params(params: &Params) -> Result<DocumentParams, MgmtError> {
    require(
        params,
        &[
            "uid",
            "doc_type",
            "doc_number",
            "filename",
            "file_ext",
            "upload",
        ],
    )?;
    let mut messages = Vec::new();
    let doc_expire = match text(params, "doc_expire").map(|d| parse_date(&d)) {
        Some(Err(())) => {
            messages.push("doc_expire management.documents.expire_not_a_date".to_owned());
            None
        }
        Some(Ok(date)) => date,
        None => None,
    };
    boolean(
        params,
        "update_labels",
        "management.documents.update_labels_invalid",
        &mut messages,
    );
    super::refuse(messages)?;
    let upload = match params.get("upload") {
        Some(Value::String(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| MgmtError::unprocessable("upload is invalid"))?,
        _ => return Err(MgmtError::unprocessable("upload is invalid")),
    };
    Ok(DocumentParams {
        doc_type: text(params, "doc_type").unwrap_or_default(),
        doc_number: text(params, "doc_number").unwrap_or_default(),
        file_ext: text(params, "file_ext").unwrap_or_default(),
        upload,
        doc_expire,
        metadata: present(params, "metadata"),
    })
}

/// The model rules of a document, as keys.
fn document_errors(state: &ApiState, doc: &DocumentParams) -> Vec<String> {
    let mut errors = Vec::new();
    if !state
        .config
        .barong_yml
        .document_types
        .contains(&doc.doc_type)
    {
        errors.push("doc_type.inclusion".to_owned());
    }
    if state.config.kyc.required_docs_expire
        && doc
            .doc_expire
            .is_none_or(|d| d < chrono::Utc::now().date_naive())
    {
        errors.push("doc_expire.invalid".to_owned());
    }
    if doc
        .metadata
        .as_deref()
        .is_some_and(|m| serde_json::from_str::<Value>(m).is_err())
    {
        errors.push("metadata.invalid_format".to_owned());
    }
    if !doc_number_is_valid(&doc.doc_number) {
        errors.push("doc_number.invalid".to_owned());
    }
    errors
}

/// POST /documents: one document from a base64 `upload`; 201. An unknown uid answers
/// `422 {"errors":["user doesnt exist"]}` (Barong: the same body with a 500).
pub async fn documents_create(state: ApiState, params: Params) -> MgmtResult {
    let doc = document_params(&params)?;
    let uid = text(&params, "uid").unwrap_or_default();
    let Some(user) = state.store.find_user_by_uid(&uid).await? else {
        return Err(MgmtError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({ "errors": ["user doesnt exist"] }),
        });
    };
    let mut errors = document_errors(&state, &doc);
    let stored = store_bytes(&state, &user.uid, &doc.file_ext, &doc.upload).await?;
    let key = match stored {
        Ok(key) if errors.is_empty() => key,
        Ok(key) => {
            discard(&state, &[key]).await;
            return Err(MgmtError::unprocessable(&sentence(&document_messages(
                &errors,
            ))));
        }
        Err(refused) => {
            errors.extend(refused);
            return Err(MgmtError::unprocessable(&sentence(&document_messages(
                &errors,
            ))));
        }
    };
    let label = if doc.doc_type == ADDRESS_DOC_TYPE {
        None
    } else {
        document_label(state.config.kyc.kyc_provider, &doc.doc_type, 0, 1)
    };
    let new = NewDocument {
        user_id: user.id,
        upload: key.clone(),
        doc_type: doc.doc_type,
        doc_expire: doc.doc_expire,
        doc_number_encrypted: Some(state.encryptor.encrypt(&doc.doc_number)),
        doc_number_index: Some(
            state
                .encryptor
                .blind_index(&normalise_doc_number(&doc.doc_number)),
        ),
        doc_category: None,
        identificator: Some(hex::encode(rand::random::<[u8; 16]>())),
        metadata: doc.metadata,
    };
    let events = state.document_events(std::slice::from_ref(&new));
    match state
        .store
        .create_documents(user.id, &[new], label, &state.state_rules, &events)
        .await
    {
        Ok((_, change)) => {
            publish_change(&state, &change).await;
            Ok((StatusCode::CREATED, json!(201)))
        }
        Err(error) => {
            discard(&state, &[key]).await;
            Err(error.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rails_sentences() {
        let s = |v: &[&str]| sentence(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&["a"]), "a");
        assert_eq!(s(&["a", "b"]), "a and b");
        assert_eq!(s(&["a", "b", "c"]), "a, b, and c");
    }
}
