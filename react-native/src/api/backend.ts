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
  Command,
  CommandState,
  Doc,
  DrainReport,
  Json,
  MutatorOptions,
  OptimisticOp,
  OutboxEvent,
  PeekFilter,
  Query,
  QueueStatus,
  Resolution,
  Settlement,
  Unsubscribe,
} from './types';

/** What the engine needs to open a database. */
export interface OpenOptions {
  /** Absolute path of the database file. */
  path: string;
  /** The signed-in user. */
  userId: string;
  /** The workspace (tenant). */
  workspaceId: string;
  /** Base URL of the sync server; without it commands stay queued. */
  serverUrl: string | null;
  /** Called before each request for a fresh bearer token. */
  token: (() => Promise<string>) | null;
  /** Whether the device is online at open. */
  startOnline: boolean;
  /** Transport calls in flight at once. */
  maxConcurrency: number | null;
  /** Attempts before a command is parked as `wedged`. */
  maxAttempts: number | null;
  /** Timeout of one attempt, ms. */
  attemptTimeoutMs: number | null;
}

/** An enqueue request in plain types. */
export interface EnqueueInput {
  mutator: string;
  args: Json;
  keys: string[];
  after: string[];
  optimistic: OptimisticOp[];
  metadata: Json | null;
}

/** One open engine. */
export interface NativeOutbox {
  registerMutator(name: string, options: MutatorOptions): void;
  enqueue(input: EnqueueInput): string;
  waitFor(id: string): Promise<Settlement>;
  command(id: string): Command | null;
  peek(filter: PeekFilter): Command[];
  retry(id: string): void;
  discard(id: string): void;
  resolve(id: string, resolution: Resolution): void;
  get(collection: string, id: string): Doc | null;
  list(collection: string, query: Query): Doc[];
  /** Calls `onDocs` with the current result, then after every change. */
  watch(collection: string, query: Query, onDocs: (docs: Doc[]) => void, onError: (e: Error) => void): Unsubscribe;
  /** Calls `listener` for every engine event, from the engine's side (never inside a call). */
  events(listener: (event: OutboxEvent) => void): Unsubscribe;
  status(): QueueStatus;
  syncNow(): void;
  setOnline(online: boolean): void;
  onForeground(): void;
  onBackground(): void;
  drainFor(budgetMs: number): Promise<DrainReport>;
  wipe(): Promise<void>;
  close(): Promise<void>;
}

/** Opens engines. */
export interface Backend {
  open(options: OpenOptions): Promise<NativeOutbox>;
}

/** The states `peek` lists by default: everything not yet settled for good. */
export const UNFINISHED: CommandState[] = ['pending', 'in_flight', 'failed', 'conflict', 'wedged'];
