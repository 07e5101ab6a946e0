//! How long a failing target waits before its next try: one rule for a whole
//! batch (`pair.rs`) and for the paths held apart (`held.rs`), so both pace a
//! target alike (README, "How a sync works", "Failures").

use std::time::{Duration, SystemTime};

/// Longest wait between retries of a failing target.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// `first`, then doubling (1 s, 2 s, 4 s … for transient errors) up to five
/// minutes, with up to 20% jitter so that targets that failed together do not
/// retry in lockstep.
pub fn backoff(failures: u32, first: Duration) -> Duration {
    let base = first
        .max(Duration::from_millis(100))
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let jitter = base.mul_f64(f64::from(nanos % 1000) / 5000.0);
    base + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let second = Duration::from_secs(1);
        assert!(backoff(1, second) < Duration::from_secs(2));
        assert!(backoff(3, second) >= Duration::from_secs(4));
        assert!(backoff(40, second) <= MAX_BACKOFF.mul_f64(1.2));
        assert!(backoff(1, Duration::from_secs(30)) >= Duration::from_secs(30));
    }
}
