/**
 * Typed errors. Every failure of the Outbox API is an {@link OutboxError} with a stable
 * machine-readable `code`; codes are only ever added, never renamed or removed.
 */

/** Codes that the engine and this package produce (other strings may be added later). */
export type OutboxErrorCode =
  | 'unknown_mutator'
  | 'invalid_json'
  | 'args_too_large'
  | 'invalid_key'
  | 'invalid_request'
  | 'unknown_command'
  | 'invalid_state'
  | 'immutable'
  | 'storage_full'
  | 'db_newer_version'
  | 'db_corrupt'
  | 'db_unwritable'
  | 'scope_mismatch'
  | 'invalid_config'
  | 'closed'
  | 'unsent_commands'
  | 'background_unavailable'
  | 'fenced'
  | 'timeout'
  | 'busy'
  | 'limit_exceeded'
  | 'storage'
  | 'internal'
  // Other codes reported by the engine keep their own string.
  | (string & {});

/** An error from Outbox. Match on `code`, show `message`. */
export class OutboxError extends Error {
  /** Stable machine-readable code, e.g. `unknown_mutator`. */
  readonly code: OutboxErrorCode;
  /** Extra diagnostic text (never tokens, arguments or documents). */
  readonly details: string | null;

  /** For `limit_exceeded`: which offline risk limit, its value now and its maximum. */
  readonly limit: LimitLevel | null;

  /** An error with `code` and `message`. */
  constructor(code: OutboxErrorCode, message: string, details: string | null = null, limit: LimitLevel | null = null) {
    super(message);
    this.name = 'OutboxError';
    this.code = code;
    this.details = details;
    this.limit = limit;
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/** Which offline risk limit (see `OutboxConfig.maxUnsynced` and its siblings). */
export type LimitKind = 'unsynced_count' | 'unsynced_age' | 'unsynced_amount';

/** A limit's level: in a `limit_exceeded` error (before the refused enqueue) or a `limitWarning` event (after). */
export interface LimitLevel {
  limit: LimitKind;
  /** The mutator, for a per-mutator limit. */
  mutator: string | null;
  /** Count, age in ms, or summed amount. */
  current: number;
  max: number;
}

/** Whether `e` is an {@link OutboxError}, optionally with the given `code`. */
export function isOutboxError(e: unknown, code?: OutboxErrorCode): e is OutboxError {
  return e instanceof OutboxError && (code === undefined || e.code === code);
}

/** `UnknownMutator` → `unknown_mutator`. */
export function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

/** An error for bad input caught in TypeScript before it reaches the engine. */
export function invalidArgument(what: string): OutboxError {
  return new OutboxError('invalid_request', what);
}

/**
 * `value` as JSON text, or an `invalid_json` error naming `field` when it has no JSON form
 * (a BigInt, a cycle, `undefined`, a function): bad input is refused before it reaches the
 * engine, and nothing is written.
 */
export function toJson(value: unknown, field: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new OutboxError('invalid_json', `${field} cannot be serialised to JSON`, e instanceof Error ? e.message : String(e));
  }
  if (text === undefined) throw new OutboxError('invalid_json', `${field} is not a JSON value (got ${typeof value})`);
  return text;
}
