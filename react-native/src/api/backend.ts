/**
 * The contract between the hand-written API and the generated bindings.
 *
 * The same generated TypeScript exists in two flavours: JSI (the app, through the
 * turbo-module) and N-API (Node, for the tests). `fromBindings` in `./adapter` turns either
 * into a {@link Backend}; everything above it (the `Outbox` class, platform wiring, hooks)
 * sees only these plain types and never imports generated code or `react-native`.
 *
 * Every method throws (or rejects with) an `OutboxError`.
 */
import type {
  CloseoutReport,
  Command,
  CommandState,
  Doc,
  DrainReport,
  Logger,
  LogLevel,
  MutatorOptions,
  OptimisticOp,
  OutboxEvent,
  PeekFilter,
  PendingEdit,
  Query,
  QueueStatus,
  ReceiptCheck,
  Resolution,
  Settlement,
  Transport,
  Unsubscribe,
  UpgradeReport,
} from './types';

/** Commit durability: `full` survives power loss (the default); `normal` may lose the last commits on power loss, never on an app crash. */
export type Durability = 'full' | 'normal';

/** What the engine needs to open a database. `null` means "the engine's default". */
export interface OpenOptions {
  /** Absolute path of the database file. */
  path: string;
  /** The signed-in user. */
  userId: string;
  /** The workspace (tenant). */
  workspaceId: string;
  /** Base URL of the sync server; without it (and without `transport`) commands stay queued. */
  serverUrl: string | null;
  /** Called before each request for a bearer token; `forceRefresh` is true after a 401. */
  token: ((forceRefresh: boolean) => Promise<string>) | null;
  /** The app's own transport instead of the built-in HTTP one. */
  transport: Transport | null;
  /** Whether the device is online at open. */
  startOnline: boolean;
  /** Transport calls in flight at once. */
  maxConcurrency: number | null;
  /** Independent commands per transport call. */
  maxBatchSize: number | null;
  /** Attempts before a command is parked as `wedged`. */
  maxAttempts: number | null;
  /** Delay after the first failed attempt, ms. */
  retryBaseMs: number | null;
  /** Largest delay between attempts, ms. */
  retryCapMs: number | null;
  /** Random spread of each retry delay (0..1). */
  retryJitter: number | null;
  /** Timeout of one attempt, ms. */
  attemptTimeoutMs: number | null;
  /** Drainer lease duration across processes, ms. */
  leaseTtlMs: number | null;
  /** Commit durability. */
  durability: Durability | null;
  /** How long succeeded and discarded commands are kept, ms. */
  retentionMs: number | null;
  /** Cap on the database size in bytes; writes beyond it fail with `storage_full`. */
  maxSizeBytes: number | null;
  /** Offline risk limit: most unsynced commands. */
  maxUnsynced: number | null;
  /** Offline risk limit: oldest unsynced command, ms. */
  maxUnsyncedAgeMs: number | null;
  /** Offline risk limit: largest summed amount of unsynced commands. */
  maxUnsyncedAmount: number | null;
  /** JSON pointer into the args of the integer amount, e.g. `/total_cents`. */
  limitAmountField: string | null;
  /** Soft threshold as a fraction of each limit (engine default 0.8). */
  limitWarnAt: number | null;
  /** Limits per mutator. */
  mutatorLimits: MutatorLimit[];
  /** Stall watchdog window, ms (0: off). */
  stallWindowMs: number | null;
}

/** Offline risk limits of one mutator. */
export interface MutatorLimit {
  mutator: string;
  maxUnsynced?: number;
  maxUnsyncedAmount?: number;
}

/** An enqueue request in plain types. */
export interface EnqueueInput {
  mutator: string;
  /** The args as JSON text (serialised by the caller, so a bad value never reaches the engine). */
  argsJson: string;
  keys: string[];
  after: string[];
  optimistic: OptimisticOp[];
  /** Metadata as JSON text. */
  metadataJson: string | null;
}

/**
 * One open engine. Every method that reads or writes the database or may wait returns a
 * promise and runs on the engine's threads, never on the JavaScript thread.
 */
export interface NativeOutbox {
  registerMutator(name: string, options: MutatorOptions): void;
  /** Registers `options.version` with its upgrader and upgrades the queue (see `MutatorOptions.upgrade`). */
  registerMutatorWithUpgrader(name: string, options: MutatorOptions): Promise<UpgradeReport>;
  enqueue(input: EnqueueInput): Promise<string>;
  waitFor(id: string): Promise<Settlement>;
  command(id: string): Promise<Command | null>;
  checkReceipt(id: string): Promise<ReceiptCheck>;
  peek(filter: PeekFilter): Promise<Command[]>;
  retry(id: string): Promise<void>;
  discard(id: string): Promise<void>;
  resolve(id: string, resolution: Resolution): Promise<void>;
  editPending(edits: PendingEdit[]): Promise<void>;
  get(collection: string, id: string): Promise<Doc | null>;
  list(collection: string, query: Query): Promise<Doc[]>;
  count(collection: string, query: Query): Promise<number>;
  createIndex(collection: string, field: string): Promise<void>;
  lastSyncedAt(): Promise<Record<string, number>>;
  /** Calls `onDocs` with the current result, then after every change. */
  watch(collection: string, query: Query, onDocs: (docs: Doc[]) => void, onError: (e: Error) => void): Unsubscribe;
  /** Calls `listener` for every engine event, from the engine's side (never inside a call). */
  events(listener: (event: OutboxEvent) => void): Unsubscribe;
  status(): Promise<QueueStatus>;
  syncNow(): Promise<void>;
  setOnline(online: boolean): Promise<void>;
  onForeground(): Promise<void>;
  onBackground(): Promise<void>;
  drainFor(budgetMs: number): Promise<DrainReport>;
  /** Drains for at most `deadlineMs`, then reports whether the till may close. */
  closeout(deadlineMs: number): Promise<CloseoutReport>;
  wipe(force: boolean): Promise<number>;
  deleteDatabase(force: boolean): Promise<number>;
  path(): string;
  /** Test hook of the stall watchdog (see `Outbox.wedgeDrainTimerForTest`); never for apps. */
  wedgeDrainTimerForTest(): void;
  /** Resolves once nothing of the engine is in flight. */
  close(): Promise<void>;
}

/** Opens engines and holds what is process-wide (the logger). */
export interface Backend {
  open(options: OpenOptions): Promise<NativeOutbox>;
  /** Routes the library's log records at `level` and above to `logger`. */
  setLogger(logger: Logger, level: LogLevel): void;
  /** Stops routing log records. */
  clearLogger(): void;
  /** The library's version. */
  version(): string;
  /** Log records dropped because the logger lagged behind. */
  droppedLogRecords(): number;
}

/** The states `peek` lists by default: everything not yet settled for good. */
export const UNFINISHED: CommandState[] = ['pending', 'in_flight', 'failed', 'conflict', 'wedged'];
