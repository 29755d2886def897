/**
 * Public types of the Outbox React Native API. Plain data only: JSON values are parsed,
 * ids are strings, counts and times are numbers (milliseconds since the Unix epoch).
 */

import type { LimitLevel } from './errors';

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A JSON object. */
export type JsonObject = { [key: string]: Json };

/** Where a command stands. `succeeded` is final; `failed`, `conflict` and `wedged` wait for a decision. */
export type CommandState =
  | 'pending'
  | 'in_flight'
  | 'succeeded'
  | 'failed'
  | 'conflict'
  | 'wedged'
  | 'discarded';

/** Where a document stands relative to the server. */
export type DocStatus = 'synced' | 'pending' | 'failed' | 'conflict';

/** How a settled command ended, or why it waits for a decision. */
export type Settlement =
  | { kind: 'succeeded'; result: Json }
  | { kind: 'failed'; code: string; message: string }
  | { kind: 'conflict'; serverSnapshot: Json }
  | { kind: 'wedged'; reason: string }
  | { kind: 'discarded' };

/** A document as the app sees it: the server's state with pending local changes applied. */
export interface Doc<T = Json> {
  /** Collection name. */
  collection: string;
  /** Document id. */
  id: string;
  /** The merged document. */
  value: T;
  /** Server version of the synced part; `null` until the server has sent it. */
  version: number | null;
  /** Sync status, for "pending" badges. */
  status: DocStatus;
  /** Unfinished (or failed) commands touching it, oldest first. */
  commands: string[];
}

/** Which documents `list`, `watch` and `useQuery` return. */
export interface Query {
  /** Top-level field equals value; all must hold. */
  where?: JsonObject;
  /** Sort by this top-level field (then by id); by id when absent. */
  orderBy?: string;
  /** Sort descending. */
  descending?: boolean;
  /** At most this many. */
  limit?: number;
  /** Skip this many first. */
  offset?: number;
}

/** A local change shown at once and rolled back if the command fails. */
export type OptimisticOp =
  | { collection: string; id: string; insert: JsonObject }
  | { collection: string; id: string; patch: JsonObject }
  | { collection: string; id: string; delete: true };

/** Options for `enqueue`. */
export interface EnqueueOptions {
  /** Explicit scheduling keys; derived from the args when absent. */
  keys?: string[];
  /** Commands (on other keys) that must succeed first, e.g. a payment after its order. */
  after?: string[];
  /** Local changes written in the same transaction as the command. */
  optimistic?: OptimisticOp[];
  /** Extra JSON metadata; a `trace_id` field is sent to the server. */
  metadata?: JsonObject;
}

/** How a mutator is handled locally. Registering is the allowlist. */
export interface MutatorOptions {
  /** Version of the argument shape (default 1), sent with every command. */
  version?: number;
  /**
   * Upgrades the args of commands queued under an older `version` (e.g. before an app
   * update): called once per never-attempted older command, at registration. Return the
   * new args, or throw to park that command as `wedged` (untouched) with your message.
   * Attempted commands are never upgraded: they are sent with the version they were
   * attempted with.
   */
  upgrade?: (fromVersion: number, args: Json) => Json;
  /** JSON pointers into the args whose values are the command's keys, e.g. `/order_id`. */
  keyPointers?: string[];
  /** Largest accepted args in bytes of JSON text (default 256 KiB). */
  maxArgsBytes?: number;
}

/** One attempt in a command's history. */
export interface Attempt {
  /** 1-based attempt number. */
  number: number;
  /** Start time. */
  startedAt: number;
  /** End time; `null` while in flight or if the process died. */
  endedAt: number | null;
  /** `applied`, `retry`, `rejected`, `conflict`, `unauthorized` or `offline`. */
  outcome: string | null;
  /** HTTP status when there was one. */
  httpStatus: number | null;
  /** Error text for failed attempts. */
  error: string | null;
}

/** A command as stored on the device. */
export interface Command {
  /** Its id (a UUID). */
  id: string;
  /** Enqueue order within this database. */
  seq: number;
  /** Mutator name. */
  mutator: string;
  /** Mutator version at enqueue. */
  mutatorVersion: number;
  /** Arguments. */
  args: Json;
  /** Scheduling keys (empty for the unkeyed lane). */
  keys: string[];
  /** Enqueue time. */
  createdAt: number;
  /** Current state. */
  state: CommandState;
  /** Attempts that counted toward the limit. */
  attempts: number;
  /** When the next attempt is due. */
  nextAttemptAt: number;
  /** The last failure, if any. */
  lastError: string | null;
  /** How it settled, once it has. */
  settlement: Settlement | null;
  /**
   * The server's receipt once it succeeded: proof the server applied it, and where and
   * when. `null` before that (and for commands that succeeded before receipts existed,
   * until `checkReceipt` asks).
   */
  receipt: Receipt | null;
  /** Attempt history, oldest first (filled by `command(id)`, empty in `peek`). */
  history: Attempt[];
}

/** The server's receipt for an applied command, the same on every resend. */
export interface Receipt {
  /** The workspace's change-feed position after the command. */
  serverSeq: number;
  /** Server time it was applied (Unix ms); `null` if the server did not record it. */
  appliedAt: number | null;
}

/**
 * The answer to "did this sale reach the server?" (`Outbox.checkReceipt`).
 * - `applied`: the server applied it, once. `recorded` is true when the command was
 *   pending, in flight or wedged and is now `succeeded` because of this answer.
 * - `not_applied`: the server has no record of it (as of now; a queued command may still be).
 * - `unknown`: the server could not be asked (`offline`, `unauthorized`, `unsupported`, `failed`).
 */
export type ReceiptCheck =
  | { kind: 'applied'; receipt: Receipt; recorded: boolean; state: CommandState }
  | { kind: 'not_applied'; state: CommandState }
  | { kind: 'unknown'; reason: 'offline' | 'unauthorized' | 'unsupported' | 'failed'; detail: string | null };

/** What a custom transport's `receipt` found out about one idempotency key. */
export type ReceiptLookup =
  | { kind: 'applied'; result?: Json; changes?: DocChange[]; receipt: Receipt }
  | { kind: 'not_found' }
  | { kind: 'offline' }
  | { kind: 'unauthorized' }
  | { kind: 'failed'; reason: string }
  | { kind: 'unsupported' };

/** The engine's queue counters (a snapshot). */
export interface QueueStatus {
  /** Commands waiting to be sent, including those waiting for a retry. */
  pending: number;
  /** Commands being sent now. */
  inFlight: number;
  /** Permanently rejected commands not yet discarded. */
  failed: number;
  /** Commands waiting for conflict resolution. */
  conflict: number;
  /** Commands whose attempts are exhausted. */
  wedged: number;
  /** Succeeded commands still kept for inspection. */
  succeeded: number;
  /** Whether the engine believes the device is online. */
  online: boolean;
  /** Whether this engine is the drainer for its database. */
  isDrainer: boolean;
  /** Age of the oldest unfinished command in ms; `null` when there is none. */
  oldestPendingAgeMs: number | null;
  /** When the next waiting retry is due, in ms from now; `null` when none waits. */
  nextAttemptInMs: number | null;
  /** Whether the engine believes the app is in the foreground. */
  foreground: boolean;
  /** The engine's last error text (a failed attempt or pass), if any. */
  lastErrorText: string | null;
  /** Attempts in a row that did not end `applied` (reset by the next applied one). */
  consecutiveFailures: number;
  /** When the server last applied a command from this database (ms since the epoch); `null`: never. */
  lastSuccessAt: number | null;
  /** When the last complete pull from the server finished (ms since the epoch); `null`: never. */
  lastPullAt: number | null;
  /** Bytes of the database in use. */
  storageUsedBytes: number;
  /** The configured size cap (`maxSizeBytes`), if any. */
  storageCapBytes: number | null;
  /** Whether enqueues are refused for space now (the queue still drains and makes room). */
  storageFull: boolean;
  /** Whether the stall watchdog reports the queue stalled now. */
  stalled: boolean;
}

/**
 * Why the stall watchdog thinks the queue stalled: a stuck drain timer, a send with no
 * answer (abandoned and retried under the same key), every drain pass failing because the
 * database cannot be written (the report's `detail` has the error), the drainer lease held
 * by another process, the server unreachable although the device is online, or nothing found.
 */
export type StallCause =
  | 'drain_loop_stuck'
  | 'send_hung'
  | 'drain_failing'
  | 'lease_held_elsewhere'
  | 'server_unreachable'
  | 'unknown';

/** What the stall watchdog found when it kicked the engine. */
export interface StallReport {
  cause: StallCause;
  /** One line for logs and support. */
  detail: string;
  /** How long nothing had moved, ms. */
  stalledForMs: number;
  /** Whether a command was ready to send. */
  ready: boolean;
  /** Commands marked in flight. */
  inFlight: number;
  /** Transport calls with no answer yet. */
  sendsInFlight: number;
  /** `held here`, `held by another engine for N ms more` or `free`. */
  lease: string;
  /** The network probe: `reachable`, `unreachable`, `unauthorized`, `failed: …`, …. */
  network: string;
  /** How long ago the drain loop last ran, ms. */
  lastPassAgoMs: number;
}

/** The last thing that went wrong while syncing, for an error line in the UI. */
export interface SyncError {
  /** Machine-readable code when there is one (`unauthorized`, a server rejection code, ...). */
  code: string | null;
  /** Human-readable text. */
  message: string;
  /** The command concerned, if any. */
  commandId: string | null;
  /** When it happened. */
  at: number;
}

/** Everything an offline banner and a "sync now" button need. */
export interface SyncStatus extends QueueStatus {
  /** Commands still to send (`pending + inFlight`). */
  outstanding: number;
  /** Whether commands are being sent right now. */
  syncing: boolean;
  /** Progress of the current drain: done of total; both 0 when the queue is empty. */
  progress: { done: number; total: number };
  /** The last sync error; cleared when a later attempt is applied. */
  lastError: SyncError | null;
}

/** Result of `drainFor`. */
export interface DrainReport {
  /** Attempts that finished during the drain. */
  attempts: number;
  /** Commands that succeeded during the drain. */
  succeeded: number;
  /** Commands that failed for good during the drain (dependants included). */
  failed: number;
  /** Commands still outstanding when it ended. */
  remaining: number;
  /** Whether the queue was empty when it ended. */
  completed: boolean;
}

/** How to settle a command in `conflict`. */
export type Resolution = { kind: 'discard' } | { kind: 'retryWith'; args: JsonObject };

/** What `peek` lists. */
export interface PeekFilter {
  /** Only these states (all unfinished ones when absent). */
  states?: CommandState[];
  /** Only commands holding this scheduling key, e.g. `sku:42`. */
  key?: string;
  /** Only this mutator. */
  mutator?: string;
  /** At most this many, oldest first. */
  limit?: number;
}

/** Something that happened in the engine. */
export type OutboxEvent =
  | { type: 'enqueued'; id: string; mutator: string }
  | { type: 'attemptStarted'; id: string; attempt: number }
  | { type: 'attemptFinished'; id: string; attempt: number; outcome: string; error: string | null }
  | { type: 'stateChanged'; id: string; from: CommandState; to: CommandState }
  | { type: 'onlineChanged'; online: boolean }
  | { type: 'foregroundChanged'; foreground: boolean }
  | { type: 'leaseChanged'; isDrainer: boolean }
  | { type: 'authRequired' }
  | { type: 'accessDenied'; message: string }
  | ({ type: 'limitWarning' } & LimitLevel)
  | { type: 'idle' }
  | { type: 'collectionsChanged'; collections: string[] }
  | { type: 'rolledBack'; id: string; code: string; message: string; docs: { collection: string; id: string }[] }
  | { type: 'synced' }
  | { type: 'queueStalled'; report: StallReport }
  | { type: 'queueRecovered'; cause: StallCause; stalledForMs: number; how: string }
  | { type: 'lagged'; missed: number };

/** The `type` of an {@link OutboxEvent}. */
export type OutboxEventType = OutboxEvent['type'];

/** Stops a subscription. Calling it twice is harmless. */
export type Unsubscribe = () => void;

/**
 * An edit of commands that were never attempted (the server cannot have seen them):
 * rewrite their args, drop them, or squash several on the same keys into one (e.g. ten
 * queued stock adjustments of one SKU into a single one). Attempted commands are immutable.
 */
export type PendingEdit =
  | { kind: 'rewrite'; id: string; args: Json }
  | { kind: 'drop'; id: string }
  | { kind: 'squash'; into: string; ids: string[]; args: Json };

/** Severity of a log record. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Receives the library's log records (never tokens, args or documents). */
export type Logger = (level: LogLevel, target: string, message: string) => void;

/** One command handed to a custom {@link Transport}. */
export interface OutgoingCommand {
  /** The command's id. */
  id: string;
  /** Send it as the idempotency key; identical on every attempt. */
  idempotencyKey: string;
  /** Mutator name. */
  mutator: string;
  /** Mutator version. */
  mutatorVersion: number;
  /** Scheduling keys (no two commands of one batch share a key). */
  keys: string[];
  /** Arguments. */
  args: Json;
  /** `{"collection:id": version}` of the documents its optimistic ops touched. */
  baseVersions: Record<string, number>;
  /** Metadata (`trace_id` included when set). */
  metadata: JsonObject;
  /** 1 for the first attempt, 2 for the second, ... */
  attempt: number;
}

/** A document version reported by the server. */
export interface DocChange {
  /** Collection name. */
  collection: string;
  /** Document id. */
  id: string;
  /** Server version after the change. */
  version: number;
  /** The document, or `null` when it was deleted. */
  doc: JsonObject | null;
}

/** What happened to one command sent by a custom {@link Transport}. */
export type SendOutcome =
  | { kind: 'applied'; result?: Json; changes?: DocChange[] }
  | { kind: 'retry'; reason: string; retryAfterMs?: number; httpStatus?: number }
  | { kind: 'rejected'; code: string; message: string }
  | { kind: 'conflict'; serverSnapshot: Json }
  | { kind: 'unauthorized' }
  | { kind: 'offline' };

/** What a custom {@link Transport}'s `pull` returned. */
export type PullResult =
  | { kind: 'page'; changes: DocChange[]; cursor: string; hasMore: boolean }
  | { kind: 'offline' }
  | { kind: 'unauthorized' }
  | { kind: 'failed'; reason: string }
  | { kind: 'unsupported' }
  /** The server cannot continue from `cursor` (another server epoch, or past its head): Outbox pulls again from the start and swaps the rebuilt state in at the end. */
  | { kind: 'cursorReset'; reason: string };

/**
 * Sends commands with the app's own network stack instead of the built-in HTTP transport.
 * A throw (or a rejected promise) counts as a transient failure of the whole batch: the
 * commands are resent later under the same idempotency keys.
 */
export interface Transport {
  /** Sends one batch; returns exactly one outcome per command, in batch order. */
  send(batch: OutgoingCommand[]): Promise<SendOutcome[]>;
  /** Reads one page of the change feed after `cursor` (`null`: from the start). Absent: no feed. */
  pull?(cursor: string | null, limit: number): Promise<PullResult>;
  /**
   * Asks the server whether it applied the command sent under `idempotencyKey`
   * (`GET /v1/commands/{key}`). Absent: `checkReceipt` answers `unknown` / `unsupported`.
   */
  receipt?(idempotencyKey: string): Promise<ReceiptLookup>;
}

/** What `logout` did. */
export interface LogoutResult {
  /** Unsent commands dropped (0 unless `force` was given and some remained). */
  dropped: number;
  /** Whether the queue had drained before the database was deleted. */
  drained: boolean;
}

/** What registering a mutator with `upgrade` did to the queue. */
export interface UpgradeReport {
  /** Never-attempted commands that now carry the new version and upgraded args. */
  upgraded: number;
  /** Commands whose upgrade failed: untouched, parked as `wedged` with the reason. */
  wedged: number;
}

/** Count and summed amount of the commands in one state. */
export interface StateTotal {
  state: CommandState;
  count: number;
  /** Sum of their amounts (`limitAmountField`; 0 without one). */
  amount: number;
}

/** A command the server has not applied, and why. */
export interface Unsettled {
  id: string;
  mutator: string;
  state: CommandState;
  createdAtMs: number;
  amount: number | null;
  /** Why it is not settled, for staff. */
  reason: string;
}

/** The end-of-day report of `closeout`: refuse to close the till unless `clean`. */
export interface CloseoutReport {
  /** True when nothing is unsynced (pending, in flight, conflict, wedged or failed). */
  clean: boolean;
  states: StateTotal[];
  oldestUnsynced: Unsettled | null;
  /** Every unsynced command with its reason, in enqueue order. */
  unsettled: Unsettled[];
  /** What the drain achieved before the report. */
  drain: DrainReport;
}
