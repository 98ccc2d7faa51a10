//! Coarse clocks, for the hot path's checks that count in seconds or milliseconds.
//!
//! A precise clock read (`Instant::now`, `SystemTime::now`) costs about 24 ns here: the vDSO
//! reads the TSC and scales it. Linux's coarse clocks return the time of the last timer tick
//! (every 4 ms on these machines) from the same shared page, in about 5 ns. A decision made
//! four precise reads; the two that judge seconds (a session's expiry) or a window of seconds
//! (an API key's nonce, a connection's head deadline) read these instead. Latency, which is
//! measured in microseconds, keeps the precise clock.
//!
//! The coarse clocks run on the same timelines as the precise ones, a tick behind at most:
//! a nonce's window or a session's expiry moves by at most 4 ms, well inside the seconds they
//! are set in (`BARONG_APIKEY_NONCE_LIFETIME` is 5,000 ms by default).

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
}
