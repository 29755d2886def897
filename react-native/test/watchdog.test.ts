/**
 * The stall watchdog through TypeScript (issue 18), against the real library (N-API) and
 * server: each way we know to wedge the queue — a stuck drain timer, a hung connection, a
 * drainer lease held by a frozen process — is reported as `queueStalled` with its cause,
 * then `queueRecovered`, and the sale reaches the server. Waiting offline or for a backoff
 * is not a stall. Each test prints `stall <cause> reported after N ms`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';

import { aliceConfig, createOutbox } from './support/outbox';
import type { Outbox, OutboxConfig, OutboxEvent, StallReport } from './support/outbox';
import { suiteFixture } from './support/fixture';
import { startHoldingProxy } from './support/proxy';
import { sleep, until } from './support/wait';

const fx = suiteFixture();
const { opened } = fx;
const WINDOW_MS = 300;
/** The lease holder's TTL is 6 s (support/lease-holder.ts): alive, it passes every 2 s. */
const LIVE_HOLDER_SENDS_WITHIN_MS = 2_500;

async function faults(spec: string | null): Promise<void> {
  const res = await fetch(`${fx.server.url}/v1/_faults`, spec === null ? { method: 'DELETE' } : { method: 'POST', body: spec });
  assert.equal(res.status, 200);
}

const order = (id: string) => ({ id, lines: [{ product_id: 'espresso', qty: 1 }] });

/** Engine events with the time each arrived. */
function timedEvents(ob: Outbox): { at: number; e: OutboxEvent }[] {
  const seen: { at: number; e: OutboxEvent }[] = [];
  ob.on((e) => seen.push({ at: Date.now(), e }));
  return seen;
}

/**
 * Waits for the first event of `type`. A timeout says what did arrive (each event's type
 * and offset from the first) and what `status()` showed, so a failure on a loaded CI
 * machine explains itself.
 */
async function awaitEvent<K extends OutboxEvent['type']>(
  ob: Outbox,
  seen: { at: number; e: OutboxEvent }[],
  type: K,
): Promise<{ at: number; e: Extract<OutboxEvent, { type: K }> }> {
  try {
    const hit = await until(type, () => seen.find((x) => x.e.type === type), 15_000);
    return hit as { at: number; e: Extract<OutboxEvent, { type: K }> };
  } catch (e) {
    const t0 = seen[0]?.at ?? Date.now();
    const arrived = seen.map(({ at, e: ev }) => `+${at - t0}ms ${ev.type}${ev.type === 'queueStalled' ? `(${ev.report.cause})` : ''}`);
    const status = await ob.status().then(JSON.stringify, (err: unknown) => `status() failed: ${String(err)}`);
    throw new Error(`${(e as Error).message}; events: [${arrived.join(', ')}]; status: ${status}`);
  }
}

async function stalled(ob: Outbox, seen: { at: number; e: OutboxEvent }[]): Promise<{ at: number; report: StallReport }> {
  const hit = await awaitEvent(ob, seen, 'queueStalled');
  return { at: hit.at, report: hit.e.report };
}

async function recovered(ob: Outbox, seen: { at: number; e: OutboxEvent }[]): Promise<Extract<OutboxEvent, { type: 'queueRecovered' }>> {
  return (await awaitEvent(ob, seen, 'queueRecovered')).e;
}

async function open(url: string, extra: Partial<OutboxConfig> = {}): Promise<Outbox> {
  return opened.track(
    await createOutbox(aliceConfig(fx.dir(), url, { stallWindowMs: WINDOW_MS, attemptTimeoutMs: 60_000, retryBaseMs: 50, retryCapMs: 500, ...extra })),
  );
}

describe('stall watchdog', () => {
  test('a stuck drain timer is reported, kicked, and the sale reaches the server', async () => {
    const ob = await open(fx.server.url);
    const seen = timedEvents(ob);
    await until('this engine holds the lease', async () => (await ob.status()).isDrainer);
    ob.wedgeDrainTimerForTest();
    const wedged = Date.now();
    const id = await ob.enqueue('createOrder', order('ts-stall-timer'));
    const { at, report } = await stalled(ob, seen);
    console.log(`stall drain_loop_stuck (stuck timer, TS) reported after ${at - wedged} ms: ${JSON.stringify(report)}`);
    assert.equal(report.cause, 'drain_loop_stuck', JSON.stringify(report));
    assert.ok(report.ready || report.inFlight > 0, JSON.stringify(report));
    const r = await recovered(ob, seen);
    assert.deepEqual([r.cause, r.how], ['drain_loop_stuck', 'progress']);
    assert.ok(r.stalledForMs >= WINDOW_MS, `${r.stalledForMs}`);
    assert.equal((await ob.waitFor(id)).kind, 'succeeded');
    assert.equal((await ob.status()).stalled, false);
  });

  test('a hung connection is reported, abandoned, retried, and applied once when it comes back', async () => {
    const proxy = await startHoldingProxy(fx.server.url);
    try {
      const ob = await open(proxy.url);
      const seen = timedEvents(ob);
      await until('the lease and a first pull through the proxy', async () => {
        const s = await ob.status();
        return s.isDrainer && s.lastPullAt !== null;
      });
      proxy.hold();
      const wedged = Date.now();
      const id = await ob.enqueue('createOrder', order('ts-stall-hung'));
      const { at, report } = await stalled(ob, seen);
      console.log(`stall send_hung (hung connection, TS) reported after ${at - wedged} ms: ${JSON.stringify(report)}`);
      assert.equal(report.cause, 'send_hung', JSON.stringify(report));
      assert.equal(report.sendsInFlight, 1);
      assert.equal(report.lease, 'held here');
      // The abandoned attempt is retried (that request hangs too), well before the HTTP
      // transport's own 15 s request timeout could end it ...
      await until('the retry', () => seen.some(({ e }) => e.type === 'attemptStarted' && e.id === id && e.attempt === 2), 5_000);
      // ... and the connection comes back.
      proxy.release();
      const r = await recovered(ob, seen);
      assert.deepEqual([r.cause, r.how], ['send_hung', 'progress']);
      assert.equal((await ob.waitFor(id)).kind, 'succeeded');
      const cmd = await ob.command(id);
      assert.ok(cmd?.history.some((a) => a.error?.includes('stall watchdog')), JSON.stringify(cmd?.history));
      const stats = (await fx.server.getJson('/v1/_stats')) as { keys: Record<string, { applied: number }> };
      assert.ok(Object.values(stats.keys).every((k) => k.applied <= 1), JSON.stringify(stats));
    } finally {
      await proxy.close();
    }
  });

  test('a drainer lease held by a frozen child process is reported, then taken over after its TTL', async () => {
    const path = join(fx.dir(), 'shared.db');
    const script = join(__dirname, 'support', 'lease-holder.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script, path, fx.server.url], {
      cwd: join(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pid = child.pid;
    assert.ok(pid !== undefined, 'the child did not start');
    try {
      const line = await new Promise<string>((ok, fail) => {
        const timer = setTimeout(() => fail(new Error('the child did not take the lease within 30 s')), 30_000);
        createInterface({ input: child.stdout! }).once('line', (l) => {
          clearTimeout(timer);
          ok(l);
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          fail(new Error(`the child exited with ${code}`));
        });
      });
      assert.equal(line, 'drainer');
      const ob = opened.track(
        await createOutbox(aliceConfig('', fx.server.url, { path, leaseTtlMs: 3_000, stallWindowMs: WINDOW_MS, attemptTimeoutMs: 60_000 })),
      );
      const seen = timedEvents(ob);
      const serverApplied = async () => ((await fx.server.getJson('/v1/_stats')) as { totals: { applied: number } }).totals.applied;
      const appliedBefore = await serverApplied();
      // Freeze the drainer with the lease in hand.
      process.kill(pid, 'SIGSTOP');
      const wedged = Date.now();
      const id = await ob.enqueue('createOrder', order('ts-stall-lease'));
      const { at, report } = await stalled(ob, seen);
      console.log(`stall lease_held_elsewhere (frozen child pid ${pid}, TS) reported after ${at - wedged} ms: ${JSON.stringify(report)}`);
      assert.equal(report.cause, 'lease_held_elsewhere', JSON.stringify(report));
      assert.ok(report.lease.startsWith('held by another engine'), JSON.stringify(report));
      // A live holder passes every 2 s (a third of its 6 s TTL) and would have sent the sale
      // by now; the frozen one has not, and this engine does not take over a held lease.
      await sleep(wedged + LIVE_HOLDER_SENDS_WITHIN_MS - Date.now());
      const during = await ob.status();
      assert.equal(during.isDrainer, false, JSON.stringify(during));
      const cmd = await ob.command(id);
      assert.equal(cmd?.state, 'pending', JSON.stringify(cmd));
      assert.equal(await serverApplied(), appliedBefore, 'the server applied the sale while its drainer was frozen');
      // The frozen holder dies; its lease runs out and this engine takes over.
      const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
      const killed = Date.now();
      process.kill(pid, 'SIGKILL');
      await exited;
      const r = await recovered(ob, seen);
      assert.equal(r.cause, 'lease_held_elsewhere');
      assert.equal((await ob.waitFor(id)).kind, 'succeeded');
      console.log(`lease taken over ${Date.now() - killed} ms after the child was killed`);
      assert.equal((await ob.status()).isDrainer, true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
    }
  });

  test('waiting offline or for a backoff is not a stall', async () => {
    const ob = await open(fx.server.url, { retryBaseMs: 30_000, retryCapMs: 30_000 });
    const seen = timedEvents(ob);
    await faults('500=1');
    try {
      const id = await ob.enqueue('createOrder', order('ts-stall-backoff'));
      await until('the first attempt to fail', async () => {
        const c = await ob.command(id);
        return c?.attempts === 1 && c.state === 'pending';
      });
      await sleep(WINDOW_MS * 4);
      await ob.setOnline(false);
      await ob.enqueue('createOrder', order('ts-stall-offline'));
      await sleep(WINDOW_MS * 4);
      assert.deepEqual(seen.filter(({ e }) => e.type === 'queueStalled'), []);
      assert.equal((await ob.status()).stalled, false);
    } finally {
      await faults(null);
    }
  });
});
