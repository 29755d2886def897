/**
 * The live {@link SyncStatus}: the engine's counters re-read after events that change
 * them, plus what only the event stream tells (progress of the current drain, last error).
 * No queue logic lives here; it only renders state.
 */
import { Emitter, serialRefresh } from './emitter';
import { isOutboxError } from './errors';
import type { OutboxEvent, QueueStatus, SyncError, SyncStatus } from './types';

/** Events after which the counters may differ. */
const COUNTER_EVENTS = new Set<OutboxEvent['type']>([
  'enqueued',
  'attemptStarted',
  'attemptFinished',
  'stateChanged',
  'onlineChanged',
  'leaseChanged',
  'authRequired',
  'accessDenied',
  'idle',
  'rolledBack',
  'queueStalled',
  'queueRecovered',
  'lagged',
]);

/** Keeps a {@link SyncStatus} current. */
export class StatusTracker {
  private current: SyncStatus;
  private done = 0;
  private lastError: SyncError | null = null;
  private stopped = false;
  private readonly changes: Emitter<SyncStatus>;
  private readonly refresh = serialRefresh(() => this.readNow());

  /**
   * @param read re-reads the engine's counters (off the JavaScript thread)
   * @param onError receives a failed re-read or a throwing listener
   * @param initial the counters read at open
   */
  constructor(
    private readonly read: () => Promise<QueueStatus>,
    private readonly onError: (e: unknown) => void,
    initial: QueueStatus,
  ) {
    this.changes = new Emitter<SyncStatus>(onError);
    this.current = this.compose(initial);
  }

  /** The latest snapshot. */
  get snapshot(): SyncStatus {
    return this.current;
  }

  /** Calls `listener` whenever the snapshot changes. */
  subscribe(listener: (status: SyncStatus) => void): () => void {
    return this.changes.subscribe(listener);
  }

  /** Feeds one engine event. */
  onEvent(event: OutboxEvent): void {
    switch (event.type) {
      case 'stateChanged':
        if (event.to === 'succeeded') this.done += 1;
        break;
      case 'attemptFinished':
        if (event.outcome === 'applied') {
          this.lastError = null;
        } else if (event.error !== null) {
          this.lastError = { code: event.outcome, message: event.error, commandId: event.id, at: Date.now() };
        }
        break;
      case 'rolledBack':
        this.lastError = { code: event.code, message: event.message, commandId: event.id, at: Date.now() };
        break;
      case 'accessDenied':
        this.lastError = { code: 'forbidden', message: event.message, commandId: null, at: Date.now() };
        break;
      case 'authRequired':
        this.lastError = {
          code: 'unauthorized',
          message: 'the server refused the credentials; sending is paused',
          commandId: null,
          at: Date.now(),
        };
        break;
      default:
        break;
    }
    if (COUNTER_EVENTS.has(event.type)) this.refresh.request();
  }

  /** Re-reads now (e.g. after `setOnline`, which may not change a counter). */
  reload(): Promise<void> {
    return this.refresh.now();
  }

  private async readNow(): Promise<void> {
    if (this.stopped) return;
    let status: QueueStatus;
    try {
      status = await this.read();
    } catch (e) {
      // The engine closed under this read (close, logout or deleteDatabase): not an error.
      if (!this.stopped && !isOutboxError(e, 'closed')) this.onError(e);
      return;
    }
    if (this.stopped) return;
    const next = this.compose(status);
    if (!sameStatus(next, this.current)) {
      this.current = next;
      this.changes.emit(next);
    }
  }

  /** Stops pending re-reads and drops listeners. */
  close(): void {
    this.stopped = true;
    this.refresh.cancel();
    this.changes.clear();
  }

  private compose(status: QueueStatus): SyncStatus {
    const outstanding = status.pending + status.inFlight;
    // The drain is over when nothing is left to send: progress starts again from zero.
    if (outstanding === 0) this.done = 0;
    return {
      ...status,
      outstanding,
      syncing: status.inFlight > 0,
      progress: { done: this.done, total: this.done + outstanding },
      lastError: this.lastError,
    };
  }
}

function sameStatus(a: SyncStatus, b: SyncStatus): boolean {
  return (
    a.pending === b.pending &&
    a.inFlight === b.inFlight &&
    a.failed === b.failed &&
    a.conflict === b.conflict &&
    a.wedged === b.wedged &&
    a.succeeded === b.succeeded &&
    a.online === b.online &&
    a.isDrainer === b.isDrainer &&
    a.oldestPendingAgeMs === b.oldestPendingAgeMs &&
    a.foreground === b.foreground &&
    a.lastErrorText === b.lastErrorText &&
    a.consecutiveFailures === b.consecutiveFailures &&
    a.lastSuccessAt === b.lastSuccessAt &&
    a.lastPullAt === b.lastPullAt &&
    a.storageUsedBytes === b.storageUsedBytes &&
    a.storageCapBytes === b.storageCapBytes &&
    a.storageFull === b.storageFull &&
    a.stalled === b.stalled &&
    a.progress.done === b.progress.done &&
    a.progress.total === b.progress.total &&
    a.lastError === b.lastError
  );
}
