//! The local document store: collections of JSON documents with an optimistic overlay.
//!
//! Synced documents live in `synced_docs(collection, id, version, doc)`. Optimistic changes
//! live in `pending_ops(command_seq, op_index, collection, doc_id, op, patch, base_version)`,
//! written in the same transaction as their command. A read starts from the synced document
//! and applies the ops of every *live* command touching it in enqueue order: `pending`,
//! `in_flight`, `conflict`, `wedged`, and `succeeded` commands whose server version has not
//! arrived yet. Ops of `failed` commands stay (so the document can say it failed) but are
//! not applied; a discard deletes them.
//!
//! Hand-off without flicker: an applied command's ops are retired in the same transaction
//! that stores the server's version of what it changed (from the command's response, or at
//! the end of the first complete pull that started after it succeeded).

mod read;
pub(crate) mod rebuild;
mod write;

pub(crate) use read::{count, create_index, get, last_synced, list};
pub(crate) use write::*;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::command::CommandId;

/// Where a document stands relative to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocStatus {
    /// What the server last sent; no local change waits.
    Synced,
    /// Local changes are waiting to be sent (or are being sent).
    Pending,
    /// A command touching it was rejected; its change is not shown.
    Failed,
    /// A command touching it is in conflict with the server's version.
    Conflict,
}

impl DocStatus {
    /// The name shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            DocStatus::Synced => "synced",
            DocStatus::Pending => "pending",
            DocStatus::Failed => "failed",
            DocStatus::Conflict => "conflict",
        }
    }
}

/// A document as the app sees it: synced state with pending changes applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Collection name.
    pub collection: String,
    /// Document id.
    pub id: String,
    /// The merged document.
    pub value: Value,
    /// The server version the synced part is at (`None` if the server has not sent it).
    pub version: Option<i64>,
    /// Sync status.
    pub status: DocStatus,
    /// Unfinished (or failed) commands touching it, oldest first.
    pub commands: Vec<CommandId>,
}

/// Which documents `list` and `count` return.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Top-level field equals value, all must hold.
    pub filters: Vec<(String, Value)>,
    /// Sort by this top-level field (then by id); by id when `None`.
    pub order_by: Option<String>,
    /// Sort descending.
    pub descending: bool,
    /// At most this many (all when `None`).
    pub limit: Option<usize>,
    /// Skip this many first.
    pub offset: usize,
}

impl Query {
    /// Every document, by id.
    pub fn all() -> Self {
        Query::default()
    }

    /// Adds an equality filter on a top-level field.
    pub fn filter(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.filters.push((field.into(), value.into()));
        self
    }

    /// Sorts by a top-level field.
    pub fn order_by(mut self, field: impl Into<String>, descending: bool) -> Self {
        self.order_by = Some(field.into());
        self.descending = descending;
        self
    }

    /// Pages the result.
    pub fn page(mut self, offset: usize, limit: usize) -> Self {
        self.offset = offset;
        self.limit = Some(limit);
        self
    }
}

/// Applies a JSON merge patch (RFC 7386) to `target`.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = target {
        for (k, v) in patch_map {
            if v.is_null() {
                map.remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A version is one state of a document on the server: receiving it again (a register
    /// pulls back what its own drain just handed off) writes nothing; a newer one replaces
    /// it, an older one never does.
    #[test]
    fn a_version_already_held_is_not_written_again() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrations::migrate(&mut conn).unwrap();
        let change = |version: i64, doc: Value| crate::transport::DocChange {
            collection: "orders".into(),
            id: "o1".into(),
            version,
            doc: Some(doc),
        };
        let tx = conn.transaction().unwrap();
        apply_changes(&tx, None, &[change(2, json!({"n": 1}))]).unwrap();
        let changes_before = tx.total_changes();
        apply_changes(&tx, None, &[change(2, json!({"n": 1}))]).unwrap();
        assert_eq!(tx.total_changes(), changes_before, "the same version was written again");
        apply_changes(&tx, None, &[change(1, json!({"n": 0}))]).unwrap();
        apply_changes(&tx, None, &[change(3, json!({"n": 3}))]).unwrap();
        let doc: String = tx.query_row("SELECT doc FROM synced_docs WHERE id = 'o1'", [], |r| r.get(0)).unwrap();
        assert_eq!(doc, r#"{"n":3}"#);
    }

    /// Every pull ends by retiring the ops of acknowledged commands. Those are found from
    /// the ops still kept (a handful), never by walking the succeeded commands kept for
    /// their retention period (tens of thousands on a busy till): that walk was 9% of a
    /// 10k HTTP drain, which pulls as the server's nudges arrive.
    #[test]
    fn acknowledged_ops_are_found_from_the_ops_side() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrations::migrate(&mut conn).unwrap();
        for sql in [RETIRED_COLLECTIONS_SQL, RETIRE_ACKNOWLEDGED_SQL] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([1_i64], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let first_scan = plan.iter().find(|step| step.contains(" p ") || step.contains(" c ")).unwrap();
            assert!(first_scan.contains(" p "), "the plan starts from commands: {plan:?}");
            assert!(!plan.iter().any(|step| step.contains("commands_by_state")), "{plan:?}");
        }
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        // The examples of RFC 7386 §3.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (json!({"a":"b","b":"c"}), json!({"a":null}), json!({"b":"c"})),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (json!({"a":{"b":"c"}}), json!({"a":{"b":"d","c":null}}), json!({"a":{"b":"d"}})),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (json!({}), json!({"a":{"bb":{"ccc":null}}}), json!({"a":{"bb":{}}})),
        ];
        for (mut target, patch, want) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want, "patch {patch}");
        }
    }
}
