package dev.outbox.android

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.conflate
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.merge
import kotlinx.coroutines.flow.onStart
import uniffi.outbox_ffi.EventListener
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.OutboxEvent
import uniffi.outbox_ffi.Status

/**
 * The engine's events as a cold [Flow]: each collector gets its own `subscribe` listener, and
 * cancelling the collector cancels its `Subscription`. Events arrive in the engine's order;
 * the buffer is unbounded, so a slow collector delays but never loses what it has been sent (the
 * engine itself reports events it had to drop as `OutboxEvent.Lagged`).
 */
fun Outbox.events(): Flow<OutboxEvent> = callbackFlow {
    val subscription = subscribe(object : EventListener {
        override fun onEvent(event: OutboxEvent) {
            trySend(event)
        }
    })
    awaitClose { subscription.cancel() }
}.buffer(Channel.UNLIMITED)

/**
 * `status()` snapshots as a cold [Flow]: the current one at once, then a fresh one after events
 * (bursts are conflated, so a collector sees the latest state, not every step). `status()` is a
 * suspend call that reads on the engine's own threads, so the flow needs no dispatcher of its own.
 */
fun Outbox.statusUpdates(): Flow<Status> =
    events()
        .map { }
        .onStart { emit(Unit) }
        .conflate()
        .map { status() }

/**
 * Queue health for a status bar or a till's "all synced" light, as a cold [Flow] of `status()`
 * snapshots: counts per state, the oldest unsynced command's age, the last successful send and
 * pull, the last error and the failures in a row since, storage used against the cap, online,
 * the drainer lease and whether the stall watchdog reports the queue stalled.
 *
 * A snapshot comes at once, after events (bursts conflated), and every [everyMs] ms even
 * without events (so ages and `stalled` stay current); equal consecutive snapshots are
 * dropped. It only reads: collect it from as many screens as needed.
 */
fun Outbox.queueHealth(everyMs: Long = 1_000): Flow<Status> {
    require(everyMs > 0) { "everyMs must be positive" }
    val ticks = flow {
        while (true) {
            delay(everyMs)
            emit(Unit)
        }
    }
    return merge(events().map { }, ticks)
        .onStart { emit(Unit) }
        .conflate()
        .map { status() }
        .distinctUntilChanged()
}
