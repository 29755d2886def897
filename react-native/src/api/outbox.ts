/**
 * The `Outbox` class and `createOutbox`: the promise-based API apps use.
 *
 * Every call returns a promise and every failure is an `OutboxError` with a `code`.
 * Subscriptions (`on`, `watch`, `observe*`) return an unsubscribe function. This file
 * adapts only: ordering, retries and storage are the engine's.
 */
import type { Backend, NativeOutbox } from './backend';
import { UNFINISHED } from './backend';
import { coalesce, Emitter } from './emitter';
import { invalidArgument, OutboxError } from './errors';
import type { Platform } from './platform';
import { wirePlatform } from './platform';
import { StatusTracker } from './status';
import type {
  Command,
  Doc,
  DrainReport,
  EnqueueOptions,
  Json,
  MutatorOptions,
  OutboxEvent,
  OutboxEventType,
  PeekFilter,
  Query,
  Resolution,
  Settlement,
  SyncStatus,
  Unsubscribe,
} from './types';

/** Everything `createOutbox` needs. */
export interface OutboxConfig {
  /** Absolute path of the database file, in the app's private data directory. */
  path: string;
  /** The signed-in user; data is scoped per (user, workspace). */
  userId: string;
  /** The workspace (tenant). */
  workspaceId: string;
  /** Base URL of the sync server, e.g. `https://api.example.com`. Without it commands stay queued. */
  serverUrl?: string;
  /** Bearer token, or a function called before each request for a fresh one. Never stored. */
  token?: string | (() => string | Promise<string>);
  /** Mutators to register (the allowlist): names, or names with options. */
  mutators?: string[] | Record<string, MutatorOptions>;
  /** Whether to assume the device is online until NetInfo reports (default true). */
  startOnline?: boolean;
  /** Transport calls in flight at once (engine default 4). */
  maxConcurrency?: number;
  /** Attempts before a command is parked as `wedged` (engine default 10). */
  maxAttempts?: number;
  /** Timeout of one attempt in ms (engine default 15 000). */
  attemptTimeoutMs?: number;
  /** Report NetInfo connectivity with `setOnline` (default true). */
  autoOnline?: boolean;
  /** Report AppState changes with `onForeground`/`onBackground` (default true). */
  autoLifecycle?: boolean;
  /** Other connectivity/lifecycle sources than React Native's own (tests, custom apps). */
  platform?: Platform;
  /** Receives errors no caller can catch (a throwing listener, a failed report). Default: `console.warn`. */
  onError?: (error: unknown) => void;
}

/** An open Outbox. Create it with `createOutbox`; close it with `close()`. */
export class Outbox {
  private readonly events: Emitter<OutboxEvent>;
  private readonly tracker: StatusTracker;
  private readonly stopNative: Unsubscribe;
  private stopPlatform: Unsubscribe = () => {};
  private closed = false;

  /** @internal use `createOutbox`. */
  constructor(
    private readonly native: NativeOutbox,
    private readonly onError: (e: unknown) => void,
  ) {
    this.events = new Emitter<OutboxEvent>(onError);
    this.tracker = new StatusTracker(() => native.status(), onError);
    this.stopNative = native.events((event) => {
      // An event already on its way to the JS thread when close() ran is dropped.
      if (this.closed) return;
      this.tracker.onEvent(event);
      this.events.emit(event);
    });
  }

  /** @internal connects NetInfo/AppState (called once by `createOutbox`). */
  attachPlatform(platform: Platform): void {
    this.stopPlatform = wirePlatform(platform, this, this.onError);
  }

  /**
   * Durably enqueues a command: when the promise resolves, the command and its optimistic
   * changes are committed on the device. Resolves to the command id.
   */
  async enqueue(mutator: string, args: Json, options: EnqueueOptions = {}): Promise<string> {
    this.ensureOpen();
    if (typeof mutator !== 'string' || mutator.length === 0) throw invalidArgument('mutator must be a non-empty string');
    if (args === undefined) throw invalidArgument('args must be a JSON value');
    const id = this.native.enqueue({
      mutator,
      args,
      keys: options.keys ?? [],
      after: options.after ?? [],
      optimistic: options.optimistic ?? [],
      metadata: options.metadata ?? null,
    });
    return id;
  }

  /** Resolves when the command settles (succeeded, failed, conflict, wedged or discarded). */
  async waitFor(id: string): Promise<Settlement> {
    this.ensureOpen();
    return this.native.waitFor(id);
  }

  /** The command with its attempt history, or `null` if there is none with this id. */
  async command(id: string): Promise<Command | null> {
    this.ensureOpen();
    return this.native.command(id);
  }

  /** Commands in enqueue order; by default every unfinished one. */
  async peek(filter: PeekFilter = {}): Promise<Command[]> {
    this.ensureOpen();
    return this.native.peek({ ...filter, states: filter.states ?? UNFINISHED });
  }

  /** Tries a `wedged` or `failed` command again. */
  async retry(id: string): Promise<void> {
    this.ensureOpen();
    this.native.retry(id);
  }

  /** Gives up on a command that is not in flight; its optimistic changes disappear. */
  async discard(id: string): Promise<void> {
    this.ensureOpen();
    this.native.discard(id);
  }

  /** Settles a command in `conflict`: discard it or retry it with new args. */
  async resolve(id: string, resolution: Resolution): Promise<void> {
    this.ensureOpen();
    this.native.resolve(id, resolution);
  }

  /** One document as the app sees it, or `null`. */
  async get<T = Json>(collection: string, id: string): Promise<Doc<T> | null> {
    this.ensureOpen();
    return this.native.get(collection, id) as Doc<T> | null;
  }

  /** Documents matching `query`, pending changes applied. */
  async list<T = Json>(collection: string, query: Query = {}): Promise<Doc<T>[]> {
    this.ensureOpen();
    return this.native.list(collection, query) as Doc<T>[];
  }

  /** Calls `listener` with the current result of `query`, then whenever it changes. */
  watch<T = Json>(collection: string, query: Query, listener: (docs: Doc<T>[]) => void, onError?: (e: Error) => void): Unsubscribe {
    this.ensureOpen();
    return this.native.watch(
      collection,
      query,
      (docs) => {
        try {
          listener(docs as Doc<T>[]);
        } catch (e) {
          this.onError(e);
        }
      },
      onError ?? this.onError,
    );
  }

  /** Calls `listener` for every engine event, or only for events of `type`. */
  on(listener: (event: OutboxEvent) => void): Unsubscribe;
  on<K extends OutboxEventType>(type: K, listener: (event: Extract<OutboxEvent, { type: K }>) => void): Unsubscribe;
  on(a: unknown, b?: unknown): Unsubscribe {
    if (typeof a === 'function') return this.events.subscribe(a as (e: OutboxEvent) => void);
    const type = a as OutboxEventType;
    const listener = b as (e: OutboxEvent) => void;
    return this.events.subscribe((e) => {
      if (e.type === type) listener(e);
    });
  }

  /** The live sync status (counters, online, progress, last error). */
  get syncStatus(): SyncStatus {
    return this.tracker.snapshot;
  }

  /** Re-reads the counters now. */
  async status(): Promise<SyncStatus> {
    this.ensureOpen();
    this.tracker.reload();
    return this.tracker.snapshot;
  }

  /** Calls `listener` whenever the sync status changes. */
  onSyncStatus(listener: (status: SyncStatus) => void): Unsubscribe {
    return this.tracker.subscribe(listener);
  }

  /**
   * Calls `listener` with the command now and after each change of its state;
   * `null` if it does not exist (any more).
   */
  observeCommand(id: string, listener: (command: Command | null) => void): Unsubscribe {
    return this.observe(
      () => this.native.command(id),
      listener,
      (e) => (e.type === 'stateChanged' || e.type === 'attemptFinished' || e.type === 'lagged') && ('id' in e ? e.id === id : true),
    );
  }

  /** Calls `listener` with the document now and whenever its collection changes. */
  observeDoc<T = Json>(collection: string, id: string, listener: (doc: Doc<T> | null) => void): Unsubscribe {
    return this.observe(
      () => this.native.get(collection, id) as Doc<T> | null,
      listener,
      (e) =>
        (e.type === 'collectionsChanged' && e.collections.includes(collection)) ||
        e.type === 'stateChanged' ||
        e.type === 'rolledBack' ||
        e.type === 'synced' ||
        e.type === 'lagged',
    );
  }

  /** Calls `listener` with the unfinished commands now and whenever they change. */
  observePending(listener: (commands: Command[]) => void, filter: PeekFilter = {}): Unsubscribe {
    const f = { ...filter, states: filter.states ?? UNFINISHED };
    return this.observe(
      () => this.native.peek(f),
      listener,
      (e) => e.type === 'enqueued' || e.type === 'stateChanged' || e.type === 'attemptFinished' || e.type === 'lagged',
    );
  }

  /** Asks the engine to send and pull now (a "sync now" button). */
  async syncNow(): Promise<void> {
    this.ensureOpen();
    this.native.syncNow();
  }

  /** Reports connectivity (done automatically from NetInfo unless `autoOnline: false`). */
  async setOnline(online: boolean): Promise<void> {
    this.ensureOpen();
    this.native.setOnline(online);
    this.tracker.reload();
  }

  /** Reports that the app came to the foreground (automatic from AppState by default). */
  async onForeground(): Promise<void> {
    this.ensureOpen();
    this.native.onForeground();
  }

  /** Reports that the app went to the background (automatic from AppState by default). */
  async onBackground(): Promise<void> {
    this.ensureOpen();
    this.native.onBackground();
  }

  /** Sends for at most `budgetMs` (e.g. in a background task) and reports how far it got. */
  async drainFor(budgetMs: number): Promise<DrainReport> {
    this.ensureOpen();
    if (!Number.isFinite(budgetMs) || budgetMs < 0) throw invalidArgument('budgetMs must be a non-negative number');
    return this.native.drainFor(budgetMs);
  }

  /** Deletes every command and document of this database (logout). Refuses while commands are unfinished. */
  async wipe(): Promise<void> {
    this.ensureOpen();
    await this.native.wipe();
  }

  /** Stops wiring and subscriptions and closes the engine. Later calls reject with `closed`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopPlatform();
    this.stopNative();
    this.tracker.close();
    this.events.clear();
    await this.native.close();
  }

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  private observe<T>(read: () => T, listener: (value: T) => void, relevant: (e: OutboxEvent) => boolean): Unsubscribe {
    this.ensureOpen();
    let active = true;
    const deliver = () => {
      if (!active || this.closed) return;
      let value: T;
      try {
        value = read();
      } catch (e) {
        this.onError(e);
        return;
      }
      try {
        listener(value);
      } catch (e) {
        this.onError(e);
      }
    };
    const again = coalesce(deliver);
    // Subscribe before the first read, so no change between the two is missed.
    const stop = this.events.subscribe((e) => {
      if (relevant(e)) again.request();
    });
    deliver();
    return () => {
      active = false;
      again.cancel();
      stop();
    };
  }

  private ensureOpen(): void {
    if (this.closed) throw new OutboxError('closed', 'this Outbox is closed');
  }
}

/** Default for `onError`: report and carry on. */
export function warn(e: unknown): void {
  // eslint-disable-next-line no-console
  console.warn('[outbox]', e);
}

/**
 * Builds `createOutbox` over a backend (JSI in the app, N-API in Node) and the platform
 * modules to wire by default.
 */
export function makeCreateOutbox(backend: Backend | (() => Backend), defaultPlatform: () => Platform) {
  return async function createOutbox(config: OutboxConfig): Promise<Outbox> {
    validate(config);
    const b = typeof backend === 'function' ? backend() : backend;
    const token = config.token;
    const native = await b.open({
      path: config.path,
      userId: config.userId,
      workspaceId: config.workspaceId,
      serverUrl: config.serverUrl ?? null,
      token: token === undefined ? null : typeof token === 'string' ? async () => token : async () => token(),
      startOnline: config.startOnline ?? true,
      maxConcurrency: config.maxConcurrency ?? null,
      maxAttempts: config.maxAttempts ?? null,
      attemptTimeoutMs: config.attemptTimeoutMs ?? null,
    });
    const outbox = new Outbox(native, config.onError ?? warn);
    try {
      const mutators = config.mutators ?? [];
      const entries: [string, MutatorOptions][] = Array.isArray(mutators)
        ? mutators.map((m) => [m, {}])
        : Object.entries(mutators);
      for (const [name, options] of entries) native.registerMutator(name, options);
      const platform = config.platform ?? defaultPlatform();
      outbox.attachPlatform({
        netInfo: config.autoOnline === false ? false : platform.netInfo,
        appState: config.autoLifecycle === false ? false : platform.appState,
      });
    } catch (e) {
      await outbox.close().catch(() => {});
      throw e;
    }
    return outbox;
  };
}

function validate(config: OutboxConfig): void {
  const bad = (what: string) => new OutboxError('invalid_config', what);
  if (config === null || typeof config !== 'object') throw bad('config must be an object');
  for (const field of ['path', 'userId', 'workspaceId'] as const) {
    if (typeof config[field] !== 'string' || config[field].length === 0) throw bad(`${field} must be a non-empty string`);
  }
  if (config.serverUrl !== undefined && !/^https?:\/\/[^/]/.test(config.serverUrl)) {
    throw bad('serverUrl must be an http(s) URL');
  }
  if (config.token !== undefined && typeof config.token !== 'string' && typeof config.token !== 'function') {
    throw bad('token must be a string or a function');
  }
  for (const field of ['maxConcurrency', 'maxAttempts', 'attemptTimeoutMs'] as const) {
    const v = config[field];
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw bad(`${field} must be a positive integer`);
  }
}
