//! `Instant` arithmetic that cannot panic. Token lifetimes come from the network and intervals
//! from callers, and `Instant + Duration` panics past the end of the platform's clock.

use std::time::{Duration, Instant};

/// `from + wait`, or the latest instant the platform can represent on the way there.
pub fn after(from: Instant, wait: Duration) -> Instant {
    let mut wait = wait;
    loop {
        if let Some(at) = from.checked_add(wait) {
            return at;
        }
        // Halving finds a representable instant in at most 64 steps (`from + 0` always is).
        wait /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(after(now, Duration::from_secs(5)), now + Duration::from_secs(5));
        let far = after(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(100 * 365 * 24 * 3600), "far in the future: {:?}", far - now);
    }
}
