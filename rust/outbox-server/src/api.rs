//! HTTP handlers of docs/protocol.md.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast, Notify};

use crate::cursor::{self, Cursor, CursorReset};
use crate::faults::{FaultKind, FaultSpec, Faults};
use crate::mutators::MutatorCall;
use crate::protocol::{
    BatchResponse, ChangesResponse, CommandBatch, CommandLookup, CommandResult, CommandStatus, ErrorBody, WireChange,
    WireCommand, WireError,
};
use crate::stats::Stats;
use crate::storage::{BatchCommand, ChangeNotice, Outcome, Rejection, Scope, Storage, StorageError, Work};

/// Per-connection switch a handler pulls to close its connection without answering.
#[derive(Clone, Default)]
pub(crate) struct ConnKill(pub(crate) Arc<Notify>);

/// State shared by all handlers.
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) faults: Faults,
    pub(crate) stats: Stats,
    /// A notice whenever a workspace's change log advanced.
    pub(crate) changed: broadcast::Sender<ChangeNotice>,
    /// Whether this node nudges its own subscribers after a commit. Off when the storage
    /// reports every node's commits itself ([`Storage::notifications`]).
    pub(crate) local_nudges: bool,
    pub(crate) max_batch: usize,
    /// Which versions of each mutator are accepted.
    pub(crate) versions: crate::mutators::MutatorVersions,
}

type AppState = Arc<Shared>;

pub(crate) fn router(shared: AppState, admin: bool, max_body_bytes: usize) -> Router {
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/commands", post(post_commands))
        .route("/v1/commands/{idempotency_key}", get(get_command))
        .route("/v1/changes", get(get_changes))
        .route("/v1/mutators", get(get_mutators))
        .route("/v1/stream", get(stream));
    if admin {
        r = r
            .route("/v1/_faults", get(get_faults).post(set_faults).delete(clear_faults))
            .route("/v1/_stats", get(get_stats))
            .route("/v1/_log", get(get_log));
    }
    r.layer(DefaultBodyLimit::max(max_body_bytes)).with_state(shared)
}

/// A whole-request JSON error `{error:{code,message}}`.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = ErrorBody { error: WireError { code: code.to_string(), message: message.into() } };
    (status, Json(body)).into_response()
}

fn storage_error(e: StorageError) -> Response {
    tracing::error!(error = %e, "storage failure");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "storage failure")
}

/// Resolves the bearer token and workspace header to a [`Scope`], or the 400/401/403
/// answer.
async fn authorize(state: &AppState, headers: &HeaderMap) -> Result<Scope, Response> {
    let unauthorized = |msg: &str| {
        let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", msg);
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let Some(token) = token else { return Err(unauthorized("missing bearer token")) };
    let workspace = headers.get("x-workspace-id").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    if workspace.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "missing_workspace", "X-Workspace-Id header is required"));
    }
    let workspace = workspace.to_string();
    let found = state.storage.authorize(&token, &workspace).await.map_err(storage_error)?;
    match found {
        None => Err(unauthorized("unknown token")),
        Some((_, false)) => Err(error(StatusCode::FORBIDDEN, "forbidden", "not a member of this workspace")),
        Some((user, true)) => Ok(Scope { workspace, user }),
    }
}

/// `GET /v1/mutators`: which versions of each mutator this server accepts.
async fn get_mutators(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&state, &headers).await {
        return r;
    }
    Json(json!({ "mutators": state.versions.all() })).into_response()
}

async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Closes the connection without an answer: the connection task drops the socket.
async fn kill_connection(kill: Option<Extension<ConnKill>>) -> Response {
    match kill {
        Some(Extension(k)) => {
            k.0.notify_one();
            std::future::pending::<Response>().await
        }
        // Not served by our accept loop (cannot happen in this crate): fail loudly instead.
        None => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "connection cannot be reset here"),
    }
}

/// An injected error answer, and the time its `Retry-After` allows the next attempt.
fn fault_response(code: u16, retry_after: Option<Duration>, as_date: bool) -> (Response, Option<SystemTime>) {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = error(status, "injected_fault", format!("injected fault: HTTP {code}"));
    let mut not_before = None;
    if let Some(d) = retry_after {
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        let at = SystemTime::now() + Duration::from_secs(secs);
        let value = if as_date {
            let text = httpdate::fmt_http_date(at);
            // The date has whole seconds: that truncated instant is what was allowed.
            not_before = httpdate::parse_http_date(&text).ok();
            text
        } else {
            not_before = Some(at);
            secs.to_string()
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    (r, not_before)
}

/// Just the idempotency keys of a batch, read leniently for `Retry-After` accounting.
#[derive(Deserialize)]
struct KeysOnly {
    commands: Vec<KeyOnly>,
}

#[derive(Deserialize)]
struct KeyOnly {
    idempotency_key: String,
}

fn batch_keys(body: &Result<Bytes, BytesRejection>) -> Vec<String> {
    match body {
        Ok(b) => serde_json::from_slice::<KeysOnly>(b)
            .map(|k| k.commands.into_iter().map(|c| c.idempotency_key).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

async fn post_commands(
    State(state): State<AppState>,
    kill: Option<Extension<ConnKill>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    state.stats.request();
    let keys = batch_keys(&body);
    state.stats.check_retry_after(&keys, SystemTime::now());
    let decision = state.faults.decide();
    if let Some(d) = decision.latency {
        tokio::time::sleep(d).await;
    }
    match &decision.fault {
        Some(f @ FaultKind::Status { code, retry_after, as_date }) => {
            state.stats.fault(&f.label());
            let (response, not_before) = fault_response(*code, *retry_after, *as_date);
            if let Some(at) = not_before {
                state.stats.retry_after_sent(&keys, at);
            }
            return response;
        }
        Some(f @ FaultKind::Reset) => {
            state.stats.fault(&f.label());
            return kill_connection(kill).await;
        }
        _ => {}
    }
    let scope = match authorize(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !is_json(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a command batch must be sent as Content-Type: application/json",
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is too large")
        }
        Err(rej) => return error(StatusCode::BAD_REQUEST, "malformed_body", rej.body_text()),
    };
    let batch: CommandBatch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "malformed_body", format!("invalid command batch: {e}")),
    };
    if batch.commands.len() > state.max_batch {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("{} commands in one batch; at most {}", batch.commands.len(), state.max_batch),
        );
    }
    // The batch runs in its own task: a client that disconnects (timeout, reset) drops this
    // handler, and a commit must never be separated from its counters and lane bookkeeping
    // by that cancellation (the answer is lost, the effect and its record are not).
    let (task_state, task_scope) = (state.clone(), scope.clone());
    let batch_task = tokio::spawn(async move { run_batch(&task_state, &task_scope, batch.commands).await });
    let results = match batch_task.await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return storage_error(e),
        Err(e) => {
            tracing::error!(error = %e, "command batch task failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the batch could not be completed");
        }
    };
    if state.local_nudges {
        if let Some(seq) = results.iter().filter_map(|r| r.server_seq).max() {
            // No receivers is fine: nobody is listening.
            let _ = state.changed.send(ChangeNotice::Workspace { workspace: scope.workspace, seq });
        }
    }
    if let Some(f @ FaultKind::DropAfterCommit) = &decision.fault {
        state.stats.fault(&f.label());
        return kill_connection(kill).await;
    }
    Json(BatchResponse { results }).into_response()
}

/// Whether the request says its body is JSON (`application/json`, any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn not_applied(id: String, status: CommandStatus, code: &str, message: String) -> CommandResult {
    CommandResult {
        id,
        status,
        result: None,
        changes: None,
        server_seq: None,
        applied_at: None,
        error: Some(WireError { code: code.to_string(), message }),
        snapshot: None,
        supported_versions: None,
    }
}

/// Applies a batch in one transaction ([`crate::storage::batch`] has the rules: request
/// order, idempotency, lanes), then counts each command's outcome.
async fn run_batch(
    shared: &Shared,
    scope: &Scope,
    commands: Vec<WireCommand>,
) -> Result<Vec<CommandResult>, StorageError> {
    let mut ids = Vec::with_capacity(commands.len());
    let mut batch = Vec::with_capacity(commands.len());
    for mut cmd in commands {
        let work = match shared.versions.of(&cmd.mutator) {
            Some(accepted) if !accepted.contains(&cmd.mutator_version) => {
                let message = format!(
                    "{} version {} is not accepted by this server (accepted: {accepted:?}); upgrade the command",
                    cmd.mutator, cmd.mutator_version
                );
                let mut r = Rejection::new("unsupported_version", message);
                r.supported_versions = Some(accepted.to_vec());
                Work::Reject(r)
            }
            // Moved, not copied: nothing below reads the arguments again.
            _ => Work::Apply(Box::new(MutatorCall {
                name: cmd.mutator.clone(),
                version: cmd.mutator_version,
                args: std::mem::take(&mut cmd.args),
                base_versions: std::mem::take(&mut cmd.base_versions),
            })),
        };
        ids.push(cmd.id.clone());
        batch.push(BatchCommand {
            idempotency_key: cmd.idempotency_key,
            command_id: cmd.id,
            mutator: cmd.mutator,
            keys: cmd.keys,
            work,
        });
    }
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = batch.iter().map(|c| c.idempotency_key.clone()).collect();
    let outcomes = shared.storage.execute_batch(scope, batch).await?;
    if outcomes.len() != ids.len() {
        return Err(StorageError::Inconsistent(format!("{} outcomes for {} commands", outcomes.len(), ids.len())));
    }
    let mut results = Vec::with_capacity(ids.len());
    for ((id, key), outcome) in ids.into_iter().zip(keys).zip(outcomes) {
        let result = match outcome {
            Outcome::Applied(stored) => {
                shared.stats.applied(&scope.workspace, &scope.user, &key);
                applied_result(id, CommandStatus::Applied, stored)
            }
            Outcome::Duplicate(stored) => {
                shared.stats.duplicate(&scope.workspace, &scope.user, &key);
                applied_result(id, CommandStatus::Duplicate, stored)
            }
            Outcome::Rejected { rejection, .. } => {
                shared.stats.rejected();
                let mut r = not_applied(id, CommandStatus::Rejected, &rejection.code, rejection.message);
                r.supported_versions = rejection.supported_versions;
                r
            }
            Outcome::Conflict { code, message, snapshot } => {
                shared.stats.conflict();
                let mut r = not_applied(id, CommandStatus::Conflict, &code, message);
                r.snapshot = Some(snapshot);
                r
            }
            Outcome::Skipped { key } => {
                shared.stats.skipped();
                let message = format!("an earlier command on key {key:?} in this batch was not applied");
                not_applied(id, CommandStatus::Skipped, "skipped", message)
            }
        };
        results.push(result);
    }
    Ok(results)
}

fn applied_result(id: String, status: CommandStatus, stored: crate::storage::StoredResult) -> CommandResult {
    CommandResult {
        id,
        status,
        result: Some(stored.result),
        changes: Some(stored.changes.iter().map(WireChange::from).collect()),
        server_seq: Some(stored.server_seq),
        applied_at: stored.applied_at,
        error: None,
        snapshot: None,
        supported_versions: None,
    }
}

/// `GET /v1/commands/{idempotency_key}`: the receipt of a command applied under that key
/// by the caller, in the caller's workspace. A key that is unknown *to this user in this
/// workspace* is 404 `unknown_command` whoever else used it, so keys never leak.
async fn get_command(State(state): State<AppState>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    let scope = match authorize(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match state.storage.stored_command(&scope, &key).await {
        Ok(Some(found)) => Json(CommandLookup {
            idempotency_key: key,
            result: applied_result(found.command_id, CommandStatus::Applied, found.stored),
        })
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "unknown_command", "no command was applied with this idempotency key"),
        Err(e) => storage_error(e),
    }
}

/// Query of `GET /v1/changes`.
#[derive(Debug, Deserialize)]
struct ChangesQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// Default and largest page size of `GET /v1/changes`.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

async fn get_changes(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ChangesQuery>, QueryRejection>,
) -> Response {
    let scope = match authorize(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(Query(q)) = query else {
        return error(StatusCode::BAD_REQUEST, "invalid_query", "cursor must be text and limit a positive integer");
    };
    let cursor = match Cursor::parse(q.cursor.as_deref().unwrap_or("")) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_cursor", e.to_string()),
    };
    let epoch = state.storage.epoch().to_string();
    // The head only grows within an epoch, and every cursor this database issued was at
    // most its head then: a cursor past it was issued before the database went back.
    let head = match state.storage.head_seq(&scope.workspace).await {
        Ok(h) => h,
        Err(e) => return storage_error(e),
    };
    let after = match cursor.check(&epoch, head) {
        Ok(after) => after,
        Err(reason) => {
            tracing::info!(workspace = %scope.workspace, ?reason, "cursor reset");
            return (StatusCode::GONE, Json(CursorReset::new(&epoch, reason))).into_response();
        }
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let page = match state.storage.changes_after(&scope.workspace, after, limit).await {
        Ok(p) => p,
        Err(e) => return storage_error(e),
    };
    let cursor = cursor::format(&epoch, page.changes.last().map(|c| c.seq).unwrap_or(after));
    Json(ChangesResponse {
        changes: page.changes.iter().map(WireChange::from).collect(),
        cursor,
        has_more: page.has_more,
    })
    .into_response()
}

fn changed_event(epoch: &str, seq: i64) -> Event {
    Event::default().event("changed").data(json!({"cursor": cursor::format(epoch, seq)}).to_string())
}

async fn stream(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let scope = match authorize(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Subscribe before reading the head so no change falls between the two.
    let rx = state.changed.subscribe();
    let head = match state.storage.head_seq(&scope.workspace).await {
        Ok(h) => h,
        Err(e) => return storage_error(e),
    };
    let epoch = state.storage.epoch().to_string();
    let initial = Some(changed_event(&epoch, head));
    let ws = (scope.workspace, epoch);
    let events = futures_util::stream::unfold((rx, ws, initial), |(mut rx, ws, first)| async move {
        if let Some(ev) = first {
            return Some((Ok::<_, Infallible>(ev), (rx, ws, None)));
        }
        loop {
            match rx.recv().await {
                Ok(ChangeNotice::Workspace { workspace, seq }) if workspace == ws.0 => {
                    return Some((Ok(changed_event(&ws.1, seq)), (rx, ws, None)))
                }
                Ok(ChangeNotice::Workspace { .. }) => continue,
                // Nudge anyway, the client pulls from its own cursor.
                Ok(ChangeNotice::Unknown) => {
                    return Some((Ok(Event::default().event("changed").data("{}")), (rx, ws, None)))
                }
                // Missed some: nudge anyway, the client pulls from its own cursor.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some((Ok(Event::default().event("changed").data("{}")), (rx, ws, None)))
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// JSON form of `POST /v1/_faults`.
#[derive(Debug, Deserialize)]
struct FaultsBody {
    #[serde(default)]
    spec: String,
    seed: Option<u64>,
}

async fn get_faults(State(state): State<AppState>) -> Response {
    Json(json!({"spec": state.faults.spec().to_string()})).into_response()
}

async fn set_faults(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (text, seed) = if is_json {
        match serde_json::from_slice::<FaultsBody>(&body) {
            Ok(b) => (b.spec, b.seed),
            Err(e) => return error(StatusCode::BAD_REQUEST, "malformed_body", e.to_string()),
        }
    } else {
        (String::from_utf8_lossy(&body).into_owned(), None)
    };
    match text.parse::<FaultSpec>() {
        Ok(spec) => {
            state.faults.set(spec, seed);
            get_faults(State(state)).await
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "invalid_fault_spec", e.to_string()),
    }
}

async fn clear_faults(State(state): State<AppState>) -> Response {
    state.faults.set(FaultSpec::default(), None);
    get_faults(State(state)).await
}

async fn get_stats(State(state): State<AppState>) -> Response {
    Json(state.stats.snapshot()).into_response()
}

async fn get_log(State(state): State<AppState>) -> Response {
    match state.storage.apply_log().await {
        Ok(entries) => Json(json!({"entries": entries})).into_response(),
        Err(e) => storage_error(e),
    }
}
