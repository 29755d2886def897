/**
 * Platform wiring: connectivity and app lifecycle are facts the app reports to the engine.
 *
 * In the app these are `@react-native-community/netinfo` and React Native's `AppState`
 * (see `src/index.tsx`); in tests they are small doubles with the same shape. Only the
 * members used here are required, so both the real modules and doubles fit.
 */
import type { Unsubscribe } from './types';

/** The part of a NetInfo state this package reads. */
export interface NetInfoStateLike {
  /** Whether there is an active network; `null` while unknown. */
  isConnected: boolean | null;
  /** Whether the internet is reachable; `null` while NetInfo is still checking. */
  isInternetReachable?: boolean | null;
}

/** The part of `@react-native-community/netinfo` this package uses. */
export interface NetInfoLike {
  /** Calls `listener` with the current state, then on every change; returns an unsubscribe. */
  addEventListener(listener: (state: NetInfoStateLike) => void): () => void;
}

/** The part of React Native's `AppState` this package uses. */
export interface AppStateLike {
  /** `active`, `background`, `inactive` (iOS), or unknown. */
  currentState: string | null | undefined;
  /** Subscribes to changes. */
  addEventListener(type: 'change', listener: (state: string) => void): { remove(): void };
}

/** The platform modules to wire; `false` (or absent) turns one off. */
export interface Platform {
  /** Connectivity source for `setOnline`. */
  netInfo?: NetInfoLike | false;
  /** Lifecycle source for `onForeground` / `onBackground`. */
  appState?: AppStateLike | false;
}

/** What the wiring calls on the engine. */
export interface PlatformTarget {
  setOnline(online: boolean): void;
  onForeground(): void;
  onBackground(): void;
}

/**
 * Online when NetInfo says connected and does not say the internet is unreachable;
 * `null` (no opinion) while it does not know yet.
 */
export function onlineFromNetInfo(state: NetInfoStateLike): boolean | null {
  if (state.isConnected === null || state.isConnected === undefined) return null;
  if (!state.isConnected) return false;
  return state.isInternetReachable !== false;
}

/** `active` → foreground, `background` → background; other states (iOS `inactive`) → no change. */
export function foregroundFromAppState(state: string | null | undefined): boolean | null {
  if (state === 'active') return true;
  if (state === 'background') return false;
  return null;
}

/**
 * Connects the platform to the engine and returns the function that disconnects it.
 * Reports only changes; a failing report is passed to `onError` and the wiring goes on.
 */
export function wirePlatform(platform: Platform, target: PlatformTarget, onError: (e: unknown) => void): Unsubscribe {
  const stops: Unsubscribe[] = [];
  const report = (f: () => void) => {
    try {
      f();
    } catch (e) {
      onError(e);
    }
  };
  if (platform.netInfo) {
    let last: boolean | null = null;
    stops.push(
      platform.netInfo.addEventListener((state) => {
        const online = onlineFromNetInfo(state);
        if (online === null || online === last) return;
        last = online;
        report(() => target.setOnline(online));
      }),
    );
  }
  if (platform.appState) {
    const appState = platform.appState;
    let last = foregroundFromAppState(appState.currentState);
    const sub = appState.addEventListener('change', (state) => {
      const fg = foregroundFromAppState(state);
      if (fg === null || fg === last) return;
      last = fg;
      report(() => (fg ? target.onForeground() : target.onBackground()));
    });
    stops.push(() => sub.remove());
    // An app started in the background (e.g. by a background fetch) says so at once.
    if (last === false) report(() => target.onBackground());
  }
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    for (const stop of stops) stop();
  };
}
