/**
 * The real reference server (`target/debug/outbox-server`) as a child process on loopback,
 * with a temporary SQLite file, the dev seed (alice / dev-alice in ws-1, POS catalog) and
 * the admin endpoints. Stopped by the PID this helper started.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

/** The workspace root (react-native/..). */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..');

/** A running server. */
export interface TestServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Calls `GET path` with alice's token and parses the JSON answer. */
  getJson(path: string): Promise<unknown>;
  /** Stops the child (SIGINT to its PID, SIGKILL after 3 s) and removes its files. */
  stop(): Promise<void>;
}

/** Starts the server (with `extraArgs`, e.g. `['--faults', 'latency=200ms']`) and waits for its `listening on http://HOST:PORT` line. */
export async function startServer(extraArgs: string[] = []): Promise<TestServer> {
  const bin = process.env.OUTBOX_SERVER_BIN ?? join(REPO_ROOT, 'target', 'debug', 'outbox-server');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build it with cargo build -p outbox-server`);
  const dir = mkdtempSync(join(tmpdir(), 'outbox-rn-server-'));
  const child: ChildProcess = spawn(bin, ['--addr', '127.0.0.1:0', '--dev', '--admin', '--db', join(dir, 'server.db'), ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start in 20 s: ${stderr}`)), 20_000);
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
      if (m) ok(m[1]!);
      else fail(new Error(`unexpected first line from the server: ${line}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  return {
    url,
    async getJson(path: string) {
      const res = await fetch(url + path, { headers: { authorization: 'Bearer dev-alice', 'x-workspace-id': 'ws-1' } });
      if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
      return res.json();
    },
    async stop() {
      if (child.exitCode === null && child.pid !== undefined) {
        const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
        process.kill(child.pid, 'SIGINT');
        const force = setTimeout(() => {
          if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
        }, 3000);
        await exited;
        clearTimeout(force);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
