//! Fault injection for `POST /v1/commands`.
//!
//! A spec is a comma-separated list of `name=value` rules, e.g.
//! `500=0.2,429=0.1:2s,503=0.05:1s:date,reset=0.05,drop_after_commit=0.05,latency=0-300ms`.
//!
//! - `CODE=P[:DELAY][:date][#N]`: answer HTTP `CODE` (400–599) with probability `P`
//!   before applying anything. `DELAY` (`2s`, `1500ms`) adds `Retry-After` in whole seconds
//!   (rounded up), or as an HTTP date when `:date` follows.
//! - `reset=P[#N]`: close the connection without an answer before applying anything.
//! - `drop_after_commit=P[#N]`: apply and commit the batch, then close the connection
//!   without an answer (the case idempotency exists for).
//! - `latency=A-Bms` (or `Nms`, `A-Bs`): sleep a uniform random time first.
//! - `#N` caps how many times a rule fires (`500=1#2`: the next two requests fail).
//!
//! One uniform draw per request picks at most one rule, walking the rules in spec order
//! with cumulative probabilities. Randomness comes from a seedable `fastrand::Rng`.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

/// What a rule does when it fires.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer with this HTTP status.
    Status {
        /// HTTP status code (400–599).
        code: u16,
        /// `Retry-After` to send, if any.
        retry_after: Option<Duration>,
        /// Send `Retry-After` as an HTTP date instead of delta-seconds.
        as_date: bool,
    },
    /// Close the connection before applying anything.
    Reset,
    /// Apply and commit, then close the connection without an answer.
    DropAfterCommit,
}

impl FaultKind {
    /// A short label for stats (`"500"`, `"reset"`, `"drop_after_commit"`).
    pub fn label(&self) -> String {
        match self {
            FaultKind::Status { code, .. } => code.to_string(),
            FaultKind::Reset => "reset".into(),
            FaultKind::DropAfterCommit => "drop_after_commit".into(),
        }
    }
}

/// One rule of a spec.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// What happens.
    pub kind: FaultKind,
    /// Probability per request, 0.0–1.0.
    pub probability: f64,
    /// How many more times the rule may fire; `None` is unlimited.
    pub remaining: Option<u64>,
}

/// A parsed fault spec.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultSpec {
    /// Rules in spec order.
    pub rules: Vec<FaultRule>,
    /// Uniform latency range added before handling, if any.
    pub latency: Option<(Duration, Duration)>,
}

/// A spec that could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid fault spec `{item}`: {reason}")]
pub struct FaultSpecError {
    /// The offending item.
    pub item: String,
    /// What is wrong with it.
    pub reason: String,
}

fn err(item: &str, reason: &str) -> FaultSpecError {
    FaultSpecError { item: item.to_string(), reason: reason.to_string() }
}

/// Parses `2s`, `1500ms` or a bare number of seconds.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.trim().parse::<u64>().ok().map(Duration::from_millis);
    }
    let secs = text.strip_suffix('s').unwrap_or(text).trim();
    secs.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

fn parse_latency(item: &str, value: &str) -> Result<(Duration, Duration), FaultSpecError> {
    let (unit_ms, body) = if let Some(b) = value.strip_suffix("ms") {
        (true, b)
    } else if let Some(b) = value.strip_suffix('s') {
        (false, b)
    } else {
        (true, value)
    };
    let to_dur = |s: &str| -> Result<Duration, FaultSpecError> {
        let n: u64 = s.trim().parse().map_err(|_| err(item, "latency bounds must be whole numbers"))?;
        Ok(if unit_ms { Duration::from_millis(n) } else { Duration::from_secs(n) })
    };
    let (lo, hi) = match body.split_once('-') {
        Some((a, b)) => (to_dur(a)?, to_dur(b)?),
        None => {
            let d = to_dur(body)?;
            (d, d)
        }
    };
    if lo > hi {
        return Err(err(item, "latency range is reversed"));
    }
    Ok((lo, hi))
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = FaultSpec::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item.split_once('=').ok_or_else(|| err(item, "expected name=value"))?;
            let (name, value) = (name.trim(), value.trim());
            if name == "latency" {
                spec.latency = Some(parse_latency(item, value)?);
                continue;
            }
            let (value, remaining) = match value.split_once('#') {
                Some((v, n)) => (v, Some(n.trim().parse::<u64>().map_err(|_| err(item, "`#N` must be a count"))?)),
                None => (value, None),
            };
            let mut parts = value.split(':');
            let probability: f64 = parts
                .next()
                .and_then(|p| p.trim().parse().ok())
                .filter(|p: &f64| (0.0..=1.0).contains(p))
                .ok_or_else(|| err(item, "probability must be a number from 0 to 1"))?;
            let kind = match name {
                "reset" => FaultKind::Reset,
                "drop_after_commit" => FaultKind::DropAfterCommit,
                code => {
                    let code: u16 = code.parse().map_err(|_| err(item, "unknown fault name"))?;
                    if !(400..=599).contains(&code) {
                        return Err(err(item, "status must be 400-599"));
                    }
                    let mut retry_after = None;
                    let mut as_date = false;
                    for part in parts.by_ref() {
                        match part.trim() {
                            "date" => as_date = true,
                            other => {
                                retry_after =
                                    Some(parse_duration(other).ok_or_else(|| err(item, "bad Retry-After delay"))?)
                            }
                        }
                    }
                    FaultKind::Status { code, retry_after, as_date }
                }
            };
            if parts.next().is_some() {
                return Err(err(item, "unexpected `:` option"));
            }
            spec.rules.push(FaultRule { kind, probability, remaining });
        }
        Ok(spec)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items = Vec::new();
        for r in &self.rules {
            let mut s = match &r.kind {
                FaultKind::Status { code, retry_after, as_date } => {
                    let mut s = format!("{code}={}", r.probability);
                    if let Some(d) = retry_after {
                        s.push_str(&format!(":{}ms", d.as_millis()));
                    }
                    if *as_date {
                        s.push_str(":date");
                    }
                    s
                }
                other => format!("{}={}", other.label(), r.probability),
            };
            if let Some(n) = r.remaining {
                s.push_str(&format!("#{n}"));
            }
            items.push(s);
        }
        if let Some((lo, hi)) = self.latency {
            items.push(format!("latency={}-{}ms", lo.as_millis(), hi.as_millis()));
        }
        write!(f, "{}", items.join(","))
    }
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// Sleep this long first.
    pub latency: Option<Duration>,
    /// The fault to inject, if any.
    pub fault: Option<FaultKind>,
}

/// The live fault state of a server: the current spec and its RNG.
pub struct Faults {
    inner: Mutex<(FaultSpec, fastrand::Rng)>,
}

impl Faults {
    /// Starts with `spec`; `seed` makes the draws reproducible.
    pub fn new(spec: FaultSpec, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(s) => fastrand::Rng::with_seed(s),
            None => fastrand::Rng::new(),
        };
        Faults { inner: Mutex::new((spec, rng)) }
    }

    /// Replaces the spec (and reseeds when `seed` is given).
    pub fn set(&self, spec: FaultSpec, seed: Option<u64>) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0 = spec;
        if let Some(s) = seed {
            g.1 = fastrand::Rng::with_seed(s);
        }
    }

    /// The current spec.
    pub fn spec(&self) -> FaultSpec {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    /// Draws the decision for one request.
    pub fn decide(&self) -> Decision {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (spec, rng) = &mut *g;
        let latency = spec.latency.map(|(lo, hi)| {
            let (lo, hi) = (lo.as_millis() as u64, hi.as_millis() as u64);
            Duration::from_millis(rng.u64(lo..=hi))
        });
        let draw = rng.f64();
        let mut acc = 0.0;
        let mut fault = None;
        for rule in spec.rules.iter_mut() {
            if rule.remaining == Some(0) {
                continue;
            }
            acc += rule.probability;
            if draw < acc {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                fault = Some(rule.kind.clone());
                break;
            }
        }
        Decision { latency, fault }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let spec: FaultSpec =
            "500=0.2,429=0.1:2s,503=0.05:1s:date,reset=0.05,drop_after_commit=0.05#3,latency=0-300ms".parse().unwrap();
        assert_eq!(spec.rules.len(), 5);
        assert_eq!(
            spec.rules[1].kind,
            FaultKind::Status { code: 429, retry_after: Some(Duration::from_secs(2)), as_date: false }
        );
        assert_eq!(
            spec.rules[2].kind,
            FaultKind::Status { code: 503, retry_after: Some(Duration::from_secs(1)), as_date: true }
        );
        assert_eq!(spec.rules[4].remaining, Some(3));
        assert_eq!(spec.latency, Some((Duration::ZERO, Duration::from_millis(300))));
        let again: FaultSpec = spec.to_string().parse().unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in ["500", "500=2", "200=0.1", "boom=0.1", "429=0.1:soon", "latency=5-1ms", "reset=0.1#x"] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn counted_rule_fires_exactly_n_times() {
        let faults = Faults::new("500=1#2".parse().unwrap(), Some(7));
        let fired = (0..5).filter(|_| faults.decide().fault.is_some()).count();
        assert_eq!(fired, 2);
    }

    #[test]
    fn same_seed_same_draws() {
        let a = Faults::new("500=0.5,reset=0.2".parse().unwrap(), Some(42));
        let b = Faults::new("500=0.5,reset=0.2".parse().unwrap(), Some(42));
        for _ in 0..50 {
            assert_eq!(a.decide(), b.decide());
        }
    }
}
