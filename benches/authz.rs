//! In-process benchmarks of the authz hot path (criterion; measured, never asserted).
//!
//! `cargo bench --bench authz` (a filter narrows it: `cargo bench --bench authz -- decision`).
//!
//! - `decision/*`: `authz::handle` on an `Authz` built by `server::build_authz` (exactly what
//!   `barong serve` runs) over a temp SQLite database with the default seeds: a cached cookie
//!   session, a cached API key (HS256), a deny (no session, 401), a session cache miss (the
//!   session is evicted before each call: SQLite lookup, JWT reused) and the same miss with
//!   `BARONG_JWT_REUSE_TIME=0` (lookup + RS256 signing); `grpc_cookie_allow_cached` is the
//!   cached cookie allow through the gRPC front (a `CheckRequest` as Envoy encodes it, decoded
//!   into the front's wire types and answered by `authz::grpc::answer`; the `CheckResponse`
//!   built, not encoded); `grpc_decode_wire` and `grpc_decode_envoy_types` time the decoding
//!   alone, into those wire types and into `envoy-types`' (what a generated server pays).
//! - `decision_two_threads/*`: the cached decisions above, two at once on two threads (the
//!   slower thread's time): what the sharing between two cores adds to a decision.
//! - `replay/*`: a cached API key with a fresh nonce per request, without replay protection and
//!   with it on per store (in process; Redis at `BARONG_BENCH_REDIS_URL`, skipped if down).
//! - `hmac/*`: `authz::apikey::signature_matches` (what every API-key request verifies).
//! - `jwt_sign/*`: our `JwtSigner` (key pair parsed once) against `jsonwebtoken::encode` (which
//!   re-parses the key on every call), per algorithm, on Barong's claims.
//! - `token/*`: `TokenMinter::token` reuse hit in the shared cache (no source object, so no
//!   per-thread front) against a fresh mint.
//! - `cache/*`: the session cache, hit against miss (SQLite).
//!
//! Before the groups run, the number of heap allocations per decision is printed (a counting
//! global allocator, switched on only for that count).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test, bench or example fails loudly: a panic is its failure"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use envoy_types::ext_authz::v3::pb::{Address, CheckRequest};
use envoy_types::pb::envoy::config::core::v3::{
    Address as EnvoyAddress, HeaderMap as EnvoyHeaders, HeaderValue as EnvoyHeader, SocketAddress,
};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer};
use http::Request;
use prost::Message;

use barong::authz::token::{Principal, Subject, TokenMinter, UserExtras};
use barong::authz::{self, Authz};
use barong::clock::Tick;
use barong::config::Config;
use barong::crypto::encryption::Encryptor;
use barong::crypto::jws::JwtSigner;
use barong::crypto::keyring::{KeyRing, SharedKeys};
use barong::crypto::keys::{EncryptionKey, KeyAlgorithm, SigningKey, generate_private_key_pem};
use barong::domain::{KeyHolder, NewApiKey, NewSession, NewUser, session_digest, session_key};
use barong::invalidation::InvalidationBus;
use barong::seed::{DEFAULT_SEEDS, Seeds};
use barong::server;
use barong::store::Store;

// ---- allocation counting -------------------------------------------------------------------

struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

fn count(size: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        ALLOC_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

// ---- fixture -------------------------------------------------------------------------------

const ENCRYPTION_KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) barong-bench";
const PATH: &str = "/api/v2/auth/api/v2/barong/resource/users/me";
const SECRET: &str = "00112233445566778899aabbccddeeff";

/// Fields drop in order: the runtime last, so the SQLite pool can hand its connections back.
struct Fixture {
    /// `barong serve`'s defaults (JWTs reused for 30 s).
    authz: Arc<Authz>,
    /// `BARONG_JWT_REUSE_TIME=0`: every allow signs.
    authz_signing: Arc<Authz>,
    /// Replay protection on, remembered in process.
    authz_replay_memory: Arc<Authz>,
    /// Replay protection on, remembered in Redis (`BARONG_BENCH_REDIS_URL`, else
    /// `redis://127.0.0.1:6379/12`).
    authz_replay_redis: Arc<Authz>,
    cookie: String,
    session_id: String,
    kid: String,
    nonce: String,
    signature: String,
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

fn config(dir: &std::path::Path, extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        (
            "BARONG_DATABASE_URL",
            format!("sqlite://{}", dir.join("barong.db").display()),
        ),
        ("BARONG_DATA_DIR", dir.display().to_string()),
        ("BARONG_ENCRYPTION_KEY", ENCRYPTION_KEY.to_owned()),
        // A fixed nonce for the whole run: verification costs the same whatever its age.
        ("BARONG_APIKEY_NONCE_LIFETIME", "86400000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_sources(&env, None).expect("bench config")
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), &[]);
    let config_signing = self::config(dir.path(), &[("BARONG_JWT_REUSE_TIME", "0")]);
    let built = rt.block_on(async {
        let keys = server::load_keys(&config).expect("keys");
        let store = server::open_store(&config).await.expect("store");
        store.migrate().await.expect("migrate");
        Seeds::parse(DEFAULT_SEEDS)
            .expect("seeds")
            .apply(store.as_ref(), "ID")
            .await
            .expect("seed");
        let user = store
            .create_user(&NewUser {
                uid: "IDBENCH00001".into(),
                username: None,
                email: "bench@barong.test".into(),
                password_digest: "$argon2id$unused".into(),
                role: "member".into(),
                data: None,
                level: 3,
                otp: true,
                state: "active".into(),
                referral_id: None,
                labels: vec![],
            })
            .await
            .expect("user");
        let cookie = "0123456789abcdef0123456789abcdef".to_owned();
        let session_id = session_key(&cookie);
        store
            .create_session(&NewSession {
                id: session_id.clone(),
                user_id: user.id,
                uid: user.uid.clone(),
                user_ip: "127.0.0.1".into(),
                user_agent: Some(AGENT.into()),
                csrf_token: "c0ffee00c0ffee00c0ff".into(),
                expire_at: chrono::Utc::now().timestamp() + 86_400,
                authenticated_with: "password".into(),
                user_ip_country: None,
            })
            .await
            .expect("session");
        let kid = "b0a1d2e3f4a5b6c7".to_owned();
        let encryptor = Encryptor::new(&EncryptionKey::parse(ENCRYPTION_KEY).expect("key"));
        store
            .create_api_key(&NewApiKey {
                holder: KeyHolder::User(user.id),
                kid: kid.clone(),
                algorithm: "HS256".into(),
                scope: vec!["trade".into()],
                secret_encrypted: encryptor.encrypt(SECRET),
                state: "active".into(),
            })
            .await
            .expect("api key");
        let nonce = chrono::Utc::now().timestamp_millis().to_string();
        let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
        let signature = hex::encode(hmac::sign(&key, format!("{nonce}{kid}").as_bytes()));

        let bus = InvalidationBus::new();
        let signer = Arc::new(SharedKeys::new(
            KeyRing::single(&keys.signing).expect("key ring"),
        ));
        let (authz, _) =
            server::build_authz(&config, &keys, signer.clone(), store.clone(), bus.clone())
                .await
                .expect("authz");
        let (authz_signing, _) = server::build_authz(
            &config_signing,
            &keys,
            signer.clone(),
            store.clone() as Arc<dyn Store>,
            bus,
        )
        .await
        .expect("authz (no reuse)");
        let replay = |store: &str| {
            let redis = std::env::var("BARONG_BENCH_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/12".into());
            self::config(
                dir.path(),
                &[
                    ("BARONG_APIKEY_REPLAY_PROTECTION", "true"),
                    ("BARONG_APIKEY_REPLAY_STORE", store),
                    ("BARONG_REDIS_URL", &redis),
                ],
            )
        };
        let mut replaying = Vec::new();
        for replay_store in ["memory", "redis"] {
            let (authz, _) = server::build_authz(
                &replay(replay_store),
                &keys,
                signer.clone(),
                store.clone(),
                InvalidationBus::new(),
            )
            .await
            .expect("authz (replay protection)");
            replaying.push(authz);
        }
        let authz_replay_redis = replaying.pop().expect("redis");
        let authz_replay_memory = replaying.pop().expect("memory");
        (
            authz,
            authz_signing,
            authz_replay_memory,
            authz_replay_redis,
            cookie,
            session_id,
            kid,
            nonce,
            signature,
        )
    });
    let (
        authz,
        authz_signing,
        authz_replay_memory,
        authz_replay_redis,
        cookie,
        session_id,
        kid,
        nonce,
        signature,
    ) = built;
    Fixture {
        authz,
        authz_signing,
        authz_replay_memory,
        authz_replay_redis,
        cookie,
        session_id,
        kid,
        nonce,
        signature,
        _dir: dir,
        rt,
    }
}

/// Drops the fixture inside its runtime (the database pools need one to close).
fn teardown(f: Fixture) {
    let handle = f.rt.handle().clone();
    let _guard = handle.enter();
    drop(f);
}

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("peer")
}

fn cookie_request(cookie: &str) -> Request<()> {
    Request::get(PATH)
        .header("host", "127.0.0.1:8002")
        .header("cookie", format!("_barong_session={cookie}"))
        .header("user-agent", AGENT)
        .body(())
        .expect("request")
}

fn api_key_request(f: &Fixture) -> Request<()> {
    Request::get(PATH)
        .header("host", "127.0.0.1:8002")
        .header("x-auth-apikey", f.kid.as_str())
        .header("x-auth-nonce", f.nonce.as_str())
        .header("x-auth-signature", f.signature.as_str())
        .body(())
        .expect("request")
}

/// A signed API-key request with a nonce never used before (replay protection lets each one
/// through once); the signing is the client's work, done outside the timed part.
fn fresh_api_key_request(f: &Fixture) -> Request<()> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    // Inside the 24 h nonce lifetime of the bench config, in the past (no future skew), unique.
    let base = chrono::Utc::now().timestamp_millis() - 80_000_000;
    let nonce = (base + SEQUENCE.fetch_add(1, Ordering::Relaxed) as i64).to_string();
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let signature = hex::encode(hmac::sign(&key, format!("{nonce}{}", f.kid).as_bytes()));
    Request::get(PATH)
        .header("host", "127.0.0.1:8002")
        .header("x-auth-apikey", f.kid.as_str())
        .header("x-auth-nonce", nonce)
        .header("x-auth-signature", signature)
        .body(())
        .expect("request")
}

fn anonymous_request() -> Request<()> {
    Request::get(PATH)
        .header("host", "127.0.0.1:8002")
        .header("user-agent", AGENT)
        .body(())
        .expect("request")
}

/// What the HTTP checks ask, as the upstream routes it (gRPC checks carry no `/api/v2/auth`).
const GRPC_PATH: &str = "/api/v2/barong/resource/users/me";

/// The cookie check as Envoy's gRPC `ext_authz` sends it (`envoy/envoy-grpc.yaml`,
/// `encode_raw_headers: true`): the raw header list, Envoy's pseudo-headers and own headers
/// included, and the client's address.
fn grpc_cookie_check(cookie: &str) -> CheckRequest {
    let cookie = format!("_barong_session={cookie}");
    let headers = [
        (":authority", "127.0.0.1:8080"),
        (":path", GRPC_PATH),
        (":method", "GET"),
        (":scheme", "http"),
        ("user-agent", AGENT),
        ("accept", "*/*"),
        ("cookie", cookie.as_str()),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "3d72e417-60aa-47cc-b232-bde2254ede99"),
    ]
    .iter()
    .map(|(key, value)| EnvoyHeader {
        key: (*key).to_owned(),
        raw_value: value.as_bytes().to_vec(),
        ..Default::default()
    })
    .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                address: Some(EnvoyAddress {
                    address: Some(Address::SocketAddress(SocketAddress {
                        address: "127.0.0.1".into(),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            }),
            request: Some(
                envoy_types::pb::envoy::service::auth::v3::attribute_context::Request {
                    http: Some(HttpRequest {
                        method: "GET".into(),
                        path: GRPC_PATH.into(),
                        header_map: Some(EnvoyHeaders { headers }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ),
            ..Default::default()
        }),
    }
}

/// [`grpc_cookie_check`] encoded, as the gRPC front receives it.
fn grpc_cookie_frame(cookie: &str) -> Bytes {
    Bytes::from(grpc_cookie_check(cookie).encode_to_vec())
}

/// The gRPC front's answer's gRPC code (0: allow): the check decoded as tonic decodes it (a
/// `Bytes` field is a slice of the frame), then judged.
async fn grpc_decide(authz: &Authz, frame: Bytes) -> i32 {
    let request = authz::grpc::wire::CheckRequest::decode(frame).expect("a check");
    grpc_answer(authz, request).await
}

/// The gRPC code of the answer to a check already decoded (0: allow).
async fn grpc_answer(authz: &Authz, request: authz::grpc::wire::CheckRequest) -> i32 {
    let response = authz::grpc::answer(authz, peer(), request).await;
    response.status.map(|s| s.code).unwrap_or(-1)
}

async fn decide(authz: &Arc<Authz>, request: Request<()>) -> u16 {
    let response = authz::handle(authz.clone(), peer(), request)
        .await
        .expect("infallible");
    response.status().as_u16()
}

/// Times `iters` decisions, building the requests outside the timed part (in chunks).
async fn timed_decisions(
    authz: &Arc<Authz>,
    iters: u64,
    make: impl Fn() -> Request<()>,
) -> Duration {
    timed(iters, make, |request| decide(authz, request)).await
}

/// `iters` calls of `decide`, on requests `make` built beforehand (outside the timed part).
async fn timed<R, F: Future>(
    iters: u64,
    make: impl Fn() -> R,
    decide: impl Fn(R) -> F,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(1024);
        let requests: Vec<R> = (0..n).map(|_| make()).collect();
        let start = Instant::now();
        for request in requests {
            black_box(decide(request).await);
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

/// Times `iters` decisions on each of two threads at once, and gives the slower thread's
/// time: what a decision costs while another core runs one too, as under load. Whatever both
/// write (a counter, a shared entry's reference count, a cache shard's lock word) moves
/// between the two cores' caches on every decision, which one thread alone never pays. The
/// requests are built in chunks outside the timed part; both threads start each chunk
/// together. Each thread has its own `ConnectionHandle`, as each connection of the listener.
fn timed_in_pairs(
    f: &Fixture,
    authz: &Arc<Authz>,
    iters: u64,
    make: &(dyn Fn() -> Request<()> + Sync),
) -> Duration {
    let start_together = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    // A handle per thread, as the listener gives each connection its own.
                    let handle = authz::ConnectionHandle::new(authz);
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(1024);
                        let requests: Vec<Request<()>> = (0..n).map(|_| make()).collect();
                        start_together.wait();
                        let start = Instant::now();
                        f.rt.block_on(async {
                            for request in requests {
                                let response = authz::handle(handle.clone(), peer(), request)
                                    .await
                                    .expect("infallible");
                                black_box(response.status());
                            }
                        });
                        total += start.elapsed();
                        left -= n;
                    }
                    total
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

/// Times decisions that each start with the session evicted (the eviction is not timed).
async fn timed_misses(authz: &Arc<Authz>, iters: u64, cookie: &str, session_id: &str) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        authz.caches.forget_session(session_id).await;
        let request = cookie_request(cookie);
        let start = Instant::now();
        black_box(decide(authz, request).await);
        total += start.elapsed();
    }
    total
}

fn check_fixture(f: &Fixture) {
    f.rt.block_on(async {
        assert_eq!(decide(&f.authz, cookie_request(&f.cookie)).await, 200);
        assert_eq!(decide(&f.authz, api_key_request(f)).await, 200);
        assert_eq!(decide(&f.authz, anonymous_request()).await, 401);
        assert_eq!(grpc_decide(&f.authz, grpc_cookie_frame(&f.cookie)).await, 0);
        assert_eq!(
            decide(&f.authz_signing, cookie_request(&f.cookie)).await,
            200
        );
    });
}

/// Heap allocations (count, bytes) per decision, averaged over `n` warm calls.
fn allocations<R, F: Future>(
    f: &Fixture,
    n: u64,
    make: impl Fn() -> R,
    decide: impl Fn(R) -> F,
) -> (f64, f64) {
    f.rt.block_on(async {
        for _ in 0..16 {
            decide(make()).await;
        }
        let requests: Vec<R> = (0..n).map(|_| make()).collect();
        ALLOCS.store(0, Ordering::Relaxed);
        ALLOC_BYTES.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        for request in requests {
            black_box(decide(request).await);
        }
        COUNTING.store(false, Ordering::Relaxed);
    });
    (
        ALLOCS.load(Ordering::Relaxed) as f64 / n as f64,
        ALLOC_BYTES.load(Ordering::Relaxed) as f64 / n as f64,
    )
}

fn print_allocations(f: &Fixture) {
    type MakeRequest<'a> = Box<dyn Fn() -> Request<()> + 'a>;
    let cases: [(&str, MakeRequest); 3] = [
        (
            "cookie allow (cached)",
            Box::new(|| cookie_request(&f.cookie)),
        ),
        ("API-key allow (cached)", Box::new(|| api_key_request(f))),
        ("deny (no session)", Box::new(anonymous_request)),
    ];
    for (name, make) in cases {
        let (count, bytes) = allocations(f, 2000, make, |request| decide(&f.authz, request));
        println!(
            "allocations per decision, {name}: {count:.1} ({bytes:.0} bytes; the response included, the request not)"
        );
    }
    let frame = || grpc_cookie_frame(&f.cookie);
    let (count, bytes) = allocations(f, 2000, frame, |frame| grpc_decide(&f.authz, frame));
    println!(
        "allocations per decision, cookie allow through gRPC (cached): {count:.1} ({bytes:.0} bytes; decoding the CheckRequest and building the CheckResponse included)"
    );
    // The same with the check decoded beforehand, as the HTTP counts above leave the request out.
    let decoded = || authz::grpc::wire::CheckRequest::decode(frame()).expect("a check");
    let (count, bytes) = allocations(f, 2000, decoded, |request| grpc_answer(&f.authz, request));
    println!(
        "allocations per decision, cookie allow through gRPC (cached), the CheckRequest decoded beforehand: {count:.1} ({bytes:.0} bytes)"
    );
    // What decoding alone cost with envoy-types' `String` fields, the front's types before.
    let (count, bytes) = allocations(f, 2000, frame, |frame| async move {
        black_box(CheckRequest::decode(frame).expect("a check"));
    });
    println!(
        "allocations to decode the same check into envoy-types' CheckRequest: {count:.1} ({bytes:.0} bytes)"
    );
}

// ---- benchmarks ----------------------------------------------------------------------------

fn decision(c: &mut Criterion) {
    let f = fixture();
    check_fixture(&f);
    print_allocations(&f);
    let mut group = c.benchmark_group("decision");
    group.bench_function("cookie_allow_cached", |b| {
        b.to_async(&f.rt)
            .iter_custom(|iters| timed_decisions(&f.authz, iters, || cookie_request(&f.cookie)));
    });
    group.bench_function("api_key_allow_cached", |b| {
        b.to_async(&f.rt)
            .iter_custom(|iters| timed_decisions(&f.authz, iters, || api_key_request(&f)));
    });
    group.bench_function("deny_no_session_401", |b| {
        b.to_async(&f.rt)
            .iter_custom(|iters| timed_decisions(&f.authz, iters, anonymous_request));
    });
    group.bench_function("grpc_cookie_allow_cached", |b| {
        b.to_async(&f.rt).iter_custom(|iters| {
            timed(
                iters,
                || grpc_cookie_frame(&f.cookie),
                |frame| grpc_decide(&f.authz, frame),
            )
        });
    });
    // Decoding alone (and dropping), into the front's wire types and into envoy-types' (what a
    // generated server pays, the gRPC floor among them): the protobuf share of the check above.
    group.bench_function("grpc_decode_wire", |b| {
        b.to_async(&f.rt).iter_custom(|iters| {
            timed(
                iters,
                || grpc_cookie_frame(&f.cookie),
                |frame| async move { authz::grpc::wire::CheckRequest::decode(frame).is_ok() },
            )
        });
    });
    group.bench_function("grpc_decode_envoy_types", |b| {
        b.to_async(&f.rt).iter_custom(|iters| {
            timed(
                iters,
                || grpc_cookie_frame(&f.cookie),
                |frame| async move { CheckRequest::decode(frame).is_ok() },
            )
        });
    });
    group.bench_function("cookie_session_miss_sqlite", |b| {
        b.to_async(&f.rt)
            .iter_custom(|iters| timed_misses(&f.authz, iters, &f.cookie, &f.session_id));
    });
    group.bench_function("cookie_session_miss_sqlite_and_rs256_sign", |b| {
        b.to_async(&f.rt)
            .iter_custom(|iters| timed_misses(&f.authz_signing, iters, &f.cookie, &f.session_id));
    });
    group.finish();

    // The same decisions, two at a time on two threads (`timed_in_pairs`): against the group
    // above, what the cores' sharing costs. The fixture has one session, one user and one key,
    // so both threads read the same entries: the worst case, a client hammering one key.
    let mut group = c.benchmark_group("decision_two_threads");
    let cookie = || cookie_request(&f.cookie);
    let api_key = || api_key_request(&f);
    type Make<'a> = &'a (dyn Fn() -> Request<()> + Sync);
    let cases: [(&str, Make); 3] = [
        ("cookie_allow_cached", &cookie),
        ("api_key_allow_cached", &api_key),
        ("deny_no_session_401", &anonymous_request),
    ];
    for (name, make) in cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| timed_in_pairs(&f, &f.authz, iters, make));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("cache");
    group.bench_function("session_hit", |b| {
        b.to_async(&f.rt).iter(|| async {
            black_box(
                f.authz
                    .caches
                    .session(&session_digest(f.cookie.as_bytes()), Tick::now())
                    .await
                    .expect("load"),
            )
        });
    });
    group.bench_function("session_miss_sqlite", |b| {
        let f = &f;
        b.to_async(&f.rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                f.authz.caches.forget_session(&f.session_id).await;
                let start = Instant::now();
                black_box(
                    f.authz
                        .caches
                        .session(&session_digest(f.cookie.as_bytes()), Tick::now())
                        .await
                        .expect("load"),
                );
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
    teardown(f);
}

/// A cached API key with replay protection on, per replay store: every request carries a fresh
/// nonce, so each decision records one (kid, nonce, signature). The Redis case is skipped when
/// Redis is unreachable.
fn replay_protection(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("replay");
    group.bench_function("api_key_allow_cached_no_replay_check", |b| {
        b.to_async(&f.rt)
            .iter_custom(|iters| timed_decisions(&f.authz, iters, || fresh_api_key_request(&f)));
    });
    for (name, authz) in [
        ("api_key_allow_cached_memory", &f.authz_replay_memory),
        ("api_key_allow_cached_redis", &f.authz_replay_redis),
    ] {
        let status =
            f.rt.block_on(async { decide(authz, fresh_api_key_request(&f)).await });
        if status != 200 {
            println!("{name}: skipped (first decision answered {status}; is Redis up?)");
            continue;
        }
        group.bench_function(name, |b| {
            b.to_async(&f.rt)
                .iter_custom(|iters| timed_decisions(authz, iters, || fresh_api_key_request(&f)));
        });
    }
    group.finish();
    teardown(f);
}

fn hmac_verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("hmac");
    let kid = "b0a1d2e3f4a5b6c7";
    let nonce = "1764043200000";
    for (name, algorithm) in [
        ("HS256", hmac::HMAC_SHA256),
        ("HS384", hmac::HMAC_SHA384),
        ("HS512", hmac::HMAC_SHA512),
    ] {
        let signature = hex::encode(hmac::sign(
            &hmac::Key::new(algorithm, SECRET.as_bytes()),
            format!("{nonce}{kid}").as_bytes(),
        ));
        let key = authz::apikey::KeyMac::new(name, SECRET.as_bytes()).expect("known algorithm");
        group.bench_function(BenchmarkId::new("signature_matches", name), |b| {
            b.iter(|| {
                black_box(authz::apikey::signature_matches(
                    black_box(&key),
                    black_box(nonce.as_bytes()),
                    black_box(kid),
                    black_box(signature.as_bytes()),
                ))
            });
        });
    }
    group.finish();
}

/// Barong's claims for a user, as `TokenMinter` serializes them.
fn claims() -> serde_json::Value {
    serde_json::json!({
        "iat": 1_764_043_200, "exp": 1_764_046_800, "sub": "session", "iss": "barong",
        "aud": ["peatio", "barong"], "jti": "0123456789abcdef0123", "uid": "IDBENCH00001",
        "email": "bench@barong.test", "role": "member", "level": 3, "state": "active",
        "referral_id": null, "username": null,
    })
}

fn signing_key(algorithm: KeyAlgorithm) -> SigningKey {
    let pem = generate_private_key_pem(algorithm).expect("generate");
    let der = pem::parse(&pem).expect("pem").into_contents();
    SigningKey {
        algorithm,
        private_der: der,
        pem,
    }
}

fn jwt_signing(c: &mut Criterion) {
    let mut group = c.benchmark_group("jwt_sign");
    let claims = claims();
    let claims_json = serde_json::to_vec(&claims).expect("claims");
    for (algorithm, jwt_alg) in [
        (KeyAlgorithm::Rs256, jsonwebtoken::Algorithm::RS256),
        (KeyAlgorithm::Es256, jsonwebtoken::Algorithm::ES256),
        (KeyAlgorithm::EdDsa, jsonwebtoken::Algorithm::EdDSA),
    ] {
        let key = signing_key(algorithm);
        let signer = JwtSigner::new(&key).expect("signer");
        let encoding_key = match algorithm {
            KeyAlgorithm::Rs256 => jsonwebtoken::EncodingKey::from_rsa_pem(key.pem.as_bytes()),
            KeyAlgorithm::Es256 => jsonwebtoken::EncodingKey::from_ec_pem(key.pem.as_bytes()),
            KeyAlgorithm::EdDsa => jsonwebtoken::EncodingKey::from_ed_pem(key.pem.as_bytes()),
        }
        .expect("jsonwebtoken key");
        let mut header = jsonwebtoken::Header::new(jwt_alg);
        header.kid = Some(signer.kid().to_owned());
        jsonwebtoken::encode(&header, &claims, &encoding_key).expect("jsonwebtoken encode");

        group.bench_function(
            BenchmarkId::new("jws_signer_preparsed", algorithm.name()),
            |b| {
                b.iter(|| black_box(signer.sign(black_box(&claims_json)).expect("sign")));
            },
        );
        group.bench_function(
            BenchmarkId::new("jsonwebtoken_encode", algorithm.name()),
            |b| {
                b.iter(|| {
                    black_box(
                        jsonwebtoken::encode(&header, black_box(&claims), &encoding_key)
                            .expect("encode"),
                    )
                });
            },
        );
    }
    group.finish();
}

fn token_reuse(c: &mut Criterion) {
    let mut group = c.benchmark_group("token");
    let principal = Principal {
        uid: "IDBENCH00001",
        email: "bench@barong.test",
        role: "member",
        level: 3,
        state: "active",
        user_extras: Some(UserExtras {
            username: None,
            referral_id: None,
        }),
    };
    for algorithm in [
        KeyAlgorithm::Rs256,
        KeyAlgorithm::Es256,
        KeyAlgorithm::EdDsa,
    ] {
        let signer = Arc::new(SharedKeys::new(
            KeyRing::single(&signing_key(algorithm)).expect("key ring"),
        ));
        let reusing = TokenMinter::new(signer.clone(), 3600, 30);
        let minting = TokenMinter::new(signer, 3600, 0);
        reusing
            .token(Subject::Claims(principal), Tick::now())
            .expect("first token");
        group.bench_function(BenchmarkId::new("reuse_hit", algorithm.name()), |b| {
            b.iter(|| {
                black_box(
                    reusing
                        .token(Subject::Claims(black_box(principal)), Tick::now())
                        .expect("token"),
                )
            });
        });
        group.bench_function(BenchmarkId::new("fresh_mint", algorithm.name()), |b| {
            b.iter(|| {
                black_box(
                    minting
                        .token(Subject::Claims(black_box(principal)), Tick::now())
                        .expect("token"),
                )
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = decision, replay_protection, hmac_verification, jwt_signing, token_reuse
}
criterion_main!(benches);
