/**
 * A TCP proxy on 127.0.0.1 in front of the reference server, for the stall watchdog's hung
 * connection. While held, no byte from the client reaches the server (new connections and
 * open keep-alive ones alike): the connection is up and the request is never answered.
 * `release()` lets everything through, in order.
 */
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

/** A running proxy. */
export interface HoldingProxy {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** From now on, requests are not forwarded (they wait in the proxy). */
  hold(): void;
  /** Forwards everything that waited, and what comes next. */
  release(): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Starts a proxy to `upstream` (`http://127.0.0.1:PORT`), forwarding. */
export async function startHoldingProxy(upstream: string): Promise<HoldingProxy> {
  const target = new URL(upstream);
  let held = false;
  /** Per client: its server connection and the bytes held back, in order. */
  const links = new Set<{ up: Socket; waiting: Buffer[]; ended: boolean }>();
  const sockets = new Set<Socket>();
  const flush = (l: { up: Socket; waiting: Buffer[]; ended: boolean }) => {
    for (const chunk of l.waiting.splice(0)) l.up.write(chunk);
    if (l.ended) l.up.end();
  };
  const server = createServer((client) => {
    const up = connect(Number(target.port), target.hostname);
    const link = { up, waiting: [] as Buffer[], ended: false };
    links.add(link);
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (chunk: Buffer) => {
      if (held) link.waiting.push(chunk);
      else up.write(chunk);
    });
    client.on('end', () => {
      link.ended = true;
      if (!held) flush(link);
    });
    client.on('close', () => {
      if (!held) links.delete(link);
    });
    // Answers always pass.
    up.pipe(client);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hold() {
      held = true;
    },
    release() {
      held = false;
      for (const l of links) flush(l);
    },
    async close() {
      held = false;
      for (const s of sockets) s.destroy();
      links.clear();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
