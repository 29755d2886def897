//! The one tokio runtime the engine's background work runs on.
//!
//! Every spawn in the crate goes through [`handle`], so engine tasks run the same way
//! whether the caller is a tokio app, a plain thread or a foreign-language binding.

use once_cell::sync::OnceCell;
use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: OnceCell<Runtime> = OnceCell::new();

/// The engine runtime's handle, creating the runtime on first use.
pub fn handle() -> Handle {
    if let Some(rt) = RUNTIME.get() {
        return rt.handle().clone();
    }
    let rt = RUNTIME
        .get_or_try_init(|| Builder::new_multi_thread().worker_threads(2).thread_name("outbox").enable_all().build());
    match rt {
        Ok(rt) => rt.handle().clone(),
        // Creating OS threads failed (resource exhaustion). Fall back to the caller's
        // runtime if there is one; otherwise there is nothing sane left to do.
        Err(e) => Handle::try_current().unwrap_or_else(|_| panic!("cannot start the outbox runtime: {e}")), // ok: no threads left at all
    }
}
