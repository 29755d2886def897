/** A small listener set: subscribe returns an unsubscribe, a throwing listener is reported and skipped. */
import type { Unsubscribe } from './types';

/** Listeners of one value type. */
export class Emitter<T> {
  private listeners = new Set<(value: T) => void>();

  /** @param onListenerError receives what a listener threw; the other listeners still run. */
  constructor(private readonly onListenerError: (e: unknown) => void) {}

  /** Adds `listener`; the returned function removes it (calling it twice is harmless). */
  subscribe(listener: (value: T) => void): Unsubscribe {
    // A wrapper per subscription, so the same function subscribed twice is two subscriptions.
    const entry = (value: T) => listener(value);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  /** Calls every listener with `value`. */
  emit(value: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch (e) {
        this.onListenerError(e);
      }
    }
  }

  /** Number of listeners. */
  get size(): number {
    return this.listeners.size;
  }

  /** Removes every listener. */
  clear(): void {
    this.listeners.clear();
  }
}

/**
 * Runs `f` at most once per macrotask however often it is requested: bursts of engine
 * events (100 enqueues) become one re-read.
 */
export function coalesce(f: () => void): { request(): void; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  return {
    request() {
      if (timer !== null) return;
      timer = setTimeout(() => {
        timer = null;
        f();
      }, 0);
    },
    cancel() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
  };
}

/**
 * Runs the async `f` so that its runs never overlap and a request made while one runs is
 * served by exactly one more run after it: a slow read can never overwrite a newer one,
 * and a burst of requests (100 events) becomes at most two reads. `request` coalesces to
 * the next macrotask; `now` starts at once (or right after the run in progress).
 */
export function serialRefresh(f: () => Promise<void>): {
  request(): void;
  now(): Promise<void>;
  cancel(): void;
} {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  let cancelled = false;
  const run = (): Promise<void> => {
    if (cancelled) return Promise.resolve();
    if (running !== null) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await f();
        } catch {
          // f reports its own errors.
        }
      } while (again && !cancelled);
      running = null;
    })();
    return running;
  };
  return {
    request() {
      if (timer !== null || cancelled) return;
      timer = setTimeout(() => {
        timer = null;
        void run();
      }, 0);
    },
    now: run,
    cancel() {
      cancelled = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
  };
}
