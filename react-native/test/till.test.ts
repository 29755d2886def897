/**
 * Running a till through TypeScript against the real library (N-API) and server: offline
 * risk limits (hard and soft), a 403 that pauses instead of failing sales and resumes on
 * `syncNow`, `retry` of a failed order with its dependant, `closeout`, and a queue filled to
 * its size cap that drains and takes sales again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { aliceConfig, createOutbox, isOutboxError } from './support/outbox';
import type { OutboxEvent } from './support/outbox';
import { suiteFixture } from './support/fixture';
import { until } from './support/wait';

const fx = suiteFixture();
const { opened } = fx;

async function faults(spec: string | null): Promise<void> {
  const res = await fetch(`${fx.server.url}/v1/_faults`, spec === null ? { method: 'DELETE' } : { method: 'POST', body: spec });
  assert.equal(res.status, 200);
}

const sale = (id: string, cents: number) => ({ collection: 'tssales', id, doc: { total_cents: cents } });

describe('till', () => {
  test('limits: a warning at the soft threshold, limit_exceeded past the maximum, nothing written', async () => {
    const ob = opened.track(
      await createOutbox(
        aliceConfig(fx.dir(), fx.server.url, {
          startOnline: false,
          mutators: ['put'],
          maxUnsynced: 3,
          limitAmountField: '/doc/total_cents',
          maxUnsyncedAmount: 10_000,
        }),
      ),
    );
    const events: OutboxEvent[] = [];
    ob.on((e) => events.push(e));
    await ob.enqueue('put', sale('l1', 6_000));
    await ob.enqueue('put', sale('l2', 2_500));
    await until('an amount warning', async () =>
      events.some((e) => e.type === 'limitWarning' && e.limit === 'unsynced_amount' && e.current === 8_500 && e.max === 10_000),
    );
    await assert.rejects(ob.enqueue('put', sale('l3', 2_000)), (e: unknown) => {
      assert.ok(isOutboxError(e, 'limit_exceeded'), String(e));
      assert.deepEqual(e.limit, { limit: 'unsynced_amount', mutator: null, current: 8_500, max: 10_000 });
      return true;
    });
    await ob.enqueue('put', sale('l4', 0));
    await assert.rejects(ob.enqueue('put', sale('l5', 0)), (e: unknown) => isOutboxError(e, 'limit_exceeded') && e.limit?.limit === 'unsynced_count');
    assert.equal((await ob.peek()).length, 3);
  });

  test('a 403 pauses without consuming attempts and resumes on syncNow', async () => {
    const ob = opened.track(
      await createOutbox(aliceConfig(fx.dir(), fx.server.url, { startOnline: false, mutators: ['put'], retryBaseMs: 60_000, retryCapMs: 60_000 })),
    );
    const events: OutboxEvent[] = [];
    ob.on((e) => events.push(e));
    await faults('403=1');
    try {
      const id = await ob.enqueue('put', sale('f1', 100));
      await ob.setOnline(true);
      await until('access denied', async () => events.some((e) => e.type === 'accessDenied'));
      await until('back to pending', async () => (await ob.command(id))?.state === 'pending');
      assert.equal((await ob.command(id))?.attempts, 0);
      await faults(null);
      await ob.syncNow();
      assert.equal((await ob.waitFor(id)).kind, 'succeeded');
    } finally {
      await faults(null);
    }
  });

  test('retry of a failed order sends it again with its dependant', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(fx.dir(), fx.server.url, { startOnline: false, mutators: ['createOrder', 'adjustStock', 'put'] })));
    // bagel has 30 in stock: the order is rejected and the receipt after it fails with it.
    const order = await ob.enqueue('createOrder', { id: 'ts-retry', lines: [{ product_id: 'bagel', qty: 40 }] });
    const receipt = await ob.enqueue('put', sale('r-ts-retry', 1_200), { after: [order] });
    await ob.setOnline(true);
    const failed = await ob.waitFor(order);
    assert.equal(failed.kind === 'failed' && failed.code, 'insufficient_stock');
    const dependant = await ob.waitFor(receipt);
    assert.equal(dependant.kind === 'failed' && dependant.code, 'dependency_failed');
    assert.equal((await ob.waitFor(await ob.enqueue('adjustStock', { product_id: 'bagel', delta: 100 }))).kind, 'succeeded');
    await ob.retry(order);
    assert.equal((await ob.waitFor(order)).kind, 'succeeded');
    assert.equal((await ob.waitFor(receipt)).kind, 'succeeded');
    // The rejected round stays in the history; the new round continues its numbering.
    assert.deepEqual((await ob.command(order))?.history.map((a) => a.outcome), ['rejected', 'applied']);
  });

  test('closeout: clean once drained, not clean past its deadline', async () => {
    const ob = opened.track(
      await createOutbox(aliceConfig(fx.dir(), fx.server.url, { mutators: ['put'], limitAmountField: '/doc/total_cents' })),
    );
    await ob.enqueue('put', sale('c1', 1_250));
    await ob.enqueue('put', sale('c2', 750));
    const clean = await ob.closeout(10_000);
    assert.equal(clean.clean, true, JSON.stringify(clean));
    assert.equal(clean.states.find((t) => t.state === 'succeeded')?.amount, 2_000);
    await faults('latency=3000ms');
    try {
      const slow = await ob.enqueue('put', sale('c3', 500));
      const late = await ob.closeout(300);
      assert.equal(late.clean, false);
      assert.equal(late.drain.completed, false);
      assert.deepEqual(late.unsettled.map((u) => u.id), [slow]);
      assert.equal(late.oldestUnsynced?.id, slow);
    } finally {
      await faults(null);
    }
  });

  test('a queue filled to its size cap drains to empty once online, and enqueue works again', async () => {
    const ob = opened.track(
      await createOutbox(aliceConfig(fx.dir(), fx.server.url, { startOnline: false, mutators: ['put'], maxSizeBytes: 512 * 1024 })),
    );
    // Each answer brings back a 4 KB document new to this register: together far more than
    // the drain's reserve.
    const big = (i: number) => ({ collection: 'tscap', id: `cap-${i}`, doc: { i, note: 'x'.repeat(4000) } });
    let refused: unknown = null;
    let accepted = 0;
    for (let i = 0; i < 400 && refused === null; i++) {
      try {
        await ob.enqueue('put', big(i));
        accepted += 1;
      } catch (e) {
        refused = e;
      }
    }
    assert.ok(isOutboxError(refused, 'storage_full'), `refused with ${String(refused)}`);
    assert.ok(accepted > 50, `only ${accepted} accepted before the cap`);
    assert.equal((await ob.status()).pending, accepted, 'nothing accepted before the cap was lost');
    await ob.setOnline(true);
    const report = await ob.drainFor(30_000);
    assert.equal(report.remaining, 0, `the full queue drained: ${JSON.stringify(await ob.status())}`);
    assert.equal((await ob.status()).succeeded, accepted);
    await until(
      'room again for a sale',
      async () => {
        try {
          await ob.enqueue('put', big(100_000));
          return true;
        } catch (e) {
          if (isOutboxError(e, 'storage_full')) return false;
          throw e;
        }
      },
      30_000,
    );
    assert.equal((await ob.drainFor(30_000)).remaining, 0, 'the sale after the cap was sent');
    // Every server document arrives, or as many as pulls may keep: 4 KB documents take two
    // pages each, and pulls stop at 90% of the app's share (the rest stays for sales).
    await until(
      'every server document in the store, or as many as pulls may keep',
      async () => {
        const held = await ob.count('tscap');
        const stopped = ((await ob.status()).lastErrorText ?? '').includes('pull failed: storage is full');
        return held === accepted + 1 || (stopped && held > 0);
      },
      30_000,
    );
    // Pulled documents cannot be pruned: whatever they filled, a sale still fits.
    await ob.enqueue('put', big(100_001));
    assert.equal((await ob.drainFor(30_000)).remaining, 0, 'the sale after the pull was sent');
  });
});
