/**
 * NetInfo → setOnline and AppState → onForeground/onBackground, on by default, with test
 * doubles in place of the React Native system modules, over the real library and server.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { aliceConfig, createOutbox, foregroundFromAppState, onlineFromNetInfo, tempDir } from './support/outbox';
import type { OutboxEvent } from './support/outbox';
import { FakeAppState, FakeNetInfo } from './support/platform';
import { suiteFixture } from './support/fixture';
import { sleep, until } from './support/wait';

const fx = suiteFixture();
const { opened } = fx;
const dir = () => fx.dir();

describe('NetInfo', () => {
  test('maps NetInfo states to online/offline/unknown', () => {
    assert.equal(onlineFromNetInfo({ isConnected: true, isInternetReachable: true }), true);
    assert.equal(onlineFromNetInfo({ isConnected: true, isInternetReachable: null }), true);
    assert.equal(onlineFromNetInfo({ isConnected: true, isInternetReachable: false }), false);
    assert.equal(onlineFromNetInfo({ isConnected: false, isInternetReachable: null }), false);
    assert.equal(onlineFromNetInfo({ isConnected: null, isInternetReachable: null }), null);
  });

  test('going offline queues, coming back online drains, by default', async () => {
    const netInfo = new FakeNetInfo({ isConnected: false, isInternetReachable: false });
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { platform: { netInfo } })));
    await until('offline from NetInfo', async () => (await ob.status()).online === false);
    const id = await ob.enqueue('createOrder', { id: 'rn-netinfo-1', lines: [{ product_id: 'espresso', qty: 1 }] });
    await sleep(100);
    assert.equal((await ob.command(id))?.state, 'pending');
    netInfo.set({ isConnected: true, isInternetReachable: true });
    assert.equal((await ob.waitFor(id)).kind, 'succeeded');
    assert.equal((await ob.status()).online, true);
    await ob.close();
    assert.equal(netInfo.listenerCount, 0, 'close() unsubscribes from NetInfo');
  });

  test('autoOnline: false leaves connectivity to the app', async () => {
    const netInfo = new FakeNetInfo({ isConnected: false, isInternetReachable: false });
    const ob = opened.track(
      await createOutbox(aliceConfig(dir(), fx.server.url, { platform: { netInfo }, autoOnline: false })),
    );
    assert.equal(netInfo.listenerCount, 0);
    await sleep(20);
    assert.equal((await ob.status()).online, true, 'NetInfo was not consulted');
  });
});

describe('AppState', () => {
  test('maps AppState values to foreground/background/no change', () => {
    assert.equal(foregroundFromAppState('active'), true);
    assert.equal(foregroundFromAppState('background'), false);
    assert.equal(foregroundFromAppState('inactive'), null);
    assert.equal(foregroundFromAppState(undefined), null);
  });

  test('background and active reach the engine as lifecycle events; inactive is ignored', async () => {
    const appState = new FakeAppState('active');
    const ob = opened.track(await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false, platform: { appState } })));
    const seen: boolean[] = [];
    ob.on('foregroundChanged', (e: Extract<OutboxEvent, { type: 'foregroundChanged' }>) => seen.push(e.foreground));
    appState.set('inactive');
    appState.set('background');
    appState.set('background');
    appState.set('active');
    await until('two lifecycle events', () => seen.length >= 2);
    await sleep(50);
    assert.deepEqual(seen, [false, true]);
    await ob.close();
    assert.equal(appState.listenerCount, 0, 'close() removes the AppState listener');
  });

  test('autoLifecycle: false does not subscribe to AppState', async () => {
    const appState = new FakeAppState('active');
    opened.track(
      await createOutbox(aliceConfig(dir(), fx.server.url, { startOnline: false, platform: { appState }, autoLifecycle: false })),
    );
    assert.equal(appState.listenerCount, 0);
  });
});
