/**
 * The rest of the engine's capabilities through the public TypeScript API, against the real
 * library (N-API) and the real reference server: edits of queued commands, counts and
 * indexes, wipe and delete, custom transports, token refresh, logging, open options and
 * bad input.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';

import { aliceConfig, createOutbox, isOutboxError, OutboxError, testBackend } from './support/outbox';
import type { OutgoingCommand, SendOutcome } from './support/outbox';
import { suiteFixture } from './support/fixture';
import { sleep, until } from './support/wait';

const fx = suiteFixture();
const { opened } = fx;
const dir = () => fx.dir();

const offline = (extra = {}) => aliceConfig(dir(), fx.server.url, { startOnline: false, ...extra });

describe('editing queued commands', () => {
  test('editPending squashes queued stock adjustments of one SKU into one command', async () => {
    const ob = opened.track(await createOutbox(offline()));
    const ids: string[] = [];
    for (const delta of [-1, -2, -3]) ids.push(await ob.enqueue('adjustStock', { product_id: 'bagel', delta }));
    await ob.editPending([{ kind: 'squash', into: ids[0]!, ids: ids.slice(1), args: { product_id: 'bagel', delta: -6 } }]);
    const left = await ob.peek();
    assert.deepEqual(
      left.map((c) => [c.id, c.args]),
      [[ids[0], { product_id: 'bagel', delta: -6 }]],
    );
    assert.equal((await ob.waitFor(ids[1]!)).kind, 'discarded');
    await ob.setOnline(true);
    assert.equal((await ob.waitFor(ids[0]!)).kind, 'succeeded');
    const log = (await fx.server.getJson('/v1/_log')) as { entries: { command_id: string }[] };
    const sent = log.entries.map((e) => e.command_id).filter((c) => ids.includes(c));
    assert.deepEqual(sent, [ids[0]], 'only the squashed command reached the server');
  });

  test('editPending rewrites and drops; an attempted command is immutable', async () => {
    const ob = opened.track(await createOutbox(offline()));
    const a = await ob.enqueue('adjustStock', { product_id: 'muffin', delta: 1 });
    const b = await ob.enqueue('adjustStock', { product_id: 'juice', delta: 1 });
    await ob.editPending([
      { kind: 'rewrite', id: a, args: { product_id: 'muffin', delta: 4 } },
      { kind: 'drop', id: b },
    ]);
    assert.deepEqual((await ob.command(a))?.args, { product_id: 'muffin', delta: 4 });
    assert.equal((await ob.command(b))?.state, 'discarded');
    await ob.setOnline(true);
    await ob.waitFor(a);
    await assert.rejects(
      ob.editPending([{ kind: 'rewrite', id: a, args: { product_id: 'muffin', delta: 9 } }]),
      (e: unknown) => e instanceof OutboxError && ['immutable', 'invalid_state'].includes(e.code),
    );
  });

  test('editPending with args that have no JSON form rejects with invalid_json and changes nothing', async () => {
    const ob = opened.track(await createOutbox(offline()));
    const a = await ob.enqueue('adjustStock', { product_id: 'muffin', delta: 1 });
    await assert.rejects(
      ob.editPending([{ kind: 'rewrite', id: a, args: { delta: 10n } as never }]),
      (e: unknown) => isOutboxError(e, 'invalid_json'),
    );
    assert.deepEqual((await ob.command(a))?.args, { product_id: 'muffin', delta: 1 });
  });

  test('peek filters by key and by mutator', async () => {
    const ob = opened.track(await createOutbox(offline()));
    await ob.enqueue('adjustStock', { product_id: 'bagel', delta: 1 }, { keys: ['sku:bagel'] });
    const juice = await ob.enqueue('adjustStock', { product_id: 'juice', delta: 1 }, { keys: ['sku:juice'] });
    await ob.enqueue('createOrder', { id: 'o-peek', lines: [{ product_id: 'juice', qty: 1 }] }, { keys: ['order:o-peek'] });
    assert.deepEqual(
      (await ob.peek({ key: 'sku:juice' })).map((c) => c.id),
      [juice],
    );
    assert.equal((await ob.peek({ mutator: 'createOrder' })).length, 1);
    assert.equal((await ob.peek({ limit: 2 })).length, 2);
  });
});

describe('reads', () => {
  test('count, createIndex and lastSyncedAt', async () => {
    const ob = opened.track(await createOutbox(offline()));
    for (const [id, status] of [
      ['c1', 'open'],
      ['c2', 'open'],
      ['c3', 'paid'],
    ] as const) {
      await ob.enqueue('createOrder', { id, lines: [{ product_id: 'latte', qty: 1 }] }, {
        optimistic: [{ collection: 'orders', id, insert: { status } }],
      });
    }
    await ob.createIndex('orders', 'status');
    assert.equal(await ob.count('orders', { where: { status: 'open' } }), 2);
    assert.equal(await ob.count('orders', { where: { status: 'open' }, limit: 1 }), 2, 'limit is ignored by count');
    assert.equal(await ob.count('orders'), 3);
    assert.deepEqual(await ob.lastSyncedAt(), {}, 'nothing pulled yet');
    const before = Date.now();
    await ob.setOnline(true);
    const synced = await until('a pull of orders', async () => (await ob.lastSyncedAt()).orders);
    assert.ok(synced >= before - 1000, `lastSyncedAt ${synced} is recent`);
  });
});

describe('wipe, delete and the file', () => {
  test('wipe refuses with unsent_commands, then wipe({ force }) drops and counts them', async () => {
    const ob = opened.track(await createOutbox(offline()));
    await ob.enqueue('adjustStock', { product_id: 'bagel', delta: 1 });
    await ob.enqueue('adjustStock', { product_id: 'bagel', delta: 2 });
    await assert.rejects(ob.wipe(), (e: unknown) => isOutboxError(e, 'unsent_commands'));
    assert.equal((await ob.peek()).length, 2, 'a refused wipe loses nothing');
    assert.equal(await ob.wipe({ force: true }), 2);
    assert.deepEqual(await ob.peek(), []);
    assert.equal(await ob.wipe(), 0, 'nothing unsent left: a plain wipe succeeds');
  });

  test('deleteDatabase refuses while sales are unsent; with force it removes the files and closes', async () => {
    const ob = await createOutbox(offline());
    const path = ob.path;
    assert.ok(existsSync(path));
    await ob.enqueue('createOrder', { id: 'del-1', lines: [{ product_id: 'latte', qty: 1 }] });
    await assert.rejects(ob.deleteDatabase(), (e: unknown) => isOutboxError(e, 'unsent_commands'));
    assert.ok(existsSync(path) && !ob.isClosed, 'refused: file and engine untouched');
    assert.equal(await ob.deleteDatabase({ force: true }), 1);
    assert.ok(ob.isClosed);
    for (const suffix of ['', '-wal', '-shm']) assert.ok(!existsSync(path + suffix), `${path}${suffix} removed`);
  });
});

describe('transports and tokens', () => {
  test('a custom transport gets each command with its idempotency key and its outcome settles it', async () => {
    const seen: OutgoingCommand[] = [];
    const transport = {
      async send(batch: OutgoingCommand[]): Promise<SendOutcome[]> {
        seen.push(...batch);
        return batch.map(
          (c): SendOutcome =>
            c.mutator === 'voidOrder'
            ? { kind: 'rejected', code: 'not_allowed', message: 'voids need a manager' }
            : { kind: 'applied', result: { echoed: c.args } },
        );
      },
    };
    const ob = opened.track(await createOutbox(offline({ transport, serverUrl: undefined })));
    const ok = await ob.enqueue('createOrder', { id: 't-1', lines: [] }, { metadata: { trace_id: 'tr-1' } });
    const no = await ob.enqueue('voidOrder', { id: 't-2' });
    await ob.setOnline(true);
    const s = await ob.waitFor(ok);
    assert.deepEqual(s, { kind: 'succeeded', result: { echoed: { id: 't-1', lines: [] } } });
    const f = await ob.waitFor(no);
    assert.ok(f.kind === 'failed' && f.code === 'not_allowed', JSON.stringify(f));
    const first = seen.find((c) => c.id === ok);
    assert.ok(first);
    assert.match(first.idempotencyKey, /^[0-9a-f-]{36}$/);
    assert.equal(first.attempt, 1);
    assert.equal(first.metadata.trace_id, 'tr-1');
  });

  test('a throwing custom transport is a retry under the same idempotency key, never a loss', async () => {
    const keys: string[] = [];
    let calls = 0;
    const transport = {
      async send(batch: OutgoingCommand[]): Promise<SendOutcome[]> {
        calls += 1;
        keys.push(...batch.map((c) => c.idempotencyKey));
        if (calls === 1) throw new Error('socket closed');
        return batch.map((): SendOutcome => ({ kind: 'applied' }));
      },
    };
    const ob = opened.track(await createOutbox(offline({ transport, retryBaseMs: 50, retryCapMs: 100, retryJitter: 0 })));
    const id = await ob.enqueue('createOrder', { id: 't-3', lines: [] });
    await ob.setOnline(true);
    assert.equal((await ob.waitFor(id)).kind, 'succeeded');
    const cmd = await ob.command(id);
    assert.equal(cmd?.history.length, 2);
    assert.match(cmd?.history[0]?.error ?? '', /socket closed/);
    assert.equal(new Set(keys).size, 1, 'both attempts carried the same idempotency key');
  });

  test('after a 401 the token function is asked again with forceRefresh = true, and the fresh token sends', async () => {
    const asked: boolean[] = [];
    const ob = opened.track(
      await createOutbox(
        offline({
          token: async (forceRefresh: boolean) => {
            asked.push(forceRefresh);
            return forceRefresh ? 'dev-alice' : 'expired-token';
          },
        }),
      ),
    );
    const id = await ob.enqueue('createOrder', { id: 'tok-1', lines: [{ product_id: 'latte', qty: 1 }] });
    await ob.setOnline(true);
    await until('a forced refresh', () => asked.includes(true));
    await ob.syncNow();
    assert.equal((await ob.waitFor(id)).kind, 'succeeded');
    assert.equal(asked[0], false, 'the first request used the cached token');
  });
});

describe('open options and logging', () => {
  test('every open option reaches the engine: a tiny size cap refuses enqueues with storage_full', async () => {
    const ob = opened.track(
      await createOutbox(
        offline({
          maxBatchSize: 10,
          retryBaseMs: 100,
          retryCapMs: 1000,
          retryJitter: 0.1,
          leaseTtlMs: 3000,
          durability: 'normal',
          retentionMs: 60_000,
          maxSizeBytes: 512 * 1024,
        }),
      ),
    );
    let refused: unknown = null;
    for (let i = 0; i < 400 && refused === null; i++) {
      try {
        await ob.enqueue('createOrder', { id: `cap-${i}`, note: 'x'.repeat(4000), lines: [] });
      } catch (e) {
        refused = e;
      }
    }
    assert.ok(isOutboxError(refused, 'storage_full'), `refused with ${String(refused)}`);
    const queued = (await ob.peek({ limit: 1000 })).length;
    assert.ok(queued > 10, 'what was accepted before the cap is still queued');
  });

  test('bad open options are refused with invalid_config before anything opens', async () => {
    const d = dir();
    for (const extra of [
      { retryJitter: 2 },
      { durability: 'fast' as never },
      { maxBatchSize: 0 },
      { retryBaseMs: -1 },
      { leaseTtlMs: 1.5 },
      { transport: {} as never },
    ]) {
      await assert.rejects(createOutbox(aliceConfig(d, fx.server.url, extra)), (e: unknown) => isOutboxError(e, 'invalid_config'));
    }
    assert.ok(!existsSync(`${d}/register.db`), 'no database was created');
  });

  test('a logger receives the library log records, and a throwing logger is contained', async () => {
    const records: [string, string, string][] = [];
    testBackend.setLogger((level, target, message) => {
      records.push([level, target, message]);
      if (records.length === 1) throw new Error('logger bug');
    }, 'debug');
    try {
      const ob = opened.track(await createOutbox(offline({ token: 'dev-alice' })));
      const id = await ob.enqueue('createOrder', { id: 'log-1', lines: [{ product_id: 'latte', qty: 1 }] });
      await ob.setOnline(true);
      await ob.waitFor(id);
      await until('log records', () => records.length > 0);
    } finally {
      testBackend.clearLogger();
    }
    assert.ok(records.every(([level]) => ['trace', 'debug', 'info', 'warn', 'error'].includes(level)));
    assert.ok(!records.some(([, , m]) => m.includes('dev-alice')), 'no token in any log record');
    // Records already on their way to the JS thread may still land; new work logs nothing.
    await sleep(100);
    const n = records.length;
    const again = opened.track(await createOutbox(offline({ token: 'dev-alice' })));
    await again.waitFor(await again.enqueue('createOrder', { id: 'log-2', lines: [] }).then(async (id) => {
      await again.setOnline(true);
      return id;
    }));
    await sleep(100);
    assert.equal(records.length, n, 'nothing logged after clearLogger');
    assert.match(testBackend.version(), /^\d+\.\d+\.\d+/);
  });

  test('registerMutator at run time extends the allowlist', async () => {
    const ob = opened.track(await createOutbox(offline({ mutators: [] })));
    await assert.rejects(ob.enqueue('put', { id: 'x' }), (e: unknown) => isOutboxError(e, 'unknown_mutator'));
    assert.deepEqual(await ob.registerMutator('put', { keyPointers: ['/id'] }), { upgraded: 0, wedged: 0 });
    const id = await ob.enqueue('put', { id: 'x' });
    assert.deepEqual((await ob.command(id))?.keys, ['x']);
    await assert.rejects(ob.registerMutator('', {}), (e: unknown) => isOutboxError(e, 'invalid_request'));
  });
});

describe('bad input through TypeScript', () => {
  test('args with no JSON form reject with invalid_json (not internal) and nothing is written', async () => {
    const ob = opened.track(await createOutbox(offline()));
    const cyclic: Record<string, unknown> = { id: 'cyc' };
    cyclic.self = cyclic;
    for (const args of [{ id: 'big', qty: 10n }, cyclic, undefined, () => 1]) {
      await assert.rejects(ob.enqueue('createOrder', args as never), (e: unknown) => {
        assert.ok(e instanceof OutboxError, String(e));
        assert.equal(e.code, 'invalid_json');
        return true;
      });
    }
    await assert.rejects(ob.enqueue('createOrder', { id: 'm' }, { metadata: { n: 1n } as never }), (e: unknown) =>
      isOutboxError(e, 'invalid_json'),
    );
    assert.deepEqual(await ob.peek(), [], 'nothing was written');
    assert.equal((await ob.status()).pending, 0);
  });

  test('every method of a closed Outbox rejects with closed', async () => {
    const ob = await createOutbox(offline());
    await ob.close();
    const calls: (() => Promise<unknown>)[] = [
      () => ob.command('00000000-0000-7000-8000-000000000000'),
      () => ob.peek(),
      () => ob.editPending([]),
      () => ob.get('orders', 'x'),
      () => ob.list('orders'),
      () => ob.count('orders'),
      () => ob.createIndex('orders', 'status'),
      () => ob.lastSyncedAt(),
      () => ob.syncNow(),
      () => ob.setOnline(true),
      () => ob.onForeground(),
      () => ob.drainFor(10),
      () => ob.wipe({ force: true }),
      () => ob.deleteDatabase({ force: true }),
      () => ob.logout({ force: true }),
    ];
    for (const call of calls) await assert.rejects(call(), (e: unknown) => isOutboxError(e, 'closed'));
  });
});
