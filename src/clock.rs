//! Clocks for the hot path: coarse ones for what counts in seconds or milliseconds, the CPU's
//! time-stamp counter for latency.
//!
//! A precise clock read (`Instant::now`, `SystemTime::now`) costs 24 ns on the AMD machines and
//! 37 ns on the Intel ones (docs/benchmarks.md): the vDSO reads the TSC and scales it. Linux's
//! coarse clocks return the time of the last timer tick (every 4 ms on these machines) from the
//! same shared page, in 5 to 10 ns. What judges seconds (a session's expiry, an API key's nonce
//! window, a connection's head deadline) or deadlines of seconds (the caches' entries, a token's
//! reuse window: [`Tick`]) reads those. Latency, measured in microseconds, reads the TSC itself
//! ([`Stopwatch`]): two reads of it cost about half of two precise reads on Intel.
//!
//! The coarse clocks run on the same timelines as the precise ones, a tick behind at most:
//! a nonce's window or a session's expiry moves by at most 4 ms, well inside the seconds they
//! are set in (`BARONG_APIKEY_NONCE_LIFETIME` is 5,000 ms by default).

use std::time::Duration;

/// Milliseconds since the Unix epoch, at most a timer tick old.
pub fn unix_millis() -> i64 {
    #[cfg(target_os = "linux")]
    if let Some(ms) = read(libc::CLOCK_REALTIME_COARSE) {
        return ms;
    }
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds on a monotonic clock with an arbitrary origin (the boot, on Linux), at most a
/// timer tick old: only differences of two readings mean anything.
pub fn monotonic_millis() -> i64 {
    #[cfg(target_os = "linux")]
    if let Some(ms) = read(libc::CLOCK_MONOTONIC_COARSE) {
        return ms;
    }
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let origin = ORIGIN.get_or_init(std::time::Instant::now);
    i64::try_from(origin.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// A moment on the coarse monotonic clock ([`monotonic_millis`]), to the millisecond: the
/// decision's `now`, read once per decision, and the deadlines its caches and token reuse
/// compare with it. Deadlines there are seconds long, so a tick's lag does not matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tick(i64);

impl Tick {
    pub fn now() -> Self {
        Self(monotonic_millis())
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

impl std::ops::Add<Duration> for Tick {
    type Output = Self;

    fn add(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }
}

/// Latency, on the CPU's time-stamp counter through `quanta` (calibrated once per process
/// against the monotonic clock, about 0.6 ms; the monotonic clock itself where the counter is
/// not invariant).
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(u64);

fn counter() -> &'static quanta::Clock {
    static CLOCK: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

impl Stopwatch {
    pub fn start() -> Self {
        Self(counter().raw())
    }

    pub fn elapsed(self) -> Duration {
        let clock = counter();
        clock.delta(self.0, clock.raw())
    }
}

#[cfg(target_os = "linux")]
fn read(clock: libc::clockid_t) -> Option<i64> {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec; `clock_gettime` writes only it.
    let status = unsafe { libc::clock_gettime(clock, &mut time) };
    (status == 0).then(|| time.tv_sec * 1_000 + time.tv_nsec / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_clocks_keep_up_with_the_precise_ones() {
        for _ in 0..50 {
            let precise = chrono::Utc::now().timestamp_millis();
            let coarse = unix_millis();
            // A tick behind at most (4 ms here; 10 ms on a 100 Hz kernel), never ahead.
            assert!(coarse <= precise + 1, "{coarse} ahead of {precise}");
            assert!(precise - coarse <= 20, "{coarse} lags {precise}");
        }
        let started = std::time::Instant::now();
        let first = monotonic_millis();
        std::thread::sleep(std::time::Duration::from_millis(60));
        let moved = monotonic_millis() - first;
        let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        assert!(
            (moved - elapsed).abs() <= 20,
            "{moved} ms against {elapsed} ms"
        );
    }

    #[test]
    fn ticks_and_the_stopwatch_keep_time() {
        let tick = Tick::now();
        let stopwatch = Stopwatch::start();
        let started = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(60));
        let precise = started.elapsed();
        let timed = stopwatch.elapsed();
        let ticked = Tick::now().saturating_duration_since(tick);
        assert!(timed >= Duration::from_millis(59) && timed <= precise + Duration::from_millis(2));
        assert!(
            ticked.abs_diff(precise) <= Duration::from_millis(20),
            "{ticked:?}"
        );
        assert_eq!(tick.saturating_duration_since(Tick::now()), Duration::ZERO);
        assert!(tick + Duration::from_secs(1) > Tick::now());
        assert!(tick + Duration::MAX > tick, "saturates");
    }
}
