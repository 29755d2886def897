/**
 * Parity: every method of the generated `Outbox` object and every exported function of the
 * generated bindings has a counterpart in the hand-written API (or is listed here as
 * deliberately internal, with the reason). A new engine capability exported through the FFI
 * fails this test until TypeScript users can reach it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { Outbox } from './support/outbox';

const GENERATED = join(__dirname, '..', 'napi-gen', 'outbox_ffi.ts');
const ENTRY = join(__dirname, '..', 'src', 'index.tsx');

/** Generated `Outbox` method → how the hand-written API reaches it. */
const OUTBOX_METHODS: Record<string, string> = {
  checkReceipt: 'Outbox.checkReceipt',
  command: 'Outbox.command',
  count: 'Outbox.count',
  createIndex: 'Outbox.createIndex',
  deleteDatabase: 'Outbox.deleteDatabase',
  discard: 'Outbox.discard',
  closeout: 'Outbox.closeout',
  drainFor: 'Outbox.drainFor',
  editPending: 'Outbox.editPending',
  enqueue: 'Outbox.enqueue',
  get: 'Outbox.get',
  lastSyncedAt: 'Outbox.lastSyncedAt',
  list: 'Outbox.list',
  onBackground: 'Outbox.onBackground',
  onForeground: 'Outbox.onForeground',
  path: 'Outbox.path',
  peek: 'Outbox.peek',
  registerMutator: 'Outbox.registerMutator',
  registerMutatorWithUpgrader: 'Outbox.registerMutator',
  resolveConflict: 'Outbox.resolve',
  retry: 'Outbox.retry',
  setOnline: 'Outbox.setOnline',
  shutdown: 'Outbox.close',
  status: 'Outbox.status',
  subscribe: 'Outbox.on',
  syncNow: 'Outbox.syncNow',
  waitFor: 'Outbox.waitFor',
  watch: 'Outbox.watch',
  wipe: 'Outbox.wipe',
  // A test hook of the stall watchdog, marked @internal (not API; test/watchdog.test.ts).
  wedgeDrainTimerForTest: 'Outbox.wedgeDrainTimerForTest',
};

/** Generated constructors (static) → the entry point that calls them. */
const CONSTRUCTORS: Record<string, string> = {
  open: 'createOutbox',
  openWithTokens: 'createOutbox',
  openWithTransport: 'createOutbox',
};

/** Generated free functions → the entry point's export. */
const FUNCTIONS: Record<string, string> = {
  setLogger: 'setLogger',
  clearLogger: 'clearLogger',
  outboxVersion: 'outboxVersion',
  droppedLogRecords: 'droppedLogRecords',
};

/** Generated members that are deliberately not API, with the reason. */
const INTERNAL: Record<string, string> = {
  uniffiDestroy: 'frees the native handle; Outbox.close() stops the engine and the GC frees the handle',
  uniffiClone: 'binding plumbing',
};

function generatedOutboxMethods(source: string): string[] {
  const body = /export interface OutboxLike \{([\s\S]*?)\n\}/.exec(source)?.[1];
  assert.ok(body, 'OutboxLike not found in the generated bindings');
  return [...body.matchAll(/^ {4}([a-zA-Z][a-zA-Z0-9]*)\(/gm)].map((m) => m[1]!);
}

function generatedConstructors(source: string): string[] {
  // Static members of the generated class that produce an `OutboxLike`.
  return [...source.matchAll(/^ {4}(?:public )?static (?:async )?([a-zA-Z][a-zA-Z0-9]*)\([^\n]*\): (?:Promise<)?OutboxLike\b/gm)].map(
    (m) => m[1]!,
  );
}

function generatedFunctions(source: string): string[] {
  return [...source.matchAll(/^export (?:async )?function ([a-zA-Z][a-zA-Z0-9]*)\(/gm)].map((m) => m[1]!);
}

function entryExports(source: string): Set<string> {
  return new Set([...source.matchAll(/^export (?:const|function|async function) ([a-zA-Z][a-zA-Z0-9]*)/gm)].map((m) => m[1]!));
}

function hasOutboxMember(name: string): boolean {
  // Read the descriptor: touching a getter on the prototype would run it.
  const d = Object.getOwnPropertyDescriptor(Outbox.prototype, name);
  return d !== undefined && (typeof d.value === 'function' || typeof d.get === 'function');
}

test('every generated Outbox method, constructor and function has a hand-written counterpart', () => {
  const source = readFileSync(GENERATED, 'utf8');
  const entry = entryExports(readFileSync(ENTRY, 'utf8'));
  const missing: string[] = [];
  const methods = generatedOutboxMethods(source);
  assert.ok(methods.length >= 20, `found only ${methods.length} generated methods: the parser is broken`);
  for (const m of methods) {
    if (INTERNAL[m]) continue;
    const target = OUTBOX_METHODS[m];
    if (target === undefined) missing.push(`Outbox.${m} (generated) has no counterpart: map it in OUTBOX_METHODS`);
    else if (!hasOutboxMember(target.replace('Outbox.', ''))) missing.push(`${target} (for ${m}) does not exist`);
  }
  const ctors = generatedConstructors(source);
  assert.ok(ctors.length >= 3, `found only ${ctors.length} generated constructors`);
  for (const c of ctors) {
    const target = CONSTRUCTORS[c];
    if (target === undefined) missing.push(`Outbox.${c} (generated constructor) has no counterpart`);
    else if (!entry.has(target)) missing.push(`${target} (for ${c}) is not exported by src/index.tsx`);
  }
  const fns = generatedFunctions(source);
  assert.ok(fns.length >= 4, `found only ${fns.length} generated functions`);
  for (const f of fns) {
    const target = FUNCTIONS[f];
    if (target === undefined) missing.push(`${f}() (generated) has no counterpart: map it in FUNCTIONS`);
    else if (!entry.has(target)) missing.push(`${target} (for ${f}) is not exported by src/index.tsx`);
  }
  assert.deepEqual(missing, []);
});

test('the parity map names nothing the bindings no longer have', () => {
  const source = readFileSync(GENERATED, 'utf8');
  const methods = new Set(generatedOutboxMethods(source));
  const stale = Object.keys(OUTBOX_METHODS).filter((m) => !methods.has(m));
  assert.deepEqual(stale, []);
});
