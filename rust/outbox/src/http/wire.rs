//! The wire format of the protocol as the client reads it (docs/protocol.md): batch
//! results, change pages and error bodies, and their mapping to [`Outcome`]s. Parsing
//! never panics, whatever the bytes; anything unreadable is a retriable failure.

use std::time::SystemTime;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::parse_retry_after;
use crate::transport::{DocChange, Outcome, OutgoingCommand, Receipt, ReceiptLookup};

#[derive(Deserialize)]
pub(super) struct WireError {
    #[serde(default)]
    pub(super) code: String,
    #[serde(default)]
    pub(super) message: String,
}

#[derive(Deserialize)]
pub(super) struct ErrorBody {
    pub(super) error: WireError,
}

/// The error code of a `410 Gone` answer to `GET /v1/changes` whose cursor the server
/// cannot continue (docs/protocol.md §4).
pub(super) const CURSOR_RESET: &str = "cursor_reset";

/// Whether a pull's error answer is a feed reset (`410` with code `cursor_reset`).
pub(super) fn is_cursor_reset(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::GONE && serde_json::from_slice::<ErrorBody>(body).is_ok_and(|e| e.error.code == CURSOR_RESET)
}

#[derive(Deserialize)]
pub(super) struct WireChange {
    pub(super) collection: String,
    pub(super) id: String,
    pub(super) version: i64,
    #[serde(default)]
    pub(super) doc: Option<Value>,
    #[serde(default)]
    pub(super) deleted: bool,
}

impl WireChange {
    pub(super) fn into_change(self) -> Result<DocChange, String> {
        let doc = match (self.deleted, self.doc) {
            (true, _) => None,
            (false, Some(doc)) if !doc.is_null() => Some(doc),
            (false, _) => return Err(format!("change {}:{} has neither doc nor deleted", self.collection, self.id)),
        };
        Ok(DocChange { collection: self.collection, id: self.id, version: self.version, doc })
    }
}

#[derive(Deserialize)]
pub(super) struct WireResult {
    id: String,
    status: String,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    changes: Option<Vec<WireChange>>,
    #[serde(default)]
    server_seq: Option<i64>,
    #[serde(default)]
    applied_at: Option<i64>,
    #[serde(default)]
    error: Option<WireError>,
    #[serde(default)]
    snapshot: Option<Value>,
}

impl WireResult {
    /// The receipt of an applied result: present when the server sent `server_seq`.
    fn receipt(&self) -> Option<Receipt> {
        self.server_seq.map(|server_seq| Receipt { server_seq, applied_at: self.applied_at })
    }

    fn changes(&mut self) -> Result<Vec<DocChange>, String> {
        let mut changes = Vec::new();
        for c in self.changes.take().unwrap_or_default() {
            changes.push(c.into_change()?);
        }
        Ok(changes)
    }
}

#[derive(Deserialize)]
pub(super) struct BatchResponse {
    results: Vec<WireResult>,
}

#[derive(Deserialize)]
pub(super) struct ChangesResponse {
    pub(super) changes: Vec<WireChange>,
    pub(super) cursor: String,
    pub(super) has_more: bool,
}

pub(super) fn retry_with(reason: String, status: StatusCode, headers: &HeaderMap) -> Outcome {
    let retry_after =
        headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, SystemTime::now()));
    Outcome::Retry { reason, retry_after, http_status: Some(status.as_u16()) }
}

/// `"HTTP 500: code: message"` from an error answer, without echoing arbitrary bodies.
pub(super) fn describe(status: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => format!("HTTP {}: {}: {}", status.as_u16(), e.error.code, truncate(&e.error.message, 200)),
        Err(_) => format!("HTTP {}", status.as_u16()),
    }
}

pub(super) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Maps the body of a 200 answer to one outcome per command of `batch`; `Err` is the
/// reason to retry the whole batch (unreadable body, wrong count, mismatched ids).
/// Never panics, whatever the bytes.
pub fn parse_batch_response(batch: &[OutgoingCommand], body: &[u8]) -> Result<Vec<Outcome>, String> {
    let parsed: BatchResponse = serde_json::from_slice(body).map_err(|e| format!("unreadable response body: {e}"))?;
    if parsed.results.len() != batch.len() {
        return Err(format!("response has {} results for a batch of {} commands", parsed.results.len(), batch.len()));
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for (cmd, r) in batch.iter().zip(parsed.results) {
        if r.id != cmd.id {
            return Err("response results do not match the batch's command ids".to_string());
        }
        let mut r = r;
        let outcome = match r.status.as_str() {
            "applied" | "duplicate" => {
                let changes = r.changes()?;
                let receipt = r.receipt();
                Outcome::Applied { result: r.result.unwrap_or(Value::Null), changes, receipt }
            }
            "rejected" => {
                let e = r.error.unwrap_or(WireError { code: String::new(), message: String::new() });
                let code = if e.code.is_empty() { "rejected".to_string() } else { e.code };
                Outcome::Rejected { code, message: e.message }
            }
            "conflict" => Outcome::Conflict { server_snapshot: r.snapshot.unwrap_or(Value::Null) },
            "skipped" => {
                let why = r.error.map(|e| e.message).unwrap_or_default();
                Outcome::retry(format!("skipped: {}", truncate(&why, 200)))
            }
            other => Outcome::retry(format!("unknown result status {:?}", truncate(other, 40))),
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Maps a `GET /v1/commands/{key}` answer to a [`ReceiptLookup`]. A 404 is `NotFound`
/// only with the protocol's `unknown_command` code: a server without the endpoint
/// answers a bare 404, which says nothing about the command (`Unsupported`). Never
/// panics, whatever the bytes.
pub fn parse_receipt_response(status: u16, body: &[u8]) -> ReceiptLookup {
    match status {
        200 => {
            let mut r: WireResult = match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => return ReceiptLookup::Failed(format!("unreadable command lookup: {e}")),
            };
            if !matches!(r.status.as_str(), "applied" | "duplicate") {
                return ReceiptLookup::Failed(format!("unexpected lookup status {:?}", truncate(&r.status, 40)));
            }
            let Some(receipt) = r.receipt() else {
                return ReceiptLookup::Failed("lookup answer without server_seq".to_string());
            };
            match r.changes() {
                Ok(changes) => ReceiptLookup::Applied { result: r.result.unwrap_or(Value::Null), changes, receipt },
                Err(e) => ReceiptLookup::Failed(e),
            }
        }
        404 => match serde_json::from_slice::<ErrorBody>(body) {
            Ok(e) if e.error.code == "unknown_command" => ReceiptLookup::NotFound,
            _ => ReceiptLookup::Unsupported,
        },
        401 => ReceiptLookup::Unauthorized,
        other => ReceiptLookup::Failed(match StatusCode::from_u16(other) {
            Ok(s) => describe(s, body),
            Err(_) => format!("HTTP {other}"),
        }),
    }
}
