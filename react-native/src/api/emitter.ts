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
