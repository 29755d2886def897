/**
 * The one file that knows the generated bindings: turns them into a {@link Backend} of
 * plain TypeScript values. JSON text is parsed, `bigint` counts and times become numbers,
 * generated enums become string unions, and every generated error becomes an
 * {@link OutboxError} with the engine's stable code (`OutboxError.code(e)` in Rust).
 *
 * The same code runs over the JSI flavour (the app) and the N-API flavour (Node tests):
 * both generated modules have the same declarations.
 */
import type * as Generated from '../generated/outbox_ffi';
import type { Backend, EnqueueInput, NativeOutbox, OpenOptions } from './backend';
import { OutboxError, snakeCase, toJson } from './errors';
import type { LimitKind } from './errors';
import type {
  CloseoutReport,
  Unsettled,
  Attempt,
  Command,
  CommandState,
  Doc,
  DocChange,
  DocStatus,
  DrainReport,
  Json,
  JsonObject,
  Logger,
  LogLevel,
  MutatorOptions,
  OptimisticOp,
  OutboxEvent,
  OutgoingCommand,
  PeekFilter,
  PendingEdit,
  Query,
  QueueStatus,
  StallCause,
  Receipt,
  ReceiptCheck,
  Resolution,
  SendOutcome,
  Settlement,
  Transport,
  Unsubscribe,
} from './types';

/** The generated module (`src/generated/outbox_ffi`, or the N-API copy in tests). */
export type GeneratedModule = Omit<typeof Generated, 'default'>;

/** Builds the backend over a generated module. */
export function fromBindings(m: GeneratedModule): Backend {
  const convert = converters(m);
  const { guard, guardAsync } = convert;
  return {
    async open(options: OpenOptions): Promise<NativeOutbox> {
      const config = guard(() => convert.config(options));
      const token = options.token;
      const transport = options.transport;
      const native = await guardAsync(async () => {
        if (transport !== null) return m.Outbox.openWithTransport(config, convert.transport(transport));
        if (options.serverUrl === null) return m.Outbox.open(config);
        if (token === null) throw new OutboxError('invalid_config', 'serverUrl needs a token (string or function)');
        // Called before every request; a JS exception becomes a retriable token failure.
        return m.Outbox.openWithTokens(config, { token: async (forceRefresh: boolean) => token(forceRefresh) });
      });
      return wrap(m, native, convert);
    },
    setLogger(logger: Logger, level: LogLevel) {
      guard(() =>
        m.setLogger(
          {
            log: (l: Generated.LogLevel, target: string, message: string) => {
              try {
                logger(snakeCase(m.LogLevel[l]) as LogLevel, target, message);
              } catch {
                // A throwing logger must not take a log record's caller down.
              }
            },
          },
          convert.logLevel(level),
        ),
      );
    },
    clearLogger: () => guard(() => m.clearLogger()),
    version: () => guard(() => m.outboxVersion()),
    droppedLogRecords: () => guard(() => Number(m.droppedLogRecords())),
  };
}

function wrap(m: GeneratedModule, ob: Generated.OutboxLike, c: Converters): NativeOutbox {
  const { guard, guardAsync } = c;
  const mutatorOptions = (o: MutatorOptions) =>
    m.MutatorOptions.create({ version: o.version ?? 1, keyPointers: o.keyPointers ?? [], maxArgsBytes: o.maxArgsBytes });
  return {
    registerMutator: (name: string, o: MutatorOptions) => guard(() => ob.registerMutator(name, mutatorOptions(o))),
    registerMutatorWithUpgrader: (name: string, o: MutatorOptions) =>
      guardAsync(async () => {
        const upgrade = o.upgrade;
        if (upgrade === undefined) throw new OutboxError('invalid_request', 'registerMutatorWithUpgrader needs options.upgrade');
        const upgrader = {
          // Called from an engine thread, once per older never-attempted command.
          upgrade: (fromVersion: number, args: string): string => {
            try {
              return toJson(upgrade(fromVersion, JSON.parse(args) as Json), 'upgraded args');
            } catch (e) {
              throw new m.UpgradeError.Failed({ reason: e instanceof Error ? e.message : String(e) });
            }
          },
        };
        const r = await ob.registerMutatorWithUpgrader(name, mutatorOptions(o), upgrader);
        return { upgraded: Number(r.upgraded), wedged: Number(r.wedged) };
      }),
    enqueue: (input: EnqueueInput) => guardAsync(() => ob.enqueue(c.request(input))),
    waitFor: (id: string) => guardAsync(async () => c.settlement(await ob.waitFor(id))),
    command: async (id: string) => {
      try {
        return c.command(await ob.command(id));
      } catch (e) {
        const err = c.error(e);
        if (err.code === 'unknown_command') return null;
        throw err;
      }
    },
    checkReceipt: (id: string) => guardAsync(async () => c.receiptCheck(await ob.checkReceipt(id))),
    peek: (f: PeekFilter) =>
      guardAsync(async () => {
        const filter = m.PeekFilter.create({
          states: (f.states ?? []).map(c.toState),
          key: f.key,
          mutator: f.mutator,
          limit: f.limit ?? 100,
        });
        return (await ob.peek(filter)).map(c.command);
      }),
    retry: (id: string) => guardAsync(() => ob.retry(id)),
    discard: (id: string) => guardAsync(() => ob.discard(id)),
    resolve: (id: string, r: Resolution) => guardAsync(() => ob.resolveConflict(id, c.resolution(r))),
    editPending: (edits: PendingEdit[]) => guardAsync(() => ob.editPending(edits.map(c.edit))),
    get: (collection: string, id: string) =>
      guardAsync(async () => {
        const d = await ob.get(collection, id);
        return d === undefined ? null : c.doc(d);
      }),
    list: (collection: string, q: Query) => guardAsync(async () => (await ob.list(collection, c.query(q))).map(c.doc)),
    count: (collection: string, q: Query) => guardAsync(async () => Number(await ob.count(collection, c.query(q)))),
    createIndex: (collection: string, field: string) => guardAsync(() => ob.createIndex(collection, field)),
    lastSyncedAt: () =>
      guardAsync(async () => {
        const out: Record<string, number> = {};
        for (const [collection, at] of await ob.lastSyncedAt()) out[collection] = Number(at);
        return out;
      }),
    watch(collection, q, onDocs, onError): Unsubscribe {
      const sub = guard(() =>
        ob.watch(collection, c.query(q), {
          onDocs: (docs) => onDocs(docs.map(c.doc)),
          onError: (e) => onError(c.error(e)),
        }),
      );
      return () => sub.cancel();
    },
    events(listener: (e: OutboxEvent) => void): Unsubscribe {
      const sub = guard(() => ob.subscribe({ onEvent: (e) => listener(c.event(e)) }));
      return () => sub.cancel();
    },
    status: () => guardAsync(async () => c.status(await ob.status())),
    syncNow: () => guardAsync(() => ob.syncNow()),
    setOnline: (online: boolean) => guardAsync(() => ob.setOnline(online)),
    onForeground: () => guardAsync(() => ob.onForeground()),
    onBackground: () => guardAsync(() => ob.onBackground()),
    drainFor: (budgetMs: number) =>
      guardAsync(async () => {
        const r = await ob.drainFor(BigInt(Math.round(budgetMs)));
        const report: DrainReport = {
          attempts: Number(r.attempts),
          succeeded: Number(r.succeeded),
          failed: Number(r.failed),
          remaining: Number(r.remaining),
          completed: r.completed,
        };
        return report;
      }),
    closeout: (deadlineMs: number) =>
      guardAsync(async () => c.closeout(await ob.closeout(BigInt(Math.round(deadlineMs))))),
    wipe: (force: boolean) => guardAsync(async () => Number(await ob.wipe(force))),
    deleteDatabase: (force: boolean) => guardAsync(async () => Number(await ob.deleteDatabase(force))),
    path: () => guard(() => ob.path()),
    wedgeDrainTimerForTest: () => guard(() => ob.wedgeDrainTimerForTest()),
    close: () => guardAsync(() => ob.shutdown()),
  };
}

type Converters = ReturnType<typeof converters>;

function converters(m: GeneratedModule) {
  const parse = (text: string): Json => (text === '' ? null : (JSON.parse(text) as Json));
  const num = (v: bigint | number | undefined | null): number | null => (v === undefined || v === null ? null : Number(v));
  const stateName = (s: Generated.CommandState): CommandState => snakeCase(m.CommandState[s]) as CommandState;
  const docStatus = (s: Generated.DocStatus): DocStatus => snakeCase(m.DocStatus[s]) as DocStatus;

  const limitKind = (k: Generated.LimitKind): LimitKind => snakeCase(m.LimitKind[k]) as LimitKind;

  function closeout(r: Generated.CloseoutReport): CloseoutReport {
    const unsettled = (u: Generated.Unsettled): Unsettled => ({
      id: u.id,
      mutator: u.mutator,
      state: stateName(u.state),
      createdAtMs: Number(u.createdAtMs),
      amount: num(u.amount),
      reason: u.reason,
    });
    return {
      clean: r.clean,
      states: r.states.map((t) => ({ state: stateName(t.state), count: Number(t.count), amount: Number(t.amount) })),
      oldestUnsynced: r.oldestUnsynced === undefined || r.oldestUnsynced === null ? null : unsettled(r.oldestUnsynced),
      unsettled: r.unsettled.map(unsettled),
      drain: {
        attempts: Number(r.drain.attempts),
        succeeded: Number(r.drain.succeeded),
        failed: Number(r.drain.failed),
        remaining: Number(r.drain.remaining),
        completed: r.drain.completed,
      },
    };
  }

  function error(e: unknown): OutboxError {
    if (e instanceof OutboxError) return e;
    if (m.OutboxError.instanceOf(e)) {
      const inner = (e as { inner: { detail: string; details?: string } }).inner;
      if (m.OutboxError.LimitExceeded.instanceOf(e)) {
        const l = e.inner;
        const level = { limit: limitKind(l.limit), mutator: l.mutator ?? null, current: Number(l.current), max: Number(l.max) };
        return new OutboxError('limit_exceeded', inner.detail, null, level);
      }
      return new OutboxError(m.OutboxError.code(e), inner.detail, inner.details ?? null);
    }
    // A panic or an internal binding failure: never an untyped error.
    const text = e instanceof Error ? e.message : String(e);
    return new OutboxError('internal', 'internal error in the outbox library', text);
  }

  function guard<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw error(e);
    }
  }

  async function guardAsync<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw error(e);
    }
  }

  function settlement(s: Generated.Settlement): Settlement {
    if (m.Settlement.Succeeded.instanceOf(s)) return { kind: 'succeeded', result: parse(s.inner.result) };
    if (m.Settlement.Failed.instanceOf(s)) return { kind: 'failed', code: s.inner.code, message: s.inner.message };
    if (m.Settlement.Conflict.instanceOf(s)) return { kind: 'conflict', serverSnapshot: parse(s.inner.serverSnapshot) };
    if (m.Settlement.Wedged.instanceOf(s)) return { kind: 'wedged', reason: s.inner.reason };
    return { kind: 'discarded' };
  }

  function attempt(a: Generated.Attempt): Attempt {
    return {
      number: a.number,
      startedAt: Number(a.startedAtMs),
      endedAt: num(a.endedAtMs),
      outcome: a.outcome ?? null,
      httpStatus: a.httpStatus ?? null,
      error: a.error ?? null,
    };
  }

  function receipt(r: Generated.Receipt): Receipt {
    return { serverSeq: Number(r.serverSeq), appliedAt: num(r.appliedAtMs) };
  }

  function receiptCheck(r: Generated.ReceiptCheck): ReceiptCheck {
    if (m.ReceiptCheck.Applied.instanceOf(r)) {
      return { kind: 'applied', receipt: receipt(r.inner.receipt), recorded: r.inner.recorded, state: stateName(r.inner.state) };
    }
    if (m.ReceiptCheck.NotApplied.instanceOf(r)) return { kind: 'not_applied', state: stateName(r.inner.state) };
    const why = (r as Generated.ReceiptCheck & { inner: { reason: Generated.ReceiptUnknown } }).inner.reason;
    if (m.ReceiptUnknown.Failed.instanceOf(why)) return { kind: 'unknown', reason: 'failed', detail: why.inner.detail };
    if (m.ReceiptUnknown.Offline.instanceOf(why)) return { kind: 'unknown', reason: 'offline', detail: null };
    if (m.ReceiptUnknown.Unauthorized.instanceOf(why)) return { kind: 'unknown', reason: 'unauthorized', detail: null };
    return { kind: 'unknown', reason: 'unsupported', detail: null };
  }

  function command(x: Generated.Command): Command {
    return {
      id: x.id,
      seq: Number(x.seq),
      mutator: x.mutator,
      mutatorVersion: x.mutatorVersion,
      args: parse(x.args),
      keys: x.keys,
      createdAt: Number(x.createdAtMs),
      state: stateName(x.state),
      attempts: x.attempts,
      nextAttemptAt: Number(x.nextAttemptAtMs),
      lastError: x.lastError ?? null,
      settlement: x.settlement === undefined ? null : settlement(x.settlement),
      receipt: x.receipt === undefined ? null : receipt(x.receipt),
      history: x.history.map(attempt),
    };
  }

  function doc(d: Generated.Doc): Doc {
    return {
      collection: d.collection,
      id: d.id,
      value: parse(d.value),
      version: num(d.version),
      status: docStatus(d.status),
      commands: d.commands,
    };
  }

  function toState(s: CommandState): Generated.CommandState {
    const name = s.replace(/(^|_)([a-z])/g, (_, __, ch: string) => ch.toUpperCase()) as keyof typeof m.CommandState;
    const v = m.CommandState[name];
    if (typeof v !== 'number') throw new OutboxError('invalid_request', `unknown command state ${JSON.stringify(s)}`);
    return v as Generated.CommandState;
  }

  function op(o: OptimisticOp): Generated.OptimisticOp {
    let kind: Generated.OpKind;
    if ('insert' in o) kind = new m.OpKind.Insert({ value: JSON.stringify(o.insert) });
    else if ('patch' in o) kind = new m.OpKind.Patch({ patch: JSON.stringify(o.patch) });
    else kind = new m.OpKind.Delete();
    return m.OptimisticOp.create({ collection: o.collection, id: o.id, kind });
  }

  function request(input: EnqueueInput): Generated.EnqueueRequest {
    return m.EnqueueRequest.create({
      mutator: input.mutator,
      args: input.argsJson,
      keys: input.keys,
      after: input.after,
      ops: input.optimistic.map(op),
      metadata: input.metadataJson ?? undefined,
    });
  }

  const big = (v: number | null) => (v === null ? undefined : BigInt(Math.round(v)));

  function config(o: OpenOptions): Generated.OutboxConfig {
    return m.OutboxConfig.create({
      path: o.path,
      userId: o.userId,
      workspaceId: o.workspaceId,
      serverUrl: o.transport === null ? (o.serverUrl ?? undefined) : undefined,
      startOnline: o.startOnline,
      maxConcurrency: o.maxConcurrency ?? undefined,
      maxBatchSize: o.maxBatchSize ?? undefined,
      maxAttempts: o.maxAttempts ?? undefined,
      retryBaseMs: big(o.retryBaseMs),
      retryCapMs: big(o.retryCapMs),
      retryJitter: o.retryJitter ?? undefined,
      attemptTimeoutMs: big(o.attemptTimeoutMs),
      leaseTtlMs: big(o.leaseTtlMs),
      durability: o.durability === null ? undefined : o.durability === 'normal' ? m.Durability.Normal : m.Durability.Full,
      retentionMs: big(o.retentionMs),
      maxSizeBytes: big(o.maxSizeBytes),
      maxUnsynced: big(o.maxUnsynced),
      maxUnsyncedAgeMs: big(o.maxUnsyncedAgeMs),
      maxUnsyncedAmount: big(o.maxUnsyncedAmount),
      limitAmountField: o.limitAmountField ?? undefined,
      limitWarnAt: o.limitWarnAt ?? undefined,
      mutatorLimits: o.mutatorLimits.map((l) =>
        m.MutatorLimit.create({
          mutator: l.mutator,
          maxUnsynced: l.maxUnsynced === undefined ? undefined : BigInt(Math.round(l.maxUnsynced)),
          maxUnsyncedAmount: l.maxUnsyncedAmount === undefined ? undefined : BigInt(Math.round(l.maxUnsyncedAmount)),
        }),
      ),
      stallWindowMs: big(o.stallWindowMs),
    });
  }

  function logLevel(l: LogLevel): Generated.LogLevel {
    const v = m.LogLevel[(l.charAt(0).toUpperCase() + l.slice(1)) as keyof typeof m.LogLevel];
    if (typeof v !== 'number') throw new OutboxError('invalid_request', `unknown log level ${JSON.stringify(l)}`);
    return v as Generated.LogLevel;
  }

  function edit(e: PendingEdit): Generated.Edit {
    switch (e.kind) {
      case 'rewrite':
        return new m.Edit.Rewrite({ id: e.id, args: toJson(e.args, 'args') });
      case 'drop':
        return new m.Edit.Drop({ id: e.id });
      case 'squash':
        return new m.Edit.Squash({ into: e.into, ids: e.ids, args: toJson(e.args, 'args') });
      default:
        throw new OutboxError('invalid_request', `unknown edit ${JSON.stringify((e as { kind?: unknown }).kind)}`);
    }
  }

  function docChange(d: DocChange): Generated.DocChange {
    return m.DocChange.create({
      collection: d.collection,
      id: d.id,
      version: BigInt(d.version),
      doc: d.doc === null ? undefined : JSON.stringify(d.doc),
    });
  }

  function sendOutcome(o: SendOutcome): Generated.Outcome {
    switch (o.kind) {
      case 'applied':
        return new m.Outcome.Applied({
          result: o.result === undefined ? '' : JSON.stringify(o.result),
          changes: (o.changes ?? []).map(docChange),
        });
      case 'retry':
        return new m.Outcome.Retry({ reason: o.reason, retryAfterMs: big(o.retryAfterMs ?? null), httpStatus: o.httpStatus });
      case 'rejected':
        return new m.Outcome.Rejected({ code: o.code, message: o.message });
      case 'conflict':
        return new m.Outcome.Conflict({ serverSnapshot: JSON.stringify(o.serverSnapshot) });
      case 'unauthorized':
        return new m.Outcome.Unauthorized();
      case 'offline':
        return new m.Outcome.Offline();
      default:
        return new m.Outcome.Retry({ reason: `the transport returned an unknown outcome`, retryAfterMs: undefined, httpStatus: undefined });
    }
  }

  function outgoing(x: Generated.OutgoingCommand): OutgoingCommand {
    return {
      id: x.id,
      idempotencyKey: x.idempotencyKey,
      mutator: x.mutator,
      mutatorVersion: x.mutatorVersion,
      keys: x.keys,
      args: parse(x.args),
      baseVersions: parse(x.baseVersions) as Record<string, number>,
      metadata: parse(x.metadata) as JsonObject,
      attempt: x.attempt,
    };
  }

  /** The engine's view of an app transport: a throw becomes a retry of the whole batch. */
  function transport(t: Transport): Generated.Transport {
    return {
      send: async (batch: Generated.OutgoingCommand[]) => {
        const retryAll = (reason: string) =>
          batch.map(() => new m.Outcome.Retry({ reason, retryAfterMs: undefined, httpStatus: undefined }));
        try {
          const outcomes = await t.send(batch.map(outgoing));
          if (!Array.isArray(outcomes)) return retryAll('the transport returned no array of outcomes');
          return outcomes.map(sendOutcome);
        } catch (e) {
          return retryAll(`the transport threw: ${e instanceof Error ? e.message : String(e)}`);
        }
      },
      pull: async (cursor: string | undefined, limit: number) => {
        if (t.pull === undefined) return new m.PullOutcome.Unsupported();
        try {
          const r = await t.pull(cursor ?? null, limit);
          switch (r.kind) {
            case 'page':
              return new m.PullOutcome.Page({ changes: r.changes.map(docChange), cursor: r.cursor, hasMore: r.hasMore });
            case 'offline':
              return new m.PullOutcome.Offline();
            case 'unauthorized':
              return new m.PullOutcome.Unauthorized();
            case 'unsupported':
              return new m.PullOutcome.Unsupported();
            case 'cursorReset':
              return new m.PullOutcome.CursorReset({ reason: r.reason });
            default:
              return new m.PullOutcome.Failed({ reason: 'reason' in r ? r.reason : 'unknown pull result' });
          }
        } catch (e) {
          return new m.PullOutcome.Failed({ reason: `the transport threw: ${e instanceof Error ? e.message : String(e)}` });
        }
      },
      receipt: async (idempotencyKey: string) => {
        if (t.receipt === undefined) return new m.ReceiptLookup.Unsupported();
        try {
          const r = await t.receipt(idempotencyKey);
          switch (r.kind) {
            case 'applied':
              return new m.ReceiptLookup.Applied({
                result: r.result === undefined ? '' : JSON.stringify(r.result),
                changes: (r.changes ?? []).map(docChange),
                receipt: m.Receipt.create({
                  serverSeq: BigInt(r.receipt.serverSeq),
                  appliedAtMs: r.receipt.appliedAt === null ? undefined : BigInt(r.receipt.appliedAt),
                }),
              });
            case 'not_found':
              return new m.ReceiptLookup.NotFound();
            case 'offline':
              return new m.ReceiptLookup.Offline();
            case 'unauthorized':
              return new m.ReceiptLookup.Unauthorized();
            case 'unsupported':
              return new m.ReceiptLookup.Unsupported();
            default:
              return new m.ReceiptLookup.Failed({ reason: 'reason' in r ? r.reason : 'unknown receipt lookup result' });
          }
        } catch (e) {
          return new m.ReceiptLookup.Failed({ reason: `the transport threw: ${e instanceof Error ? e.message : String(e)}` });
        }
      },
    };
  }

  function query(q: Query): Generated.Query {
    return m.Query.create({
      filters: Object.entries(q.where ?? {}).map(([field, value]) => m.Filter.create({ field, value: JSON.stringify(value) })),
      orderBy: q.orderBy,
      descending: q.descending ?? false,
      limit: q.limit,
      offset: q.offset ?? 0,
    });
  }

  function resolution(r: Resolution): Generated.Resolution {
    return r.kind === 'discard' ? new m.Resolution.Discard() : new m.Resolution.RetryWith({ args: toJson(r.args, 'args') });
  }

  function status(s: Generated.Status): QueueStatus {
    return {
      foreground: s.foreground,
      lastErrorText: s.lastError ?? null,
      nextAttemptInMs: num(s.nextAttemptInMs),
      pending: Number(s.pending),
      inFlight: Number(s.inFlight),
      failed: Number(s.failed),
      conflict: Number(s.conflict),
      wedged: Number(s.wedged),
      succeeded: Number(s.succeeded),
      online: s.online,
      isDrainer: s.isDrainer,
      oldestPendingAgeMs: num(s.oldestPendingAgeMs),
      consecutiveFailures: s.consecutiveFailures,
      lastSuccessAt: num(s.lastSuccessAtMs),
      lastPullAt: num(s.lastPullAtMs),
      storageUsedBytes: Number(s.storageUsedBytes),
      storageCapBytes: num(s.storageCapBytes),
      storageFull: s.storageFull,
      stalled: s.stalled,
    };
  }

  function event(e: Generated.OutboxEvent): OutboxEvent {
    const E = m.OutboxEvent;
    if (E.Enqueued.instanceOf(e)) return { type: 'enqueued', id: e.inner.id, mutator: e.inner.mutator };
    if (E.AttemptStarted.instanceOf(e)) return { type: 'attemptStarted', id: e.inner.id, attempt: e.inner.attempt };
    if (E.AttemptFinished.instanceOf(e)) {
      const { id, attempt: n, outcome, error: err } = e.inner;
      return { type: 'attemptFinished', id, attempt: n, outcome, error: err ?? null };
    }
    if (E.StateChanged.instanceOf(e)) {
      return { type: 'stateChanged', id: e.inner.id, from: stateName(e.inner.from), to: stateName(e.inner.to) };
    }
    if (E.OnlineChanged.instanceOf(e)) return { type: 'onlineChanged', online: e.inner.online };
    if (E.ForegroundChanged.instanceOf(e)) return { type: 'foregroundChanged', foreground: e.inner.foreground };
    if (E.LeaseChanged.instanceOf(e)) return { type: 'leaseChanged', isDrainer: e.inner.isDrainer };
    if (E.AuthRequired.instanceOf(e)) return { type: 'authRequired' };
    if (E.AccessDenied.instanceOf(e)) return { type: 'accessDenied', message: e.inner.message };
    if (E.LimitWarning.instanceOf(e)) {
      const { limit, mutator, current, max } = e.inner;
      return { type: 'limitWarning', limit: limitKind(limit), mutator: mutator ?? null, current: Number(current), max: Number(max) };
    }
    if (E.Idle.instanceOf(e)) return { type: 'idle' };
    if (E.CollectionsChanged.instanceOf(e)) return { type: 'collectionsChanged', collections: e.inner.collections };
    if (E.RolledBack.instanceOf(e)) {
      const { id, code, message, docs } = e.inner;
      return { type: 'rolledBack', id, code, message, docs: docs.map((d) => ({ collection: d.collection, id: d.id })) };
    }
    if (E.Synced.instanceOf(e)) return { type: 'synced' };
    if (E.QueueStalled.instanceOf(e)) {
      const r = e.inner.report;
      return {
        type: 'queueStalled',
        report: {
          cause: r.cause as StallCause,
          detail: r.detail,
          stalledForMs: Number(r.stalledForMs),
          ready: r.ready,
          inFlight: Number(r.inFlight),
          sendsInFlight: Number(r.sendsInFlight),
          lease: r.lease,
          network: r.network,
          lastPassAgoMs: Number(r.lastPassAgoMs),
        },
      };
    }
    if (E.QueueRecovered.instanceOf(e)) {
      const { cause, stalledForMs, how } = e.inner;
      return { type: 'queueRecovered', cause: cause as StallCause, stalledForMs: Number(stalledForMs), how };
    }
    const missed = E.Lagged.instanceOf(e) ? Number(e.inner.missed) : 0;
    return { type: 'lagged', missed };
  }

  return {
    error,
    guard,
    guardAsync,
    settlement,
    command,
    receiptCheck,
    doc,
    toState,
    request,
    query,
    resolution,
    status,
    event,
    closeout,
    config,
    logLevel,
    edit,
    transport,
  };
}
