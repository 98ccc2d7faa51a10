//! HTTPS on both listeners against the real server (SQLite only: TLS does not depend on the
//! storage backend): certificates made by rcgen, clients from reqwest and raw rustls, TLS 1.2+
//! only, mTLS on the authz listener, a per-listener certificate, certificates reloaded on file
//! change and on SIGHUP, bad files refused at start and kept out at reload, a silent client
//! dropped after the handshake timeout.

use crate::common;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use barong::domain::{NewSession, NewUser, User, session_key};
use barong::seed::{DEFAULT_SEEDS, Seeds};
use barong::store::Store;
use common::{Backend, TestDb, TestServer};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ENCRYPTION_KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) barong-tests";

/// A certificate authority that issues server and client certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A PEM certificate and its PEM private key.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA"),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "barong test");
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// For `127.0.0.1` and `localhost`.
    fn server(&self) -> Leaf {
        self.issue(
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client(&self) -> Leaf {
        self.issue(&["envoy.internal"], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// Files in a temp dir, replaced atomically (write then rename) as deployment tools do.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        let temp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&temp, contents).expect("write");
        std::fs::rename(&temp, &path).expect("rename");
        path
    }

    /// Writes `leaf` as `<stem>.crt` / `<stem>.key`; returns both paths as strings.
    fn pair(&self, stem: &str, leaf: &Leaf) -> (String, String) {
        let key = self.write(&format!("{stem}.key"), &leaf.key);
        let cert = self.write(&format!("{stem}.crt"), &leaf.cert);
        (text(&cert), text(&key))
    }
}

fn text(path: &Path) -> String {
    path.to_str().expect("utf-8 path").to_owned()
}

/// An HTTPS-only reqwest client trusting `ca` alone, presenting `identity` if given, on a new
/// connection every time.
fn https_client(ca: &Ca, identity: Option<&Leaf>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("ca"))
        .https_only(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10));
    if let Some(leaf) = identity {
        let pem = format!("{}{}", leaf.cert, leaf.key);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    builder.build().expect("client")
}

fn https(base: &str) -> String {
    base.replace("http://", "https://")
}

fn host_port(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// A migrated, seeded SQLite database and the server on it with `env`.
async fn start(env: &[(&str, &str)]) -> (TestDb, Arc<dyn Store>, TestServer) {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.open().await;
    store.migrate().await.expect("migrate");
    Seeds::parse(DEFAULT_SEEDS)
        .expect("seeds")
        .apply(store.as_ref(), "ID")
        .await
        .expect("seed");
    let mut all = vec![("BARONG_ENCRYPTION_KEY", ENCRYPTION_KEY)];
    all.extend_from_slice(env);
    let server = TestServer::start(db.dir.path(), &db.url, &all);
    (db, store, server)
}

/// A signed-in member's session cookie (as the identity API would create it).
async fn session_cookie(store: &dyn Store) -> String {
    let user: User = store
        .create_user(&NewUser {
            uid: "ID0000000042".into(),
            username: None,
            email: "tls@barong.test".into(),
            password_digest: "$argon2id$unused".into(),
            role: "member".into(),
            data: None,
            level: 1,
            otp: false,
            state: "active".into(),
            referral_id: None,
            labels: vec![],
        })
        .await
        .expect("user");
    let mut random = [0u8; 16];
    aws_lc_rs::rand::fill(&mut random).expect("random");
    let cookie = hex::encode(random);
    store
        .create_session(&NewSession {
            id: session_key(&cookie),
            user_id: user.id,
            uid: user.uid.clone(),
            user_ip: "127.0.0.1".into(),
            user_agent: Some(AGENT.into()),
            csrf_token: "0123456789abcdef0123".into(),
            expire_at: chrono::Utc::now().timestamp() + 600,
            authenticated_with: "password".into(),
            user_ip_country: None,
        })
        .await
        .expect("session");
    cookie
}

async fn ping(client: &reqwest::Client, server: &TestServer) -> reqwest::Result<String> {
    let url = format!("{}/api/v2/barong/public/ping", https(&server.api));
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

/// The decision for a signed-in member over HTTPS on `base`: the status and the bearer token.
async fn decide(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
) -> reqwest::Result<(u16, Option<String>)> {
    let url = format!(
        "{}/api/v2/auth/api/v2/barong/resource/users/me",
        https(base)
    );
    let response = client
        .get(url)
        .header("cookie", format!("_barong_session={cookie}"))
        .header("user-agent", AGENT)
        .send()
        .await?;
    let bearer = response
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((response.status().as_u16(), bearer))
}

/// Retries `attempt` until it succeeds or `within` passes.
async fn eventually<F, Fut, T>(within: Duration, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = attempt().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Records whether the server asked for a client certificate.
#[derive(Debug, Default)]
struct AskedForCert(AtomicBool);

impl rustls::client::ResolvesClientCert for AskedForCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// What a raw rustls handshake saw.
#[derive(Debug)]
struct Handshake {
    version: rustls::ProtocolVersion,
    alpn: Option<Vec<u8>>,
    asked_for_cert: bool,
}

/// A raw rustls handshake with `base` trusting `ca`, offering `versions` and `alpn`.
async fn handshake(
    base: &str,
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<Handshake, std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.issuer.der().to_vec()))
        .expect("root");
    let asked = Arc::new(AskedForCert::default());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_cert_resolver(asked.clone());
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(host_port(base)).await?;
    let name = ServerName::try_from("localhost").expect("name");
    let stream = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))??;
    let (_, connection) = stream.get_ref();
    Ok(Handshake {
        version: connection.protocol_version().expect("version"),
        alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
        asked_for_cert: asked.0.load(Ordering::SeqCst),
    })
}

/// A TLS 1.1 ClientHello (legacy version 3.2, no supported_versions extension, TLS 1.0/1.1
/// cipher suites), written by hand since no Rust TLS client speaks TLS 1.1.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    let suites: [u16; 4] = [0xc013, 0xc014, 0x002f, 0x0035];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for suite in suites {
        body.extend_from_slice(&suite.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    // extensions: server_name "localhost"
    let name = b"localhost";
    let mut sni = Vec::new();
    sni.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let mut extensions = vec![0x00, 0x00];
    extensions.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    extensions.extend_from_slice(&sni);
    // signature_algorithms: not a TLS 1.1 extension, but without it rustls stops earlier (with
    // handshake_failure) and the version check would go untested.
    let schemes: [u16; 2] = [0x0401, 0x0403];
    extensions.extend_from_slice(&[0x00, 0x0d]);
    extensions.extend_from_slice(&((schemes.len() * 2 + 2) as u16).to_be_bytes());
    extensions.extend_from_slice(&((schemes.len() * 2) as u16).to_be_bytes());
    for scheme in schemes {
        extensions.extend_from_slice(&scheme.to_be_bytes());
    }
    body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    body.extend_from_slice(&extensions);

    let mut handshake = vec![0x01]; // client_hello
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01]; // handshake record, TLS 1.0 record version
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// Sends `bytes` raw and returns what the server answers before closing (at most 5 s).
async fn raw_exchange(base: &str, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = tokio::net::TcpStream::connect(host_port(base))
        .await
        .expect("connect");
    tcp.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server did not close the connection");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_on_both_listeners_tls12_and_13_only() {
    let ca = Ca::new("barong test CA");
    let files = Files::new();
    let (cert, key) = files.pair("server", &ca.server());
    let (_db, store, server) = start(&[
        ("BARONG_TLS_CERT_PATH", &cert),
        ("BARONG_TLS_KEY_PATH", &key),
    ])
    .await;
    let client = https_client(&ca, None);

    // REST over HTTPS.
    assert_eq!(
        ping(&client, &server).await.expect("ping"),
        r#"{"ping":"pong"}"#
    );

    // The decision over HTTPS, on the authz listener and on the REST listener.
    let cookie = session_cookie(store.as_ref()).await;
    for base in [&server.authz, &server.api] {
        let (status, bearer) = decide(&client, base, &cookie).await.expect("decision");
        assert_eq!(status, 200, "on {base}");
        assert!(bearer.expect("bearer").starts_with("Bearer "));
    }
    let jwks = client
        .get(format!("{}/.well-known/jwks.json", https(&server.authz)))
        .send()
        .await
        .expect("jwks");
    assert_eq!(jwks.status(), 200);

    // TLS 1.3 and 1.2 handshakes, ALPN h2 and http/1.1, on both listeners; no client
    // certificate asked for without BARONG_AUTHZ_CLIENT_CA_PATH.
    for base in [&server.authz, &server.api] {
        let tls13 = handshake(base, &ca, &[&rustls::version::TLS13], &[b"h2", b"http/1.1"])
            .await
            .expect("TLS 1.3");
        assert_eq!(tls13.version, rustls::ProtocolVersion::TLSv1_3);
        assert_eq!(tls13.alpn.as_deref(), Some(&b"h2"[..]));
        assert!(!tls13.asked_for_cert);
        let tls12 = handshake(base, &ca, &[&rustls::version::TLS12], &[b"http/1.1"])
            .await
            .expect("TLS 1.2");
        assert_eq!(tls12.version, rustls::ProtocolVersion::TLSv1_2);
        assert_eq!(tls12.alpn.as_deref(), Some(&b"http/1.1"[..]));
    }

    // TLS 1.1 is refused with a fatal protocol_version alert.
    for base in [&server.authz, &server.api] {
        let answer = raw_exchange(base, &tls11_client_hello()).await;
        assert!(answer.len() >= 7, "answer {answer:?}");
        assert_eq!(answer[0], 0x15, "an alert record: {answer:?}");
        assert_eq!(
            &answer[5..7],
            &[2, 70],
            "fatal protocol_version: {answer:?}"
        );
    }

    // Plain HTTP to a TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    for base in [&server.authz, &server.api] {
        let result = plain
            .get(format!("{base}/api/v2/barong/public/ping"))
            .send()
            .await;
        assert!(result.is_err(), "plain HTTP answered on {base}: {result:?}");
    }
    // A client that never finishes its handshake does not stop others.
    let _idle = tokio::net::TcpStream::connect(host_port(&server.api))
        .await
        .expect("connect");
    assert!(ping(&client, &server).await.is_ok());

    // Graceful shutdown still works with TLS connections.
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_listener_requires_client_certificates_from_its_ca() {
    let server_ca = Ca::new("barong server CA");
    let client_ca = Ca::new("proxy client CA");
    let other_ca = Ca::new("another client CA");
    let files = Files::new();
    let (cert, key) = files.pair("server", &server_ca.server());
    let client_ca_path = text(&files.write("clients.pem", &client_ca.pem()));
    let (_db, store, server) = start(&[
        ("BARONG_TLS_CERT_PATH", &cert),
        ("BARONG_TLS_KEY_PATH", &key),
        ("BARONG_AUTHZ_CLIENT_CA_PATH", &client_ca_path),
    ])
    .await;
    let cookie = session_cookie(store.as_ref()).await;

    let proxy = client_ca.client();
    let stranger = other_ca.client();
    let anonymous = https_client(&server_ca, None);
    let with_proxy_cert = https_client(&server_ca, Some(&proxy));
    let with_other_cert = https_client(&server_ca, Some(&stranger));

    // The proxy's certificate gets its decision.
    let (status, bearer) = decide(&with_proxy_cert, &server.authz, &cookie)
        .await
        .expect("decision with the proxy's certificate");
    assert_eq!(status, 200);
    assert!(bearer.is_some());

    // No certificate, or one from another CA: no decision.
    for (who, client) in [("none", &anonymous), ("other CA", &with_other_cert)] {
        let result = decide(client, &server.authz, &cookie).await;
        assert!(result.is_err(), "client certificate {who}: {result:?}");
    }

    // The authz listener asks for a certificate; the REST listener does not and answers anyone,
    // the decision included.
    let authz = handshake(&server.authz, &server_ca, &[&rustls::version::TLS12], &[])
        .await
        .err();
    assert!(authz.is_some(), "TLS 1.2 handshake without a certificate");
    let authz13 = handshake(&server.authz, &server_ca, &[&rustls::version::TLS13], &[])
        .await
        .expect("TLS 1.3 handshake (the refusal comes after)");
    assert!(authz13.asked_for_cert);
    let rest = handshake(&server.api, &server_ca, &[&rustls::version::TLS13], &[])
        .await
        .expect("REST handshake");
    assert!(!rest.asked_for_cert);
    assert!(ping(&anonymous, &server).await.is_ok());
    let (status, _) = decide(&anonymous, &server.api, &cookie)
        .await
        .expect("decision on the REST listener");
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_listener_can_have_its_own_certificate() {
    let public_ca = Ca::new("public CA");
    let internal_ca = Ca::new("internal CA");
    let files = Files::new();
    let (cert, key) = files.pair("public", &public_ca.server());
    let (authz_cert, authz_key) = files.pair("internal", &internal_ca.server());
    let (_db, store, server) = start(&[
        ("BARONG_TLS_CERT_PATH", &cert),
        ("BARONG_TLS_KEY_PATH", &key),
        ("BARONG_AUTHZ_TLS_CERT_PATH", &authz_cert),
        ("BARONG_AUTHZ_TLS_KEY_PATH", &authz_key),
    ])
    .await;
    let cookie = session_cookie(store.as_ref()).await;
    let public = https_client(&public_ca, None);
    let internal = https_client(&internal_ca, None);
    assert!(ping(&public, &server).await.is_ok());
    assert!(ping(&internal, &server).await.is_err());
    assert_eq!(
        decide(&internal, &server.authz, &cookie)
            .await
            .expect("authz")
            .0,
        200
    );
    assert!(decide(&public, &server.authz, &cookie).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_when_the_files_change() {
    let first = Ca::new("first CA");
    let second = Ca::new("second CA");
    let files = Files::new();
    let (cert, key) = files.pair("server", &first.server());
    let (_db, store, server) = start(&[
        ("BARONG_TLS_CERT_PATH", &cert),
        ("BARONG_TLS_KEY_PATH", &key),
    ])
    .await;
    let cookie = session_cookie(store.as_ref()).await;
    let trusts_first = https_client(&first, None);
    let trusts_second = https_client(&second, None);
    assert!(ping(&trusts_first, &server).await.is_ok());
    assert!(ping(&trusts_second, &server).await.is_err());

    // A broken certificate file is refused: one log line, the old certificate stays.
    files.write("server.crt", "-----BEGIN CERTIFICATE-----\nbroken\n");
    let refused = eventually(Duration::from_secs(10), || async {
        server
            .log_text()
            .contains("TLS reload failed: keeping the previous certificate")
            .then_some(())
    })
    .await;
    assert!(refused.is_some(), "logs: {}", server.log_text());
    assert!(ping(&trusts_first, &server).await.is_ok());
    // Reported once per listener, not at every check.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let logs = server.log_text();
    assert_eq!(logs.matches("TLS reload failed").count(), 2, "logs: {logs}");
    assert!(logs.contains("BARONG_TLS_CERT_PATH ("), "logs: {logs}");

    // A new pair from the second CA is served to new connections within a few seconds, on both
    // listeners.
    let started = Instant::now();
    files.pair("server", &second.server());
    let reloaded = eventually(Duration::from_secs(10), || async {
        ping(&trusts_second, &server).await.ok()
    })
    .await;
    assert!(reloaded.is_some(), "logs: {}", server.log_text());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(ping(&trusts_first, &server).await.is_err());
    let (status, _) = decide(&trusts_second, &server.authz, &cookie)
        .await
        .expect("authz with the new certificate");
    assert_eq!(status, 200);
    let logs = server.log_text();
    assert!(logs.contains("TLS certificate reloaded"), "logs: {logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_certificates() {
    let first = Ca::new("first CA");
    let second = Ca::new("second CA");
    let client_ca = Ca::new("client CA");
    let files = Files::new();
    let (cert, key) = files.pair("server", &first.server());
    let client_ca_path = text(&files.write("clients.pem", &client_ca.pem()));
    let (_db, _store, server) = start(&[
        ("BARONG_TLS_CERT_PATH", &cert),
        ("BARONG_TLS_KEY_PATH", &key),
        ("BARONG_AUTHZ_CLIENT_CA_PATH", &client_ca_path),
        ("BARONG_TLS_RELOAD_INTERVAL", "0"),
    ])
    .await;
    let trusts_second = https_client(&second, None);

    // With polling off, changed files are not picked up by themselves...
    files.pair("server", &second.server());
    let new_client_ca = Ca::new("new client CA");
    files.write("clients.pem", &new_client_ca.pem());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(ping(&trusts_second, &server).await.is_err());

    // ... but on SIGHUP, the certificates and the client CA.
    let pid = server.pid();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let reloaded = eventually(Duration::from_secs(5), || async {
        ping(&trusts_second, &server).await.ok()
    })
    .await;
    assert!(reloaded.is_some(), "logs: {}", server.log_text());
    let new_proxy = https_client(&second, Some(&new_client_ca.client()));
    let old_proxy = https_client(&second, Some(&client_ca.client()));
    let url = format!("{}/.well-known/jwks.json", https(&server.authz));
    assert!(new_proxy.get(&url).send().await.is_ok());
    assert!(old_proxy.get(&url).send().await.is_err());
    assert!(
        server
            .log_text()
            .contains("SIGHUP: reloading TLS certificates")
    );
    // Still running and stopping cleanly.
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_tls_files_stop_the_server_with_one_line() {
    let ca = Ca::new("CA");
    let other = Ca::new("other CA");
    let files = Files::new();
    let (cert, _) = files.pair("server", &ca.server());
    let (_, other_key) = files.pair("other", &other.server());
    let garbage = text(&files.write("garbage.pem", "hello\n"));
    let db = TestDb::new(Backend::Sqlite).await;
    for (env, expected) in [
        (
            [
                ("BARONG_TLS_CERT_PATH", &garbage),
                ("BARONG_TLS_KEY_PATH", &other_key),
            ],
            "BARONG_TLS_CERT_PATH (",
        ),
        (
            [
                ("BARONG_TLS_CERT_PATH", &cert),
                ("BARONG_TLS_KEY_PATH", &garbage),
            ],
            "BARONG_TLS_KEY_PATH (",
        ),
        (
            [
                ("BARONG_TLS_CERT_PATH", &cert),
                ("BARONG_TLS_KEY_PATH", &other_key),
            ],
            "does not match the certificate in BARONG_TLS_CERT_PATH",
        ),
    ] {
        let output = common::barong_command(db.dir.path(), &db.url)
            .env("BARONG_ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env("BARONG_AUTHZ_ADDR", "127.0.0.1:0")
            .env("BARONG_API_ADDR", "127.0.0.1:0")
            .envs(env)
            .arg("serve")
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("barong: ") && last.contains(expected),
            "{expected}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_handshake_is_dropped() {
    let ca = Ca::new("CA");
    let files = Files::new();
    let (cert, key) = files.pair("server", &ca.server());
    let (_db, _store, server) = start(&[
        ("BARONG_TLS_CERT_PATH", &cert),
        ("BARONG_TLS_KEY_PATH", &key),
    ])
    .await;
    let mut silent = tokio::net::TcpStream::connect(host_port(&server.authz))
        .await
        .expect("connect");
    let started = Instant::now();
    let mut buffer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(20), silent.read_to_end(&mut buffer)).await;
    assert!(closed.is_ok(), "still open after 20 s");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "closed after {waited:?}"
    );
}
