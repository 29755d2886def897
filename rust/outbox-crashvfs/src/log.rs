//! The side log of one file's unsynced writes (`<file>.crashlog`), shared by every
//! connection and process that has the file open. Appends and the clear after a sync hold
//! an exclusive `flock` on the log, so a checkpointer's sync in one process cannot clear a
//! record another process appended after that sync.
//!
//! Record layout (little endian): kind `u8`, then
//! - `W` write: offset `u64`, size before `u64`, pre-image length `u32` + bytes, data length `u32` + bytes;
//! - `T` truncate: new size `u64`, size before `u64`, pre-image length `u32` + bytes;
//! - `C` created: the file did not exist before this open.
//!
//! A record cut short (the process died while appending) ends the log.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

/// One logged change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Write { off: u64, old_size: u64, pre: Vec<u8>, data: Vec<u8> },
    Truncate { new_size: u64, old_size: u64, pre: Vec<u8> },
    Created,
}

pub(crate) struct Log {
    file: File,
}

/// Holds the log's exclusive lock until dropped.
pub(crate) struct LockGuard<'a>(&'a File);

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Log {
    /// Opens (creating) the log of `path`; `created` logs that the file is new.
    pub(crate) fn open(path: &Path, created: bool) -> std::io::Result<Log> {
        let file = OpenOptions::new().create(true).append(true).read(true).open(crate::log_path(path))?;
        let log = Log { file };
        if created {
            let _lock = log.lock()?;
            log.append(&Record::Created)?;
        }
        Ok(log)
    }

    pub(crate) fn lock(&self) -> std::io::Result<LockGuard<'_>> {
        self.file.lock()?;
        Ok(LockGuard(&self.file))
    }

    /// Appends one record in one write (O_APPEND). The caller holds the lock.
    pub(crate) fn append(&self, record: &Record) -> std::io::Result<()> {
        (&self.file).write_all(&encode(record))
    }

    /// Forgets every record: the file was synced. The caller holds the lock.
    pub(crate) fn clear(&self) -> std::io::Result<()> {
        self.file.set_len(0)
    }
}

pub(crate) fn encode(r: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    match r {
        Record::Write { off, old_size, pre, data } => {
            out.push(b'W');
            out.extend_from_slice(&off.to_le_bytes());
            out.extend_from_slice(&old_size.to_le_bytes());
            out.extend_from_slice(&(pre.len() as u32).to_le_bytes());
            out.extend_from_slice(pre);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        Record::Truncate { new_size, old_size, pre } => {
            out.push(b'T');
            out.extend_from_slice(&new_size.to_le_bytes());
            out.extend_from_slice(&old_size.to_le_bytes());
            out.extend_from_slice(&(pre.len() as u32).to_le_bytes());
            out.extend_from_slice(pre);
        }
        Record::Created => out.push(b'C'),
    }
    out
}

/// Reads every complete record of the log at `path`.
pub(crate) fn read_all(path: &Path) -> std::io::Result<Vec<Record>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut records = Vec::new();
    let mut cur = Cursor { bytes: &bytes, at: 0 };
    while let Some(r) = cur.record() {
        records.push(r);
    }
    Ok(records)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn blob(&mut self) -> Option<Vec<u8>> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        Some(self.take(n)?.to_vec())
    }
    fn record(&mut self) -> Option<Record> {
        match self.take(1)?[0] {
            b'W' => {
                Some(Record::Write { off: self.u64()?, old_size: self.u64()?, pre: self.blob()?, data: self.blob()? })
            }
            b'T' => Some(Record::Truncate { new_size: self.u64()?, old_size: self.u64()?, pre: self.blob()? }),
            b'C' => Some(Record::Created),
            _ => None,
        }
    }
}
