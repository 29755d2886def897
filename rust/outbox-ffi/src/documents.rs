//! Documents and queries across the boundary: a document crosses with its value as JSON
//! text and its commands' ids as strings; a query's filter values cross as JSON text and
//! are parsed here (bad JSON is `InvalidJson`).

use outbox::{Doc as CoreDoc, DocStatus as CoreDocStatus, Query as CoreQuery};

use crate::error::OutboxError;
use crate::types::parse_json;

/// Where a document stands relative to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DocStatus {
    /// What the server last sent; no local change waits.
    Synced,
    /// Local changes wait to be sent (or are being sent).
    Pending,
    /// A command touching it was rejected.
    Failed,
    /// A command touching it is in conflict.
    Conflict,
}

/// A document as the app sees it: synced state with pending changes applied.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Doc {
    /// Collection name.
    pub collection: String,
    /// Document id.
    pub id: String,
    /// The merged document as JSON text.
    pub value: String,
    /// Server version of the synced part (none if the server has not sent it).
    pub version: Option<i64>,
    /// Sync status.
    pub status: DocStatus,
    /// Unfinished (or failed) commands touching it, oldest first.
    pub commands: Vec<String>,
}

/// One equality filter on a top-level field.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Filter {
    /// Top-level field name.
    pub field: String,
    /// The value it must equal, as JSON text (`"open"`, `42`, `true`).
    pub value: String,
}

/// Which documents `list`, `count` and `watch` return.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Query {
    /// All must hold.
    #[uniffi(default = [])]
    pub filters: Vec<Filter>,
    /// Sort by this top-level field (then by id); by id when none.
    #[uniffi(default = None)]
    pub order_by: Option<String>,
    /// Sort descending.
    #[uniffi(default = false)]
    pub descending: bool,
    /// At most this many (all when none).
    #[uniffi(default = None)]
    pub limit: Option<u32>,
    /// Skip this many first.
    #[uniffi(default = 0)]
    pub offset: u32,
}

impl From<CoreDocStatus> for DocStatus {
    fn from(s: CoreDocStatus) -> Self {
        match s {
            CoreDocStatus::Synced => DocStatus::Synced,
            CoreDocStatus::Pending => DocStatus::Pending,
            CoreDocStatus::Failed => DocStatus::Failed,
            CoreDocStatus::Conflict => DocStatus::Conflict,
        }
    }
}

impl From<CoreDoc> for Doc {
    fn from(d: CoreDoc) -> Self {
        Doc {
            collection: d.collection,
            id: d.id,
            value: d.value.to_string(),
            version: d.version,
            status: d.status.into(),
            commands: d.commands.iter().map(ToString::to_string).collect(),
        }
    }
}

impl TryFrom<Query> for CoreQuery {
    type Error = OutboxError;
    fn try_from(q: Query) -> Result<Self, OutboxError> {
        let filters = q
            .filters
            .into_iter()
            .map(|f| Ok((f.field, parse_json("filter value", &f.value)?)))
            .collect::<Result<Vec<_>, OutboxError>>()?;
        Ok(CoreQuery {
            filters,
            order_by: q.order_by,
            descending: q.descending,
            limit: q.limit.map(|n| n as usize),
            offset: q.offset as usize,
        })
    }
}
