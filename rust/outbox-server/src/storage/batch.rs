//! One request's batch of commands inside one database transaction, the same way on every
//! backend.
//!
//! [`run`] walks the batch in request order against a backend's [`BatchTx`] and decides,
//! for each command, what docs/protocol.md §2.1 says:
//!
//! 1. **Lanes.** A command sharing a key with an earlier command of the batch that was not
//!    applied is `skipped`, and its keys are blocked in turn.
//! 2. **Invalid.** An empty `id` or `idempotency_key` is `rejected` (`invalid_command`);
//!    there is no key to store the answer under.
//! 3. **Idempotency.** A key with a record (stored before this batch, or earlier in it)
//!    answers that record: `duplicate` for an applied command, the same `rejected` answer
//!    for a rejected one. This comes before the version check, so a command applied
//!    before its version was retired still answers `duplicate`.
//! 4. **Run.** A rejection decided before the transaction (`unsupported_version`) or by
//!    the mutator is stored under the key; an applied command stores its result and
//!    receipt. A `conflict` is not stored (its answer depends on the base versions the
//!    command carries, and a client may resolve it by resending), and neither is `skipped`
//!    (it was never run).
//!
//! Every record is written in the transaction that holds the effects, so a crash leaves
//! the batch's effects and answers together or neither.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Apply, ApplyError, Change, Scope, StorageError, StoredResult};

/// A permanent refusal, as answered and as stored under the command's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// Stable machine-readable code (`insufficient_stock`, `unsupported_version`, …).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// For `unsupported_version`: the versions the server accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_versions: Option<Vec<u32>>,
}

impl Rejection {
    /// A rejection with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Rejection { code: code.to_string(), message: message.into(), supported_versions: None }
    }
}

/// What the server has stored under an idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// The command was applied; its result and receipt.
    Applied(StoredResult),
    /// The command was rejected; the answer it got.
    Rejected(Rejection),
}

/// What to do with a command whose key has no record.
pub enum Work {
    /// Run this mutator call.
    Apply(Box<dyn Apply>),
    /// Reject it with this answer, stored under the key (decided before the transaction,
    /// e.g. `unsupported_version`).
    Reject(Rejection),
}

/// One command of a batch.
pub struct BatchCommand {
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// The client's command id.
    pub command_id: String,
    /// Mutator name.
    pub mutator: String,
    /// Scheduling keys (lanes).
    pub keys: Vec<String>,
    /// What to do when the key has no record.
    pub work: Work,
}

/// The final answer for one command of a batch.
#[derive(Debug)]
pub enum Outcome {
    /// Applied by this batch, with its stored result and receipt.
    Applied(StoredResult),
    /// Applied earlier under this key; its stored result.
    Duplicate(StoredResult),
    /// Refused. `repeated` when the answer was stored under the key earlier.
    Rejected {
        /// The answer.
        rejection: Rejection,
        /// Whether the stored answer of an earlier attempt was repeated.
        repeated: bool,
    },
    /// Based on an outdated version; nothing applied, nothing stored.
    Conflict {
        /// Stable machine-readable code (`version_conflict`).
        code: String,
        /// Human-readable message.
        message: String,
        /// The document's current state.
        snapshot: Value,
    },
    /// Not run: an earlier command of the batch on `key` was not applied.
    Skipped {
        /// The blocked scheduling key.
        key: String,
    },
}

/// What a backend's transaction offers [`run`].
#[async_trait]
pub trait BatchTx: Send {
    /// The record stored under `key` for `scope` before this batch began, if any.
    async fn record(&mut self, scope: &Scope, key: &str) -> Result<Option<Record>, StorageError>;
    /// Runs `apply`. On `Ok` its writes stay (returned as changes, with the workspace's
    /// head after them); on a rejection or conflict every write it made is undone.
    async fn run(&mut self, scope: &Scope, apply: &dyn Apply) -> Result<Result<Ran, ApplyError>, StorageError>;
    /// Stores `record` under the command's key, in this transaction.
    async fn store(&mut self, scope: &Scope, command: &BatchCommand, record: &Record) -> Result<(), StorageError>;
}

/// A mutator call that applied.
pub struct Ran {
    /// The mutator's result.
    pub result: Value,
    /// Documents it wrote.
    pub changes: Vec<Change>,
    /// The workspace's change-log head after it.
    pub head: i64,
}

/// Runs `commands` in order against `tx` (see the module docs). A storage failure aborts
/// the batch: the caller rolls the transaction back, so nothing of it is applied.
pub async fn run(tx: &mut dyn BatchTx, scope: &Scope, commands: &[BatchCommand]) -> Result<Vec<Outcome>, StorageError> {
    let mut blocked: HashSet<&str> = HashSet::new();
    // Records made earlier in this batch: a key sent twice in one request.
    let mut made: HashMap<&str, Record> = HashMap::new();
    let mut outcomes = Vec::with_capacity(commands.len());
    for cmd in commands {
        if let Some(key) = cmd.keys.iter().find(|k| blocked.contains(k.as_str())) {
            outcomes.push(Outcome::Skipped { key: key.clone() });
            blocked.extend(cmd.keys.iter().map(String::as_str));
            continue;
        }
        if cmd.idempotency_key.is_empty() || cmd.command_id.is_empty() {
            let rejection = Rejection::new("invalid_command", "`id` and `idempotency_key` must be non-empty");
            outcomes.push(Outcome::Rejected { rejection, repeated: false });
            blocked.extend(cmd.keys.iter().map(String::as_str));
            continue;
        }
        let key = cmd.idempotency_key.as_str();
        let earlier = match made.get(key) {
            Some(r) => Some(r.clone()),
            None => tx.record(scope, key).await?,
        };
        let outcome = match earlier {
            Some(Record::Applied(stored)) => Outcome::Duplicate(stored),
            Some(Record::Rejected(rejection)) => Outcome::Rejected { rejection, repeated: true },
            None => {
                let record = match &cmd.work {
                    Work::Reject(r) => Err(Record::Rejected(r.clone())),
                    Work::Apply(apply) => match tx.run(scope, apply.as_ref()).await? {
                        Ok(ran) => {
                            let stored = StoredResult {
                                result: ran.result,
                                changes: ran.changes,
                                server_seq: ran.head,
                                applied_at: Some(super::now_ms()),
                            };
                            Ok(Record::Applied(stored))
                        }
                        Err(ApplyError::Rejected { code, message }) => {
                            Err(Record::Rejected(Rejection { code, message, supported_versions: None }))
                        }
                        Err(ApplyError::Conflict { code, message, snapshot }) => {
                            outcomes.push(Outcome::Conflict { code, message, snapshot });
                            blocked.extend(cmd.keys.iter().map(String::as_str));
                            continue;
                        }
                        Err(ApplyError::Storage(e)) => return Err(e),
                    },
                };
                let record = record.unwrap_or_else(|r| r);
                tx.store(scope, cmd, &record).await?;
                made.insert(key, record.clone());
                match record {
                    Record::Applied(stored) => Outcome::Applied(stored),
                    Record::Rejected(rejection) => Outcome::Rejected { rejection, repeated: false },
                }
            }
        };
        if matches!(outcome, Outcome::Rejected { .. }) {
            blocked.extend(cmd.keys.iter().map(String::as_str));
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
