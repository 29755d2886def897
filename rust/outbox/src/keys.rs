//! Scheduling keys: commands sharing a key run strictly in enqueue order.
//!
//! Derivation, first rule that yields a key wins:
//! 1. explicit keys in the request;
//! 2. the mutator's key pointers (JSON pointers into the args);
//! 3. `args.id` or `args.ids`;
//! 4. the records its optimistic ops touch, as `collection:id`;
//! 5. the serial unkeyed lane (stored as the reserved empty key).

use serde_json::Value;

use crate::command::{MutatorSpec, OptimisticOp};
use crate::error::{Error, Result};

/// Longest accepted key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// The stored key of the unkeyed lane. User keys can never be empty, so it cannot clash.
pub(crate) const UNKEYED_LANE: &str = "";

/// Checks one user-supplied key.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidKey { reason: "keys must not be empty".into() });
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidKey {
            reason: format!("key is {} bytes, over the limit of {MAX_KEY_BYTES}", key.len()),
        });
    }
    Ok(())
}

/// Checks a mutator's key pointer (RFC 6901: empty or starting with `/`).
pub fn validate_pointer(pointer: &str) -> Result<()> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(Error::InvalidKey { reason: format!("key pointer `{pointer}` must start with `/`") })
    }
}

/// Derives the keys of a command. Returns the sorted, deduplicated keys; the unkeyed lane
/// is returned as `[UNKEYED_LANE]`.
pub(crate) fn derive(
    explicit: &[String],
    spec: &MutatorSpec,
    args: &Value,
    ops: &[OptimisticOp],
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    if !explicit.is_empty() {
        for k in explicit {
            validate_key(k)?;
            keys.push(k.clone());
        }
    }
    if keys.is_empty() {
        for pointer in &spec.key_pointers {
            if let Some(v) = args.pointer(pointer) {
                collect(v, pointer, &mut keys)?;
            }
        }
    }
    if keys.is_empty() {
        if let Some(v) = args.get("id") {
            collect(v, "/id", &mut keys)?;
        } else if let Some(v) = args.get("ids") {
            collect(v, "/ids", &mut keys)?;
        }
    }
    if keys.is_empty() {
        for op in ops {
            let k = format!("{}:{}", op.collection, op.id);
            validate_key(&k)?;
            keys.push(k);
        }
    }
    if keys.is_empty() {
        keys.push(UNKEYED_LANE.to_string());
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

fn collect(value: &Value, pointer: &str, out: &mut Vec<String>) -> Result<()> {
    match value {
        Value::Null => Ok(()),
        Value::String(s) => {
            validate_key(s)?;
            out.push(s.clone());
            Ok(())
        }
        Value::Number(n) => {
            out.push(n.to_string());
            Ok(())
        }
        Value::Bool(b) => {
            out.push(b.to_string());
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| match v {
            Value::Array(_) => Err(Error::InvalidKey { reason: format!("`{pointer}` holds nested arrays") }),
            v => collect(v, pointer, out),
        }),
        Value::Object(_) => Err(Error::InvalidKey { reason: format!("`{pointer}` points at an object, not a key") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::OpKind;
    use serde_json::json;

    fn op(c: &str, id: &str) -> OptimisticOp {
        OptimisticOp { collection: c.into(), id: id.into(), kind: OpKind::Delete }
    }

    fn spec(pointers: &[&str]) -> MutatorSpec {
        MutatorSpec { key_pointers: pointers.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn explicit_keys_win_over_everything() {
        let args = json!({"id": "a", "order": "o1"});
        let keys = derive(&["x".into(), "w".into()], &spec(&["/order"]), &args, &[op("c", "1")]).unwrap();
        assert_eq!(keys, vec!["w", "x"]);
    }

    #[test]
    fn pointers_win_over_id_and_ops() {
        let args = json!({"id": "a", "order": {"id": "o1"}, "lines": ["p1", "p2"]});
        let keys = derive(&[], &spec(&["/order/id", "/lines"]), &args, &[op("c", "1")]).unwrap();
        assert_eq!(keys, vec!["o1", "p1", "p2"]);
    }

    #[test]
    fn id_then_ids_then_ops_then_unkeyed() {
        assert_eq!(derive(&[], &spec(&["/missing"]), &json!({"id": 7}), &[op("c", "1")]).unwrap(), vec!["7"]);
        assert_eq!(derive(&[], &spec(&[]), &json!({"ids": ["b", "a"]}), &[]).unwrap(), vec!["a", "b"]);
        assert_eq!(
            derive(&[], &spec(&[]), &json!({"x": 1}), &[op("orders", "9"), op("products", "p")]).unwrap(),
            vec!["orders:9", "products:p"]
        );
        assert_eq!(derive(&[], &spec(&[]), &json!({"x": 1}), &[]).unwrap(), vec![UNKEYED_LANE]);
    }

    #[test]
    fn empty_or_oversized_keys_are_rejected() {
        assert!(matches!(derive(&["".into()], &spec(&[]), &json!({}), &[]), Err(Error::InvalidKey { .. })));
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(matches!(derive(&[long], &spec(&[]), &json!({}), &[]), Err(Error::InvalidKey { .. })));
        assert!(matches!(derive(&[], &spec(&[]), &json!({"id": ""}), &[]), Err(Error::InvalidKey { .. })));
        assert!(matches!(derive(&[], &spec(&[]), &json!({"id": {"a": 1}}), &[]), Err(Error::InvalidKey { .. })));
        assert!(validate_pointer("order").is_err());
        assert!(validate_pointer("/order").is_ok());
    }
}
