//! The handle returned by `subscribe` and `watch`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::task::{AbortHandle, JoinHandle};

/// A running subscription. `cancel()` stops it; dropping the last reference does too.
#[derive(uniffi::Object)]
pub struct Subscription {
    task: AbortHandle,
    cancelled: Arc<AtomicBool>,
}

/// Set by `cancel()`; the delivery loop checks it before every callback, so nothing is
/// delivered after `cancel()` returns, even an item already taken from the stream (an
/// abort alone only takes effect at the loop's next await).
#[derive(Clone, Default)]
pub(crate) struct Cancelled(Arc<AtomicBool>);

impl Cancelled {
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Subscription {
    pub(crate) fn new(task: JoinHandle<()>, cancelled: Cancelled) -> Arc<Self> {
        Arc::new(Subscription { task: task.abort_handle(), cancelled: cancelled.0 })
    }
}

#[uniffi::export]
impl Subscription {
    /// Stops deliveries: none starts after this returns. Idempotent; a delivery already
    /// running finishes (so calling it from inside a listener is fine).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
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
        self.cancelled.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}
