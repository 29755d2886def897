/**
 * Test doubles for the React Native system modules the package wires by default
 * (`@react-native-community/netinfo` and `AppState`), with the same shapes.
 */
import type { AppStateLike, NetInfoLike, NetInfoStateLike } from '../../src/api';

/** A NetInfo whose connectivity the test sets. */
export class FakeNetInfo implements NetInfoLike {
  private listeners = new Set<(s: NetInfoStateLike) => void>();
  constructor(public state: NetInfoStateLike = { isConnected: true, isInternetReachable: true }) {}

  addEventListener(listener: (s: NetInfoStateLike) => void): () => void {
    this.listeners.add(listener);
    // Like NetInfo: the current state is delivered right after subscribing.
    queueMicrotask(() => {
      if (this.listeners.has(listener)) listener(this.state);
    });
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Changes connectivity and tells every listener. */
  set(state: NetInfoStateLike): void {
    this.state = state;
    for (const l of [...this.listeners]) l(state);
  }

  /** Listeners still subscribed. */
  get listenerCount(): number {
    return this.listeners.size;
  }
}

/** An AppState whose state the test sets. */
export class FakeAppState implements AppStateLike {
  private listeners = new Set<(s: string) => void>();
  constructor(public currentState: string = 'active') {}

  addEventListener(_type: 'change', listener: (s: string) => void): { remove(): void } {
    this.listeners.add(listener);
    return { remove: () => void this.listeners.delete(listener) };
  }

  /** Changes the app state and tells every listener. */
  set(state: string): void {
    this.currentState = state;
    for (const l of [...this.listeners]) l(state);
  }

  /** Listeners still subscribed. */
  get listenerCount(): number {
    return this.listeners.size;
  }
}
