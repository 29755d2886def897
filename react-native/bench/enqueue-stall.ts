/**
 * How much enqueueing blocks the JavaScript thread: 10k `createOrder` enqueues through the
 * public TypeScript API over the N-API flavour, while a 1 ms timer and Node's event-loop
 * delay histogram watch the event loop. Prints one JSON line per mode, in the format of
 * `outbox-bench` (plus the stall figures):
 *
 *   {"bench":"rn-enqueue","system":"outbox-ts","mode":"await-loop","n":10000,"ops_per_s":…,
 *    "p50_ms":…,"p99_ms":…,"total_ms":…,"stall_p99_ms":…,"stall_max_ms":…,"timer_ticks":…}
 *
 * Modes: `await-loop` awaits each enqueue in a tight `for` loop; `yield` also yields to the
 * event loop (setImmediate) between calls, as UI code does. A stall is how late the event
 * loop ran a 1 ms timer (perf_hooks.monitorEventLoopDelay, resolution 1 ms).
 *
 * Run with scripts/bench-rn.sh (which builds the release library, generates its N-API
 * bindings and runs the Rust enqueue bench in the same run). Environment:
 *   OUTBOX_NAPI_DIR  folder of the generated N-API bindings + library (required)
 *   OUTBOX_API_DIR   folder of the package's `src/api` (default: this package's)
 *   BENCH_N          enqueues per mode (default 10000)
 *   BENCH_LABEL      `system` field (default outbox-ts)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

const napiDir = process.env.OUTBOX_NAPI_DIR;
if (!napiDir) throw new Error('set OUTBOX_NAPI_DIR to the generated N-API bindings');
const apiDir = process.env.OUTBOX_API_DIR ?? resolve(__dirname, '..', 'src', 'api');
const n = Number(process.env.BENCH_N ?? 10_000);
const label = process.env.BENCH_LABEL ?? 'outbox-ts';

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.round((sorted.length - 1) * p)]!;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

async function main() {
  await import(join(napiDir!, 'index.ts'));
  const napi = await import(join(napiDir!, 'outbox_ffi.ts'));
  const api = await import(join(apiDir, 'index.ts'));
  const adapter = await import(join(apiDir, 'adapter.ts'));
  const createOutbox = api.makeCreateOutbox(adapter.fromBindings(napi), () => ({}));
  for (const mode of ['await-loop', 'yield'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-rn-bench-'));
    const ob = await createOutbox({
      path: join(dir, 'bench.db'),
      userId: 'bench',
      workspaceId: 'ws-bench',
      startOnline: false,
      mutators: ['createOrder'],
      onError: () => {},
    });
    const delay = monitorEventLoopDelay({ resolution: 1 });
    let ticks = 0;
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks += 1;
    }, 1);
    delay.enable();
    const lat: number[] = [];
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await ob.enqueue('createOrder', { id: `order-${i}`, lines: [{ product_id: 'espresso', qty: 1 + (i % 3) }], total_cents: 350 });
      lat.push(performance.now() - t);
      if (mode === 'yield') await new Promise<void>((ok) => setImmediate(ok));
    }
    const total = performance.now() - start;
    // A timer that never ran until the end was starved for the whole gap.
    maxGap = Math.max(maxGap, performance.now() - last);
    delay.disable();
    clearInterval(timer);
    await ob.close();
    rmSync(dir, { recursive: true, force: true });
    lat.sort((a, b) => a - b);
    // The histogram records how late each 1 ms sample ran (ns, including the 1 ms).
    const stall = (p: number) => Math.max(0, delay.percentile(p) / 1e6 - 1);
    console.log(
      JSON.stringify({
        bench: 'rn-enqueue',
        system: label,
        mode,
        n,
        ops_per_s: Math.round(n / (total / 1000)),
        p50_ms: round(pct(lat, 0.5)),
        p99_ms: round(pct(lat, 0.99)),
        total_ms: round(total),
        // With no sample at all the loop never ran a timer: the stall is the whole run.
        stall_p99_ms: round(ticks === 0 ? maxGap : stall(99)),
        stall_max_ms: round(Math.max(maxGap - 1, delay.max / 1e6 - 1, 0)),
        timer_ticks: ticks,
        timer_max_gap_ms: round(maxGap),
      }),
    );
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
