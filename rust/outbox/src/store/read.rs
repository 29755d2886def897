//! Reading the store: merged `get`, `list` and `count`, and field indexes.
//!
//! `list` splits the work: documents without local changes are filtered, sorted and cut
//! by SQLite (through an expression index when the app declared one with
//! `create_index`); documents with local changes (usually few) are merged and filtered
//! in Rust; the two are combined and paged. So listing a page stays cheap however many
//! documents a collection holds.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use rusqlite::{params, types::Value as SqlValue, Connection, OptionalExtension};
use serde_json::Value;

use super::{merge_patch, Doc, DocStatus, Query};
use crate::command::{CommandId, CommandState};
use crate::error::{Error, Result};

/// Longest accepted field name.
const MAX_FIELD: usize = 64;

/// Checks a field name used in a query or an index (it is written into SQL).
fn check_field(field: &str) -> Result<()> {
    let mut chars = field.chars();
    let ok = field.len() <= MAX_FIELD
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest {
            reason: format!("field `{field}` must be a top-level name of letters, digits and _"),
        })
    }
}

fn path_expr(field: &str) -> String {
    format!("json_extract(doc, '$.{field}')")
}

/// Creates (once) an index that lets `list` filter and sort by `field` without scanning.
pub(crate) fn create_index(conn: &Connection, collection: &str, field: &str) -> Result<()> {
    check_field(field)?;
    let tag: String = collection.bytes().map(|b| format!("{b:02x}")).collect();
    let sql = format!(
        "CREATE INDEX IF NOT EXISTS docs_by_{tag}_{field} ON synced_docs (collection, {}, id) WHERE collection = '{}'",
        path_expr(field),
        collection.replace('\'', "''"),
    );
    conn.execute_batch(&sql)?;
    Ok(())
}

/// One document with local changes, merged.
struct Overlaid {
    doc: Doc,
    exists: bool,
}

/// Merges every document of `collection` (or just `only`) that has ops.
fn overlaid(conn: &Connection, collection: &str, only: Option<&str>) -> Result<Vec<Overlaid>> {
    let sql = format!(
        "SELECT p.doc_id, p.op, p.patch, c.id, c.state, s.version, s.doc
           FROM pending_ops p JOIN commands c ON c.seq = p.command_seq
           LEFT JOIN synced_docs s ON s.collection = p.collection AND s.id = p.doc_id
          WHERE p.collection = ?1 {}
          ORDER BY p.doc_id, p.command_seq, p.op_index",
        if only.is_some() { "AND p.doc_id = ?2" } else { "" }
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut args: Vec<SqlValue> = vec![collection.to_string().into()];
    if let Some(id) = only {
        args.push(id.to_string().into());
    }
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    let mut out: Vec<Overlaid> = Vec::new();
    while let Some(r) = rows.next()? {
        let doc_id: String = r.get(0)?;
        let op: String = r.get(1)?;
        let patch: Option<String> = r.get(2)?;
        let cmd: String = r.get(3)?;
        let state = CommandState::parse(&r.get::<_, String>(4)?).unwrap_or(CommandState::Pending);
        if out.last().is_none_or(|o| o.doc.id != doc_id) {
            let version: Option<i64> = r.get(5)?;
            let synced: Option<String> = r.get(6)?;
            let value = synced.as_deref().and_then(|t| serde_json::from_str(t).ok());
            out.push(Overlaid {
                exists: value.is_some(),
                doc: Doc {
                    collection: collection.to_string(),
                    id: doc_id.clone(),
                    value: value.unwrap_or(Value::Null),
                    version,
                    status: DocStatus::Synced,
                    commands: Vec::new(),
                },
            });
        }
        let Some(o) = out.last_mut() else { continue };
        let id = uuid::Uuid::parse_str(&cmd).map(CommandId).ok();
        match state {
            CommandState::Failed => {
                if o.doc.status != DocStatus::Conflict {
                    o.doc.status = DocStatus::Failed;
                }
            }
            CommandState::Discarded => continue,
            _ => {
                let value = patch.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
                match (op.as_str(), value) {
                    ("insert", Some(v)) => {
                        o.doc.value = v;
                        o.exists = true;
                    }
                    ("patch", Some(v)) => {
                        merge_patch(&mut o.doc.value, &v);
                        o.exists = true;
                    }
                    ("delete", _) => {
                        o.doc.value = Value::Null;
                        o.exists = false;
                    }
                    _ => {}
                }
                match state {
                    CommandState::Conflict => o.doc.status = DocStatus::Conflict,
                    CommandState::Succeeded => {}
                    _ if o.doc.status == DocStatus::Synced => o.doc.status = DocStatus::Pending,
                    _ => {}
                }
            }
        }
        if state != CommandState::Succeeded {
            if let Some(id) = id {
                if !o.doc.commands.contains(&id) {
                    o.doc.commands.push(id);
                }
            }
        }
    }
    Ok(out)
}

/// The merged document, or `None` if it does not exist (or a pending change deletes it).
pub(crate) fn get(conn: &Connection, collection: &str, id: &str) -> Result<Option<Doc>> {
    if let Some(o) = overlaid(conn, collection, Some(id))?.pop() {
        return Ok(o.exists.then_some(o.doc));
    }
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT version, doc FROM synced_docs WHERE collection = ?1 AND id = ?2")?
        .query_row(params![collection, id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.map(|(version, doc)| synced_doc(collection, id.to_string(), version, &doc)))
}

fn synced_doc(collection: &str, id: String, version: i64, text: &str) -> Doc {
    Doc {
        collection: collection.to_string(),
        id,
        value: serde_json::from_str(text).unwrap_or(Value::Null),
        version: Some(version),
        status: DocStatus::Synced,
        commands: Vec::new(),
    }
}

fn sql_param(v: &Value) -> Result<Option<SqlValue>> {
    Ok(match v {
        Value::Null => None,
        Value::Bool(b) => Some(SqlValue::Integer(*b as i64)),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        }),
        Value::String(s) => Some(SqlValue::Text(s.clone())),
        _ => {
            return Err(Error::InvalidRequest {
                reason: "filter values must be strings, numbers, booleans or null".into(),
            })
        }
    })
}

/// The synced side of a query: `(where clause, params)` over `synced_docs s`, excluding
/// documents that have local changes.
fn synced_where(collection: &str, q: &Query) -> Result<(String, Vec<SqlValue>)> {
    let mut clause = String::from(
        "s.collection = ?1 AND NOT EXISTS (SELECT 1 FROM pending_ops p WHERE p.collection = s.collection AND p.doc_id = s.id)",
    );
    let mut args: Vec<SqlValue> = vec![collection.to_string().into()];
    for (field, value) in &q.filters {
        check_field(field)?;
        match sql_param(value)? {
            None => clause.push_str(&format!(" AND {} IS NULL", path_expr(field))),
            Some(p) => {
                args.push(p);
                clause.push_str(&format!(" AND {} = ?{}", path_expr(field), args.len()));
            }
        }
    }
    Ok((clause, args))
}

fn matches(doc: &Value, filters: &[(String, Value)]) -> bool {
    filters.iter().all(|(field, want)| {
        let have = doc.get(field).unwrap_or(&Value::Null);
        match (have, want) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Value::Bool(a), Value::Number(b)) | (Value::Number(b), Value::Bool(a)) => {
                Some(*a as i64 as f64) == b.as_f64()
            }
            (a, b) => a == b,
        }
    })
}

/// Orders values as SQLite orders `json_extract` results: NULL, then numbers (booleans
/// as 0/1), then text (objects and arrays compare as their JSON text).
fn sql_order(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) | Value::Number(_) => 1,
            _ => 2,
        }
    }
    fn num(v: &Value) -> f64 {
        match v {
            Value::Bool(b) => *b as i64 as f64,
            Value::Number(n) => n.as_f64().unwrap_or(0.0),
            _ => 0.0,
        }
    }
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    rank(a).cmp(&rank(b)).then_with(|| match rank(a) {
        1 => num(a).partial_cmp(&num(b)).unwrap_or(Ordering::Equal),
        2 => text(a).cmp(&text(b)),
        _ => Ordering::Equal,
    })
}

/// Documents matching `q`, merged, sorted and paged.
pub(crate) fn list(conn: &Connection, collection: &str, q: &Query) -> Result<Vec<Doc>> {
    if let Some(f) = &q.order_by {
        check_field(f)?;
    }
    let (clause, args) = synced_where(collection, q)?;
    let dir = if q.descending { "DESC" } else { "ASC" };
    let order = match &q.order_by {
        Some(f) => format!("{} {dir}, s.id {dir}", path_expr(f)),
        None => format!("s.id {dir}"),
    };
    let cut = q.limit.map(|l| format!(" LIMIT {}", l.saturating_add(q.offset))).unwrap_or_default();
    let sql = format!("SELECT s.id, s.version, s.doc FROM synced_docs s WHERE {clause} ORDER BY {order}{cut}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut docs: Vec<Doc> = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok(synced_doc(collection, r.get(0)?, r.get(1)?, &r.get::<_, String>(2)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    docs.extend(
        overlaid(conn, collection, None)?
            .into_iter()
            .filter(|o| o.exists && matches(&o.doc.value, &q.filters))
            .map(|o| o.doc),
    );
    let key = |d: &Doc| q.order_by.as_ref().map(|f| d.value.get(f).cloned().unwrap_or(Value::Null));
    docs.sort_by(|a, b| {
        let ord = match (key(a), key(b)) {
            (Some(x), Some(y)) => sql_order(&x, &y),
            _ => Ordering::Equal,
        }
        .then_with(|| a.id.cmp(&b.id));
        if q.descending {
            ord.reverse()
        } else {
            ord
        }
    });
    let docs = docs.into_iter().skip(q.offset);
    Ok(match q.limit {
        Some(l) => docs.take(l).collect(),
        None => docs.collect(),
    })
}

/// How many documents match `q`'s filters (ignoring its paging).
pub(crate) fn count(conn: &Connection, collection: &str, q: &Query) -> Result<u64> {
    let (clause, args) = synced_where(collection, q)?;
    let synced: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM synced_docs s WHERE {clause}"))?
        .query_row(rusqlite::params_from_iter(args), |r| r.get(0))?;
    let local =
        overlaid(conn, collection, None)?.iter().filter(|o| o.exists && matches(&o.doc.value, &q.filters)).count();
    Ok(synced.max(0) as u64 + local as u64)
}

/// Per-collection sync bookkeeping, for `last_synced_at`.
pub(crate) fn last_synced(conn: &Connection) -> Result<BTreeMap<String, i64>> {
    let mut stmt = conn.prepare_cached("SELECT collection, last_synced_at FROM collection_sync")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()?)
}
