/**
 * Through TypeScript against the real library (N-API) and server: random doubles survive
 * enqueue, the device store, the wire, the server and a second device's pull bit for bit;
 * and `checkReceipt` tells staff whether a sale reached the server.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { aliceConfig, createOutbox } from './support/outbox';
import { suiteFixture } from './support/fixture';
import { until } from './support/wait';

const fx = suiteFixture();
const { opened } = fx;

/** `n` finite doubles from random bit patterns (every exponent, subnormals, both signs). */
function randomDoubles(n: number): number[] {
  const out: number[] = [];
  const view = new DataView(new ArrayBuffer(8));
  while (out.length < n) {
    const bytes = randomBytes(8);
    for (let i = 0; i < 8; i++) view.setUint8(i, bytes[i]!);
    const x = view.getFloat64(0);
    if (Number.isFinite(x)) out.push(x);
  }
  return [...out, 123456789.12345679, 3.7826751235084986e-121, Number.MAX_VALUE, Number.MIN_VALUE, 0.1 + 0.2];
}

describe('numbers', () => {
  test('random doubles round-trip bit for bit: device store, server, second device', async () => {
    const values = randomDoubles(500);
    const d = fx.dir();
    const a = opened.track(await createOutbox(aliceConfig(d, fx.server.url, { startOnline: false, mutators: ['put'] })));
    const ids: string[] = [];
    for (const [i, v] of values.entries()) {
      ids.push(
        await a.enqueue('put', { collection: 'tsnums', id: `n${i}`, doc: { v } }, {
          optimistic: [{ collection: 'tsnums', id: `n${i}`, insert: { v } }],
        }),
      );
    }
    const changed = (where: string, got: (number | undefined)[]) => {
      const bad = values.filter((v, i) => !Object.is(got[i], v));
      assert.deepEqual(bad.slice(0, 5), [], `${where}: ${bad.length} of ${values.length} changed`);
    };
    changed('device store', await Promise.all(values.map(async (_, i) => (await a.get<{ v: number }>('tsnums', `n${i}`))?.value.v)));
    await a.setOnline(true);
    for (const id of ids) assert.equal((await a.waitFor(id)).kind, 'succeeded');
    const b = opened.track(
      await createOutbox(aliceConfig(d, fx.server.url, { path: join(d, 'second.db'), mutators: ['put'] })),
    );
    await until('the second device pulled every number', async () => (await b.count('tsnums')) === values.length, 30_000);
    changed('second device', await Promise.all(values.map(async (_, i) => (await b.get<{ v: number }>('tsnums', `n${i}`))?.value.v)));
  });
});

describe('receipts', () => {
  test('checkReceipt: not applied before sending, applied with its receipt after', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(fx.dir(), fx.server.url, { startOnline: false })));
    const id = await ob.enqueue('createOrder', { id: 'rcpt-1', lines: [{ product_id: 'latte', qty: 1 }] });
    // Queued while the engine is offline: the server, asked directly, has never seen it.
    const before = await ob.checkReceipt(id);
    assert.deepEqual(before, { kind: 'not_applied', state: 'pending' });
    await ob.setOnline(true);
    assert.equal((await ob.waitFor(id)).kind, 'succeeded');
    const check = await ob.checkReceipt(id);
    assert.ok(check.kind === 'applied', JSON.stringify(check));
    assert.ok(check.receipt.serverSeq > 0);
    assert.ok(check.receipt.appliedAt !== null && Math.abs(check.receipt.appliedAt - Date.now()) < 60_000);
    assert.deepEqual((await ob.command(id))?.receipt, check.receipt, 'the stored receipt is the server\'s');
  });
});
