//! The request-head deadline of an HTTP/1 connection (`BARONG_HEADER_READ_TIMEOUT`): a request
//! head must arrive within the timeout of the connection opening or of the last answer, else
//! the connection is closed (slow or silent clients, slowloris).
//!
//! hyper's own `header_read_timeout` arms a fresh timer for every request: a boxed sleep, a
//! timer-wheel insert and a removal, about 0.9 us of server CPU per request, a tenth of what
//! bare hyper spends on one (`benches/load.sh`, the "header-read timer" baseline). Here a
//! request costs a reference count taken and given back, a store and one coarse clock read
//! (`crate::clock`: the deadline counts in seconds), and the connection's one timer wakes at
//! most once per timeout to see whether the connection went quiet.
//!
//! The requests in flight are the references their answers hold: the shared state's count
//! less the two standing holders, the deadline and the service. A separate in-flight count
//! cost two more lock-prefixed instructions a request, 15 to 20 ns each on Intel cores
//! (docs/benchmarks.md, fifteenth pass).
//!
//! A connection is HTTP/2 once a request says so (ALPN alone is not believed: hyper serves what
//! the bytes are); from then on hyper's HTTP/2 keep-alive looks after it, as before, since
//! idle multiplexed connections are normal there (Envoy's gRPC `ext_authz`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use http::{Request, Version};
use hyper::service::Service;
use tokio::time::Instant;

/// What the connection's requests tell its timer.
struct Shared {
    opened: Instant,
    /// `opened` on the coarse clock (`crate::clock::monotonic_millis`), which answers read.
    opened_ms: i64,
    /// Milliseconds from `opened` to the end of the last answer (0: none yet), to a timer tick.
    idle_since_ms: AtomicU64,
    /// An HTTP/2 connection: no head deadline.
    http2: AtomicBool,
}

/// References to a connection's [`Shared`] held while no request is in flight: its
/// [`HeadDeadline`] and the service [`HeadDeadline::service`] made. Neither is `Clone`, so every
/// other reference is a request's [`Done`].
const STANDING_HOLDERS: usize = 2;

/// The deadline of one connection; [`HeadDeadline::service`] wraps its service (once).
pub struct HeadDeadline {
    shared: Arc<Shared>,
}

impl HeadDeadline {
    /// The deadline of a connection opened now.
    pub fn start() -> Self {
        Self {
            shared: Arc::new(Shared {
                opened: Instant::now(),
                opened_ms: crate::clock::monotonic_millis(),
                idle_since_ms: AtomicU64::new(0),
                http2: AtomicBool::new(false),
            }),
        }
    }

    /// `service`, telling this deadline when each request starts and ends. Called once per
    /// connection: a second service would count as a request in flight forever.
    pub fn service<S>(&self, service: S) -> Timed<S> {
        Timed {
            inner: service,
            shared: self.shared.clone(),
        }
    }

    /// Serves `connection` until it ends (`Some` of its output) or the deadline passes
    /// (`None`: the connection is dropped, which closes it).
    ///
    /// Not `tokio::select!`: it polls every branch on every wake of the task, so each request
    /// polled the deadline's sleep as well, which re-registers the task's waker with the timer
    /// (two lock-prefixed instructions and about 150 others; callgrind, docs/benchmarks.md,
    /// sixteenth pass). Here the deadline is polled only when its own timer rang.
    pub async fn guard<C: Future>(self, connection: C, timeout: Duration) -> Option<C::Output> {
        Guarded::new(connection, self.expired(timeout)).await
    }

    /// Resolves when the connection has waited `timeout` for a request head: no request in
    /// flight since the last answer (or since it opened). Never, for HTTP/2.
    pub async fn expired(&self, timeout: Duration) {
        let shared = &self.shared;
        loop {
            if shared.http2.load(Ordering::Relaxed) {
                return std::future::pending().await;
            }
            let now = Instant::now();
            let in_flight = Arc::strong_count(&self.shared) > STANDING_HOLDERS;
            // Pairs with the release of a `Done`'s reference (`Arc`'s drop releases): a count
            // read without it sees that answer's `idle_since_ms`.
            fence(Ordering::Acquire);
            let wake = if in_flight {
                // Busy: look again one timeout from now (it cannot expire before that).
                now + timeout
            } else {
                let since = shared.idle_since_ms.load(Ordering::Acquire);
                let deadline = shared.opened + Duration::from_millis(since) + timeout;
                if deadline <= now {
                    return;
                }
                deadline
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// The waker [`HeadDeadline::guard`] gives the deadline's timer: it notes that the timer rang,
/// then wakes the connection's task.
#[derive(Default)]
struct Alarm {
    rang: AtomicBool,
    /// The task to wake (its waker as of the latest poll that saw a new one).
    task: Mutex<Option<Waker>>,
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.rang.store(true, Ordering::Release);
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection and its deadline, the deadline polled only when its timer rang.
    struct Guarded<C, E> {
        #[pin]
        connection: C,
        #[pin]
        expired: E,
        alarm: Arc<Alarm>,
        alarm_waker: Waker,
        // The task's waker the alarm holds: compared on every poll, replaced when it changes.
        task: Option<Waker>,
    }
}

impl<C, E> Guarded<C, E> {
    fn new(connection: C, expired: E) -> Self {
        let alarm = Arc::new(Alarm::default());
        Self {
            connection,
            expired,
            alarm_waker: Waker::from(alarm.clone()),
            alarm,
            task: None,
        }
    }
}

impl<C: Future, E: Future<Output = ()>> Future for Guarded<C, E> {
    type Output = Option<C::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if !this
            .task
            .as_ref()
            .is_some_and(|task| task.will_wake(cx.waker()))
        {
            *this.task = Some(cx.waker().clone());
            *this
                .alarm
                .task
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(cx.waker().clone());
            // The first poll (or a new task): the deadline arms its timer.
            this.alarm.rang.store(true, Ordering::Relaxed);
        }
        // A load, and a store only when it rang: a swap would be a locked instruction on
        // every wake. Cleared before the poll, so a ring during the poll is seen on the next
        // wake; one between the load and the store is seen by this poll of the timer itself.
        if this.alarm.rang.load(Ordering::Acquire) {
            this.alarm.rang.store(false, Ordering::Relaxed);
            if this
                .expired
                .poll(&mut Context::from_waker(this.alarm_waker))
                .is_ready()
            {
                return Poll::Ready(None);
            }
        }
        this.connection.poll(cx).map(Some)
    }
}

/// A service whose requests move the deadline.
pub struct Timed<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, B> Service<Request<B>> for Timed<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = InFlight<S::Future>;

    fn call(&self, request: Request<B>) -> Self::Future {
        if request.version() == Version::HTTP_2 {
            self.shared.http2.store(true, Ordering::Relaxed);
        }
        InFlight {
            inner: self.inner.call(request),
            done: Done(self.shared.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer being made; dropping it (answered or abandoned) restarts the
    /// deadline once no other request is in flight.
    pub struct InFlight<F> {
        #[pin]
        inner: F,
        done: Done,
    }
}

impl<F: Future> Future for InFlight<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

struct Done(Arc<Shared>);

impl Drop for Done {
    fn drop(&mut self) {
        let shared = &self.0;
        let elapsed = crate::clock::monotonic_millis().saturating_sub(shared.opened_ms);
        // Written before the reference is given back (after this `drop`), so the timer never
        // sees "idle" with a stale start.
        shared
            .idle_since_ms
            .store(u64::try_from(elapsed).unwrap_or(0), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers at once.
    struct Echo;

    impl Service<Request<()>> for Echo {
        type Response = ();
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<(), std::convert::Infallible>>;

        fn call(&self, _request: Request<()>) -> Self::Future {
            std::future::ready(Ok(()))
        }
    }

    const TIMEOUT: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn a_quiet_connection_expires_and_answers_push_the_deadline() {
        let deadline = HeadDeadline::start();
        let timed = deadline.service(Echo);
        tokio::time::sleep(Duration::from_millis(200)).await;
        timed.call(Request::new(())).await.expect("answer");
        let started = Instant::now();
        deadline.expired(TIMEOUT).await;
        let waited = started.elapsed();
        // The timeout after the answer, not after the connection opened.
        assert!(waited >= Duration::from_millis(280), "{waited:?}");
        assert!(waited <= Duration::from_millis(600), "{waited:?}");
    }

    /// Any answer in flight holds the deadline: the second of two, once the first is done.
    #[tokio::test]
    async fn a_request_in_flight_holds_the_deadline() {
        let deadline = HeadDeadline::start();
        let timed = deadline.service(Echo);
        let first = timed.call(Request::new(()));
        let second = timed.call(Request::new(()));
        drop(first);
        let expired =
            tokio::time::timeout(Duration::from_millis(900), deadline.expired(TIMEOUT)).await;
        assert!(expired.is_err(), "expired while a request was in flight");
        drop(second);
        tokio::time::timeout(Duration::from_millis(600), deadline.expired(TIMEOUT))
            .await
            .expect("expires once the requests are done");
    }

    #[tokio::test]
    async fn the_guard_closes_a_quiet_connection_and_passes_a_finished_one() {
        let started = Instant::now();
        let quiet = HeadDeadline::start().guard(std::future::pending::<()>(), TIMEOUT);
        assert_eq!(quiet.await, None);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(280), "{waited:?}");
        assert!(waited <= Duration::from_millis(600), "{waited:?}");
        let finished = HeadDeadline::start().guard(std::future::ready(7), TIMEOUT);
        assert_eq!(finished.await, Some(7));
    }

    /// Wakes its task `left` more times, then is ready.
    struct Busy {
        left: u32,
    }

    impl Future for Busy {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.left == 0 {
                return Poll::Ready(());
            }
            self.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn the_guard_polls_the_deadline_only_when_its_timer_rings() {
        let polls = std::cell::Cell::new(0);
        let expired = std::future::poll_fn(|_| {
            polls.set(polls.get() + 1);
            Poll::<()>::Pending
        });
        let guarded = Guarded::new(Busy { left: 1000 }, expired);
        assert_eq!(guarded.await, Some(()));
        assert_eq!(polls.get(), 1, "armed once, never rang");
        let sleep = tokio::time::sleep(Duration::from_millis(20));
        let guarded = Guarded::new(std::future::pending::<()>(), sleep);
        assert_eq!(guarded.await, None, "the ring is heard");
    }

    #[tokio::test]
    async fn http2_connections_have_no_head_deadline() {
        let deadline = HeadDeadline::start();
        let timed = deadline.service(Echo);
        let mut request = Request::new(());
        *request.version_mut() = Version::HTTP_2;
        timed.call(request).await.expect("answer");
        let expired =
            tokio::time::timeout(Duration::from_millis(900), deadline.expired(TIMEOUT)).await;
        assert!(expired.is_err());
    }
}
