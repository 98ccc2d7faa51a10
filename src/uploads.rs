//! Object storage for KYC uploads (`BARONG_UPLOADS_URL`): a local directory (`file://`, the
//! default), S3 (`s3://bucket/prefix`, credentials from the usual `AWS_*` variables) or GCS
//! (`gs://bucket/prefix`, `GOOGLE_*`), all through the `object_store` crate.
//!
//! Files are written as multipart uploads in fixed-size parts while they arrive, so memory per
//! upload stays at about one part whatever the file size; an upload that fails or is refused is
//! aborted (the local backend deletes its staging file), so nothing is left behind.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};

/// Why the storage could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// `BARONG_UPLOADS_URL` cannot be used (bad URL, directory not creatable, ...).
    #[error("BARONG_UPLOADS_URL: {0}")]
    Config(String),
    /// The storage refused or failed a write or delete.
    #[error("object storage: {0}")]
    Storage(#[from] object_store::Error),
}

/// Part size for local files: small, the parts only go to a staging file on disk.
const LOCAL_PART: usize = 256 * 1024;
/// Part size for S3/GCS: S3 refuses parts under 5 MiB (except the last).
const CLOUD_PART: usize = 5 * 1024 * 1024;

/// The configured object store and where its objects are rendered from.
#[derive(Clone)]
pub struct Uploads {
    store: Arc<dyn ObjectStore>,
    part_size: usize,
    /// `BARONG_UPLOADS_URL` without a trailing `/`, the base of rendered `upload.url`s.
    base_url: String,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads")
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// The cloud store named by `scheme`, when this build has it (cargo features `s3`, `gcs`).
fn cloud_store(scheme: &str, url: &str) -> Result<Arc<dyn ObjectStore>, UploadError> {
    match scheme {
        #[cfg(feature = "s3")]
        "s3" => Ok(Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| UploadError::Config(e.to_string()))?,
        )),
        #[cfg(feature = "gcs")]
        "gs" => Ok(Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| UploadError::Config(e.to_string()))?,
        )),
        "s3" | "gs" => {
            let feature = if scheme == "s3" { "s3" } else { "gcs" };
            Err(UploadError::Config(format!(
                "{url}: this build has no {scheme}:// storage; build with `--features {feature}`"
            )))
        }
        other => Err(UploadError::Config(format!("unsupported scheme {other}"))),
    }
}

impl Uploads {
    /// Opens the store named by `url` (`file://DIR`, `s3://bucket[/prefix]`, `gs://bucket[/prefix]`).
    /// A local directory is created when missing.
    pub fn open(url: &str) -> Result<Self, UploadError> {
        let base_url = url.trim_end_matches('/').to_owned();
        if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir)
                .map_err(|e| UploadError::Config(format!("cannot create {dir}: {e}")))?;
            let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| UploadError::Config(e.to_string()))?;
            return Ok(Self {
                store: Arc::new(local),
                part_size: LOCAL_PART,
                base_url,
            });
        }
        let parsed = url::Url::parse(url).map_err(|e| UploadError::Config(e.to_string()))?;
        let store = cloud_store(parsed.scheme(), url)?;
        let prefix = parsed.path().trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            store
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        Ok(Self {
            store,
            part_size: CLOUD_PART,
            base_url,
        })
    }

    /// Starts writing the object `key`; feed it with [`UploadWriter::write`], then
    /// [`UploadWriter::finish`] or [`UploadWriter::abort`].
    pub async fn writer(&self, key: &str) -> Result<UploadWriter, UploadError> {
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        Ok(UploadWriter {
            inner: WriteMultipart::new_with_chunk_size(upload, self.part_size),
            written: 0,
        })
    }

    /// Deletes an object; a missing one is not an error (cleanup after a failed request).
    pub async fn delete(&self, key: &str) -> Result<(), UploadError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The URL a stored object is shown with (`{"url": ...}` of Barong's Document entity).
    pub fn url_of(&self, key: &str) -> String {
        format!("{}/{key}", self.base_url)
    }
}

/// One object being written in parts.
pub struct UploadWriter {
    inner: WriteMultipart,
    written: u64,
}

impl UploadWriter {
    /// Appends bytes; at most two parts are in flight (waits for room first), which bounds the
    /// memory of a slow storage.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        self.inner.wait_for_capacity(2).await?;
        self.inner.write(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Completes the object.
    pub async fn finish(self) -> Result<(), UploadError> {
        self.inner.finish().await?;
        Ok(())
    }

    /// Abandons the object: nothing stays in the storage.
    pub async fn abort(self) {
        if let Err(error) = self.inner.abort().await {
            tracing::warn!(%error, "could not abort an upload");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "s3"))]
    #[test]
    fn a_build_without_s3_says_how_to_get_it() {
        let Err(UploadError::Config(message)) = Uploads::open("s3://bucket/kyc") else {
            panic!("s3:// opened without the s3 feature");
        };
        assert!(message.contains("--features s3"), "{message}");
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(matches!(
            Uploads::open("ftp://host/dir"),
            Err(UploadError::Config(_))
        ));
    }
}
