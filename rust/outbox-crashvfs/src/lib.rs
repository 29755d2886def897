//! A crash-simulating SQLite VFS for tests and the power-cut torture (never shipped in the
//! mobile library: only `outbox-bench` and tests depend on this crate).
//!
//! # Model (after SQLite's own `test6.c`)
//!
//! The VFS named by [`register`] wraps the platform's default VFS. Writes go through to
//! the real file at once, as they would reach the operating system's page cache, so every
//! connection and every process on the file sees them. What the *disk* would hold is kept
//! apart: before each write or truncate of a database, WAL or rollback-journal file, the
//! VFS appends an undo record (offset, size before, the bytes it overwrites, the bytes it
//! writes) to a side log `<file>.crashlog`. `xSync` of the file empties its log: everything
//! written before it is now durable. The SHM file is passed straight through.
//!
//! A *power cut* ([`power_cut`]) happens after every process on the files has been killed
//! (SIGKILL: the harness decides the moment). For each file it rebuilds the last synced
//! image by undoing the log, then replays the unsynced writes at 512-byte sector
//! granularity: each touched sector independently ends up as it was at the last sync or
//! as any one of the unsynced writes left it (so a random subset, in any order, survives),
//! and a sector written by an unsynced write is sometimes *torn*: part of that write's
//! bytes are garbage or the sector's older content. Tearing stays inside the bytes the
//! write covered, because the default unix VFS declares `SQLITE_IOCAP_POWERSAFE_OVERWRITE`
//! (bytes outside a write are never damaged) and this VFS passes that through.
//!
//! # Directories (the decision for WAL and SHM)
//!
//! - A file this VFS created that was never synced since may be *missing* after the cut
//!   (its directory entry was never made durable): the cut deletes it half of the time.
//! - Once a created file has been synced, its directory entry counts as durable. For the
//!   WAL and rollback journal this is what SQLite's unix VFS does itself: it fsyncs the
//!   folder on the first sync of a new WAL or journal. For the main database file SQLite
//!   does not; the engine fsyncs the folder itself after it creates a new database
//!   (`outbox::db`), which is what this assumption stands for.
//! - The SHM file is never synced by anyone and need not survive: SQLite rebuilds it from
//!   the WAL when the first connection opens after a crash. A cut deletes it, fills it with
//!   garbage or leaves it, at random.
//! - Deleting a file (SQLite deletes the WAL when the last connection closes, after a
//!   checkpoint that synced the database) is treated as durable at once, and drops the
//!   file's side log.
//!
//! Every callback runs under `catch_unwind`: a panic becomes an I/O error code, never an
//! unwind into SQLite's C frames.

#![warn(missing_docs)]

mod cut;
mod log;

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::ffi;

pub use cut::{power_cut, CutReport};

/// The SQLite VFS name this crate registers by default.
pub const VFS_NAME: &str = "outbox-crash";

/// The side log that keeps a file's unsynced writes: `<file>.crashlog`.
pub fn log_path(file: &std::path::Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".crashlog");
    PathBuf::from(s)
}

/// Registers the crash VFS under `name` (not as the default VFS). Idempotent per name.
pub fn register(name: &str) -> Result<(), String> {
    static REGISTERED: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let reg = REGISTERED.get_or_init(|| Mutex::new(Vec::new()));
    let mut done = reg.lock().unwrap_or_else(|p| p.into_inner());
    if done.iter().any(|n| n == name) {
        return Ok(());
    }
    let cname = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: sqlite3_vfs_find(NULL) returns the default VFS, which lives for the process.
    let base = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
    if base.is_null() {
        return Err("SQLite has no default VFS".into());
    }
    // SAFETY: base is valid (checked above) and never freed.
    let base_ref = unsafe { &*base };
    let vfs = Box::new(ffi::sqlite3_vfs {
        iVersion: 2,
        szOsFile: std::mem::size_of::<CrashFile>() as c_int,
        mxPathname: base_ref.mxPathname,
        pNext: std::ptr::null_mut(),
        zName: cname.into_raw(), // leaked: SQLite keeps the pointer for the process
        pAppData: base as *mut c_void,
        xOpen: Some(x_open),
        xDelete: Some(x_delete),
        xAccess: Some(x_access),
        xFullPathname: Some(x_full_pathname),
        // Extension loading is the base VFS's own C code (it ignores the VFS argument):
        // no Rust runs there, so nothing can unwind.
        xDlOpen: base_ref.xDlOpen,
        xDlError: base_ref.xDlError,
        xDlSym: base_ref.xDlSym,
        xDlClose: base_ref.xDlClose,
        xRandomness: Some(x_randomness),
        xSleep: Some(x_sleep),
        xCurrentTime: Some(x_current_time),
        xGetLastError: Some(x_get_last_error),
        xCurrentTimeInt64: Some(x_current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    });
    let ptr = Box::into_raw(vfs); // leaked: registered VFSes must outlive every connection
                                  // SAFETY: ptr points to a fully initialised sqlite3_vfs that is never freed.
    let rc = unsafe { ffi::sqlite3_vfs_register(ptr, 0) };
    if rc != ffi::SQLITE_OK {
        return Err(format!("sqlite3_vfs_register failed with code {rc}"));
    }
    done.push(name.to_string());
    Ok(())
}

/// Makes every write, truncate and sync through the VFS named `vfs` fail with an I/O
/// error (`SQLITE_IOERR_WRITE`, `_TRUNCATE`, `_FSYNC`) while `failing` is true: a disk
/// that has gone bad or read-only under an open database. Reads keep working. Files
/// already open through that VFS are affected at once; other VFS names are not, so tests
/// running side by side each use their own name.
pub fn fail_writes(vfs: &str, failing: bool) {
    failure_flag(vfs).store(failing, Ordering::SeqCst);
}

/// The shared write-failure switch of the VFS named `vfs`.
fn failure_flag(vfs: &str) -> Arc<AtomicBool> {
    static FLAGS: OnceLock<Mutex<HashMap<String, Arc<AtomicBool>>>> = OnceLock::new();
    let mut flags = FLAGS.get_or_init(|| Mutex::new(HashMap::new())).lock().unwrap_or_else(|p| p.into_inner());
    flags.entry(vfs.to_string()).or_default().clone()
}

/// The open-file object SQLite allocates (`szOsFile` bytes) for this VFS.
#[repr(C)]
struct CrashFile {
    base: ffi::sqlite3_file,
    /// Owned state; null when `xOpen` failed.
    state: *mut FileState,
}

struct FileState {
    /// Storage for the wrapped VFS's file object (8-byte aligned).
    real_mem: Vec<u64>,
    /// The side log; `None` for files whose writes are not tracked (SHM, temp files).
    log: Option<log::Log>,
    /// The VFS's write-failure switch ([`fail_writes`]).
    failing: Arc<AtomicBool>,
}

impl FileState {
    fn real(&mut self) -> *mut ffi::sqlite3_file {
        self.real_mem.as_mut_ptr() as *mut ffi::sqlite3_file
    }
}

fn base_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: every callback receives the VFS registered above, whose pAppData is the base.
    unsafe { (*vfs).pAppData as *mut ffi::sqlite3_vfs }
}

/// Runs a callback body, turning a panic into `on_panic`.
fn guard(on_panic: c_int, f: impl FnOnce() -> c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 2,
    xClose: Some(f_close),
    xRead: Some(f_read),
    xWrite: Some(f_write),
    xTruncate: Some(f_truncate),
    xSync: Some(f_sync),
    xFileSize: Some(f_file_size),
    xLock: Some(f_lock),
    xUnlock: Some(f_unlock),
    xCheckReservedLock: Some(f_check_reserved_lock),
    xFileControl: Some(f_file_control),
    xSectorSize: Some(f_sector_size),
    xDeviceCharacteristics: Some(f_device_characteristics),
    xShmMap: Some(f_shm_map),
    xShmLock: Some(f_shm_lock),
    xShmBarrier: Some(f_shm_barrier),
    xShmUnmap: Some(f_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    guard(ffi::SQLITE_CANTOPEN, || {
        let cf = file as *mut CrashFile;
        (*cf).base.pMethods = std::ptr::null();
        (*cf).state = std::ptr::null_mut();
        let base = base_vfs(vfs);
        let words = ((*base).szOsFile as usize).div_ceil(8).max(1);
        let vfs_name = if (*vfs).zName.is_null() {
            String::new()
        } else {
            CStr::from_ptr((*vfs).zName).to_string_lossy().into_owned()
        };
        let failing = failure_flag(&vfs_name);
        let mut state = Box::new(FileState { real_mem: vec![0u64; words], log: None, failing });
        let tracked = !name.is_null()
            && flags & (ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_WAL | ffi::SQLITE_OPEN_MAIN_JOURNAL) != 0;
        let path = if name.is_null() {
            None
        } else {
            Some(PathBuf::from(CStr::from_ptr(name).to_string_lossy().into_owned()))
        };
        let existed = path.as_ref().is_some_and(|p| p.exists());
        let Some(open) = (*base).xOpen else { return ffi::SQLITE_CANTOPEN };
        let rc = open(base, name, state.real(), flags, out_flags);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        if let (true, Some(path)) = (tracked, path) {
            match log::Log::open(&path, !existed) {
                Ok(l) => state.log = Some(l),
                Err(_) => {
                    let real = state.real();
                    if let Some(close) = (*real).pMethods.as_ref().and_then(|m| m.xClose) {
                        close(real);
                    }
                    return ffi::SQLITE_CANTOPEN;
                }
            }
        }
        (*cf).state = Box::into_raw(state);
        (*cf).base.pMethods = &METHODS;
        ffi::SQLITE_OK
    })
}

unsafe extern "C" fn x_delete(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, sync_dir: c_int) -> c_int {
    guard(ffi::SQLITE_IOERR_DELETE, || {
        let base = base_vfs(vfs);
        let Some(delete) = (*base).xDelete else { return ffi::SQLITE_IOERR_DELETE };
        let rc = delete(base, name, sync_dir);
        if rc == ffi::SQLITE_OK && !name.is_null() {
            let path = PathBuf::from(CStr::from_ptr(name).to_string_lossy().into_owned());
            // A deleted file has no unsynced writes left to lose.
            let _ = std::fs::remove_file(log_path(&path));
        }
        rc
    })
}

unsafe extern "C" fn x_access(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, flags: c_int, out: *mut c_int) -> c_int {
    guard(ffi::SQLITE_IOERR_ACCESS, || {
        let base = base_vfs(vfs);
        (*base).xAccess.map_or(ffi::SQLITE_IOERR_ACCESS, |f| f(base, name, flags, out))
    })
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    guard(ffi::SQLITE_CANTOPEN, || {
        let base = base_vfs(vfs);
        (*base).xFullPathname.map_or(ffi::SQLITE_CANTOPEN, |f| f(base, name, n, out))
    })
}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    guard(0, || {
        let base = base_vfs(vfs);
        (*base).xRandomness.map_or(0, |f| f(base, n, out))
    })
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    guard(0, || {
        let base = base_vfs(vfs);
        (*base).xSleep.map_or(0, |f| f(base, micros))
    })
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    guard(ffi::SQLITE_ERROR, || {
        let base = base_vfs(vfs);
        (*base).xCurrentTime.map_or(ffi::SQLITE_ERROR, |f| f(base, out))
    })
}

unsafe extern "C" fn x_get_last_error(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    guard(0, || {
        let base = base_vfs(vfs);
        (*base).xGetLastError.map_or(0, |f| f(base, n, out))
    })
}

unsafe extern "C" fn x_current_time_int64(vfs: *mut ffi::sqlite3_vfs, out: *mut ffi::sqlite3_int64) -> c_int {
    guard(ffi::SQLITE_ERROR, || {
        let base = base_vfs(vfs);
        (*base).xCurrentTimeInt64.map_or(ffi::SQLITE_ERROR, |f| f(base, out))
    })
}

/// The wrapped file and this file's state.
unsafe fn parts<'a>(
    file: *mut ffi::sqlite3_file,
) -> Option<(&'a mut FileState, *mut ffi::sqlite3_file, &'a ffi::sqlite3_io_methods)> {
    let cf = file as *mut CrashFile;
    let state = (*cf).state.as_mut()?;
    let real = state.real();
    let methods = (*real).pMethods.as_ref()?;
    Some((state, real, methods))
}

unsafe extern "C" fn f_close(file: *mut ffi::sqlite3_file) -> c_int {
    guard(ffi::SQLITE_IOERR_CLOSE, || {
        let cf = file as *mut CrashFile;
        if (*cf).state.is_null() {
            return ffi::SQLITE_OK;
        }
        let mut state = Box::from_raw((*cf).state);
        (*cf).state = std::ptr::null_mut();
        let real = state.real();
        let rc = match (*real).pMethods.as_ref().and_then(|m| m.xClose) {
            Some(close) => close(real),
            None => ffi::SQLITE_OK,
        };
        drop(state);
        rc
    })
}

unsafe extern "C" fn f_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    guard(ffi::SQLITE_IOERR_READ, || match parts(file) {
        Some((_, real, m)) => m.xRead.map_or(ffi::SQLITE_IOERR_READ, |f| f(real, buf, amt, off)),
        None => ffi::SQLITE_IOERR_READ,
    })
}

/// Reads `[off, off + len)` clipped to `size` through the wrapped file.
unsafe fn read_range(
    real: *mut ffi::sqlite3_file,
    m: &ffi::sqlite3_io_methods,
    off: i64,
    len: i64,
    size: i64,
) -> Option<Vec<u8>> {
    let end = (off + len).min(size);
    if end <= off {
        return Some(Vec::new());
    }
    let mut pre = vec![0u8; (end - off) as usize];
    let read = m.xRead?;
    let rc = read(real, pre.as_mut_ptr() as *mut c_void, pre.len() as c_int, off);
    (rc == ffi::SQLITE_OK || rc == ffi::SQLITE_IOERR_SHORT_READ).then_some(pre)
}

unsafe fn file_size(real: *mut ffi::sqlite3_file, m: &ffi::sqlite3_io_methods) -> Option<i64> {
    let mut size: ffi::sqlite3_int64 = 0;
    (m.xFileSize?(real, &mut size) == ffi::SQLITE_OK).then_some(size)
}

unsafe extern "C" fn f_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    guard(ffi::SQLITE_IOERR_WRITE, || {
        let Some((state, real, m)) = parts(file) else { return ffi::SQLITE_IOERR_WRITE };
        if state.failing.load(Ordering::SeqCst) {
            return ffi::SQLITE_IOERR_WRITE;
        }
        let Some(write) = m.xWrite else { return ffi::SQLITE_IOERR_WRITE };
        let Some(log) = state.log.as_ref() else { return write(real, buf, amt, off) };
        let Ok(_lock) = log.lock() else { return ffi::SQLITE_IOERR_WRITE };
        let Some(size) = file_size(real, m) else { return ffi::SQLITE_IOERR_WRITE };
        let Some(pre) = read_range(real, m, off, amt as i64, size) else { return ffi::SQLITE_IOERR_WRITE };
        let data = std::slice::from_raw_parts(buf as *const u8, amt.max(0) as usize);
        // The undo record goes first: a process killed between the two leaves a record
        // for a write that never happened, which a cut may "apply" (a write in flight).
        if log.append(&log::Record::Write { off: off as u64, old_size: size as u64, pre, data: data.to_vec() }).is_err()
        {
            return ffi::SQLITE_IOERR_WRITE;
        }
        write(real, buf, amt, off)
    })
}

unsafe extern "C" fn f_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    guard(ffi::SQLITE_IOERR_TRUNCATE, || {
        let Some((state, real, m)) = parts(file) else { return ffi::SQLITE_IOERR_TRUNCATE };
        if state.failing.load(Ordering::SeqCst) {
            return ffi::SQLITE_IOERR_TRUNCATE;
        }
        let Some(truncate) = m.xTruncate else { return ffi::SQLITE_IOERR_TRUNCATE };
        let Some(log) = state.log.as_ref() else { return truncate(real, size) };
        let Ok(_lock) = log.lock() else { return ffi::SQLITE_IOERR_TRUNCATE };
        let Some(old) = file_size(real, m) else { return ffi::SQLITE_IOERR_TRUNCATE };
        let Some(pre) = read_range(real, m, size, old - size, old) else { return ffi::SQLITE_IOERR_TRUNCATE };
        if log.append(&log::Record::Truncate { new_size: size as u64, old_size: old as u64, pre }).is_err() {
            return ffi::SQLITE_IOERR_TRUNCATE;
        }
        truncate(real, size)
    })
}

unsafe extern "C" fn f_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    guard(ffi::SQLITE_IOERR_FSYNC, || {
        let Some((state, real, m)) = parts(file) else { return ffi::SQLITE_IOERR_FSYNC };
        if state.failing.load(Ordering::SeqCst) {
            return ffi::SQLITE_IOERR_FSYNC;
        }
        let Some(sync) = m.xSync else { return ffi::SQLITE_IOERR_FSYNC };
        let Some(log) = state.log.as_ref() else { return sync(real, flags) };
        let Ok(_lock) = log.lock() else { return ffi::SQLITE_IOERR_FSYNC };
        let rc = sync(real, flags);
        if rc == ffi::SQLITE_OK && log.clear().is_err() {
            return ffi::SQLITE_IOERR_FSYNC;
        }
        rc
    })
}

macro_rules! delegate {
    ($name:ident, $field:ident, $err:expr, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            guard($err, || match parts(file) {
                Some((_, real, m)) => m.$field.map_or($err, |f| f(real $(, $arg)*)),
                None => $err,
            })
        }
    };
}

delegate!(f_file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, (size: *mut ffi::sqlite3_int64));
delegate!(f_lock, xLock, ffi::SQLITE_IOERR_LOCK, (level: c_int));
delegate!(f_unlock, xUnlock, ffi::SQLITE_IOERR_UNLOCK, (level: c_int));
delegate!(f_check_reserved_lock, xCheckReservedLock, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, (out: *mut c_int));
delegate!(f_file_control, xFileControl, ffi::SQLITE_NOTFOUND, (op: c_int, arg: *mut c_void));
delegate!(f_shm_map, xShmMap, ffi::SQLITE_IOERR_SHMMAP, (region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void));
delegate!(f_shm_lock, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, (offset: c_int, n: c_int, flags: c_int));
delegate!(f_shm_unmap, xShmUnmap, ffi::SQLITE_IOERR_SHMMAP, (delete: c_int));

unsafe extern "C" fn f_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    guard(512, || match parts(file) {
        Some((_, real, m)) => m.xSectorSize.map_or(512, |f| f(real)),
        None => 512,
    })
}

unsafe extern "C" fn f_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    guard(0, || match parts(file) {
        Some((_, real, m)) => m.xDeviceCharacteristics.map_or(0, |f| f(real)),
        None => 0,
    })
}

unsafe extern "C" fn f_shm_barrier(file: *mut ffi::sqlite3_file) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if let Some((_, real, m)) = parts(file) {
            if let Some(f) = m.xShmBarrier {
                f(real)
            }
        }
    }));
}

#[cfg(test)]
mod tests;
