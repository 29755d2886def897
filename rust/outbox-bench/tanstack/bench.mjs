// Side-by-side harness: @tanstack/offline-transactions driven the way outbox-bench drives
// the Outbox engine, printing the same JSON lines with "system":"tanstack".
//
//   node bench.mjs --bench enqueue|drain-local|open --n 1000
//
// One bench at one n per process (outbox-bench spawns it, and kills it by PID after 180 s).
//
// What is being measured, and what is NOT comparable (see docs/benchmarks.md):
// - Storage is an in-process Map implementing TanStack's StorageAdapter (strings in, strings
//   out, every call async like IndexedDB). Nothing reaches a disk: a crash loses the queue.
//   Outbox commits every enqueue to SQLite with WAL + synchronous=FULL (an fsync).
// - Leader election always grants leadership; the online detector never listens to the
//   environment. The harness holds it "offline" while filling the queue and flips it online
//   to start a drain, exactly like outbox-bench opens with start_online=false and then calls
//   set_online(true).
// - The mutation function is a no-op (resolves at once), like outbox-bench's ApplyAll transport.
// - Each command is one transaction inserting one ~200-byte order document into a collection
//   (TanStack persists the mutation with its modified document; Outbox persists the command
//   args and one optimistic op row).

import { createCollection } from '@tanstack/db'
import { startOfflineExecutor } from '@tanstack/offline-transactions'

function parseArgs(argv) {
  const out = { bench: 'enqueue', n: 1000 }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--bench') out.bench = argv[++i]
    else if (argv[i] === '--n') out.n = Number(argv[++i])
    else throw new Error(`unknown argument ${argv[i]}`)
  }
  if (!['enqueue', 'drain-local', 'open'].includes(out.bench)) throw new Error(`unknown bench ${out.bench}`)
  if (!Number.isInteger(out.n) || out.n <= 0) throw new Error('--n must be a positive integer')
  return out
}

/** In-process StorageAdapter: an async Map of strings. `onSet` lets the harness observe
 * the moment a transaction has been written (TanStack's equivalent of a durable enqueue). */
class MemoryStorage {
  constructor() {
    this.map = new Map()
    this.onSet = null
  }
  async get(key) {
    return this.map.has(key) ? this.map.get(key) : null
  }
  async set(key, value) {
    this.map.set(key, value)
    if (this.onSet) this.onSet(key)
  }
  async delete(key) {
    this.map.delete(key)
  }
  async keys() {
    return [...this.map.keys()]
  }
  async clear() {
    this.map.clear()
  }
}

/** Never consults the environment; the harness decides when the executor is online. */
class SwitchOnline {
  constructor(online) {
    this.online = online
    this.listeners = new Set()
  }
  subscribe(cb) {
    this.listeners.add(cb)
    return () => this.listeners.delete(cb)
  }
  notifyOnline() {
    for (const cb of this.listeners) cb()
  }
  isOnline() {
    return this.online
  }
  goOnline() {
    this.online = true
    this.notifyOnline()
  }
  dispose() {
    this.listeners.clear()
  }
}

const alwaysLeader = {
  requestLeadership: () => Promise.resolve(true),
  releaseLeadership: () => {},
  isLeader: () => true,
  onLeadershipChange: () => () => {},
}

function ordersCollection() {
  return createCollection({
    id: 'orders',
    getKey: (o) => o.id,
    // No server: the synced state starts (and stays) empty.
    sync: { sync: ({ begin, commit, markReady }) => { begin(); commit(); markReady() } },
    startSync: true,
  })
}

function order(i) {
  return {
    id: `order-${i}`,
    register: 'r1',
    lines: [{ product_id: `p${i % 50}`, qty: 1 + (i % 3), price: 1250 }],
    total: 1250 * (1 + (i % 3)),
    paid_with: 'card',
  }
}

async function start({ storage, online, mutationFn }) {
  const orders = ordersCollection()
  const executor = startOfflineExecutor({
    collections: { orders },
    mutationFns: { createOrder: mutationFn },
    storage,
    leaderElection: alwaysLeader,
    onlineDetector: online,
  })
  await executor.waitForInit()
  return { orders, executor }
}

/** Enqueues one order and resolves once its transaction is in storage. */
function enqueueOne(ctx, storage, i) {
  return new Promise((resolve, reject) => {
    let tx
    storage.onSet = () => {
      storage.onSet = null
      resolve(tx)
    }
    const offline = ctx.executor.createOfflineTransaction({ mutationFnName: 'createOrder' })
    try {
      // mutate() returns the TanStack DB transaction; storage.set happens asynchronously after.
      tx = offline.mutate(() => ctx.orders.insert(order(i)))
    } catch (e) {
      reject(e)
    }
  })
}

async function fill(ctx, storage, n, latencies) {
  const txs = []
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint()
    txs.push(await enqueueOne(ctx, storage, i))
    if (latencies) latencies.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  return txs
}

function line(bench, n, ops, totalMs, latencies) {
  latencies.sort((a, b) => a - b)
  const pct = (p) => (latencies.length ? latencies[Math.round((latencies.length - 1) * p)] : null)
  return JSON.stringify({
    bench,
    system: 'tanstack',
    n,
    ops_per_s: totalMs > 0 ? Math.round(ops / (totalMs / 1000)) : 0,
    p50_ms: pct(0.5),
    p99_ms: pct(0.99),
    total_ms: Math.round(totalMs * 1000) / 1000,
    rss_mb: Math.round((process.memoryUsage().rss / 1048576) * 10) / 10,
  })
}

const noop = async () => undefined

async function benchEnqueue(n) {
  const storage = new MemoryStorage()
  const ctx = await start({ storage, online: new SwitchOnline(false), mutationFn: noop })
  const lat = []
  const t0 = performance.now()
  await fill(ctx, storage, n, lat)
  const total = performance.now() - t0
  const count = [...storage.map.keys()].filter((k) => k.startsWith('tx:')).length
  if (count !== n) throw new Error(`storage holds ${count} transactions, expected ${n}`)
  return line('enqueue', n, n, total, lat)
}

async function benchDrain(n) {
  const storage = new MemoryStorage()
  const online = new SwitchOnline(false)
  let applied = 0
  const ctx = await start({ storage, online, mutationFn: async () => { applied++ } })
  const txs = await fill(ctx, storage, n, null)
  const t0 = performance.now()
  online.goOnline()
  await Promise.all(txs.map((tx) => tx.isPersisted.promise))
  const total = performance.now() - t0
  if (applied !== n) throw new Error(`applied ${applied}, expected ${n}`)
  if (storage.map.size !== 0) throw new Error(`${storage.map.size} transactions left in storage`)
  return line('drain-local', n, n, total, [])
}

async function benchOpen(n) {
  const storage = new MemoryStorage()
  {
    const ctx = await start({ storage, online: new SwitchOnline(false), mutationFn: noop })
    await fill(ctx, storage, n, null)
    ctx.executor.dispose()
  }
  // "Restart": a fresh collection and executor over the same storage; time until the
  // first mutation function call (first attempt), which is then held forever.
  let firstAttempt
  const started = new Promise((resolve) => { firstAttempt = resolve })
  const t0 = performance.now()
  const ctx = await start({
    storage,
    online: new SwitchOnline(true),
    mutationFn: () => { firstAttempt(performance.now()); return new Promise(() => {}) },
  })
  const t1 = await started
  const total = t1 - t0
  if (ctx.orders.size !== n) throw new Error(`restored ${ctx.orders.size} optimistic orders, expected ${n}`)
  return line('open', n, n, total, [total])
}

const args = parseArgs(process.argv.slice(2))
const run = { enqueue: benchEnqueue, 'drain-local': benchDrain, open: benchOpen }[args.bench]
run(args.n).then(
  (l) => {
    console.log(l)
    process.exit(0)
  },
  (e) => {
    console.error(`tanstack ${args.bench} n=${args.n} failed: ${e?.stack ?? e}`)
    process.exit(1)
  },
)
