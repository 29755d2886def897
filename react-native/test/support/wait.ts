/** Waiting helpers for tests whose results arrive from the engine's threads. */

/**
 * Callbacks from Rust threads do not keep Node's event loop alive (TOOLCHAIN.md §6.3): a
 * test awaiting only such a callback would end as "cancelled". Call in `before` and stop
 * in `after`.
 */
export function keepAlive(): () => void {
  const timer = setInterval(() => {}, 1000);
  return () => clearInterval(timer);
}

/** Sleeps `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((ok) => setTimeout(ok, ms));
}

/** Polls `check` every 10 ms until it returns a truthy value; fails after `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}
