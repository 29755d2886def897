//! Bearer tokens for the HTTP transport: the app's [`TokenProvider`], asked before every
//! request, and what it may answer. Tokens live in memory or the platform keystore; the
//! transport sends them only in the `Authorization` header and never stores or logs them.

use async_trait::async_trait;

/// Why a token could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The user must sign in again: the batch gets `Unauthorized` (the outbox pauses).
    #[error("not signed in: {0}")]
    Unauthorized(String),
    /// The token service cannot be reached: the batch gets `Offline`.
    #[error("token service unreachable: {0}")]
    Offline(String),
    /// Anything else: the batch gets `Retry`.
    #[error("token unavailable: {0}")]
    Other(String),
}

/// Supplies the bearer token, called before every request.
///
/// `force_refresh` is `true` when the server has just refused the previous token
/// (401): return a freshly obtained one. The transport retries the request once
/// with it; a second 401 is reported as [`Outcome::Unauthorized`](crate::transport::Outcome::Unauthorized). Implementations
/// keep tokens in memory or the platform keystore, never in the outbox database.
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// A current access token (without the `Bearer ` prefix).
    async fn token(&self, force_refresh: bool) -> Result<String, TokenError>;
}

/// A fixed token (tests, development servers). Its `Debug` output hides the token.
pub struct StaticToken(String);

impl StaticToken {
    /// Wraps `token`.
    pub fn new(token: impl Into<String>) -> Self {
        StaticToken(token.into())
    }
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

#[async_trait]
impl TokenProvider for StaticToken {
    async fn token(&self, _force_refresh: bool) -> Result<String, TokenError> {
        Ok(self.0.clone())
    }
}
