//! The verification at the end of a run: every sale a register recorded is applied on
//! the server exactly once, and stock on the server and on every register agrees.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;

use crate::server_view::{KeyCounts, Snapshot};

/// One sale as a register's database recorded it.
#[derive(Debug, Clone)]
pub struct RecordedSale {
    /// The order id.
    pub order_id: String,
    /// The command's idempotency key.
    pub idempotency_key: String,
    /// Whether the register saw the server acknowledge it.
    pub acknowledged: bool,
}

/// What one register brought to the verification.
#[derive(Debug, Clone, Default)]
pub struct RegisterOutcome {
    /// Register number, 1-based.
    pub index: usize,
    /// Sales in its database.
    pub sales: Vec<RecordedSale>,
    /// Stock it shows after the final pull.
    pub stock: BTreeMap<String, i64>,
    /// Times it was killed and restarted.
    pub restarts: u32,
}

/// The server's side.
#[derive(Debug, Clone, Default)]
pub struct ServerOutcome {
    /// Stock after restocking, before any sale.
    pub baseline: BTreeMap<String, i64>,
    /// Documents at the end.
    pub snapshot: Snapshot,
    /// Applications and duplicates per idempotency key.
    pub keys: HashMap<String, KeyCounts>,
    /// Prefix of this run's order ids.
    pub run: String,
}

/// Per-register line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterRow {
    /// Register number.
    pub register: usize,
    /// Sales recorded.
    pub sales: usize,
    /// Applied exactly once.
    pub applied: usize,
    /// Recorded but not applied.
    pub lost: usize,
    /// Extra applications.
    pub duplicates: u64,
    /// Products whose stock differs from the server's.
    pub stock_mismatches: usize,
    /// Kills survived.
    pub restarts: u32,
}

/// The result, also printed as the `--json` summary.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Sales the registers recorded.
    pub sales: usize,
    /// Of those, applied on the server exactly once.
    pub applied: usize,
    /// Recorded but never applied (or recorded but without the order on the server).
    pub lost: usize,
    /// Applications beyond the first, summed over sales.
    pub duplicates: u64,
    /// Orders of this run on the server that no register recorded.
    pub unrecorded: usize,
    /// Products where server stock ≠ baseline − sold, plus (register, product) pairs
    /// where a register's stock differs from the server's.
    pub stock_mismatches: usize,
    /// Resends the server answered from its idempotency records (absorbed duplicates).
    pub deduplicated: u64,
    /// Sales the registers had not seen acknowledged at the end.
    pub unacknowledged: usize,
    /// Kills survived, all registers.
    pub restarts: u32,
    /// Per register.
    pub registers: Vec<RegisterRow>,
    /// Whether every promise held.
    pub ok: bool,
}

/// Compares what the registers recorded with what the server holds.
pub fn verify(registers: &[RegisterOutcome], server: &ServerOutcome) -> Verification {
    let server_stock = server.snapshot.stock();
    let mut recorded: HashSet<&str> = HashSet::new();
    let mut rows = Vec::new();
    let mut deduplicated = 0;
    let mut unacknowledged = 0;
    for reg in registers {
        let mut row = RegisterRow {
            register: reg.index,
            sales: reg.sales.len(),
            applied: 0,
            lost: 0,
            duplicates: 0,
            stock_mismatches: 0,
            restarts: reg.restarts,
        };
        for sale in &reg.sales {
            recorded.insert(sale.order_id.as_str());
            let counts = server.keys.get(&sale.idempotency_key).cloned().unwrap_or_default();
            deduplicated += counts.duplicates;
            let on_server = server.snapshot.orders.contains_key(&sale.order_id);
            if counts.applied == 0 || !on_server {
                row.lost += 1;
            } else if counts.applied == 1 {
                row.applied += 1;
            }
            row.duplicates += counts.applied.saturating_sub(1);
            if !sale.acknowledged {
                unacknowledged += 1;
            }
        }
        row.stock_mismatches = server_stock.iter().filter(|(id, stock)| reg.stock.get(*id) != Some(stock)).count()
            + reg.stock.keys().filter(|id| !server_stock.contains_key(*id)).count();
        rows.push(row);
    }
    let prefix = format!("{}-", server.run);
    let unrecorded =
        server.snapshot.orders.keys().filter(|id| id.starts_with(&prefix) && !recorded.contains(id.as_str())).count();
    let conservation = conservation_mismatches(server, &prefix);
    let sales = rows.iter().map(|r| r.sales).sum();
    let applied = rows.iter().map(|r| r.applied).sum();
    let lost = rows.iter().map(|r| r.lost).sum();
    let duplicates = rows.iter().map(|r| r.duplicates).sum();
    let stock_mismatches = conservation + rows.iter().map(|r| r.stock_mismatches).sum::<usize>();
    let ok = lost == 0 && duplicates == 0 && unrecorded == 0 && stock_mismatches == 0 && applied == sales;
    Verification {
        sales,
        applied,
        lost,
        duplicates,
        unrecorded,
        stock_mismatches,
        deduplicated,
        unacknowledged,
        restarts: registers.iter().map(|r| r.restarts).sum(),
        registers: rows,
        ok,
    }
}

/// Products whose server stock is not the baseline minus what this run's orders took.
fn conservation_mismatches(server: &ServerOutcome, prefix: &str) -> usize {
    let mut sold: BTreeMap<&str, i64> = BTreeMap::new();
    for (id, order) in &server.snapshot.orders {
        if !id.starts_with(prefix) || order.get("status").and_then(Value::as_str) == Some("voided") {
            continue;
        }
        for line in order.get("lines").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(pid), Some(qty)) =
                (line.get("product_id").and_then(Value::as_str), line.get("qty").and_then(Value::as_i64))
            {
                *sold.entry(pid).or_default() += qty;
            }
        }
    }
    let stock = server.snapshot.stock();
    server
        .baseline
        .iter()
        .filter(|(id, base)| stock.get(*id) != Some(&(**base - sold.get(id.as_str()).copied().unwrap_or(0))))
        .count()
}

impl Verification {
    /// The human-readable table.
    pub fn table(&self, products: usize) -> String {
        let mut out = String::new();
        let mark = |good: bool| if good { "ok" } else { "FAILED" };
        let _ = writeln!(out, "\nregister  sales  applied  lost  duplicates  stock≠server  restarts");
        for r in &self.registers {
            let _ = writeln!(
                out,
                "{:>8}  {:>5}  {:>7}  {:>4}  {:>10}  {:>12}  {:>8}",
                r.register, r.sales, r.applied, r.lost, r.duplicates, r.stock_mismatches, r.restarts
            );
        }
        let _ = writeln!(out, "\nverification");
        let rows: [(&str, String, bool); 6] = [
            ("sales recorded by the registers", self.sales.to_string(), true),
            ("applied on the server exactly once", self.applied.to_string(), self.applied == self.sales),
            ("lost (recorded, never applied)", self.lost.to_string(), self.lost == 0),
            ("applied more than once", self.duplicates.to_string(), self.duplicates == 0),
            ("applied but recorded by no register", self.unrecorded.to_string(), self.unrecorded == 0),
            (
                "stock mismatches (server vs sales, registers vs server)",
                format!("{} of {}", self.stock_mismatches, products * (self.registers.len() + 1)),
                self.stock_mismatches == 0,
            ),
        ];
        for (label, value, good) in rows {
            let _ = writeln!(out, "  {label:<56} {value:>10}  {}", mark(good));
        }
        let _ = writeln!(
            out,
            "  resends absorbed by idempotency records: {}; register restarts after kill -9: {}",
            self.deduplicated, self.restarts
        );
        let _ = writeln!(
            out,
            "\n{}",
            if self.ok {
                "PASS: every recorded sale applied exactly once; stock agrees everywhere"
            } else {
                "FAIL: see the rows marked FAILED"
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sale(id: &str) -> RecordedSale {
        RecordedSale { order_id: id.into(), idempotency_key: format!("k-{id}"), acknowledged: true }
    }

    fn world() -> (Vec<RegisterOutcome>, ServerOutcome) {
        let mut server = ServerOutcome { run: "run".into(), ..ServerOutcome::default() };
        server.baseline.insert("latte".into(), 10);
        server.snapshot.products.insert("latte".into(), json!({"stock": 7}));
        server.snapshot.orders.insert("run-r1-00001".into(), json!({"lines": [{"product_id": "latte", "qty": 3}]}));
        server.keys.insert("k-run-r1-00001".into(), KeyCounts { applied: 1, duplicates: 2 });
        let reg = RegisterOutcome {
            index: 1,
            sales: vec![sale("run-r1-00001")],
            stock: BTreeMap::from([("latte".to_string(), 7)]),
            restarts: 0,
        };
        (vec![reg], server)
    }

    #[test]
    fn a_consistent_world_passes() {
        let (regs, server) = world();
        let v = verify(&regs, &server);
        assert!(v.ok, "{v:?}");
        assert_eq!((v.sales, v.applied, v.lost, v.duplicates, v.deduplicated), (1, 1, 0, 0, 2));
    }

    #[test]
    fn a_sale_applied_twice_fails() {
        let (regs, mut server) = world();
        if let Some(k) = server.keys.get_mut("k-run-r1-00001") {
            k.applied = 2;
        }
        let v = verify(&regs, &server);
        assert!(!v.ok);
        assert_eq!(v.duplicates, 1);
    }

    #[test]
    fn a_sale_missing_on_the_server_is_lost() {
        let (regs, mut server) = world();
        server.snapshot.orders.clear();
        server.keys.clear();
        let v = verify(&regs, &server);
        assert_eq!(v.lost, 1);
        assert!(!v.ok);
    }

    #[test]
    fn stock_that_does_not_add_up_fails() {
        let (mut regs, mut server) = world();
        regs[0].stock.insert("latte".into(), 8);
        let v = verify(&regs, &server);
        assert_eq!(v.stock_mismatches, 1);
        server.snapshot.products.insert("latte".into(), json!({"stock": 8}));
        let v = verify(&regs, &server);
        assert_eq!(v.stock_mismatches, 1, "server no longer equals baseline - sold");
    }

    #[test]
    fn an_order_no_register_recorded_fails() {
        let (regs, mut server) = world();
        server.snapshot.orders.insert("run-r9-00001".into(), json!({"lines": []}));
        let v = verify(&regs, &server);
        assert_eq!(v.unrecorded, 1);
        assert!(!v.ok);
    }
}
