/**
 * The `Outbox` class and `createOutbox`: the promise-based API apps use.
 *
 * Every call returns a promise and every failure is an `OutboxError` with a `code`. Calls
 * that touch the database or the network run on the engine's threads: the JavaScript
 * thread only converts arguments, so a sale never stalls the UI for an fsync.
 * Subscriptions (`on`, `watch`, `observe*`) return an unsubscribe function. This file
 * adapts only: ordering, retries and storage are the engine's.
 */
import type { Backend, Durability, MutatorLimit, NativeOutbox } from './backend';
import { UNFINISHED } from './backend';
import { Emitter, serialRefresh } from './emitter';
import { invalidArgument, isOutboxError, OutboxError, toJson } from './errors';
import type { Platform } from './platform';
import { wirePlatform } from './platform';
import { StatusTracker } from './status';
import type {
  Command,
  Doc,
  CloseoutReport,
  DrainReport,
  EnqueueOptions,
  Json,
  LogoutResult,
  MutatorOptions,
  OutboxEvent,
  OutboxEventType,
  PeekFilter,
  PendingEdit,
  Query,
  QueueStatus,
  ReceiptCheck,
  Resolution,
  Settlement,
  SyncStatus,
  Transport,
  Unsubscribe,
  UpgradeReport,
} from './types';

/** Everything `createOutbox` needs. Only `path`, `userId` and `workspaceId` are required. */
export interface OutboxConfig {
  /** Absolute path of the database file, in the app's private data directory (see `databasePath`). */
  path: string;
  /** The signed-in user; data is scoped per (user, workspace). */
  userId: string;
  /** The workspace (tenant). */
  workspaceId: string;
  /** Base URL of the sync server, e.g. `https://api.example.com`. Without it commands stay queued. */
  serverUrl?: string;
  /**
   * Bearer token, or a function called before each request for a fresh one. It gets
   * `forceRefresh: true` after the server refused the previous token (401): fetch a new
   * one then. Never stored.
   */
  token?: string | ((forceRefresh: boolean) => string | Promise<string>);
  /** Send with the app's own network stack instead of the built-in HTTP transport (`serverUrl` is then ignored). */
  transport?: Transport;
  /** Mutators to register (the allowlist): names, or names with options. */
  mutators?: string[] | Record<string, MutatorOptions>;
  /** Whether to assume the device is online until NetInfo reports (default true). */
  startOnline?: boolean;
  /** Transport calls in flight at once (engine default 4). */
  maxConcurrency?: number;
  /** Independent commands per transport call (engine default 25, at most 100 over HTTP). */
  maxBatchSize?: number;
  /** Attempts before a command is parked as `wedged` (engine default 10). */
  maxAttempts?: number;
  /** Delay after the first failed attempt in ms (engine default 1 000). */
  retryBaseMs?: number;
  /** Largest delay between attempts in ms (engine default 60 000). */
  retryCapMs?: number;
  /** Random spread of each retry delay, 0..1 (engine default 0.3: between 70% and 130%). */
  retryJitter?: number;
  /** Timeout of one attempt in ms (engine default 15 000). */
  attemptTimeoutMs?: number;
  /** Drainer lease duration across processes in ms (engine default 5 000). */
  leaseTtlMs?: number;
  /**
   * `full` (default): a sale is on disk when `enqueue` resolves, power loss included.
   * `normal`: faster; the last sales may be lost on power loss (never on an app crash).
   */
  durability?: Durability;
  /** How long succeeded and discarded commands are kept for inspection in ms (engine default 7 days). */
  retentionMs?: number;
  /**
   * Cap on the database file's size in bytes. Enqueues fail with `storage_full` once the cap
   * minus a reserve only the drain uses (an eighth) is reached; the queue still drains and
   * settled commands are pruned early to make room.
   */
  maxSizeBytes?: number;
  /**
   * Offline risk limit: most unsynced commands (pending, in flight, conflict, wedged or
   * failed). `enqueue` beyond it rejects with `limit_exceeded` and writes nothing.
   */
  maxUnsynced?: number;
  /** Offline risk limit: oldest an unsynced command may be, ms, before `enqueue` is refused. */
  maxUnsyncedAgeMs?: number;
  /** Offline risk limit: largest sum of `limitAmountField` over unsynced commands. */
  maxUnsyncedAmount?: number;
  /** JSON pointer into the args of the integer amount the amount limit sums, e.g. `/total_cents`. */
  limitAmountField?: string;
  /** Soft threshold as a fraction of each limit (default 0.8): a `limitWarning` event at or above it. */
  limitWarnAt?: number;
  /** Limits per mutator, on top of the global ones. */
  mutatorLimits?: MutatorLimit[];
  /**
   * How long the queue may sit online with commands ready and nothing attempted or settled
   * before the stall watchdog kicks it and emits `queueStalled`, ms (engine default 30 000;
   * 0 turns it off).
   */
  stallWindowMs?: number;
  /** Report NetInfo connectivity with `setOnline` (default true). */
  autoOnline?: boolean;
  /** Report AppState changes with `onForeground`/`onBackground` (default true). */
  autoLifecycle?: boolean;
  /** Other connectivity/lifecycle sources than React Native's own (tests, custom apps). */
  platform?: Platform;
  /** Receives errors no caller can catch (a throwing listener, a failed report). Default: `console.warn`. */
  onError?: (error: unknown) => void;
}

/** Options of `logout`. */
export interface LogoutOptions {
  /** First drain for at most this long (ms), e.g. 10 000 while a "syncing…" screen shows. Default 0. */
  waitMs?: number;
  /** Delete even if unsent commands remain; they are dropped and counted. Default false. */
  force?: boolean;
}

/** An open Outbox. Create it with `createOutbox`; close it with `close()`. */
export class Outbox {
  private readonly events: Emitter<OutboxEvent>;
  private readonly tracker: StatusTracker;
  private readonly stopNative: Unsubscribe;
  private stopPlatform: Unsubscribe = () => {};
  private closed = false;
  private closing: Promise<void> | null = null;

  /** @internal use `createOutbox`. */
  constructor(
    private readonly native: NativeOutbox,
    private readonly onError: (e: unknown) => void,
    initialStatus: QueueStatus,
    /** The config it was opened with (tokens and transports included; never stored). */
    readonly config: Readonly<OutboxConfig>,
  ) {
    this.events = new Emitter<OutboxEvent>(onError);
    this.tracker = new StatusTracker(() => native.status(), onError, initialStatus);
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

  /** The database file this Outbox uses. */
  get path(): string {
    return this.native.path();
  }

  /** The (user, workspace) it belongs to. */
  get scope(): { userId: string; workspaceId: string } {
    return { userId: this.config.userId, workspaceId: this.config.workspaceId };
  }

  /**
   * Allows `name` to be enqueued (the allowlist), with its version, key pointers and size
   * limit; registering again replaces the options. With `options.upgrade`, commands queued
   * under an older version that were never attempted are upgraded now, in one
   * transaction (see "Shipping a new version of a mutator" in docs/engine.md).
   */
  async registerMutator(name: string, options: MutatorOptions = {}): Promise<UpgradeReport> {
    this.ensureOpen();
    if (typeof name !== 'string' || name.length === 0) throw invalidArgument('mutator name must be a non-empty string');
    if (options.upgrade !== undefined && typeof options.upgrade !== 'function') throw invalidArgument('upgrade must be a function');
    if (options.upgrade !== undefined) return this.native.registerMutatorWithUpgrader(name, options);
    this.native.registerMutator(name, options);
    return { upgraded: 0, wedged: 0 };
  }

  /**
   * Durably enqueues a command: when the promise resolves, the command and its optimistic
   * changes are committed on the device. Resolves to the command id. Args with no JSON
   * form (a BigInt, a cycle) reject with `invalid_json` and nothing is written.
   */
  async enqueue(mutator: string, args: Json, options: EnqueueOptions = {}): Promise<string> {
    this.ensureOpen();
    if (typeof mutator !== 'string' || mutator.length === 0) throw invalidArgument('mutator must be a non-empty string');
    const argsJson = toJson(args, 'args');
    const metadataJson = options.metadata === undefined ? null : toJson(options.metadata, 'metadata');
    return this.native.enqueue({
      mutator,
      argsJson,
      keys: options.keys ?? [],
      after: options.after ?? [],
      optimistic: options.optimistic ?? [],
      metadataJson,
    });
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

  /**
   * Asks the server whether it applied command `id` ("did this sale reach the server?"),
   * by the command's idempotency key; works for any command, including one that was in
   * flight when the app died. An `applied` answer for a command that was pending, in
   * flight or wedged is recorded (it becomes `succeeded`; safe, the server never applies
   * one key twice). Rejects only for an unknown id or a closed outbox.
   */
  async checkReceipt(id: string): Promise<ReceiptCheck> {
    this.ensureOpen();
    return this.native.checkReceipt(id);
  }

  /** Commands in enqueue order; by default every unfinished one. */
  async peek(filter: PeekFilter = {}): Promise<Command[]> {
    this.ensureOpen();
    return this.native.peek({ ...filter, states: filter.states ?? UNFINISHED });
  }

  /**
   * Tries a `wedged` or `failed` command again with a fresh attempt budget. A failed one is
   * sent under a fresh idempotency key, and the commands that failed because of it become
   * pending with it.
   */
  async retry(id: string): Promise<void> {
    this.ensureOpen();
    await this.native.retry(id);
  }

  /** Gives up on a command that is not in flight; its optimistic changes disappear. */
  async discard(id: string): Promise<void> {
    this.ensureOpen();
    await this.native.discard(id);
  }

  /** Settles a command in `conflict`: discard it or retry it with new args. */
  async resolve(id: string, resolution: Resolution): Promise<void> {
    this.ensureOpen();
    await this.native.resolve(id, resolution);
  }

  /**
   * Rewrites, drops or squashes commands that were never attempted, all or none: e.g.
   * fold ten queued `adjustStock` of one SKU into one before the register reconnects.
   * An attempted command is refused with `immutable`.
   */
  async editPending(edits: PendingEdit[]): Promise<void> {
    this.ensureOpen();
    if (!Array.isArray(edits)) throw invalidArgument('edits must be an array');
    await this.native.editPending(edits);
  }

  /** One document as the app sees it, or `null`. */
  async get<T = Json>(collection: string, id: string): Promise<Doc<T> | null> {
    this.ensureOpen();
    return (await this.native.get(collection, id)) as Doc<T> | null;
  }

  /** Documents matching `query`, pending changes applied. */
  async list<T = Json>(collection: string, query: Query = {}): Promise<Doc<T>[]> {
    this.ensureOpen();
    return (await this.native.list(collection, query)) as Doc<T>[];
  }

  /** How many documents match `query` (`limit` and `offset` ignored). */
  async count(collection: string, query: Query = {}): Promise<number> {
    this.ensureOpen();
    return this.native.count(collection, query);
  }

  /** Indexes a top-level field so filters and ordering on it stay fast. */
  async createIndex(collection: string, field: string): Promise<void> {
    this.ensureOpen();
    await this.native.createIndex(collection, field);
  }

  /** When each collection last received server data (ms since the epoch), by collection. */
  async lastSyncedAt(): Promise<Record<string, number>> {
    this.ensureOpen();
    return this.native.lastSyncedAt();
  }

  /** Calls `listener` with the current result of `query`, then whenever it changes. */
  watch<T = Json>(collection: string, query: Query, listener: (docs: Doc<T>[]) => void, onError?: (e: Error) => void): Unsubscribe {
    this.ensureOpen();
    return this.native.watch(
      collection,
      query,
      (docs) => {
        if (this.closed) return;
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
    await this.tracker.reload();
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
      async () => (await this.native.get(collection, id)) as Doc<T> | null,
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
    await this.native.syncNow();
  }

  /** Reports connectivity (done automatically from NetInfo unless `autoOnline: false`). */
  async setOnline(online: boolean): Promise<void> {
    this.ensureOpen();
    await this.native.setOnline(online);
    await this.tracker.reload();
  }

  /** Reports that the app came to the foreground (automatic from AppState by default). */
  async onForeground(): Promise<void> {
    this.ensureOpen();
    await this.native.onForeground();
  }

  /** Reports that the app went to the background (automatic from AppState by default). */
  async onBackground(): Promise<void> {
    this.ensureOpen();
    await this.native.onBackground();
  }

  /**
   * End of day: drains for at most `deadlineMs`, then reports whether the till may close.
   * Refuse to close the till unless `report.clean`; `report.unsettled` says why not.
   */
  async closeout(deadlineMs: number): Promise<CloseoutReport> {
    this.ensureOpen();
    if (!Number.isFinite(deadlineMs) || deadlineMs < 0) throw invalidArgument('deadlineMs must be a non-negative number');
    return this.native.closeout(deadlineMs);
  }

  /** Sends for at most `budgetMs` (e.g. in a background task) and reports how far it got. */
  async drainFor(budgetMs: number): Promise<DrainReport> {
    this.ensureOpen();
    if (!Number.isFinite(budgetMs) || budgetMs < 0) throw invalidArgument('budgetMs must be a non-negative number');
    return this.native.drainFor(budgetMs);
  }

  /**
   * Deletes every command and document of this database (the file stays). Without
   * `force` it rejects with `unsent_commands` while anything the server has not applied
   * remains; with `force` those are dropped and their number is returned.
   */
  async wipe(options: { force?: boolean } = {}): Promise<number> {
    this.ensureOpen();
    return this.native.wipe(options.force === true);
  }

  /**
   * Deletes the database file (with its `-wal`/`-shm`) and closes this Outbox. Without
   * `force` it rejects with `unsent_commands`, touching nothing, while unsent commands
   * remain; with `force` they are dropped and their number is returned.
   */
  async deleteDatabase(options: { force?: boolean } = {}): Promise<number> {
    this.ensureOpen();
    const dropped = await this.native.deleteDatabase(options.force === true);
    await this.close();
    return dropped;
  }

  /**
   * Signs this register's user out for good: optionally drains for `waitMs` first, then
   * deletes the database. With unsent sales left and no `force`, it rejects with
   * `unsent_commands` (its `message` says how many) and leaves everything in place, so the
   * app can ask "drop N unsent sales?" and call again with `force: true`.
   */
  async logout(options: LogoutOptions = {}): Promise<LogoutResult> {
    this.ensureOpen();
    const waitMs = options.waitMs ?? 0;
    if (!Number.isFinite(waitMs) || waitMs < 0) throw invalidArgument('waitMs must be a non-negative number');
    let drained = false;
    if (waitMs > 0) drained = (await this.native.drainFor(waitMs)).remaining === 0;
    const status = await this.native.status();
    const unsent = status.pending + status.inFlight + status.failed + status.conflict + status.wedged;
    if (unsent > 0 && options.force !== true) {
      const by = `pending ${status.pending}, in flight ${status.inFlight}, failed ${status.failed}, conflict ${status.conflict}, wedged ${status.wedged}`;
      throw new OutboxError('unsent_commands', `${unsent} unsent command(s) remain (${by}); logout({ force: true }) drops them`);
    }
    drained = drained || unsent === 0;
    const dropped = await this.deleteDatabase({ force: options.force === true });
    return { dropped, drained };
  }

  /**
   * Stops wiring and subscriptions and closes the engine. Resolves once nothing of it is
   * in flight: sends already on the wire are answered and recorded (within the attempt
   * timeout), and no request of this Outbox reaches the server afterwards. Later calls
   * reject with `closed`.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closed = true;
    this.stopPlatform();
    this.stopNative();
    this.tracker.close();
    this.events.clear();
    this.closing = this.native.close();
    return this.closing;
  }

  /**
   * @internal TEST HOOK, NOT API: never call this from an app. It exists only so the
   * binding tests can exercise the stall watchdog: the drain loop's next wait ignores its
   * timer and every wake-up (a stuck timer) until the watchdog reports `queueStalled`
   * (cause `drain_loop_stuck`) and kicks it.
   */
  wedgeDrainTimerForTest(): void {
    this.ensureOpen();
    this.native.wedgeDrainTimerForTest();
  }

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  private observe<T>(read: () => Promise<T>, listener: (value: T) => void, relevant: (e: OutboxEvent) => boolean): Unsubscribe {
    this.ensureOpen();
    let active = true;
    const refresh = serialRefresh(async () => {
      if (!active || this.closed) return;
      let value: T;
      try {
        value = await read();
      } catch (e) {
        if (active && !this.closed && !isOutboxError(e, 'closed')) this.onError(e);
        return;
      }
      // A result that arrives after unsubscribe or close is dropped.
      if (!active || this.closed) return;
      try {
        listener(value);
      } catch (e) {
        this.onError(e);
      }
    });
    // Subscribe before the first read, so no change between the two is missed.
    const stop = this.events.subscribe((e) => {
      if (relevant(e)) refresh.request();
    });
    refresh.now();
    return () => {
      active = false;
      refresh.cancel();
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
    // With upgraders, open offline and register first, so no older command is sent
    // before the queue is upgraded; then go online as asked.
    const upgrading = config.mutators !== undefined && !Array.isArray(config.mutators) &&
      Object.values(config.mutators).some((o) => o.upgrade !== undefined);
    const startOnline = config.startOnline ?? true;
    const native = await b.open({
      path: config.path,
      userId: config.userId,
      workspaceId: config.workspaceId,
      serverUrl: config.serverUrl ?? null,
      token:
        token === undefined
          ? null
          : typeof token === 'string'
            ? async () => token
            : async (forceRefresh: boolean) => token(forceRefresh),
      transport: config.transport ?? null,
      startOnline: upgrading ? false : startOnline,
      maxConcurrency: config.maxConcurrency ?? null,
      maxBatchSize: config.maxBatchSize ?? null,
      maxAttempts: config.maxAttempts ?? null,
      retryBaseMs: config.retryBaseMs ?? null,
      retryCapMs: config.retryCapMs ?? null,
      retryJitter: config.retryJitter ?? null,
      attemptTimeoutMs: config.attemptTimeoutMs ?? null,
      leaseTtlMs: config.leaseTtlMs ?? null,
      durability: config.durability ?? null,
      retentionMs: config.retentionMs ?? null,
      maxSizeBytes: config.maxSizeBytes ?? null,
      maxUnsynced: config.maxUnsynced ?? null,
      maxUnsyncedAgeMs: config.maxUnsyncedAgeMs ?? null,
      maxUnsyncedAmount: config.maxUnsyncedAmount ?? null,
      limitAmountField: config.limitAmountField ?? null,
      limitWarnAt: config.limitWarnAt ?? null,
      mutatorLimits: config.mutatorLimits ?? [],
      stallWindowMs: config.stallWindowMs ?? null,
    });
    let outbox: Outbox | null = null;
    try {
      const mutators = config.mutators ?? [];
      const entries: [string, MutatorOptions][] = Array.isArray(mutators)
        ? mutators.map((m) => [m, {}])
        : Object.entries(mutators);
      for (const [name, options] of entries) {
        if (options.upgrade !== undefined) await native.registerMutatorWithUpgrader(name, options);
        else native.registerMutator(name, options);
      }
      if (upgrading && startOnline) await native.setOnline(true);
      outbox = new Outbox(native, config.onError ?? warn, await native.status(), { ...config });
      const platform = config.platform ?? defaultPlatform();
      outbox.attachPlatform({
        netInfo: config.autoOnline === false ? false : platform.netInfo,
        appState: config.autoLifecycle === false ? false : platform.appState,
      });
    } catch (e) {
      await (outbox !== null ? outbox.close() : native.close()).catch(() => {});
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
  if (config.transport !== undefined && (config.transport === null || typeof config.transport.send !== 'function')) {
    throw bad('transport must be an object with a send(batch) method');
  }
  for (const field of ['maxConcurrency', 'maxBatchSize', 'maxAttempts', 'attemptTimeoutMs', 'leaseTtlMs'] as const) {
    const v = config[field];
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw bad(`${field} must be a positive integer`);
  }
  for (const field of ['retryBaseMs', 'retryCapMs', 'retentionMs', 'maxSizeBytes', 'maxUnsynced', 'maxUnsyncedAgeMs', 'stallWindowMs'] as const) {
    const v = config[field];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw bad(`${field} must be a non-negative integer`);
  }
  if (config.retryJitter !== undefined && !(Number.isFinite(config.retryJitter) && config.retryJitter >= 0 && config.retryJitter <= 1)) {
    throw bad('retryJitter must be a number from 0 to 1');
  }
  if (config.durability !== undefined && config.durability !== 'full' && config.durability !== 'normal') {
    throw bad("durability must be 'full' or 'normal'");
  }
}
