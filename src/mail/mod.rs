//! Mail: the templates and the outbox worker.
//!
//! Every mail is first written to `mail_outbox` in the transaction of the change that causes it
//! (see the `Store` identity methods); this worker claims due rows, sends them over SMTP with
//! lettre, marks each sent once, and on failure retries with exponential backoff. A mail claimed
//! by a worker that dies is due again after the claim lease, so nothing is lost across restarts.

pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Mail;
use crate::domain::OutboxMail;
use crate::store::Store;

pub use templates::MailSettings;

/// How long a claimed mail is reserved for the worker that claimed it.
const CLAIM_LEASE_SECS: i64 = 120;
/// Mails claimed per round.
const BATCH: i64 = 20;
/// Delivered mails are kept this long (for support questions), then deleted.
const SENT_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// How often the worker deletes old delivered mails.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Retry delay for a mail that can never be sent (bad address): effectively never.
const NEVER_SECS: i64 = 10 * 365 * 24 * 3600;

/// What the worker needs from the settings.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_user: String,
    pub smtp_password: String,
    pub sender: String,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub poll_interval: Duration,
}

impl WorkerSettings {
    pub fn from_config(config: &Mail) -> Self {
        Self {
            smtp_host: config.smtp_host.clone(),
            smtp_port: config.smtp_port,
            smtp_user: config.smtp_user.clone(),
            smtp_password: config.smtp_password.expose().to_owned(),
            sender: format!("{} <{}>", config.sender_name, config.sender_email),
            backoff: Duration::from_secs(config.mail_retry_backoff),
            max_backoff: Duration::from_secs(config.mail_retry_max_backoff),
            poll_interval: Duration::from_millis(config.mail_poll_interval),
        }
    }
}

/// The delay before attempt `attempts + 1`: `backoff * 2^(attempts-1)`, capped.
pub fn retry_delay(attempts: i32, backoff: Duration, max: Duration) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 30) as u32;
    backoff
        .checked_mul(2u32.saturating_pow(exponent))
        .unwrap_or(max)
        .min(max)
}

/// Starts the outbox worker; it stops when `shutdown` is cancelled. `wakeup` makes it look at
/// the outbox at once (handlers notify it after queueing a mail).
pub fn spawn_worker(
    config: &Mail,
    store: Arc<dyn Store>,
    wakeup: Arc<Notify>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let settings = WorkerSettings::from_config(config);
    tokio::spawn(run_worker(settings, store, wakeup, shutdown))
}

fn transport(settings: &WorkerSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    crate::crypto::install_tls_provider();
    let host = settings.smtp_host.as_str();
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(settings.smtp_port)
        .timeout(Some(Duration::from_secs(15)));
    if settings.smtp_port == 465 {
        let params = TlsParameters::new(host.to_owned()).map_err(|e| e.to_string())?;
        builder = builder.tls(Tls::Wrapper(params));
    } else if !settings.smtp_user.is_empty() {
        let params = TlsParameters::new(host.to_owned()).map_err(|e| e.to_string())?;
        builder = builder.tls(Tls::Opportunistic(params));
    }
    if !settings.smtp_user.is_empty() {
        builder = builder.credentials(Credentials::new(
            settings.smtp_user.clone(),
            settings.smtp_password.clone(),
        ));
    }
    Ok(builder.build())
}

async fn run_worker(
    settings: WorkerSettings,
    store: Arc<dyn Store>,
    wakeup: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let transport = match transport(&settings) {
        Ok(t) => t,
        Err(error) => {
            tracing::error!(%error, "mail worker cannot build its SMTP transport; mail stays queued");
            return;
        }
    };
    let Ok(sender) = settings.sender.parse::<Mailbox>() else {
        tracing::error!(sender = %settings.sender, "invalid BARONG_SENDER_EMAIL/NAME; mail stays queued");
        return;
    };
    let mut last_purge: Option<tokio::time::Instant> = None;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            last_purge = Some(tokio::time::Instant::now());
            match store.purge_sent_mails(SENT_RETENTION_SECS).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "old delivered mails purged"),
                Err(error) => tracing::warn!(%error, "cannot purge delivered mails"),
            }
        }
        let mails = match store.claim_mails(BATCH, CLAIM_LEASE_SECS).await {
            Ok(mails) => mails,
            Err(error) => {
                tracing::warn!(%error, "mail worker cannot read the outbox");
                Vec::new()
            }
        };
        let full = mails.len() as i64 == BATCH;
        for mail in mails {
            if shutdown.is_cancelled() {
                break;
            }
            deliver(&transport, &sender, store.as_ref(), &settings, mail).await;
        }
        if full {
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = wakeup.notified() => {},
            () = tokio::time::sleep(settings.poll_interval) => {},
        }
    }
    tracing::info!("mail worker stopped");
}

async fn deliver(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    sender: &Mailbox,
    store: &dyn Store,
    settings: &WorkerSettings,
    mail: OutboxMail,
) {
    let message = match build_message(sender, &mail) {
        Ok(message) => message,
        Err(error) => {
            tracing::error!(id = mail.id, %error, "mail cannot be built; giving up on it");
            let _ = store.mark_mail_failed(mail.id, &error, NEVER_SECS).await;
            return;
        }
    };
    match transport.send(message).await {
        Ok(_) => {
            tracing::info!(id = mail.id, kind = %mail.kind, "mail sent");
            if let Err(error) = store.mark_mail_sent(mail.id).await {
                tracing::warn!(id = mail.id, %error, "mail sent but not marked; it may be sent again");
            }
        }
        Err(error) if error.is_permanent() => {
            // 5xx: the relay refuses this mail (unknown mailbox, policy); retrying cannot help.
            tracing::error!(id = mail.id, %error, "mail refused permanently; giving up on it");
            let _ = store
                .mark_mail_failed(mail.id, &error.to_string(), NEVER_SECS)
                .await;
        }
        Err(error) => {
            let delay = retry_delay(mail.attempts, settings.backoff, settings.max_backoff);
            tracing::warn!(
                id = mail.id,
                attempts = mail.attempts,
                retry_in_s = delay.as_secs(),
                %error,
                "mail delivery failed"
            );
            let _ = store
                .mark_mail_failed(mail.id, &error.to_string(), delay.as_secs().max(1) as i64)
                .await;
        }
    }
}

fn build_message(sender: &Mailbox, mail: &OutboxMail) -> Result<Message, String> {
    let recipient: Mailbox = mail
        .recipient
        .trim()
        .parse()
        .map_err(|e: lettre::address::AddressError| e.to_string())?;
    Message::builder()
        .from(sender.clone())
        .to(recipient)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_HTML)
        .body(mail.body_html.clone())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let (b, m) = (Duration::from_secs(5), Duration::from_secs(600));
        assert_eq!(retry_delay(1, b, m), Duration::from_secs(5));
        assert_eq!(retry_delay(2, b, m), Duration::from_secs(10));
        assert_eq!(retry_delay(4, b, m), Duration::from_secs(40));
        assert_eq!(retry_delay(20, b, m), m);
        assert_eq!(retry_delay(i32::MAX, b, m), m);
    }
}
