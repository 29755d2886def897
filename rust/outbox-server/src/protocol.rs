//! Wire types of docs/protocol.md.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::storage::Change;

/// Most commands accepted in one `POST /v1/commands` request.
pub const MAX_BATCH: usize = 100;

/// Body of `POST /v1/commands`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CommandBatch {
    /// The commands, applied in this order.
    pub commands: Vec<WireCommand>,
}

/// One command as sent by a client.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WireCommand {
    /// Client command id.
    pub id: String,
    /// Deduplication key, fixed for every attempt of the command.
    pub idempotency_key: String,
    /// Mutator name.
    pub mutator: String,
    /// Version of the mutator's argument shape (default 1).
    #[serde(default = "one")]
    pub mutator_version: u32,
    /// Mutator arguments.
    #[serde(default)]
    pub args: Value,
    /// `{"collection:id": version}` the client based the command on.
    #[serde(default)]
    pub base_versions: Map<String, Value>,
    /// Scheduling keys: a command not applied stops later commands sharing a key.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Client metadata (e.g. `trace_id`); not interpreted.
    #[serde(default)]
    pub metadata: Value,
    /// Attempt number, informational.
    #[serde(default)]
    pub attempt: Option<u32>,
}

fn one() -> u32 {
    1
}

/// Status of one command in a batch answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Applied by this request.
    Applied,
    /// Applied by an earlier request with the same idempotency key; stored result.
    Duplicate,
    /// Permanently refused; nothing applied.
    Rejected,
    /// Based on an outdated document version; nothing applied; `snapshot` given.
    Conflict,
    /// Not attempted because an earlier command sharing a key was not applied.
    Skipped,
}

/// A machine-readable error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// Stable code (docs/protocol.md lists them).
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

/// A changed document as sent on the wire: `doc` for a live document, `deleted: true`
/// for a deletion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireChange {
    /// Collection name.
    pub collection: String,
    /// Document id.
    pub id: String,
    /// Server version after the change.
    pub version: i64,
    /// The document (absent when deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<Value>,
    /// `true` when the document was deleted (absent otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl From<&Change> for WireChange {
    fn from(c: &Change) -> Self {
        WireChange {
            collection: c.collection.clone(),
            id: c.id.clone(),
            version: c.version,
            deleted: c.doc.is_none(),
            doc: c.doc.clone(),
        }
    }
}

/// One command's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    /// The command's id, echoed.
    pub id: String,
    /// What happened.
    pub status: CommandStatus,
    /// Mutator result (applied, duplicate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Documents changed (applied, duplicate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<WireChange>>,
    /// Change-log position after the command (applied, duplicate). Half of the receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_seq: Option<i64>,
    /// Server time the command was applied, Unix milliseconds (applied, duplicate: the
    /// same value every time). The other half of the receipt; absent only for commands
    /// applied by a server from before receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<i64>,
    /// Why not applied (rejected, conflict, skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
    /// Current server state of the conflicting document (conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Value>,
    /// The versions of the mutator this server accepts (rejected `unsupported_version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_versions: Option<Vec<u32>>,
}

/// Body of a `POST /v1/commands` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// One result per command, in request order.
    pub results: Vec<CommandResult>,
}

/// Body of a `GET /v1/commands/{idempotency_key}` answer (200): the stored result of the
/// command applied under that key, `status` always `applied`, `id` the command id it was
/// applied with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandLookup {
    /// The key asked about.
    pub idempotency_key: String,
    /// The stored result and receipt (`server_seq`, `applied_at`).
    #[serde(flatten)]
    pub result: CommandResult,
}

/// Body of a `GET /v1/changes` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangesResponse {
    /// Changes after the request's cursor, oldest first.
    pub changes: Vec<WireChange>,
    /// Opaque cursor for the next request.
    pub cursor: String,
    /// Whether more changes are waiting.
    pub has_more: bool,
}

/// Body of every whole-request error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: WireError,
}
