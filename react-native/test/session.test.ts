/**
 * Cashier switching, logout and close on a register, against the real library (N-API) and
 * real reference servers on loopback.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  aliceConfig,
  createOutbox,
  databasePath,
  isOutboxError,
  switchUser,
  useSyncStatus,
} from './support/outbox';
import type { Outbox } from './support/outbox';
import { suiteFixture } from './support/fixture';
import { act, renderHookSwitchable, waitForHook } from './support/render';
import { startServer } from './support/server';
import type { TestServer } from './support/server';
import { sleep, until } from './support/wait';

const fx = suiteFixture();
const { opened } = fx;

interface Stats {
  totals: { applied: number; duplicates: number };
}

const sale = (id: string) => ({ id, lines: [{ product_id: 'espresso', qty: 1 }] });

describe('databasePath', () => {
  test('one file per (user, workspace), with ids that cannot escape the folder', () => {
    assert.equal(databasePath('/data/app', 'alice', 'ws-1'), '/data/app/outbox+ws-1+alice.db');
    assert.equal(databasePath('/data/app/', 'bob', 'ws-1'), '/data/app/outbox+ws-1+bob.db');
    const evil = databasePath('/data/app', '../../etc/passwd', '..');
    assert.ok(evil.startsWith('/data/app/outbox+'), evil);
    assert.ok(!evil.slice('/data/app/'.length).includes('/'), `${evil} names a folder`);
    assert.notEqual(databasePath('/d', 'a+b', 'w'), databasePath('/d', 'b', 'w+a'));
    assert.notEqual(databasePath('/d', 'a/b', 'w'), databasePath('/d', 'a', 'w/b'));
    assert.throws(() => databasePath('/d', '', 'w'), (e: unknown) => isOutboxError(e, 'invalid_config'));
  });
});

describe('switching cashier', () => {
  test('switchUser closes the first engine without touching its file; its sales drain when it signs in again', async () => {
    const base = fx.dir();
    const cfg = (userId: string, token: string, workspaceId: string) =>
      aliceConfig(base, fx.server.url, {
        userId,
        token,
        workspaceId,
        startOnline: false,
        path: databasePath(base, userId, workspaceId),
      });
    const alice = await createOutbox(cfg('alice', 'dev-alice', 'ws-1'));
    const id = await alice.enqueue('createOrder', sale('sw-alice-1'));
    const bob = opened.track(await switchUser(alice, cfg('bob', 'dev-bob', 'ws-2')));
    assert.ok(alice.isClosed, 'the first engine is closed');
    assert.ok(existsSync(alice.path), "alice's file stays");
    assert.equal((await bob.peek()).length, 0, "bob does not see alice's queue");
    const back = opened.track(await switchUser(bob, cfg('alice', 'dev-alice', 'ws-1')));
    assert.deepEqual(
      (await back.peek()).map((c) => c.id),
      [id],
      "alice's unsent sale is still queued",
    );
    await back.setOnline(true);
    assert.equal((await back.waitFor(id)).kind, 'succeeded');
  });

  test('a failed switch leaves the current cashier signed in', async () => {
    const base = fx.dir();
    const alice = opened.track(
      await createOutbox(aliceConfig(base, fx.server.url, { startOnline: false, path: databasePath(base, 'alice', 'ws-1') })),
    );
    await assert.rejects(
      switchUser(alice, aliceConfig(base, fx.server.url, { path: join(base, 'missing', 'folder', 'bob.db'), userId: 'bob' })),
      (e: unknown) => isOutboxError(e, 'db_unwritable'),
    );
    assert.ok(!alice.isClosed);
    await alice.enqueue('createOrder', sale('sw-still-1'));
    assert.equal((await alice.peek()).length, 1);
  });

  test('hooks re-subscribe when the provider switches to another engine', async () => {
    const base = fx.dir();
    const alice = await createOutbox(
      aliceConfig(base, fx.server.url, { startOnline: false, path: databasePath(base, 'alice', 'ws-1') }),
    );
    await alice.enqueue('createOrder', sale('sw-hook-1'));
    await alice.enqueue('createOrder', sale('sw-hook-2'));
    const probe = await renderHookSwitchable(alice, () => useSyncStatus());
    await waitForHook(probe, "alice's 2 pending", (s) => s.pending === 2);
    const bob = opened.track(
      await switchUser(
        alice,
        aliceConfig(base, fx.server.url, { userId: 'bob', startOnline: false, path: databasePath(base, 'bob', 'ws-1') }),
      ),
    );
    await probe.setOutbox(bob);
    await waitForHook(probe, "bob's empty queue", (s) => s.pending === 0);
    await act(async () => {
      await bob.enqueue('createOrder', sale('sw-hook-3'));
    });
    await waitForHook(probe, "bob's new sale", (s) => s.pending === 1);
    await probe.unmount();
  });
});

describe('logout', () => {
  test('logout with unsent sales refuses, says how many, and keeps everything', async () => {
    const ob = opened.track(await createOutbox(aliceConfig(fx.dir(), fx.server.url, { startOnline: false })));
    for (const n of [1, 2, 3]) await ob.enqueue('createOrder', sale(`lo-${n}`));
    await assert.rejects(ob.logout(), (e: unknown) => {
      assert.ok(isOutboxError(e, 'unsent_commands'));
      assert.match(e.message, /\b3\b/);
      return true;
    });
    assert.ok(!ob.isClosed && existsSync(ob.path));
    assert.equal((await ob.peek()).length, 3);
  });

  test('logout({ waitMs }) drains first, then deletes the database', async () => {
    const ob = await createOutbox(aliceConfig(fx.dir(), fx.server.url, { startOnline: false }));
    const path = ob.path;
    const ids = [];
    for (const n of [1, 2]) ids.push(await ob.enqueue('createOrder', sale(`lo-wait-${n}`)));
    await ob.setOnline(true);
    const result = await ob.logout({ waitMs: 10_000 });
    assert.deepEqual(result, { dropped: 0, drained: true });
    assert.ok(ob.isClosed && !existsSync(path));
  });

  test('logout({ force: true }) drops what is unsent and reports the count', async () => {
    const ob = await createOutbox(aliceConfig(fx.dir(), fx.server.url, { startOnline: false }));
    const path = ob.path;
    await ob.enqueue('createOrder', sale('lo-force-1'));
    await ob.enqueue('createOrder', sale('lo-force-2'));
    assert.deepEqual(await ob.logout({ force: true }), { dropped: 2, drained: false });
    assert.ok(!existsSync(path));
  });
});

describe('close', () => {
  let slow: TestServer;
  before(async () => {
    slow = await startServer(['--faults', 'latency=150-250ms']);
  });
  after(async () => {
    await slow.stop();
  });

  test('close() resolves only when nothing is in flight: the server applies nothing afterwards', async () => {
    const d = fx.dir();
    const ob: Outbox = await createOutbox(
      aliceConfig(d, slow.url, { startOnline: false, maxConcurrency: 4, maxBatchSize: 5 }),
    );
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push(await ob.enqueue('createOrder', sale(`close-${i}`)));
    let started = 0;
    ob.on('attemptStarted', () => (started += 1));
    await ob.setOnline(true);
    await until('sends on the wire', () => started > 0);
    await ob.close();
    const atClose = ((await slow.getJson('/v1/_stats')) as Stats).totals.applied;
    await sleep(600);
    const later = ((await slow.getJson('/v1/_stats')) as Stats).totals.applied;
    assert.equal(later, atClose, `the server applied ${later - atClose} command(s) after close() resolved`);
    assert.ok(atClose > 0 && atClose < 100, `some but not all were sent before close (${atClose})`);
    // The answers that came back before close resolved were recorded: nothing is left in flight.
    const reopened = opened.track(await createOutbox(aliceConfig(d, slow.url, { startOnline: false })));
    const status = await reopened.status();
    assert.equal(status.inFlight, 0, 'no command was left in flight');
    assert.equal(status.succeeded, atClose, 'every command the server applied is recorded as succeeded');
    assert.equal(status.pending, 100 - atClose);
  });
});
