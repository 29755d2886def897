//! Change-feed cursors and server epochs (docs/protocol.md §4).
//!
//! Every server database has an **epoch**: a random id (UUID v7) written into the
//! database when it is created and kept for its whole life, across restarts. A cursor is
//! `<epoch>.<seq>`: the database it came from and the change-log position the client has
//! read up to. A feed position only means something in the database that issued it, so
//! `GET /v1/changes` answers [`CursorReset`] instead of a page when
//!
//! - the cursor names another epoch: the database was wiped and recreated, or replaced by
//!   another one; or
//! - the cursor is past the workspace's head: the same database went back in time (a
//!   restored backup keeps its epoch, but its head is behind what clients already read).
//!
//! A plain decimal cursor (`"57"`, what servers before epochs issued) is read as a
//! position in the current epoch, so clients that predate epochs keep working after the
//! server is upgraded; the page they get back carries an epoch cursor. It still gets
//! [`CursorReset`] when it is past the head.

use serde::{Deserialize, Serialize};

use crate::protocol::WireError;

/// The error code of a reset answer.
pub const CURSOR_RESET: &str = "cursor_reset";

/// A cursor as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The epoch it names; `None` for a plain (pre-epoch) position.
    pub epoch: Option<String>,
    /// The change-log position read up to (0: nothing read yet).
    pub seq: i64,
}

/// The cursor text is not one this server could have issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cursor was not issued by this server")]
pub struct InvalidCursor;

impl Cursor {
    /// Reads `text`: empty (from the start), `<seq>` or `<epoch>.<seq>`.
    pub fn parse(text: &str) -> Result<Cursor, InvalidCursor> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Cursor { epoch: None, seq: 0 });
        }
        let (epoch, seq) = match text.rsplit_once('.') {
            Some((epoch, seq)) => {
                let plain = !epoch.is_empty() && epoch.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
                if !plain {
                    return Err(InvalidCursor);
                }
                (Some(epoch.to_string()), seq)
            }
            None => (None, text),
        };
        // Only the canonical decimal form this server writes: digits, no sign, no leading zero.
        let canonical = seq.bytes().all(|b| b.is_ascii_digit()) && (seq == "0" || !seq.starts_with('0'));
        match seq.parse::<i64>() {
            Ok(seq) if canonical => Ok(Cursor { epoch, seq }),
            _ => Err(InvalidCursor),
        }
    }

    /// What the server does with this cursor, given its `epoch` and the workspace's `head`.
    pub fn check(&self, epoch: &str, head: i64) -> Result<i64, ResetReason> {
        if self.epoch.as_deref().is_some_and(|e| e != epoch) {
            return Err(ResetReason::OtherEpoch);
        }
        if self.seq > head {
            return Err(ResetReason::PastHead);
        }
        Ok(self.seq)
    }
}

/// The cursor text for position `seq` of `epoch`.
pub fn format(epoch: &str, seq: i64) -> String {
    format!("{epoch}.{seq}")
}

/// A fresh epoch id: a UUID v7 (time-ordered, so epochs sort by creation).
pub fn new_epoch() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Why a cursor cannot be continued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetReason {
    /// The cursor was issued by another database (wiped and recreated, or replaced).
    OtherEpoch,
    /// The cursor is past the workspace's head: the database went back in time
    /// (restored from a backup).
    PastHead,
}

impl ResetReason {
    /// A message for people (logs, the answer's `message`).
    pub fn message(self) -> &'static str {
        match self {
            ResetReason::OtherEpoch => "the cursor is from another server epoch; pull again from the start",
            ResetReason::PastHead => "the cursor is past the change log's head; pull again from the start",
        }
    }
}

/// The `reset` member of a `cursor_reset` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetInfo {
    /// The server's current epoch.
    pub epoch: String,
    /// Why the cursor was refused.
    pub reason: ResetReason,
    /// The cursor to pull from instead: the start of the current epoch.
    pub cursor: String,
}

/// Body of `410 Gone` with code `cursor_reset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CursorReset {
    /// `{code: "cursor_reset", message}`.
    pub error: WireError,
    /// What the client needs to start over.
    pub reset: ResetInfo,
}

impl CursorReset {
    /// The answer for a refused cursor in `epoch`.
    pub fn new(epoch: &str, reason: ResetReason) -> Self {
        CursorReset {
            error: WireError { code: CURSOR_RESET.to_string(), message: reason.message().to_string() },
            reset: ResetInfo { epoch: epoch.to_string(), reason, cursor: format(epoch, 0) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn parses_every_form_and_refuses_the_rest() {
        assert_eq!(Cursor::parse(""), Ok(Cursor { epoch: None, seq: 0 }));
        assert_eq!(Cursor::parse("57"), Ok(Cursor { epoch: None, seq: 57 }));
        assert_eq!(Cursor::parse(&format(E, 9)), Ok(Cursor { epoch: Some(E.into()), seq: 9 }));
        for bad in ["-1", "x", "1.2.3.x", ".5", "e.", "e.-1", "e.+1", "e.01", "a b.1", "1e3"] {
            assert_eq!(Cursor::parse(bad), Err(InvalidCursor), "{bad:?}");
        }
    }

    #[test]
    fn other_epoch_and_past_head_are_resets() {
        let c = Cursor::parse(&format(E, 5)).unwrap();
        assert_eq!(c.check(E, 5), Ok(5));
        assert_eq!(c.check(E, 4), Err(ResetReason::PastHead));
        assert_eq!(c.check("another", 9), Err(ResetReason::OtherEpoch));
        // A plain position is taken as the current epoch's, and still checked against the head.
        assert_eq!(Cursor::parse("3").unwrap().check(E, 3), Ok(3));
        assert_eq!(Cursor::parse("1003").unwrap().check(E, 3), Err(ResetReason::PastHead));
    }

    #[test]
    fn reset_answer_wire_form() {
        let body = serde_json::to_value(CursorReset::new(E, ResetReason::PastHead)).unwrap();
        assert_eq!(body["error"]["code"], "cursor_reset");
        assert_eq!(body["reset"]["reason"], "past_head");
        assert_eq!(body["reset"]["epoch"], E);
        assert_eq!(body["reset"]["cursor"], format!("{E}.0"));
    }
}
