/**
 * Background drain: the OS runs the outbox while the app is not on screen (Android:
 * WorkManager periodic work of the Outbox Android library). The native side opens the same
 * database file as the JS engine; it is given only the path, user, workspace and server URL,
 * never a token (the app registers a native token provider, see docs/react-native.md).
 */
import { OutboxError } from './errors';
import type { OutboxConfig } from './outbox';

/** WorkManager's shortest period. */
export const MIN_BACKGROUND_INTERVAL_MINUTES = 15;

/** How often, at most, the OS should run the drain. */
export interface BackgroundDrainOptions {
  /** Minutes between runs, at least 15 (the OS may run it later, never earlier). */
  minIntervalMinutes: number;
  /** Run only while the device charges (default `false`). */
  requiresCharging?: boolean;
}

/** What the native module receives: no token, no transport. */
export interface NativeBackgroundDrainOptions {
  path: string;
  userId: string;
  workspaceId: string;
  serverUrl: string | null;
  minIntervalMinutes: number;
  requiresCharging: boolean;
}

/** The native module (`NativeModules.RnOutboxBackground`). */
export interface NativeBackgroundModule {
  enable(options: NativeBackgroundDrainOptions): Promise<void>;
  disable(): Promise<void>;
}

/** Anything opened with an {@link OutboxConfig}: an `Outbox`, or `{ config }`. */
export interface BackgroundDrainSource {
  readonly config: Readonly<Pick<OutboxConfig, 'path' | 'userId' | 'workspaceId' | 'serverUrl'>>;
}

function invalid(message: string): OutboxError {
  return new OutboxError('invalid_config', message);
}

function missing(): OutboxError {
  return new OutboxError(
    'background_unavailable',
    'the RnOutboxBackground native module is not registered: add RnOutboxBackgroundPackage to ' +
      'MainApplication.getPackages() (Android); background drain is not available on this platform yet',
  );
}

/** Checks `options` and returns what the native module gets (throws `invalid_config`). */
export function backgroundDrainRequest(source: BackgroundDrainSource, options: BackgroundDrainOptions): NativeBackgroundDrainOptions {
  if (source === null || typeof source !== 'object' || source.config === null || typeof source.config !== 'object') {
    throw invalid('enableBackgroundDrain needs the open Outbox (or { config }) whose database it drains');
  }
  if (options === null || typeof options !== 'object') throw invalid('options must be an object');
  const { minIntervalMinutes, requiresCharging = false } = options;
  if (typeof minIntervalMinutes !== 'number' || !Number.isInteger(minIntervalMinutes)) {
    throw invalid('minIntervalMinutes must be a whole number of minutes');
  }
  if (minIntervalMinutes < MIN_BACKGROUND_INTERVAL_MINUTES) {
    throw invalid(`minIntervalMinutes must be at least ${MIN_BACKGROUND_INTERVAL_MINUTES} (the OS's shortest period)`);
  }
  if (typeof requiresCharging !== 'boolean') throw invalid('requiresCharging must be a boolean');
  const { path, userId, workspaceId, serverUrl } = source.config;
  for (const [name, value] of [['path', path], ['userId', userId], ['workspaceId', workspaceId]] as const) {
    if (typeof value !== 'string' || value.length === 0) throw invalid(`${name} must be a non-empty string`);
  }
  if (!path.startsWith('/')) throw invalid('path must be absolute');
  return { path, userId, workspaceId, serverUrl: serverUrl ?? null, minIntervalMinutes, requiresCharging };
}

/** `enableBackgroundDrain` / `disableBackgroundDrain` bound to a native-module lookup. */
export function makeBackgroundDrain(lookup: () => NativeBackgroundModule | null | undefined) {
  const native = (): NativeBackgroundModule => {
    const m = lookup();
    if (!m) throw missing();
    return m;
  };
  const fromNative = (e: unknown): OutboxError => {
    if (e instanceof OutboxError) return e;
    const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'internal';
    const message = e instanceof Error ? e.message : String(e);
    return new OutboxError(code, message);
  };
  return {
    /**
     * Asks the OS to drain `outbox`'s database periodically while the app is in the
     * background (replaces an earlier schedule). Rejects with `invalid_config` for bad
     * options and `background_unavailable` when the native module is absent.
     */
    async enableBackgroundDrain(outbox: BackgroundDrainSource, options: BackgroundDrainOptions): Promise<void> {
      const request = backgroundDrainRequest(outbox, options);
      try {
        await native().enable(request);
      } catch (e) {
        throw fromNative(e);
      }
    },
    /** Cancels the background drain and forgets its stored target (on logout). */
    async disableBackgroundDrain(): Promise<void> {
      try {
        await native().disable();
      } catch (e) {
        throw fromNative(e);
      }
    },
  };
}
