/**
 * The public promise API against the real library (N-API) and the real reference server.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { aliceConfig, createOutbox, isOutboxError, OutboxError, tempDir } from './support/outbox';
import type { Doc, OutboxEvent } from './support/outbox';
import { suiteFixture } from './support/fixture';
import { until } from './support/wait';

const fx = suiteFixture();
const { opened } = fx;
const dir = () => fx.dir();

interface Stats {
  totals: { applied: number; duplicates: number };
  keys: Record<string, { applied: number; duplicates: number }>;
}

const order = (id: string, productId = 'espresso', qty = 1) => ({ id, lines: [{ product_id: productId, qty }] });

describe('createOutbox', () => {
  test('rejects a bad config with a typed error and code invalid_config', async () => {
    for (const bad of [
      { path: '', userId: 'alice', workspaceId: 'ws-1' },
      { path: '/tmp/x.db', userId: 'alice', workspaceId: '' },
      { path: '/tmp/x.db', userId: 'alice', workspaceId: 'ws-1', serverUrl: 'ftp://x' },
      { path: '/tmp/x.db', userId: 'alice', workspaceId: 'ws-1', maxConcurrency: 0 },
    ]) {
      await assert.rejects(createOutbox(bad), (e: unknown) => isOutboxError(e, 'invalid_config'));
    }
  });

  test('a database that cannot be created is a typed error from the engine', async () => {
    const d = dir();
    await assert.rejects(
      createOutbox(aliceConfig(d, fx.server.url, { path: `${d}/no/such/folder/x.db` })),
      (e: unknown) => e instanceof OutboxError && e.code !== 'internal' && e.message.length > 0,
    );
  });
});

describe('enqueue and drain', () => {
  test('enqueue offline keeps the command pending and sends nothing', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false })));
    const id = await ob.enqueue('createOrder', order('rn-offline-1'));
    assert.match(id, /^[0-9a-f-]{36}$/);
    const status = await ob.status();
    assert.equal(status.online, false);
    assert.equal(status.pending, 1);
    assert.equal(status.outstanding, 1);
    const cmd = await ob.command(id);
    assert.equal(cmd?.state, 'pending');
    assert.equal(cmd?.mutator, 'createOrder');
    assert.deepEqual(cmd?.args, order('rn-offline-1'));
    const stats = (await fx.server.getJson('/v1/_stats')) as Stats;
    assert.equal(Object.keys(stats.keys).length, 0, 'the server saw no command');
  });

  test('setOnline(true) drains: the command succeeds exactly once with the server result', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false })));
    const id = await ob.enqueue('createOrder', order('rn-drain-1', 'latte', 2));
    await ob.setOnline(true);
    const settlement = await ob.waitFor(id);
    assert.equal(settlement.kind, 'succeeded');
    assert.ok(settlement.kind === 'succeeded');
    assert.deepEqual((settlement.result as { total: number }).total, 840);
    await until('the queue to be empty', async () => (await ob.status()).outstanding === 0);
    const stats = (await fx.server.getJson('/v1/_stats')) as Stats;
    const applied = Object.values(stats.keys).filter((k) => k.applied > 0);
    assert.ok(applied.length >= 1);
    assert.ok(Object.values(stats.keys).every((k) => k.applied <= 1), 'no command applied twice');
  });

  test('commands on one key reach the server in enqueue order', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false })));
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) ids.push(await ob.enqueue('adjustStock', { product_id: 'bagel', delta: i }));
    await ob.setOnline(true);
    for (const id of ids) assert.equal((await ob.waitFor(id)).kind, 'succeeded');
    const log = (await fx.server.getJson('/v1/_log')) as { entries: { command_id: string }[] };
    const seen = log.entries.map((e) => e.command_id).filter((c) => ids.includes(c));
    assert.deepEqual(seen, ids);
  });

  test('a rejected command settles as failed with the server code and its optimistic change is rolled back', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false })));
    const rolledBack: OutboxEvent[] = [];
    const stop = ob.on('rolledBack', (e) => rolledBack.push(e));
    const id = await ob.enqueue('createOrder', order('rn-reject-1', 'no-such-product'), {
      optimistic: [{ collection: 'orders', id: 'rn-reject-1', insert: { status: 'open' } }],
    });
    assert.equal((await ob.get('orders', 'rn-reject-1'))?.status, 'pending');
    await ob.setOnline(true);
    const s = await ob.waitFor(id);
    assert.ok(s.kind === 'failed', `settled as ${s.kind}`);
    assert.equal(s.code, 'unknown_product');
    await until('the rollback event', () => rolledBack.length === 1);
    stop();
    const doc = await ob.get('orders', 'rn-reject-1');
    assert.ok(doc === null || doc.status === 'failed', 'the optimistic order is no longer shown as pending');
    assert.equal((await ob.status()).failed, 1);
  });

  test('an optimistic insert is visible at once and synced after the drain', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false })));
    await ob.enqueue('createOrder', order('rn-opt-1', 'muffin'), {
      optimistic: [{ collection: 'orders', id: 'rn-opt-1', insert: { lines: order('rn-opt-1').lines, status: 'open' } }],
    });
    const before = await ob.list<{ status: string }>('orders', { where: { status: 'open' } });
    assert.deepEqual(
      before.map((d) => [d.id, d.status]),
      [['rn-opt-1', 'pending']],
    );
    await ob.setOnline(true);
    const synced = await until('the order to be synced', async () => {
      const d = await ob.get<{ total?: number }>('orders', 'rn-opt-1');
      return d?.status === 'synced' ? d : null;
    });
    assert.equal(synced.value.total, 325, 'the server version (with its total) replaced the optimistic one');
    assert.equal(typeof synced.version, 'number');
  });

  test('discard removes a pending command and its optimistic change', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false })));
    const id = await ob.enqueue('createOrder', order('rn-discard-1'), {
      optimistic: [{ collection: 'orders', id: 'rn-discard-1', insert: { status: 'open' } }],
    });
    await ob.discard(id);
    assert.equal((await ob.waitFor(id)).kind, 'discarded');
    assert.equal(await ob.get('orders', 'rn-discard-1'), null);
    assert.deepEqual(await ob.peek(), []);
  });
});

describe('errors', () => {
  test('an unknown mutator is refused with code unknown_mutator and nothing is written', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false })));
    await assert.rejects(ob.enqueue('refundEverything', { id: 'x' }), (e: unknown) => {
      assert.ok(e instanceof OutboxError);
      assert.equal(e.code, 'unknown_mutator');
      assert.match(e.message, /refundEverything/);
      return true;
    });
    assert.deepEqual(await ob.peek(), []);
  });

  test('oversized args are refused with code args_too_large', async () => {
    const ob = opened.track(
      await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false, mutators: { createOrder: { maxArgsBytes: 64 } } })),
    );
    await assert.rejects(ob.enqueue('createOrder', { id: 'x'.repeat(100), lines: [] }), (e: unknown) =>
      isOutboxError(e, 'args_too_large'),
    );
  });

  test('unknown command ids and bad arguments are typed errors', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false })));
    await assert.rejects(ob.retry('00000000-0000-7000-8000-000000000000'), (e: unknown) => isOutboxError(e, 'unknown_command'));
    await assert.rejects(ob.discard('not-a-uuid'), (e: unknown) => e instanceof OutboxError && e.code !== 'internal');
    await assert.rejects(ob.enqueue('', {}), (e: unknown) => isOutboxError(e, 'invalid_request'));
    await assert.rejects(ob.drainFor(-1), (e: unknown) => isOutboxError(e, 'invalid_request'));
  });

  test('calls after close reject with code closed', async () => {
    const ob = await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false }));
    await ob.close();
    await assert.rejects(ob.enqueue('createOrder', order('rn-closed')), (e: unknown) => isOutboxError(e, 'closed'));
    await assert.rejects(ob.status(), (e: unknown) => isOutboxError(e, 'closed'));
    await ob.close(); // harmless twice
  });

  test('a refused token pauses sending, reports unauthorized, and keeps the command', async () => {
    let calls = 0;
    const ob = opened.track(
      await createOutbox(
        aliceConfig(dir(), fx.server.url, {
          token: async () => {
            calls += 1;
            return 'not-a-valid-token';
          },
        }),
      ),
    );
    const id = await ob.enqueue('createOrder', order('rn-unauth-1'));
    await until('the unauthorized status', () => ob.syncStatus.lastError?.code === 'unauthorized');
    assert.ok(calls >= 1, 'the token function was asked');
    const cmd = await ob.command(id);
    assert.ok(cmd && ['pending', 'in_flight'].includes(cmd.state), `state ${cmd?.state}`);
  });
});

describe('subscriptions', () => {
  test('events arrive in order and unsubscribe stops them', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false })));
    const seen: OutboxEvent[] = [];
    const stop = ob.on((e) => seen.push(e));
    const id = await ob.enqueue('createOrder', order('rn-events-1'));
    await ob.setOnline(true);
    await ob.waitFor(id);
    await until('the succeeded state event', () =>
      seen.some((e) => e.type === 'stateChanged' && e.id === id && e.to === 'succeeded'),
    );
    const mine = seen.filter((e) => 'id' in e && e.id === id).map((e) => (e.type === 'stateChanged' ? `${e.from}>${e.to}` : e.type));
    assert.equal(mine[0], 'enqueued');
    assert.ok(mine.indexOf('pending>in_flight') < mine.indexOf('in_flight>succeeded'), mine.join(' '));
    assert.ok(seen.some((e) => e.type === 'onlineChanged' && e.online));
    stop();
    stop();
    const count = seen.length;
    await ob.enqueue('createOrder', order('rn-events-2'));
    await ob.setOnline(false);
    await new Promise((ok) => setTimeout(ok, 100));
    assert.equal(seen.length, count, 'no event after unsubscribe');
  });

  test('watch delivers the current result, then changes, until unsubscribed', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false })));
    const results: Doc[][] = [];
    const stop = ob.watch('orders', { where: { status: 'open' } }, (docs) => results.push(docs));
    await until('the first result', () => results.length >= 1);
    assert.deepEqual(results[0], []);
    await ob.enqueue('createOrder', order('rn-watch-1'), {
      optimistic: [{ collection: 'orders', id: 'rn-watch-1', insert: { status: 'open' } }],
    });
    await until('the optimistic order', () => results.at(-1)?.some((d) => d.id === 'rn-watch-1'));
    stop();
    const n = results.length;
    await ob.enqueue('createOrder', order('rn-watch-2'), {
      optimistic: [{ collection: 'orders', id: 'rn-watch-2', insert: { status: 'open' } }],
    });
    await new Promise((ok) => setTimeout(ok, 150));
    assert.equal(results.length, n, 'no result after unsubscribe');
  });

  test('sync status counts outstanding commands and progress of the drain', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false })));
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await ob.enqueue('createOrder', order(`rn-progress-${i}`, 'juice')));
    await until('3 outstanding', () => ob.syncStatus.outstanding === 3);
    assert.deepEqual(ob.syncStatus.progress, { done: 0, total: 3 });
    const totals: number[] = [];
    const stop = ob.onSyncStatus((s) => totals.push(s.progress.done));
    await ob.setOnline(true);
    for (const id of ids) await ob.waitFor(id);
    await until('an empty queue', () => ob.syncStatus.outstanding === 0);
    stop();
    assert.deepEqual(ob.syncStatus.progress, { done: 0, total: 0 });
    assert.ok(ob.syncStatus.online);
    assert.equal(ob.syncStatus.lastError, null);
  });
});

describe('restart', () => {
  test('pending commands and optimistic state survive close and reopen, then drain once', async () => {
    const d = dir();
    const first = await createOutbox(aliceConfig(d, fx.server.url, { startOnline: false }));
    const id = await first.enqueue('createOrder', order('rn-restart-1', 'croissant'), {
      optimistic: [{ collection: 'orders', id: 'rn-restart-1', insert: { status: 'open' } }],
    });
    await first.close();
    const second = opened.track(await createOutbox(aliceConfig(d, fx.server.url, { startOnline: false })));
    const pending = await second.peek();
    assert.deepEqual(
      pending.map((c) => [c.id, c.state]),
      [[id, 'pending']],
    );
    assert.equal((await second.get('orders', 'rn-restart-1'))?.status, 'pending');
    await second.setOnline(true);
    assert.equal((await second.waitFor(id)).kind, 'succeeded');
    const stats = (await fx.server.getJson('/v1/_stats')) as Stats;
    const cmd = await second.command(id);
    assert.ok(cmd);
    assert.ok(Object.values(stats.keys).every((k) => k.applied <= 1));
  });
});
