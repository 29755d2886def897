//! The built-in HTTP transport (reqwest + rustls) speaking docs/protocol.md.
//!
//! [`HttpTransport`] sends a batch as one `POST /v1/commands` and maps the answer to one
//! [`Outcome`](crate::transport::Outcome) per command, in batch order:
//!
//! | answer | outcome |
//! | --- | --- |
//! | 200, `applied` / `duplicate` | `Applied { result, changes, receipt }` (receipt from `server_seq`, `applied_at`) |
//! | 200, `rejected` | `Rejected { code, message }` |
//! | 200, `conflict` | `Conflict { server_snapshot }` |
//! | 200, `skipped` (an earlier command on its key was not applied) | `Retry` |
//! | 200 with an unknown status for one command | `Retry` for that command |
//! | 200 with an unreadable body, a wrong result count or mismatched ids | `Retry` for all |
//! | 401 (after one forced token refresh) | `Unauthorized` for all |
//! | 403 | `Forbidden { message }` for all (sending pauses; no attempt consumed) |
//! | 413 | the batch is split in halves and each half resent; a single command: `Rejected { code: "payload_too_large" }` |
//! | 429, 503 | `Retry` with `retry_after` from `Retry-After` |
//! | other 5xx, 408, other 4xx, 3xx | `Retry` with the HTTP status (a command that never succeeds ends `wedged`, not dropped) |
//! | connection refused, DNS failure, TLS handshake failure | `Offline` |
//! | timeout, reset or truncated answer after the request may have been sent | `Retry` |
//!
//! [`Transport::receipt`](crate::transport::Transport::receipt) is one
//! `GET /v1/commands/{key}`: 200 is `Applied` with the stored result and receipt, 404
//! `unknown_command` is `NotFound`, a 404 without that code (a server from before
//! receipts) is `Unsupported`, connect failures are `Offline`, 401 after one refresh is
//! `Unauthorized`, anything else `Failed`.
//!
//! Whole-request failures give every command the same outcome. Nothing that was not a
//! well-formed `applied`/`duplicate` result for that very command id ever becomes
//! `Applied`.
//!
//! Tokens come from a [`TokenProvider`] on every request; they are sent only in the
//! `Authorization` header (marked sensitive), never logged, never stored.
//!
//! TLS is rustls with the `ring` provider and Mozilla's root certificates compiled in
//! (`webpki-roots`), HTTP/1.1 only: no OpenSSL, no aws-lc, and no platform verifier that
//! would need JNI setup on Android. The `http` feature turns on reqwest's
//! `rustls-no-provider`; a host crate that builds its own reqwest client in the same
//! binary without a TLS provider feature of its own must install a rustls
//! `CryptoProvider` first (reqwest panics otherwise), e.g.
//! `rustls::crypto::ring::default_provider().install_default()`.

use std::time::{Duration, SystemTime};

/// Parses a `Retry-After` header value: delta-seconds (`"120"`) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`, also the obsolete RFC 850 and asctime forms).
/// A date in the past gives `Duration::ZERO`; anything else unreadable gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate instead of failing.
        return Some(Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(feature = "http")]
pub use imp::*;
#[cfg(feature = "http")]
pub use token::{StaticToken, TokenError, TokenProvider};
#[cfg(feature = "http")]
pub use wire::{parse_batch_response, parse_receipt_response};

#[cfg(feature = "http")]
mod token;
#[cfg(feature = "http")]
mod wire;

#[cfg(feature = "http")]
mod imp {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
    use reqwest::{Client, Response, StatusCode, Url};

    use super::token::{TokenError, TokenProvider};
    use super::wire::{
        describe, is_cursor_reset, parse_batch_response, parse_receipt_response, retry_with, ChangesResponse, ErrorBody,
    };
    use crate::transport::{ChangePage, Nudge, Outcome, OutgoingCommand, PullOutcome, ReceiptLookup, Transport};

    /// Most commands the protocol accepts in one request.
    pub const MAX_BATCH: usize = 100;

    /// Settings of an [`HttpTransport`].
    #[derive(Debug, Clone, PartialEq)]
    pub struct HttpConfig {
        /// Server base URL, e.g. `https://sync.example.com` (paths `/v1/...` are appended).
        pub base_url: String,
        /// Sent as `X-Workspace-Id`.
        pub workspace_id: String,
        /// Whole-request timeout for `send` and `pull` (default 15 s).
        pub request_timeout: Duration,
        /// TCP + TLS connect timeout (default 10 s).
        pub connect_timeout: Duration,
        /// `User-Agent` header; default `outbox/<version>`.
        pub user_agent: Option<String>,
        /// Largest batch sent in one request (default and maximum 100).
        pub max_batch: usize,
        /// Largest response body read (default 16 MiB); bigger is a `Retry`.
        pub max_response_bytes: usize,
        /// The live channel is reopened when nothing (not even a keep-alive) arrives for
        /// this long (default 60 s).
        pub stream_idle_timeout: Duration,
    }

    impl HttpConfig {
        /// Defaults for `base_url` and `workspace_id`.
        pub fn new(base_url: impl Into<String>, workspace_id: impl Into<String>) -> Self {
            HttpConfig {
                base_url: base_url.into(),
                workspace_id: workspace_id.into(),
                request_timeout: Duration::from_secs(15),
                connect_timeout: Duration::from_secs(10),
                user_agent: None,
                max_batch: MAX_BATCH,
                max_response_bytes: 16 * 1024 * 1024,
                stream_idle_timeout: Duration::from_secs(60),
            }
        }

        /// Sets the request timeout.
        pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
            self.request_timeout = timeout;
            self
        }

        /// Sets the connect timeout.
        pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
            self.connect_timeout = timeout;
            self
        }

        /// Sets the `User-Agent`.
        pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
            self.user_agent = Some(user_agent.into());
            self
        }

        /// Sets the largest batch per request (clamped to 1..=100).
        pub fn with_max_batch(mut self, max_batch: usize) -> Self {
            self.max_batch = max_batch.clamp(1, MAX_BATCH);
            self
        }
    }

    /// Why an [`HttpTransport`] could not be built.
    #[derive(Debug, thiserror::Error)]
    pub enum HttpError {
        /// The base URL is not an absolute `http` or `https` URL.
        #[error("invalid base URL: {0}")]
        InvalidUrl(String),
        /// The workspace id cannot be sent as a header.
        #[error("invalid workspace id")]
        InvalidWorkspace,
        /// TLS or client setup failed.
        #[error("cannot build the HTTP client: {0}")]
        Client(String),
    }

    /// The built-in [`Transport`] over HTTP (see the module docs for the mapping).
    pub struct HttpTransport {
        client: Client,
        config: HttpConfig,
        base: Url,
        tokens: Arc<dyn TokenProvider>,
    }

    impl std::fmt::Debug for HttpTransport {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("HttpTransport").field("config", &self.config).finish_non_exhaustive()
        }
    }

    fn tls_config() -> Result<rustls::ClientConfig, HttpError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpError::Client(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(config)
    }

    /// What one request ended in, before mapping to outcomes.
    enum Exchange {
        /// An HTTP answer (status, headers, body).
        Answer(StatusCode, HeaderMap, Vec<u8>),
        /// No answer (see the reason's outcome).
        Failed(Outcome),
    }

    impl HttpTransport {
        /// Builds a transport; `tokens` is asked for a token before every request.
        pub fn new(config: HttpConfig, tokens: Arc<dyn TokenProvider>) -> Result<Self, HttpError> {
            let trimmed = config.base_url.trim_end_matches('/');
            let base = Url::parse(&format!("{trimmed}/")).map_err(|e| HttpError::InvalidUrl(e.to_string()))?;
            if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
                return Err(HttpError::InvalidUrl("expected an http or https URL".into()));
            }
            HeaderValue::from_str(&config.workspace_id).map_err(|_| HttpError::InvalidWorkspace)?;
            let user_agent =
                config.user_agent.clone().unwrap_or_else(|| format!("outbox/{}", env!("CARGO_PKG_VERSION")));
            let client = Client::builder()
                .tls_backend_preconfigured(tls_config()?)
                .connect_timeout(config.connect_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(user_agent)
                .build()
                .map_err(|e| HttpError::Client(e.to_string()))?;
            Ok(HttpTransport { client, config, base, tokens })
        }

        /// The settings this transport was built with.
        pub fn config(&self) -> &HttpConfig {
            &self.config
        }

        fn url(&self, path: &str) -> Result<Url, Outcome> {
            self.base.join(path).map_err(|e| Outcome::retry(format!("cannot build URL: {e}")))
        }

        /// Sends one request with a token, refreshing once on 401. `build` makes the
        /// request (it may run twice).
        async fn exchange(
            &self,
            build: impl Fn() -> reqwest::RequestBuilder,
            read_body: bool,
        ) -> Result<Response, Exchange> {
            let mut refresh = false;
            loop {
                let token = match self.tokens.token(refresh).await {
                    Ok(t) => t,
                    Err(TokenError::Unauthorized(_)) => return Err(Exchange::Failed(Outcome::Unauthorized)),
                    Err(TokenError::Offline(_)) => return Err(Exchange::Failed(Outcome::Offline)),
                    Err(TokenError::Other(m)) => {
                        return Err(Exchange::Failed(Outcome::retry(format!("token unavailable: {m}"))))
                    }
                };
                let mut auth = match HeaderValue::from_str(&format!("Bearer {token}")) {
                    Ok(v) => v,
                    Err(_) => return Err(Exchange::Failed(Outcome::Unauthorized)),
                };
                auth.set_sensitive(true);
                let request = build().header(AUTHORIZATION, auth).header("x-workspace-id", &self.config.workspace_id);
                let response = match request.send().await {
                    Ok(r) => r,
                    Err(e) => return Err(Exchange::Failed(classify(&e))),
                };
                if response.status() == StatusCode::UNAUTHORIZED && !refresh {
                    refresh = true;
                    continue;
                }
                if response.status() == StatusCode::OK || !read_body {
                    return Ok(response);
                }
                let status = response.status();
                let headers = response.headers().clone();
                let body = read_limited(response, self.config.max_response_bytes).await.unwrap_or_default();
                return Err(Exchange::Answer(status, headers, body));
            }
        }

        async fn send_chunk(&self, batch: &[OutgoingCommand]) -> Vec<Outcome> {
            let all = |o: Outcome| vec![o; batch.len()];
            let url = match self.url("v1/commands") {
                Ok(u) => u,
                Err(o) => return all(o),
            };
            let body = match serde_json::to_vec(&serde_json::json!({ "commands": batch })) {
                Ok(b) => b,
                Err(e) => return all(Outcome::retry(format!("cannot encode batch: {e}"))),
            };
            let build = || {
                self.client
                    .post(url.clone())
                    .timeout(self.config.request_timeout)
                    .header(CONTENT_TYPE, "application/json")
                    .header(ACCEPT, "application/json")
                    .body(body.clone())
            };
            let (status, headers, body) = match self.exchange(build, true).await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match read_limited(response, self.config.max_response_bytes).await {
                        Ok(b) => (status, headers, b),
                        Err(o) => return all(o),
                    }
                }
                Err(Exchange::Failed(o)) => return all(o),
                Err(Exchange::Answer(s, h, b)) => (s, h, b),
            };
            match status {
                StatusCode::OK => match parse_batch_response(batch, &body) {
                    Ok(outcomes) => outcomes,
                    Err(reason) => all(Outcome::Retry { reason, retry_after: None, http_status: Some(200) }),
                },
                StatusCode::UNAUTHORIZED => all(Outcome::Unauthorized),
                StatusCode::FORBIDDEN => {
                    let message = serde_json::from_slice::<ErrorBody>(&body)
                        .map(|e| e.error.message)
                        .unwrap_or_else(|_| "not a member of this workspace".to_string());
                    all(Outcome::Forbidden { message })
                }
                StatusCode::PAYLOAD_TOO_LARGE if batch.len() > 1 => {
                    let (a, b) = batch.split_at(batch.len() / 2);
                    let mut outcomes = Box::pin(self.send_chunk(a)).await;
                    outcomes.extend(Box::pin(self.send_chunk(b)).await);
                    outcomes
                }
                StatusCode::PAYLOAD_TOO_LARGE => all(Outcome::Rejected {
                    code: "payload_too_large".to_string(),
                    message: "the command alone is larger than the server accepts".to_string(),
                }),
                s => all(retry_with(describe(s, &body), s, &headers)),
            }
        }

        /// Reads one page of `GET /v1/changes` after `cursor`.
        pub async fn pull_changes(&self, cursor: Option<&str>, limit: u32) -> PullOutcome {
            let mut url = match self.url("v1/changes") {
                Ok(u) => u,
                Err(_) => return PullOutcome::Failed("cannot build URL".into()),
            };
            {
                let mut q = url.query_pairs_mut();
                if let Some(c) = cursor {
                    q.append_pair("cursor", c);
                }
                q.append_pair("limit", &limit.max(1).to_string());
            }
            let build =
                || self.client.get(url.clone()).timeout(self.config.request_timeout).header(ACCEPT, "application/json");
            let response = match self.exchange(build, true).await {
                Ok(r) => r,
                Err(Exchange::Failed(Outcome::Offline)) => return PullOutcome::Offline,
                Err(Exchange::Failed(Outcome::Unauthorized)) => return PullOutcome::Unauthorized,
                Err(Exchange::Failed(o)) => return PullOutcome::Failed(failure_reason(&o)),
                Err(Exchange::Answer(StatusCode::UNAUTHORIZED, _, _)) => return PullOutcome::Unauthorized,
                Err(Exchange::Answer(s, _, b)) if is_cursor_reset(s, &b) => {
                    return PullOutcome::CursorReset { reason: describe(s, &b) }
                }
                Err(Exchange::Answer(s, _, b)) => return PullOutcome::Failed(describe(s, &b)),
            };
            let body = match read_limited(response, self.config.max_response_bytes).await {
                Ok(b) => b,
                Err(o) => return PullOutcome::Failed(failure_reason(&o)),
            };
            let parsed: ChangesResponse = match serde_json::from_slice(&body) {
                Ok(p) => p,
                Err(e) => return PullOutcome::Failed(format!("unreadable change page: {e}")),
            };
            let mut changes = Vec::with_capacity(parsed.changes.len());
            for c in parsed.changes {
                match c.into_change() {
                    Ok(c) => changes.push(c),
                    Err(e) => return PullOutcome::Failed(e),
                }
            }
            PullOutcome::Page(ChangePage { changes, cursor: parsed.cursor, has_more: parsed.has_more })
        }

        /// Asks `GET /v1/commands/{idempotency_key}` for a command's stored result and
        /// receipt (see the module docs for the mapping).
        pub async fn lookup_receipt(&self, idempotency_key: &str) -> ReceiptLookup {
            let mut url = match self.url("v1/commands/") {
                Ok(u) => u,
                Err(_) => return ReceiptLookup::Failed("cannot build URL".into()),
            };
            // One percent-encoded path segment, whatever the key holds.
            match url.path_segments_mut() {
                Ok(mut segments) => {
                    segments.pop_if_empty().push(idempotency_key);
                }
                Err(()) => return ReceiptLookup::Failed("cannot build URL".into()),
            }
            let build =
                || self.client.get(url.clone()).timeout(self.config.request_timeout).header(ACCEPT, "application/json");
            let (status, body) = match self.exchange(build, true).await {
                Ok(response) => {
                    let status = response.status();
                    match read_limited(response, self.config.max_response_bytes).await {
                        Ok(b) => (status, b),
                        Err(o) => return ReceiptLookup::Failed(failure_reason(&o)),
                    }
                }
                Err(Exchange::Failed(Outcome::Offline)) => return ReceiptLookup::Offline,
                Err(Exchange::Failed(Outcome::Unauthorized)) => return ReceiptLookup::Unauthorized,
                Err(Exchange::Failed(o)) => return ReceiptLookup::Failed(failure_reason(&o)),
                Err(Exchange::Answer(s, _, b)) => (s, b),
            };
            parse_receipt_response(status.as_u16(), &body)
        }

        /// Listens to `GET /v1/stream`, calling `nudge` for every `changed` event.
        /// Returns when the stream ends or goes idle; `false` when the server has no stream.
        pub async fn listen_stream(&self, nudge: Nudge) -> bool {
            let Ok(url) = self.url("v1/stream") else { return false };
            let build = || self.client.get(url.clone()).header(ACCEPT, "text/event-stream");
            // Only the opening is bounded by the request timeout; the stream itself lives
            // as long as events or keep-alives keep coming.
            let opened = tokio::time::timeout(self.config.request_timeout, self.exchange(build, true)).await;
            let mut response = match opened {
                Ok(Ok(r)) => r,
                Ok(Err(Exchange::Answer(StatusCode::NOT_FOUND, _, _))) => return false,
                _ => return true,
            };
            let mut buffer: Vec<u8> = Vec::new();
            let mut event = String::new();
            loop {
                let chunk = match tokio::time::timeout(self.config.stream_idle_timeout, response.chunk()).await {
                    Ok(Ok(Some(c))) => c,
                    _ => return true,
                };
                buffer.extend_from_slice(&chunk);
                while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=pos).collect();
                    let line = String::from_utf8_lossy(&line);
                    let line = line.trim_end_matches(['\n', '\r']);
                    if line.is_empty() {
                        if event == "changed" {
                            nudge();
                        }
                        event.clear();
                    } else if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim().to_string();
                    }
                }
                if buffer.len() > 64 * 1024 {
                    // A line this long is not our protocol.
                    return true;
                }
            }
        }
    }

    fn failure_reason(o: &Outcome) -> String {
        match o {
            Outcome::Retry { reason, .. } => reason.clone(),
            other => other.label().to_string(),
        }
    }

    /// A request error: connect-phase failures mean offline; anything after the request
    /// may have reached the server is a retry.
    fn classify(e: &reqwest::Error) -> Outcome {
        if e.is_connect() {
            return Outcome::Offline;
        }
        if e.is_timeout() {
            return Outcome::retry("request timed out (the server may have applied it)");
        }
        Outcome::retry(format!("connection lost before an answer: {}", error_chain(e)))
    }

    fn error_chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }

    async fn read_limited(mut response: Response, max: usize) -> Result<Vec<u8>, Outcome> {
        let status = response.status().as_u16();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(c)) => {
                    if body.len() + c.len() > max {
                        return Err(Outcome::Retry {
                            reason: format!("response body larger than {max} bytes"),
                            retry_after: None,
                            http_status: Some(status),
                        });
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => return Ok(body),
                Err(e) if e.is_timeout() => {
                    return Err(Outcome::Retry {
                        reason: "timed out reading the answer (the server may have applied it)".into(),
                        retry_after: None,
                        http_status: Some(status),
                    })
                }
                Err(e) => {
                    return Err(Outcome::Retry {
                        reason: format!("answer cut off: {}", error_chain(&e)),
                        retry_after: None,
                        http_status: Some(status),
                    })
                }
            }
        }
    }

    #[async_trait]
    impl Transport for HttpTransport {
        async fn send(&self, batch: Vec<OutgoingCommand>) -> Vec<Outcome> {
            let mut outcomes = Vec::with_capacity(batch.len());
            for chunk in batch.chunks(self.config.max_batch.clamp(1, MAX_BATCH)) {
                outcomes.extend(self.send_chunk(chunk).await);
            }
            outcomes
        }

        async fn pull(&self, cursor: Option<String>, limit: u32) -> PullOutcome {
            self.pull_changes(cursor.as_deref(), limit).await
        }

        async fn listen(&self, nudge: Nudge) -> bool {
            self.listen_stream(nudge).await
        }

        async fn receipt(&self, idempotency_key: &str) -> ReceiptLookup {
            self.lookup_receipt(idempotency_key).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn retry_after_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage() {
        let now = SystemTime::now();
        for bad in ["", "-5", "1.5", "soon", "Wed, 99 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
