//! The session's access token: reused until 5 minutes before it expires (or its `refresh_in`),
//! renewed by one caller at a time while the others wait for that renewal.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::Secret;

/// Renew this long before expiry, as the official SDK does.
pub const RENEWAL_MARGIN: Duration = Duration::from_secs(5 * 60);

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
        AccessToken { secret, acquired_at: now, expires_at: now + lifetime, renew_at: now + renew_after }
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
