/**
 * React bindings: `<OutboxProvider outbox={…}>` and hooks that re-render on engine changes.
 *
 * The hooks only subscribe and render; every subscription is released on unmount or when
 * its arguments change.
 */
import { createContext, createElement, useCallback, useContext, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { ReactNode } from 'react';

import { OutboxError } from '../api/errors';
import type { Outbox } from '../api/outbox';
import type {
  Command,
  CommandState,
  Doc,
  DocStatus,
  EnqueueOptions,
  Json,
  PeekFilter,
  Query,
  Settlement,
  SyncStatus,
} from '../api/types';

const OutboxContext = createContext<Outbox | null>(null);

/** Makes `outbox` available to the hooks below it. */
export function OutboxProvider(props: { outbox: Outbox; children?: ReactNode }) {
  return createElement(OutboxContext.Provider, { value: props.outbox }, props.children);
}

/** The Outbox of the nearest `<OutboxProvider>`. */
export function useOutbox(): Outbox {
  const outbox = useContext(OutboxContext);
  if (outbox === null) throw new OutboxError('invalid_state', 'Outbox hooks must be used inside <OutboxProvider outbox={…}>');
  return outbox;
}

function asOutboxError(e: unknown): OutboxError {
  return e instanceof OutboxError ? e : new OutboxError('internal', e instanceof Error ? e.message : String(e));
}

/** What {@link useQuery} returns. */
export interface QueryResult<T> {
  /** Matching documents, pending changes applied (empty until the first result). */
  data: Doc<T>[];
  /** True until the first result arrives. */
  loading: boolean;
  /** Set when the query could not run. */
  error: OutboxError | null;
}

/** Live documents of `collection` matching `query`; re-renders when the result changes. */
export function useQuery<T = Json>(collection: string, query: Query = {}): QueryResult<T> {
  const outbox = useOutbox();
  const key = JSON.stringify(query);
  const [state, setState] = useState<QueryResult<T>>({ data: [], loading: true, error: null });
  useEffect(() => {
    setState((s) => (s.loading ? s : { ...s, loading: true }));
    const q = JSON.parse(key) as Query;
    try {
      return outbox.watch<T>(
        collection,
        q,
        (docs) => setState({ data: docs, loading: false, error: null }),
        (e) => setState((s) => ({ ...s, loading: false, error: asOutboxError(e) })),
      );
    } catch (e) {
      setState({ data: [], loading: false, error: asOutboxError(e) });
      return undefined;
    }
  }, [outbox, collection, key]);
  return state;
}

/** What {@link useMutation} returns. */
export interface MutationResult {
  /** Enqueues the mutator with `args`; resolves to the command id once it is durable. */
  mutate: (args: Json, options?: EnqueueOptions) => Promise<string>;
  /** Id of the last command `mutate` enqueued. */
  commandId: string | null;
  /** Live state of that command (`pending`, `in_flight`, `succeeded`, ...). */
  state: CommandState | null;
  /** How it settled, once it has. */
  settlement: Settlement | null;
  /** The last command as stored (attempts, last error). */
  command: Command | null;
  /** Set when `mutate` was refused (e.g. `unknown_mutator`). */
  error: OutboxError | null;
  /** Forgets the last command. */
  reset: () => void;
}

/** A function that enqueues `mutator`, plus the live status of the command it made last. */
export function useMutation(mutator: string): MutationResult {
  const outbox = useOutbox();
  const [commandId, setCommandId] = useState<string | null>(null);
  const [command, setCommand] = useState<Command | null>(null);
  const [error, setError] = useState<OutboxError | null>(null);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  useEffect(() => {
    if (commandId === null) return undefined;
    return outbox.observeCommand(commandId, (c) => setCommand(c));
  }, [outbox, commandId]);
  const mutate = useCallback(
    async (args: Json, options?: EnqueueOptions) => {
      try {
        const id = await outbox.enqueue(mutator, args, options);
        if (mounted.current) {
          setError(null);
          setCommand(null);
          setCommandId(id);
        }
        return id;
      } catch (e) {
        const err = asOutboxError(e);
        if (mounted.current) setError(err);
        throw err;
      }
    },
    [outbox, mutator],
  );
  const reset = useCallback(() => {
    setCommandId(null);
    setCommand(null);
    setError(null);
  }, []);
  const current = command !== null && command.id === commandId ? command : null;
  return {
    mutate,
    commandId,
    state: current?.state ?? (commandId !== null ? 'pending' : null),
    settlement: current?.settlement ?? null,
    command: current,
    error,
    reset,
  };
}

/** What {@link useRecordStatus} returns. */
export interface RecordStatus<T> {
  /** `synced`, `pending`, `failed` or `conflict`; `null` when the document does not exist. */
  status: DocStatus | null;
  /** The document as the app sees it. */
  doc: Doc<T> | null;
  /** Whether the first read is still outstanding. */
  loading: boolean;
}

/** The sync status of one document (for "pending" badges). */
export function useRecordStatus<T = Json>(collection: string, id: string): RecordStatus<T> {
  const outbox = useOutbox();
  const [state, setState] = useState<RecordStatus<T>>({ status: null, doc: null, loading: true });
  useEffect(
    () => outbox.observeDoc<T>(collection, id, (doc) => setState({ status: doc?.status ?? null, doc, loading: false })),
    [outbox, collection, id],
  );
  return state;
}

/** What {@link useSyncStatus} returns. */
export interface SyncStatusResult extends SyncStatus {
  /** Asks the engine to send and pull now. */
  syncNow: () => Promise<void>;
}

/** Online state, counts, progress and last error: an offline banner and a "sync now" button. */
export function useSyncStatus(): SyncStatusResult {
  const outbox = useOutbox();
  const subscribe = useCallback((onChange: () => void) => outbox.onSyncStatus(onChange), [outbox]);
  const status = useSyncExternalStore(subscribe, () => outbox.syncStatus, () => outbox.syncStatus);
  const syncNow = useCallback(() => outbox.syncNow(), [outbox]);
  return { ...status, syncNow };
}

/**
 * Queue health for a status bar or a till's "all synced" light: counts per state, the oldest
 * unsynced command's age, the last successful send and pull, the last error and the failures
 * in a row since, storage used against the cap, online, the drainer lease and `stalled`.
 * Re-read after events and every `everyMs` ms (default 1 000) so ages and `stalled` stay
 * current without events; renders only when something changed.
 */
export function useQueueHealth(everyMs = 1000): SyncStatus {
  const outbox = useOutbox();
  const subscribe = useCallback((onChange: () => void) => outbox.onSyncStatus(onChange), [outbox]);
  const status = useSyncExternalStore(subscribe, () => outbox.syncStatus, () => outbox.syncStatus);
  useEffect(() => {
    const timer = setInterval(() => {
      // A closed engine has nothing to report; the next render shows the last snapshot.
      outbox.status().catch(() => undefined);
    }, Math.max(10, everyMs));
    return () => clearInterval(timer);
  }, [outbox, everyMs]);
  return status;
}

/** Unfinished commands (pending, in flight, failed, conflict, wedged), oldest first. */
export function usePendingCommands(filter: PeekFilter = {}): Command[] {
  const outbox = useOutbox();
  const key = JSON.stringify(filter);
  const [commands, setCommands] = useState<Command[]>([]);
  useEffect(() => outbox.observePending((c) => setCommands(c), JSON.parse(key) as PeekFilter), [outbox, key]);
  return commands;
}
