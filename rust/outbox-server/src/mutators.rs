//! The server's built-in mutators: generic documents and the point-of-sale set.
//!
//! Every mutator runs inside one storage transaction ([`crate::storage::DocTx`]); returning
//! an error rolls everything back. Mutators are async because the transaction is (the
//! PostgreSQL backend awaits each read and write). Codes are stable strings (docs/protocol.md).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use async_trait::async_trait;

use crate::storage::{Apply, ApplyError, DocTx, StoredDoc};

/// Names of the built-in mutators.
pub const BUILT_IN: &[&str] = &["put", "patch", "delete", "createOrder", "adjustStock", "voidOrder"];

/// The argument versions each built-in mutator implements. `createOrder` version 2 takes
/// `items: [{sku, quantity}]` where version 1 takes `lines: [{product_id, qty}]`.
pub const IMPLEMENTED: &[(&str, &[u32])] = &[
    ("put", &[1]),
    ("patch", &[1]),
    ("delete", &[1]),
    ("createOrder", &[1, 2]),
    ("adjustStock", &[1]),
    ("voidOrder", &[1]),
];

/// Which versions of each mutator this server accepts (`GET /v1/mutators`). A command of
/// another version is rejected with code `unsupported_version`, never dropped. A server
/// that retires a version (every device has upgraded its queue) lists only the newer ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutatorVersions(BTreeMap<String, Vec<u32>>);

impl Default for MutatorVersions {
    /// Every version the built-in mutators implement.
    fn default() -> Self {
        MutatorVersions(IMPLEMENTED.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect())
    }
}

impl MutatorVersions {
    /// Whether `version` of `name` is accepted.
    pub fn accepts(&self, name: &str, version: u32) -> bool {
        self.0.get(name).is_some_and(|v| v.contains(&version))
    }

    /// The accepted versions of `name`, if it is known.
    pub fn of(&self, name: &str) -> Option<&[u32]> {
        self.0.get(name).map(Vec::as_slice)
    }

    /// Every mutator with its accepted versions.
    pub fn all(&self) -> &BTreeMap<String, Vec<u32>> {
        &self.0
    }

    /// Accepts only `versions` of `name`; each must be implemented.
    pub fn with(mut self, name: &str, versions: &[u32]) -> Result<Self, String> {
        let implemented = IMPLEMENTED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("no mutator named {name:?}"))?;
        if versions.is_empty() {
            return Err(format!("{name}: at least one version must be accepted"));
        }
        if let Some(v) = versions.iter().find(|v| !implemented.contains(v)) {
            return Err(format!("{name} has no version {v} (implemented: {implemented:?})"));
        }
        let mut v = versions.to_vec();
        v.sort_unstable();
        v.dedup();
        self.0.insert(name.to_string(), v);
        Ok(self)
    }
}

impl std::str::FromStr for MutatorVersions {
    type Err = String;
    /// `createOrder=2;put=1` (versions separated by `,`): the listed mutators accept only
    /// those versions; the others keep every implemented version.
    fn from_str(spec: &str) -> Result<Self, String> {
        let mut out = MutatorVersions::default();
        for item in spec.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, list) = item.split_once('=').ok_or_else(|| format!("{item:?}: expected name=versions"))?;
            let versions = list
                .split(',')
                .map(|v| v.trim().parse::<u32>().map_err(|_| format!("{item:?}: versions are whole numbers")))
                .collect::<Result<Vec<_>, _>>()?;
            out = out.with(name.trim(), &versions)?;
        }
        Ok(out)
    }
}

/// Collection holding products (`{name, price, stock}`).
pub const PRODUCTS: &str = "products";
/// Collection holding orders.
pub const ORDERS: &str = "orders";

/// Whether `name` is a built-in mutator.
pub fn is_known(name: &str) -> bool {
    BUILT_IN.contains(&name)
}

/// Runs mutator `name` with `args`. `base_versions` is the command's
/// `{"collection:id": version}` map, used by the document mutators when the args carry no
/// `base_version` of their own.
pub async fn apply(
    name: &str,
    version: u32,
    args: &Value,
    base_versions: &Map<String, Value>,
    tx: &mut dyn DocTx,
) -> Result<Value, ApplyError> {
    if !is_known(name) {
        return Err(ApplyError::rejected("unknown_mutator", format!("no mutator named {name:?}")));
    }
    // Which versions are *accepted* is checked before the transaction (api.rs); this is
    // what each version means.
    let args = args.as_object().ok_or_else(|| invalid("args must be a JSON object"))?;
    match (name, version) {
        ("createOrder", 2) => return create_order(&order_v1_from_v2(args)?, tx).await,
        (_, 1) => {}
        _ => {
            return Err(ApplyError::rejected(
                "unsupported_version",
                format!("{name} has no version {version} on this server"),
            ))
        }
    }
    match name {
        "put" => put(args, base_versions, tx).await,
        "patch" => patch(args, base_versions, tx).await,
        "delete" => delete(args, base_versions, tx).await,
        "createOrder" => create_order(args, tx).await,
        "adjustStock" => adjust_stock(args, tx).await,
        "voidOrder" => void_order(args, tx).await,
        _ => Err(ApplyError::rejected("unknown_mutator", format!("no mutator named {name:?}"))),
    }
}

/// One call of a built-in mutator, owned so it can move into a storage task.
#[derive(Debug, Clone)]
pub struct MutatorCall {
    /// Mutator name.
    pub name: String,
    /// Version of the argument shape.
    pub version: u32,
    /// The command's arguments.
    pub args: Value,
    /// The command's `{"collection:id": version}` map.
    pub base_versions: Map<String, Value>,
}

#[async_trait]
impl Apply for MutatorCall {
    async fn apply(&self, tx: &mut dyn DocTx) -> Result<Value, ApplyError> {
        apply(&self.name, self.version, &self.args, &self.base_versions, tx).await
    }

    fn reads(&self) -> Vec<(String, String)> {
        let Some(args) = self.args.as_object() else { return Vec::new() };
        let text = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        let doc = |collection: Option<String>, id: Option<String>| collection.zip(id);
        match self.name.as_str() {
            "put" | "patch" | "delete" => doc(text(args, "collection"), text(args, "id")).into_iter().collect(),
            "adjustStock" => doc(Some(PRODUCTS.to_string()), text(args, "product_id")).into_iter().collect(),
            "voidOrder" => doc(Some(ORDERS.to_string()), text(args, "id")).into_iter().collect(),
            "createOrder" => {
                let (list, field) = if self.version == 2 { ("items", "sku") } else { ("lines", "product_id") };
                let lines = args.get(list).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                let products = lines
                    .iter()
                    .filter_map(Value::as_object)
                    .filter_map(|l| doc(Some(PRODUCTS.to_string()), text(l, field)));
                doc(Some(ORDERS.to_string()), text(args, "id")).into_iter().chain(products).collect()
            }
            _ => Vec::new(),
        }
    }
}

fn invalid(message: impl Into<String>) -> ApplyError {
    ApplyError::rejected("invalid_args", message)
}

fn str_arg<'a>(args: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApplyError> {
    match args.get(field).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(invalid(format!("`{field}` must be a non-empty string"))),
    }
}

fn int_arg(args: &Map<String, Value>, field: &str) -> Result<i64, ApplyError> {
    args.get(field).and_then(Value::as_i64).ok_or_else(|| invalid(format!("`{field}` must be an integer")))
}

/// The base version a document mutator checks: `args.base_version`, else the command's
/// `base_versions["collection:id"]`, else none (no check).
fn base_version(
    args: &Map<String, Value>,
    base_versions: &Map<String, Value>,
    collection: &str,
    id: &str,
) -> Result<Option<i64>, ApplyError> {
    let value = match args.get("base_version") {
        Some(Value::Null) | None => base_versions.get(&format!("{collection}:{id}")),
        Some(v) => Some(v),
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| invalid("`base_version` must be an integer")),
    }
}

/// Builds the snapshot sent with a conflict.
pub fn snapshot(collection: &str, id: &str, current: Option<&StoredDoc>) -> Value {
    match current {
        Some(d) => json!({"collection": collection, "id": id, "version": d.version, "doc": d.doc}),
        None => json!({"collection": collection, "id": id, "version": 0, "doc": null}),
    }
}

fn check_base(base: Option<i64>, collection: &str, id: &str, current: Option<&StoredDoc>) -> Result<(), ApplyError> {
    let Some(base) = base else { return Ok(()) };
    let actual = current.map(|d| d.version).unwrap_or(0);
    if base == actual {
        return Ok(());
    }
    Err(ApplyError::Conflict {
        code: "version_conflict".to_string(),
        message: format!("{collection}:{id} is at version {actual}, the command was based on {base}"),
        snapshot: snapshot(collection, id, current),
    })
}

async fn put(args: &Map<String, Value>, bv: &Map<String, Value>, tx: &mut dyn DocTx) -> Result<Value, ApplyError> {
    let collection = str_arg(args, "collection")?;
    let id = str_arg(args, "id")?;
    let doc = args.get("doc").filter(|d| d.is_object()).ok_or_else(|| invalid("`doc` must be a JSON object"))?;
    let current = tx.get(collection, id).await?;
    check_base(base_version(args, bv, collection, id)?, collection, id, current.as_ref())?;
    let change = tx.put(collection, id, doc).await?;
    Ok(json!({"version": change.version}))
}

async fn patch(args: &Map<String, Value>, bv: &Map<String, Value>, tx: &mut dyn DocTx) -> Result<Value, ApplyError> {
    let collection = str_arg(args, "collection")?;
    let id = str_arg(args, "id")?;
    let patch = args.get("patch").filter(|p| p.is_object()).ok_or_else(|| invalid("`patch` must be a JSON object"))?;
    let current = tx.get(collection, id).await?;
    check_base(base_version(args, bv, collection, id)?, collection, id, current.as_ref())?;
    let Some(mut doc) = current.and_then(|d| d.doc) else {
        return Err(ApplyError::rejected("not_found", format!("{collection}:{id} does not exist")));
    };
    merge_patch(&mut doc, patch);
    let change = tx.put(collection, id, &doc).await?;
    Ok(json!({"version": change.version}))
}

async fn delete(args: &Map<String, Value>, bv: &Map<String, Value>, tx: &mut dyn DocTx) -> Result<Value, ApplyError> {
    let collection = str_arg(args, "collection")?;
    let id = str_arg(args, "id")?;
    let current = tx.get(collection, id).await?;
    check_base(base_version(args, bv, collection, id)?, collection, id, current.as_ref())?;
    match tx.delete(collection, id).await? {
        Some(change) => Ok(json!({"deleted": true, "version": change.version})),
        None => Ok(json!({"deleted": false})),
    }
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (k, v) in patch {
            if v.is_null() {
                map.remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

async fn product(tx: &mut dyn DocTx, product_id: &str) -> Result<Map<String, Value>, ApplyError> {
    match tx.get(PRODUCTS, product_id).await?.and_then(|d| d.doc) {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(ApplyError::rejected("unknown_product", format!("no product {product_id:?}"))),
    }
}

fn stock_of(product: &Map<String, Value>) -> i64 {
    product.get("stock").and_then(Value::as_i64).unwrap_or(0)
}

/// `createOrder` version 2 args (`items: [{sku, quantity}]`) in the version 1 shape
/// (`lines: [{product_id, qty}]`); every other field is kept.
fn order_v1_from_v2(args: &Map<String, Value>) -> Result<Map<String, Value>, ApplyError> {
    let items = args.get("items").and_then(Value::as_array).ok_or_else(|| invalid("`items` must be an array"))?;
    let mut lines = Vec::with_capacity(items.len());
    for item in items {
        let item = item.as_object().ok_or_else(|| invalid("each item must be an object"))?;
        lines.push(json!({"product_id": str_arg(item, "sku")?, "qty": int_arg(item, "quantity")?}));
    }
    let mut v1 = args.clone();
    v1.remove("items");
    v1.insert("lines".into(), Value::Array(lines));
    Ok(v1)
}

async fn create_order(args: &Map<String, Value>, tx: &mut dyn DocTx) -> Result<Value, ApplyError> {
    let id = str_arg(args, "id")?;
    let lines = args.get("lines").and_then(Value::as_array).ok_or_else(|| invalid("`lines` must be an array"))?;
    if lines.is_empty() {
        return Err(invalid("`lines` must not be empty"));
    }
    if tx.get(ORDERS, id).await?.and_then(|d| d.doc).is_some() {
        return Err(ApplyError::rejected("order_exists", format!("order {id:?} already exists")));
    }
    // Sum quantities per product first, so two lines of one product are checked together.
    let mut wanted: Vec<(String, i64)> = Vec::new();
    for line in lines {
        let line = line.as_object().ok_or_else(|| invalid("each line must be an object"))?;
        let pid = str_arg(line, "product_id")?.to_string();
        let qty = int_arg(line, "qty")?;
        if qty <= 0 {
            return Err(invalid("`qty` must be positive"));
        }
        match wanted.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, q)) => *q = q.saturating_add(qty),
            None => wanted.push((pid, qty)),
        }
    }
    let mut total: i64 = 0;
    let mut updated = Vec::new();
    for (pid, qty) in &wanted {
        let mut p = product(tx, pid).await?;
        let stock = stock_of(&p);
        if stock < *qty {
            return Err(ApplyError::rejected(
                "insufficient_stock",
                format!("product {pid:?} has {stock} in stock, the order needs {qty}"),
            ));
        }
        let price = p.get("price").and_then(Value::as_i64).unwrap_or(0);
        total = total.saturating_add(price.saturating_mul(*qty));
        p.insert("stock".into(), json!(stock - qty));
        updated.push((pid.clone(), p));
    }
    for (pid, p) in updated {
        tx.put(PRODUCTS, &pid, &Value::Object(p)).await?;
    }
    let mut order = args.clone();
    order.insert("status".into(), json!("open"));
    order.insert("total".into(), json!(total));
    let change = tx.put(ORDERS, id, &Value::Object(order)).await?;
    Ok(json!({"order_id": id, "total": total, "version": change.version}))
}

async fn adjust_stock(args: &Map<String, Value>, tx: &mut dyn DocTx) -> Result<Value, ApplyError> {
    let pid = str_arg(args, "product_id")?;
    let delta = int_arg(args, "delta")?;
    let mut p = product(tx, pid).await?;
    let stock = stock_of(&p).saturating_add(delta);
    if stock < 0 {
        return Err(ApplyError::rejected(
            "insufficient_stock",
            format!("product {pid:?} would go to {stock} in stock"),
        ));
    }
    p.insert("stock".into(), json!(stock));
    tx.put(PRODUCTS, pid, &Value::Object(p)).await?;
    Ok(json!({"product_id": pid, "stock": stock}))
}

async fn void_order(args: &Map<String, Value>, tx: &mut dyn DocTx) -> Result<Value, ApplyError> {
    let id = str_arg(args, "id")?;
    let Some(Value::Object(mut order)) = tx.get(ORDERS, id).await?.and_then(|d| d.doc) else {
        return Err(ApplyError::rejected("not_found", format!("no order {id:?}")));
    };
    if order.get("status").and_then(Value::as_str) == Some("voided") {
        return Err(ApplyError::rejected("already_voided", format!("order {id:?} is already voided")));
    }
    let lines = order.get("lines").and_then(Value::as_array).cloned().unwrap_or_default();
    for line in lines {
        let (Some(pid), Some(qty)) =
            (line.get("product_id").and_then(Value::as_str), line.get("qty").and_then(Value::as_i64))
        else {
            continue;
        };
        if let Ok(mut p) = product(tx, pid).await {
            let stock = stock_of(&p).saturating_add(qty);
            p.insert("stock".into(), json!(stock));
            tx.put(PRODUCTS, pid, &Value::Object(p)).await?;
        }
    }
    order.insert("status".into(), json!("voided"));
    let change = tx.put(ORDERS, id, &Value::Object(order)).await?;
    Ok(json!({"order_id": id, "status": "voided", "version": change.version}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"a": [1]});
        merge_patch(&mut doc, &json!({"a": {"b": 1}, "n": null}));
        assert_eq!(doc, json!({"a": {"b": 1}}));
    }
}
