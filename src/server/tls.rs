//! HTTPS for the listeners: a rustls `ServerConfig` built from PEM files (aws-lc-rs, TLS 1.2 and
//! 1.3 only, ALPN h2 and http/1.1), optionally requiring client certificates from a CA (mTLS on
//! the authz listener), and swapped in place when the files change or on SIGHUP.
//!
//! Each accepted connection takes the config current at that moment
//! ([`TlsReloader::acceptor`]); connections already open keep the one they started with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::Tls;

/// The protocol versions offered: TLS 1.3 and 1.2, nothing older.
pub static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The files one listener's TLS is built from, each with the setting that named it (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub cert_setting: &'static str,
    pub key: PathBuf,
    pub key_setting: &'static str,
    /// Clients must present a certificate signed by one of these CAs (mTLS).
    pub client_ca: Option<PathBuf>,
    pub client_ca_setting: &'static str,
}

/// A PEM file could not be read or used; the message names the setting and the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

impl TlsError {
    fn file(setting: &str, path: &Path, problem: impl std::fmt::Display) -> TlsError {
        TlsError(format!("{setting} ({}): {problem}", path.display()))
    }
}

/// The raw contents last read, to notice a change (rewritten, replaced, renamed over).
#[derive(Debug, PartialEq, Eq)]
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// The current TLS config of one listener, reloadable from its files.
pub struct TlsReloader {
    listener: &'static str,
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
    /// What was last tried (loaded or refused), so a bad file is reported once, not every poll.
    last_seen: Mutex<Contents>,
    /// The last failure logged, so an unreadable file is reported once while it lasts.
    last_error: Mutex<Option<TlsError>>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("listener", &self.listener)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// Loads the files once; an error here stops the server at start.
    pub fn load(listener: &'static str, files: TlsFiles) -> Result<Arc<TlsReloader>, TlsError> {
        let contents = read(&files)?;
        let config = build(&files, &contents)?;
        Ok(Arc::new(TlsReloader {
            listener,
            files,
            current: ArcSwap::from_pointee(config),
            last_seen: Mutex::new(contents),
            last_error: Mutex::new(None),
        }))
    }

    /// The acceptor for the next connection, with the config current now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    /// The config current now.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reloads when the files differ from what was last seen (or always with `force`).
    /// `Ok(true)`: a new config is in use; `Ok(false)`: nothing changed; `Err`: the old config
    /// stays (the same bad contents are not reported again unless `force`).
    pub fn reload(&self, force: bool) -> Result<bool, TlsError> {
        let contents = read(&self.files)?;
        let mut last_seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        if !force && *last_seen == contents {
            return Ok(false);
        }
        let built = build(&self.files, &contents);
        *last_seen = contents;
        drop(last_seen);
        self.current.store(Arc::new(built?));
        Ok(true)
    }

    /// Polls and logs: one line per reload, one per refused change.
    fn reload_and_log(&self, force: bool) {
        let outcome = self.reload(force);
        let mut last_error = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(reloaded) => {
                *last_error = None;
                if reloaded {
                    tracing::info!(
                        listener = self.listener,
                        cert = %self.files.cert.display(),
                        "TLS certificate reloaded"
                    );
                }
            }
            Err(error) => {
                if force || last_error.as_ref() != Some(&error) {
                    tracing::error!(
                        listener = self.listener,
                        %error,
                        "TLS reload failed: keeping the previous certificate"
                    );
                }
                *last_error = Some(error);
            }
        }
    }
}

/// The TLS of each listener from the settings; `None` serves plain HTTP.
#[derive(Debug, Default)]
pub struct ListenersTls {
    pub authz: Option<Arc<TlsReloader>>,
    pub api: Option<Arc<TlsReloader>>,
}

impl ListenersTls {
    /// `BARONG_TLS_CERT_PATH`/`BARONG_TLS_KEY_PATH` serve both listeners;
    /// `BARONG_AUTHZ_TLS_CERT_PATH`/`BARONG_AUTHZ_TLS_KEY_PATH` replace them on the authz
    /// listener, which alone asks for client certificates (`BARONG_AUTHZ_CLIENT_CA_PATH`).
    pub fn load(config: &Tls) -> Result<ListenersTls, TlsError> {
        let pair = |cert: &Option<PathBuf>, cert_setting, key: &Option<PathBuf>, key_setting| {
            Some(TlsFiles {
                cert: cert.clone()?,
                cert_setting,
                key: key.clone()?,
                key_setting,
                client_ca: None,
                client_ca_setting: "BARONG_AUTHZ_CLIENT_CA_PATH",
            })
        };
        let shared = pair(
            &config.tls_cert_path,
            "BARONG_TLS_CERT_PATH",
            &config.tls_key_path,
            "BARONG_TLS_KEY_PATH",
        );
        let authz_own = pair(
            &config.authz_tls_cert_path,
            "BARONG_AUTHZ_TLS_CERT_PATH",
            &config.authz_tls_key_path,
            "BARONG_AUTHZ_TLS_KEY_PATH",
        );
        let authz = match authz_own.or_else(|| shared.clone()) {
            Some(files) => Some(TlsReloader::load(
                "authz",
                TlsFiles {
                    client_ca: config.authz_client_ca_path.clone(),
                    ..files
                },
            )?),
            None => None,
        };
        let api = match shared {
            Some(files) => Some(TlsReloader::load("rest", files)?),
            None => None,
        };
        Ok(ListenersTls { authz, api })
    }

    /// The reloaders to watch.
    pub fn reloaders(&self) -> Vec<Arc<TlsReloader>> {
        self.authz.iter().chain(self.api.iter()).cloned().collect()
    }
}

/// Reloads every listener's TLS when its files change (checked every `poll`, if any) and on
/// SIGHUP, until `shutdown`. The SIGHUP handler is in place when this returns, before the
/// future runs.
pub fn watch(
    reloaders: Vec<Arc<TlsReloader>>,
    poll: Option<Duration>,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let hangup = if reloaders.is_empty() {
        None
    } else {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP: TLS reloads on file changes only");
                None
            }
        }
    };
    #[cfg(unix)]
    let future = run_watch(reloaders, poll, hangup, shutdown);
    #[cfg(not(unix))]
    let future = run_watch(reloaders, poll, shutdown);
    future
}

async fn run_watch(
    reloaders: Vec<Arc<TlsReloader>>,
    poll: Option<Duration>,
    #[cfg(unix)] mut hangup: Option<tokio::signal::unix::Signal>,
    shutdown: CancellationToken,
) {
    if reloaders.is_empty() {
        return;
    }
    let mut ticks = poll.map(|every| {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    loop {
        let tick = async {
            match ticks.as_mut() {
                Some(ticks) => ticks.tick().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        let force = tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick => false,
            _ = hup => {
                tracing::info!("SIGHUP: reloading TLS certificates");
                true
            }
        };
        for reloader in &reloaders {
            let reloader = reloader.clone();
            // Reading files and parsing keys is blocking work, however small.
            let _ = tokio::task::spawn_blocking(move || reloader.reload_and_log(force)).await;
        }
    }
}

fn read(files: &TlsFiles) -> Result<Contents, TlsError> {
    let read_one = |setting: &str, path: &Path| {
        std::fs::read(path).map_err(|e| TlsError::file(setting, path, e))
    };
    Ok(Contents {
        cert: read_one(files.cert_setting, &files.cert)?,
        key: read_one(files.key_setting, &files.key)?,
        client_ca: match &files.client_ca {
            Some(path) => Some(read_one(files.client_ca_setting, path)?),
            None => None,
        },
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The rustls config for these contents.
fn build(files: &TlsFiles, contents: &Contents) -> Result<ServerConfig, TlsError> {
    let certs = CertificateDer::pem_slice_iter(&contents.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::file(files.cert_setting, &files.cert, pem_problem(e)))?;
    if certs.is_empty() {
        return Err(TlsError::file(
            files.cert_setting,
            &files.cert,
            "no PEM certificate (BEGIN CERTIFICATE) found",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&contents.key)
        .map_err(|e| TlsError::file(files.key_setting, &files.key, pem_problem(e)))?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| TlsError(format!("TLS configuration: {e}")))?;
    let builder = match (&files.client_ca, &contents.client_ca) {
        (Some(path), Some(pem)) => {
            let setting = files.client_ca_setting;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| TlsError::file(setting, path, pem_problem(e)))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsError::file(setting, path, format!("unusable CA: {e}")))?;
            }
            if roots.is_empty() {
                return Err(TlsError::file(
                    setting,
                    path,
                    "no PEM CA certificate (BEGIN CERTIFICATE) found",
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::file(setting, path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        let problem = match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "does not match the certificate in {} ({})",
                files.cert_setting,
                files.cert.display()
            ),
            other => format!("unusable certificate or key: {other}"),
        };
        TlsError::file(files.key_setting, &files.key, problem)
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn pem_problem(error: rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no PEM item of the expected kind found".into()
        }
        other => format!("invalid PEM: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pki {
        dir: tempfile::TempDir,
    }

    impl Pki {
        fn new() -> Pki {
            Pki {
                dir: tempfile::tempdir().expect("tempdir"),
            }
        }

        fn write(&self, name: &str, contents: &str) -> PathBuf {
            let path = self.dir.path().join(name);
            std::fs::write(&path, contents).expect("write");
            path
        }
    }

    fn self_signed(name: &str) -> rcgen::CertifiedKey<rcgen::KeyPair> {
        rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("rcgen")
    }

    fn files(cert: PathBuf, key: PathBuf, client_ca: Option<PathBuf>) -> TlsFiles {
        TlsFiles {
            cert,
            cert_setting: "BARONG_TLS_CERT_PATH",
            key,
            key_setting: "BARONG_TLS_KEY_PATH",
            client_ca,
            client_ca_setting: "BARONG_AUTHZ_CLIENT_CA_PATH",
        }
    }

    #[test]
    fn offers_tls_1_2_and_1_3_only_with_h2_and_http_1_1() {
        let pki = Pki::new();
        let pair = self_signed("localhost");
        let cert = pki.write("cert.pem", &pair.cert.pem());
        let key = pki.write("key.pem", &pair.signing_key.serialize_pem());
        let reloader = TlsReloader::load("rest", files(cert, key, None)).expect("load");
        let versions: Vec<_> = PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
        assert_eq!(
            versions,
            [
                rustls::ProtocolVersion::TLSv1_3,
                rustls::ProtocolVersion::TLSv1_2
            ]
        );
        let config = reloader.config();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        // No suite of the provider speaks anything older than TLS 1.2 either.
        for suite in &config.crypto_provider().cipher_suites {
            assert!(matches!(
                suite.version().version,
                rustls::ProtocolVersion::TLSv1_2 | rustls::ProtocolVersion::TLSv1_3
            ));
        }
    }

    #[test]
    fn bad_files_name_the_setting_and_keep_the_old_config() {
        let pki = Pki::new();
        let pair = self_signed("localhost");
        let other = self_signed("localhost");
        let cert = pki.write("cert.pem", &pair.cert.pem());
        let key = pki.write("key.pem", &pair.signing_key.serialize_pem());
        let garbage = pki.write("garbage.pem", "not a pem file\n");
        let wrong_key = pki.write("other-key.pem", &other.signing_key.serialize_pem());

        let e = TlsReloader::load("rest", files(garbage.clone(), key.clone(), None)).unwrap_err();
        assert!(e.0.starts_with("BARONG_TLS_CERT_PATH ("), "{e}");
        let e = TlsReloader::load("rest", files(cert.clone(), garbage.clone(), None)).unwrap_err();
        assert!(e.0.starts_with("BARONG_TLS_KEY_PATH ("), "{e}");
        let e = TlsReloader::load("rest", files(cert.clone(), wrong_key, None)).unwrap_err();
        assert!(e.0.contains("does not match the certificate"), "{e}");
        let e = TlsReloader::load("authz", files(cert.clone(), key.clone(), Some(garbage)))
            .unwrap_err();
        assert!(e.0.starts_with("BARONG_AUTHZ_CLIENT_CA_PATH ("), "{e}");

        let reloader = TlsReloader::load("rest", files(cert.clone(), key, None)).expect("load");
        let before = reloader.config();
        assert_eq!(reloader.reload(false), Ok(false), "unchanged files");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nAAAA\n").expect("write");
        assert!(reloader.reload(false).is_err());
        assert!(Arc::ptr_eq(&before, &reloader.config()), "old config kept");
        assert_eq!(
            reloader.reload(false),
            Ok(false),
            "a bad file is tried once"
        );
        std::fs::write(&cert, pair.cert.pem()).expect("write");
        assert_eq!(reloader.reload(false), Ok(true));
        assert!(!Arc::ptr_eq(&before, &reloader.config()));
        assert_eq!(reloader.reload(true), Ok(true), "forced");
    }
}
