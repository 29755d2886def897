/**
 * The child process of the lost-lease watchdog test (test/watchdog.test.ts): opens an
 * Outbox on the database file `argv[2]` against the server `argv[3]` with a 6 s drainer
 * lease (renewed every 2 s, so a frozen holder keeps it at least 4 s more), prints
 * `drainer` once it holds the lease (and pulled once), then idles until the parent
 * freezes and kills it by its PID.
 */
import { aliceConfig, createOutbox } from './outbox';

async function main(): Promise<void> {
  const [path, url] = process.argv.slice(2);
  if (path === undefined || url === undefined) throw new Error('usage: lease-holder.ts DB_PATH SERVER_URL');
  const ob = await createOutbox({ ...aliceConfig('', url, { leaseTtlMs: 6_000, stallWindowMs: 0 }), path });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const s = await ob.status();
    if (s.isDrainer && s.lastPullAt !== null) break;
    if (Date.now() > deadline) throw new Error('never became the drainer');
    await new Promise((ok) => setTimeout(ok, 20));
  }
  process.stdout.write('drainer\n');
  setInterval(() => {}, 60_000);
}

main().catch((e: unknown) => {
  process.stderr.write(`lease-holder: ${String(e)}\n`);
  process.exit(1);
});
