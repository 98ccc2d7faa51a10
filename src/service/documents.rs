//! Document uploads as both the resource and the management namespaces take them: the
//! extension, size and type rules, where a file goes, and the label a new document sets.

use axum::http::StatusCode;
use chrono::NaiveDate;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use crate::config::KycProvider;
use crate::domain::UploadKind;
use crate::uploads::UploadWriter;

/// `BARONG_UPLOAD_SIZE_MAX_RANGE` in bytes (MiB).
pub fn max_file_size(state: &ApiState) -> u64 {
    state
        .config
        .uploads
        .upload_size_max_range
        .saturating_mul(1024 * 1024)
}

/// Deletes files stored by a request that is being refused.
pub async fn discard(state: &ApiState, keys: &[String]) {
    for key in keys {
        if let Err(error) = state.uploads.delete(key).await {
            tracing::error!(%error, key, "could not delete a refused upload");
        }
    }
}

/// Barong's upload errors: the CarrierWave message as `upload.<message>`, then `upload.blank`.
pub fn upload_error(message: String) -> Vec<String> {
    vec![format!("upload.{message}"), "upload.blank".to_owned()]
}

/// The refusal of a file name extension outside `BARONG_UPLOAD_EXTENSION_WHITELIST`, if it is.
pub fn extension_refused(state: &ApiState, extension: &str) -> Option<Vec<String>> {
    let whitelist = &state.config.uploads.upload_extension_whitelist;
    (!whitelist.iter().any(|w| w.eq_ignore_ascii_case(extension))).then(|| {
        upload_error(format!(
            "You are not allowed to upload \"{extension}\" files, allowed types: {}",
            whitelist.join(", ")
        ))
    })
}

pub fn too_small(state: &ApiState) -> Vec<String> {
    upload_error(format!(
        "File size should be greater than {} Byte",
        state.config.uploads.upload_size_min_range
    ))
}

pub fn too_large(state: &ApiState) -> Vec<String> {
    upload_error(format!(
        "File size should be less than {} MB",
        state.config.uploads.upload_size_max_range
    ))
}

/// Content that is neither JPEG, PNG nor PDF, whatever its name says.
pub fn unknown_type() -> Vec<String> {
    upload_error(
        "You are not allowed to upload \"application/octet-stream\" files, allowed types: \
         image/jpeg, image/png, application/pdf"
            .to_owned(),
    )
}

/// Where a new upload of `uid` goes: a random name with the extension of its real type.
pub fn upload_key(uid: &str, kind: UploadKind) -> String {
    format!(
        "documents/{uid}/{}.{}",
        hex::encode(rand::random::<[u8; 16]>()),
        kind.extension()
    )
}

/// Stores a file received whole (the management API sends it base64-encoded), under the same
/// rules as a streamed one: extension, size bounds and recognised type. `Ok(Err(keys))` when a
/// rule refused it.
pub async fn store_bytes(
    state: &ApiState,
    uid: &str,
    extension: &str,
    bytes: &[u8],
) -> Result<Result<String, Vec<String>>, ApiError> {
    let extension = extension.trim_start_matches('.').to_lowercase();
    if let Some(refused) = extension_refused(state, &extension) {
        return Ok(Err(refused));
    }
    if (bytes.len() as u64) < state.config.uploads.upload_size_min_range.max(1) {
        return Ok(Err(too_small(state)));
    }
    if bytes.len() as u64 > max_file_size(state) {
        return Ok(Err(too_large(state)));
    }
    let Some(kind) = UploadKind::sniff(&bytes[..bytes.len().min(UploadKind::SNIFF_LEN)]) else {
        return Ok(Err(unknown_type()));
    };
    let key = upload_key(uid, kind);
    let mut writer = state.uploads.writer(&key).await.map_err(storage_error)?;
    if let Err(error) = writer.write(bytes).await {
        writer.abort().await;
        return Err(storage_error(error));
    }
    writer.finish().await.map_err(storage_error)?;
    Ok(Ok(key))
}

/// Writes a chunk unless the file would pass the size cap. The outer `Err` is a refusal: its
/// inner value is the upload keys, or the storage failure.
pub async fn write_capped(
    state: &ApiState,
    writer: &mut UploadWriter,
    chunk: &[u8],
) -> Result<(), Result<Vec<String>, ApiError>> {
    let max = max_file_size(state);
    if writer.written() + chunk.len() as u64 > max {
        return Err(Ok(too_large(state)));
    }
    writer.write(chunk).await.map_err(|e| Err(storage_error(e)))
}

/// Barong answers a storage failure with `422 {"error":"Connection error"}`.
pub fn storage_error(error: crate::uploads::UploadError) -> ApiError {
    tracing::error!(%error, "upload storage failed");
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        body: ErrorBody::Message("Connection error".into()),
    }
}

/// Grape's Date coercion of `doc_expire`: `YYYY-MM-DD` (or `DD-MM-YYYY`, `YYYY/MM/DD`,
/// `DD/MM/YYYY`); blank is no date.
pub(crate) fn parse_date(text: &str) -> Result<Option<NaiveDate>, ()> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    ["%Y-%m-%d", "%d-%m-%Y", "%Y/%m/%d", "%d/%m/%Y"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
        .map(Some)
        .ok_or(())
}

/// The label a new document sets: `local` marks every document pending; `kycaid` only
/// when a Passport (2 files) or an ID card / driver license (3 files) is complete.
pub fn document_label(
    provider: KycProvider,
    doc_type: &str,
    before: i64,
    added: usize,
) -> Option<(&'static str, &'static str)> {
    if provider == KycProvider::Local {
        return Some(("document", "pending"));
    }
    let needed = match doc_type {
        "Passport" => 2,
        "Identity card" | "Driver license" => 3,
        _ => return None,
    };
    (before < needed && before + added as i64 >= needed).then_some(("document", "pending"))
}
