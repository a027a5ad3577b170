//! The session's access token: reused until 5 minutes before it expires (or its `refresh_in`),
//! renewed by one caller at a time while the others wait for that renewal.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::Secret;
use crate::clock::after;

/// Renew this long before expiry, as the official SDK does.
pub const RENEWAL_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The longest lifetime believed from a token endpoint. Entra ID and managed identity tokens live
/// at most a day; a longer (or infinite) claim is capped, so such a token is still renewed.
pub const MAX_ANNOUNCED_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A number of seconds announced by a token endpoint (`expires_in`, `refresh_in`, `expires_on`
/// minus now) as a lifetime: negative or not a number → zero (the token is renewed before each
/// use), beyond [`MAX_ANNOUNCED_LIFETIME`] (infinity included) → that maximum. Never panics.
pub fn announced_lifetime(seconds: f64) -> Duration {
    if seconds.is_nan() || seconds <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(seconds.min(MAX_ANNOUNCED_LIFETIME.as_secs_f64())).unwrap_or(MAX_ANNOUNCED_LIFETIME)
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub secret: Secret,
    pub acquired_at: Instant,
    pub expires_at: Instant,
    /// When to renew: 5 min before expiry, or the issuer's `refresh_in` if sooner. A token that
    /// lives shorter than the margin is due at once, i.e. renewed before each use.
    pub renew_at: Instant,
}

impl AccessToken {
    pub fn new(secret: Secret, lifetime: Duration, refresh_in: Option<Duration>) -> Self {
        let now = Instant::now();
        let mut renew_after = lifetime.saturating_sub(RENEWAL_MARGIN);
        if let Some(r) = refresh_in {
            renew_after = renew_after.min(r);
        }
        AccessToken { secret, acquired_at: now, expires_at: after(now, lifetime), renew_at: after(now, renew_after) }
    }

    pub fn is_due(&self) -> bool {
        Instant::now() >= self.renew_at
    }
}

#[derive(Debug, Default)]
pub struct TokenCache {
    current: RwLock<Option<AccessToken>>,
    /// Held while a renewal is under way: one renewal at a time.
    renewing: tokio::sync::Mutex<()>,
}

impl TokenCache {
    pub fn current(&self) -> Option<AccessToken> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn store(&self, token: AccessToken) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(token);
    }

    pub fn clear(&self) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The lock renewals take; see [`super::TokenSource::token`].
    pub fn renewal_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.renewing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_lifetimes_are_clamped() {
        assert_eq!(announced_lifetime(3599.0), Duration::from_secs(3599));
        assert_eq!(announced_lifetime(2.5), Duration::from_millis(2500));
        for absurd in [1e19, 1e300, f64::INFINITY, f64::MAX] {
            assert_eq!(announced_lifetime(absurd), MAX_ANNOUNCED_LIFETIME, "{absurd}");
        }
        for nothing in [0.0, -0.0, -5.0, -1e300, f64::NEG_INFINITY, f64::NAN] {
            assert_eq!(announced_lifetime(nothing), Duration::ZERO, "{nothing}");
        }
    }

    #[test]
    fn a_lifetime_past_the_end_of_the_clock_does_not_panic() {
        let token = AccessToken::new(Secret::new("t".into()), Duration::MAX, Some(Duration::MAX));
        assert!(!token.is_due());
        assert!(token.expires_at > token.acquired_at && token.renew_at <= token.expires_at);
    }
}
