//! Barong's Event API: the worker that drains the event outbox into RabbitMQ.
//!
//! Events are written to `event_outbox` by the store in the transaction of the change they
//! describe (see the `Store` events section). This worker claims due rows, signs each as Barong
//! does (a jwt-multisig object, signer `barong`, the server's signing key, claims `iss`, `jti`,
//! `iat`, `exp = iat + 3600` and `event`), publishes it on the direct exchange
//! `barong.events.<category>` with the rest of the name as routing key, waits for the broker's
//! publisher confirm and only then marks the row sent. While RabbitMQ is unreachable rows stay
//! in the outbox and are retried with a doubling backoff; a row claimed by a worker that dies is
//! due again after the claim lease.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::crypto::encryption::Encryptor;
use crate::crypto::tokens::TokenSigner;
use crate::domain::OutboxEvent;
use crate::store::Store;

/// How long a claimed event is reserved for the worker that claimed it.
const CLAIM_LEASE_SECS: i64 = 60;
/// Events claimed per round.
const BATCH: i64 = 50;
/// Lifetime of the signed event (Barong: one hour).
const EVENT_LIFETIME: i64 = 3600;
/// How long one publish may wait for its confirm before the connection is considered lost.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// What the worker needs from the settings.
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// `amqp://user:password@host:port/%2f`.
    pub url: String,
    pub poll_interval: Duration,
    pub max_backoff: Duration,
}

/// Whether the Event API is on (`BARONG_EVENT_API_ENABLED` or a RabbitMQ URL given).
pub fn enabled(config: &Config) -> bool {
    config.events.event_api_enabled || config.events.event_api_rabbitmq_url.is_some()
}

impl EventSettings {
    /// `None` when the Event API is off.
    pub fn from_config(config: &Config) -> Option<Self> {
        if !enabled(config) {
            return None;
        }
        let url = config
            .events
            .event_api_rabbitmq_url
            .clone()
            .unwrap_or_else(|| {
                format!(
                    "amqp://{}:{}@{}:{}/%2f",
                    urlencode(&config.events.event_api_rabbitmq_username),
                    urlencode(config.events.event_api_rabbitmq_password.expose()),
                    config.events.event_api_rabbitmq_host,
                    config.events.event_api_rabbitmq_port
                )
            });
        Some(Self {
            url,
            poll_interval: Duration::from_millis(config.events.event_api_poll_interval),
            max_backoff: Duration::from_secs(config.events.event_api_retry_max_backoff),
        })
    }
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The signed message body of one outbox row: `payload` (with `name`) becomes the `event` claim.
pub fn sign_event(signer: &TokenSigner, payload: &str) -> Result<Vec<u8>, String> {
    let event: Value = serde_json::from_str(payload).map_err(|e| e.to_string())?;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": "barong",
        "jti": uuid_v4(),
        "iat": now,
        "exp": now + EVENT_LIFETIME,
        "event": event,
    });
    let jws = signer
        .sign_multisig(&claims, "barong")
        .map_err(|e| e.to_string())?;
    Ok(jws.to_json().to_string().into_bytes())
}

/// A random (version 4) UUID, as Barong's `SecureRandom.uuid`.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Turns recording on in the store and starts the worker, when the Event API is on.
pub fn start(
    config: &Config,
    store: Arc<dyn Store>,
    signer: Arc<TokenSigner>,
    encryptor: Encryptor,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let settings = EventSettings::from_config(config)?;
    store.enable_events(&config.users.domain);
    let keys = Keys { signer, encryptor };
    Some(tokio::spawn(run(settings, store, keys, shutdown)))
}

/// An open connection with a confirm-mode channel.
struct Link {
    _connection: Connection,
    channel: Channel,
    declared: std::collections::HashSet<String>,
}

async fn connect(url: &str) -> Result<Link, lapin::Error> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(Link {
        _connection: connection,
        channel,
        declared: Default::default(),
    })
}

/// What delivery needs besides the store: the signer of the messages and the key that opens
/// sealed payloads.
struct Keys {
    signer: Arc<TokenSigner>,
    encryptor: Encryptor,
}

async fn run(
    settings: EventSettings,
    store: Arc<dyn Store>,
    keys: Keys,
    shutdown: CancellationToken,
) {
    let mut link: Option<Link> = None;
    let mut failures: u32 = 0;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let wait = match round(&settings, store.as_ref(), &keys, &mut link).await {
            Ok(true) => {
                failures = 0;
                continue; // a full batch: more may be due
            }
            Ok(false) => {
                failures = 0;
                settings.poll_interval
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                link = None;
                let delay = backoff(failures, settings.max_backoff);
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "event delivery failed");
                delay
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {},
        }
    }
    tracing::info!("event worker stopped");
}

/// 1 s doubled per consecutive failure, capped.
fn backoff(failures: u32, max: Duration) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(20)).min(max)
}

/// One round: claims due events and publishes them in order; true when the batch was full.
async fn round(
    settings: &EventSettings,
    store: &dyn Store,
    keys: &Keys,
    link: &mut Option<Link>,
) -> Result<bool, String> {
    let events = store
        .claim_events(BATCH, CLAIM_LEASE_SECS)
        .await
        .map_err(|e| e.to_string())?;
    if events.is_empty() {
        return Ok(false);
    }
    let full = events.len() as i64 == BATCH;
    let mut pending = events.into_iter();
    while let Some(event) = pending.next() {
        if let Err(error) = deliver(settings, store, keys, link, &event).await {
            // This one and the rest of the batch are due again after a short wait, in order.
            let retry = 1;
            for e in std::iter::once(event).chain(pending) {
                let _ = store.mark_event_failed(e.id, &error, retry).await;
            }
            return Err(error);
        }
    }
    Ok(full)
}

async fn deliver(
    settings: &EventSettings,
    store: &dyn Store,
    keys: &Keys,
    link: &mut Option<Link>,
    event: &OutboxEvent,
) -> Result<(), String> {
    let opened;
    let payload = if event.sealed {
        match keys.encryptor.decrypt(&event.payload) {
            Ok(clear) => {
                opened = clear;
                opened.as_str()
            }
            Err(error) => {
                // Another key or a damaged row: retrying cannot help, and nothing of it is logged.
                tracing::error!(id = event.id, %error, "sealed event cannot be opened; giving up on it");
                let _ = store
                    .mark_event_failed(event.id, &error.to_string(), i64::from(i32::MAX))
                    .await;
                return Ok(());
            }
        }
    } else {
        event.payload.as_str()
    };
    let body = match sign_event(&keys.signer, payload) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(id = event.id, %error, "event cannot be signed; giving up on it");
            let _ = store
                .mark_event_failed(event.id, &error, i64::from(i32::MAX))
                .await;
            return Ok(());
        }
    };
    if link.is_none() {
        *link = Some(connect(&settings.url).await.map_err(|e| e.to_string())?);
    }
    let Some(active) = link.as_mut() else {
        return Err("no connection".into());
    };
    publish(active, event, &body).await?;
    tracing::debug!(id = event.id, exchange = %event.exchange, key = %event.routing_key, "event published");
    if let Err(error) = store.mark_event_sent(event.id).await {
        tracing::warn!(id = event.id, %error, "event published but not marked; it may be sent again");
    }
    Ok(())
}

async fn publish(link: &mut Link, event: &OutboxEvent, body: &[u8]) -> Result<(), String> {
    if !link.declared.contains(&event.exchange) {
        // Barong's `channel.direct(name)`: a non-durable direct exchange.
        link.channel
            .exchange_declare(
                event.exchange.as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
        link.declared.insert(event.exchange.clone());
    }
    let confirm = link
        .channel
        .basic_publish(
            event.exchange.as_str().into(),
            event.routing_key.as_str().into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_content_type("application/json".into()),
        )
        .await
        .map_err(|e| e.to_string())?;
    let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
        .await
        .map_err(|_| "publisher confirm timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if confirmation.is_ack() {
        Ok(())
    } else {
        Err("broker refused the event (nack)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let max = Duration::from_secs(30);
        assert_eq!(backoff(1, max), Duration::from_secs(1));
        assert_eq!(backoff(3, max), Duration::from_secs(4));
        assert_eq!(backoff(50, max), max);
    }

    #[test]
    fn uuid_has_version_4_shape() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
