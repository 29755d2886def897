//! The handle returned by `subscribe` and `watch`.

use std::sync::Arc;

use tokio::task::{AbortHandle, JoinHandle};

/// A running subscription. `cancel()` stops it; dropping the last reference does too.
#[derive(uniffi::Object)]
pub struct Subscription {
    task: AbortHandle,
}

impl Subscription {
    pub(crate) fn new(task: JoinHandle<()>) -> Arc<Self> {
        Arc::new(Subscription { task: task.abort_handle() })
    }
}

#[uniffi::export]
impl Subscription {
    /// Stops deliveries. Idempotent; a delivery already running finishes.
    pub fn cancel(&self) {
        self.task.abort();
    }

    /// Whether the subscription has ended (cancelled, or the outbox closed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // AbortHandle::abort needs no runtime context, so a GC thread may drop this.
        self.task.abort();
    }
}
