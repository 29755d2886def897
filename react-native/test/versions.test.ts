/**
 * Shipping a new version of a mutator through the TypeScript API, against the real library
 * (N-API) and a real reference server that accepts only `createOrder` version 2.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { aliceConfig, createOutbox } from './support/outbox';
import type { Json } from './support/outbox';
import { suiteFixture } from './support/fixture';
import { startServer } from './support/server';
import type { TestServer } from './support/server';

const fx = suiteFixture();
const { opened } = fx;

type Line = { product_id: string; qty: number };

/** createOrder v1 → v2: `lines[{product_id, qty}]` become `items[{sku, quantity}]`. */
function upgradeOrder(from: number, args: Json): Json {
  if (from !== 1) throw new Error(`no upgrade from version ${from}`);
  const { lines, ...rest } = args as { lines: Line[] } & Record<string, Json>;
  return { ...rest, items: lines.map((l) => ({ sku: l.product_id, quantity: l.qty })) };
}

describe('mutator versions', () => {
  let v2only: TestServer;
  before(async () => {
    v2only = await startServer(['--mutator-versions', 'createOrder=2']);
  });
  after(async () => {
    await v2only.stop();
  });

  test('sales queued by the old app are upgraded at open and applied as version 2', async () => {
    const d = fx.dir();
    const oldApp = await createOutbox(aliceConfig(d, v2only.url, { startOnline: false }));
    const id = await oldApp.enqueue('createOrder', { id: 'v-1', lines: [{ product_id: 'latte', qty: 2 }] });
    assert.equal((await oldApp.command(id))?.mutatorVersion, 1);
    await oldApp.close();
    const newApp = opened.track(
      await createOutbox(aliceConfig(d, v2only.url, { mutators: { createOrder: { version: 2, upgrade: upgradeOrder } } })),
    );
    const cmd = await newApp.command(id);
    assert.equal(cmd?.mutatorVersion, 2);
    assert.deepEqual(cmd?.args, { id: 'v-1', items: [{ sku: 'latte', quantity: 2 }] });
    const s = await newApp.waitFor(id);
    assert.ok(s.kind === 'succeeded', JSON.stringify(s));
    assert.equal((s.result as { total: number }).total, 840, 'the server understood version 2');
  });

  test('an old command the upgrader cannot convert is parked as wedged, untouched, with the reason', async () => {
    const d = fx.dir();
    const oldApp = await createOutbox(aliceConfig(d, v2only.url, { startOnline: false }));
    const args = { id: 'v-2', lines: 'not a list' };
    const id = await oldApp.enqueue('createOrder', args);
    await oldApp.close();
    const newApp = opened.track(await createOutbox(aliceConfig(d, v2only.url, { startOnline: false })));
    const report = await newApp.registerMutator('createOrder', { version: 2, upgrade: upgradeOrder });
    assert.deepEqual(report, { upgraded: 0, wedged: 1 });
    const cmd = await newApp.command(id);
    assert.equal(cmd?.state, 'wedged');
    assert.equal(cmd?.mutatorVersion, 1);
    assert.deepEqual(cmd?.args, args);
    assert.ok(cmd?.settlement?.kind === 'wedged' && /version 1 to 2/.test(cmd.settlement.reason), JSON.stringify(cmd?.settlement));
  });

  test('a version 1 command the server no longer accepts fails with unsupported_version', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(fx.dir(), v2only.url, { startOnline: false })));
    const id = await ob.enqueue('createOrder', { id: 'v-3', lines: [{ product_id: 'latte', qty: 1 }] });
    await ob.setOnline(true);
    const s = await ob.waitFor(id);
    assert.ok(s.kind === 'failed' && s.code === 'unsupported_version', JSON.stringify(s));
  });
});
