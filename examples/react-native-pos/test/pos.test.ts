/**
 * The POS example rendered with react-test-renderer over the real library (N-API) and the
 * real reference server on loopback (its dev seed: alice in ws-1, the POS catalog).
 * NetInfo is a test double; `react-native` is the test-only stand-in of ./support/alias.
 */
// First: the test-only module aliases (react-native, @outbox-sdk/react-native, react).
import './support/alias';

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createElement } from 'react';

import { aliceConfig, createOutbox } from '../../../react-native/test/support/outbox';
import type { Outbox, OutboxConfig } from '../../../react-native/test/support/outbox';
import { suiteFixture } from '../../../react-native/test/support/fixture';
import { FakeNetInfo } from '../../../react-native/test/support/platform';
import { PosRoot } from '../src/PosRoot';
import { act, Screen } from './support/screen';

const fx = suiteFixture();
const ONLINE = { isConnected: true, isInternetReachable: true };
const OFFLINE = { isConnected: false, isInternetReachable: false };

/** The register as App.tsx builds it, with the N-API `createOutbox` injected. */
async function renderRegister(orderPrefix: string, extra: Partial<OutboxConfig> = {}) {
  const netInfo = new FakeNetInfo(ONLINE);
  const dir = fx.dir();
  let outbox: Outbox | null = null;
  const open = async () => (outbox = fx.opened.track(await createOutbox(aliceConfig(dir, fx.server.url, { platform: { netInfo }, ...extra }))));
  let n = 0;
  const newOrderId = () => `${orderPrefix}-${++n}`;
  const screen = await Screen.render(createElement(PosRoot, { open, newOrderId }));
  // The catalog arrives from the server's change feed.
  await screen.waitFor('the catalog', () => screen.query('stock-espresso') !== null && screen.query('stock-juice') !== null);
  const stockOf = (productId: string) => {
    const m = /(\d+) in stock/.exec(screen.text(`stock-${productId}`));
    if (!m) throw new Error(`no stock shown for ${productId}`);
    return Number(m[1]);
  };
  const setOnline = (online: boolean) => act(async () => netInfo.set(online ? ONLINE : OFFLINE));
  return { screen, stockOf, setOnline, outbox: () => outbox! };
}

describe('POS example', () => {
  test('charge offline: the sale is pending and the stock is taken off; online: it syncs and the pending list empties', async () => {
    const { screen, stockOf, setOnline } = await renderRegister('pos-offline');
    const espresso = stockOf('espresso');
    const croissant = stockOf('croissant');
    assert.equal(screen.text('sync-badge'), 'Synced');

    await setOnline(false);
    await screen.waitFor('the offline badge', () => screen.text('sync-badge') === 'Offline');
    await screen.press('add-espresso');
    await screen.press('add-espresso');
    await screen.press('add-croissant');
    assert.equal(screen.text('in-cart-espresso'), '×2');
    assert.equal(screen.text('tab-cart'), 'Cart (3)');

    await screen.press('tab-cart');
    assert.equal(screen.text('cart-total'), 'Total €9.10'); // 2 × 2.80 + 3.50
    await screen.press('charge');
    await screen.waitFor('the sale to be recorded', () => screen.query('charge-message') !== null && screen.text('charge-message') === 'Sale pos-offline-1 recorded');
    assert.equal(screen.text('tab-cart'), 'Cart (0)', 'the cart empties after the charge');
    await screen.waitFor('the badge to count it', () => screen.text('sync-badge') === 'Offline · 1 pending');

    await screen.press('tab-sales');
    await screen.waitFor('the sale listed as pending', () => screen.query('sale-status-pos-offline-1') !== null);
    assert.equal(screen.text('sale-status-pos-offline-1'), 'pending');
    assert.match(screen.text('sale-pos-offline-1'), /3 items · €9\.10/);

    await screen.press('tab-pending');
    await screen.waitFor('the pending list', () => screen.query('pending-state-pos-offline-1') !== null);
    assert.equal(screen.text('pending-state-pos-offline-1'), 'pending');
    assert.equal(screen.text('tab-pending'), 'Pending (1)');
    assert.equal(screen.query('retry-pos-offline-1'), null, 'a pending sale cannot be retried');
    assert.equal(screen.query('discard-pos-offline-1'), null, 'a pending sale cannot be discarded');

    await screen.press('tab-catalog');
    await screen.waitFor('the stock taken off', () => stockOf('espresso') === espresso - 2 && stockOf('croissant') === croissant - 1);
    assert.match(screen.text('stock-espresso'), /\(pending\)$/);

    await setOnline(true);
    await screen.waitFor('the badge to show synced', () => screen.text('sync-badge') === 'Synced');
    await screen.press('tab-sales');
    await screen.waitFor('the sale synced', () => screen.text('sale-status-pos-offline-1') === 'synced');
    assert.match(screen.text('sale-pos-offline-1'), /€9\.10/, 'the server computed the same total');
    await screen.press('tab-pending');
    await screen.waitFor('the pending list empty', () => screen.query('pending-empty') !== null);
    assert.equal(screen.text('tab-pending'), 'Pending (0)');
    await screen.press('tab-catalog');
    // The server's own stock now: the sale was applied once.
    await screen.waitFor('the server stock', () => !screen.text('stock-espresso').includes('pending'));
    assert.equal(stockOf('espresso'), espresso - 2);
    assert.equal(stockOf('croissant'), croissant - 1);
    await screen.unmount();
  });

  test('a sale the server rejects shows failed; Discard rolls back its order and stock', async () => {
    const { screen, stockOf, setOnline, outbox } = await renderRegister('pos-rejected');
    const muffins = stockOf('muffin');
    await setOnline(false);
    await screen.press('add-muffin');
    await screen.press('tab-cart');
    await screen.press('charge');
    await screen.waitFor('the sale recorded', () => screen.query('charge-message') !== null);
    // Meanwhile another register sells every muffin left on the server.
    const other = fx.opened.track(await createOutbox(aliceConfig(fx.dir(), fx.server.url)));
    const id = await other.enqueue('adjustStock', { product_id: 'muffin', delta: -muffins });
    assert.equal((await other.waitFor(id)).kind, 'succeeded');

    await setOnline(true);
    await screen.press('tab-pending');
    await screen.waitFor('the sale failed', () => screen.query('pending-state-pos-rejected-1') !== null && screen.text('pending-state-pos-rejected-1').startsWith('failed'));
    assert.match(screen.text('pending-state-pos-rejected-1'), /insufficient_stock|in stock/);
    assert.equal(screen.query('retry-pos-rejected-1'), null, 'a failed sale cannot be retried as is');
    await screen.press('discard-pos-rejected-1');
    await screen.waitFor('the pending list empty', () => screen.query('pending-empty') !== null);
    assert.equal((await outbox().get('orders', 'pos-rejected-1')), null, 'the order is gone');
    await screen.press('tab-catalog');
    await screen.waitFor('the server stock (none left)', () => stockOf('muffin') === 0);
    await screen.unmount();
  });

  test('a wedged sale (attempts used up) is sent again by Retry', async () => {
    // The next POST /v1/commands answers 500; one attempt is all a sale gets here.
    const res = await fetch(`${fx.server.url}/v1/_faults`, { method: 'POST', body: '500=1#1' });
    assert.equal(res.status, 200);
    const { screen } = await renderRegister('pos-wedged', { maxAttempts: 1 });
    await screen.press('add-latte');
    await screen.press('tab-cart');
    await screen.press('charge');
    await screen.press('tab-pending');
    await screen.waitFor('the sale wedged', () => screen.query('pending-state-pos-wedged-1') !== null && screen.text('pending-state-pos-wedged-1').startsWith('wedged'));
    assert.notEqual(screen.query('discard-pos-wedged-1'), null, 'a wedged sale can be discarded');
    await screen.waitFor('the badge', () => screen.text('sync-badge') === '1 need attention');
    await screen.press('retry-pos-wedged-1');
    await screen.waitFor('the pending list empty', () => screen.query('pending-empty') !== null);
    await screen.press('tab-sales');
    await screen.waitFor('the sale synced', () => screen.text('sale-status-pos-wedged-1') === 'synced');
    assert.equal(screen.text('sync-badge'), 'Synced');
    await screen.unmount();
  });
});
