/**
 * The per-file test fixture: one reference server for the file, temporary folders and
 * opened outboxes cleaned up after each test, and a check that nothing reached `onError`.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before } from 'node:test';

import { Opened, reportedErrors, tempDir } from './outbox';
import { startServer } from './server';
import type { TestServer } from './server';
import { keepAlive } from './wait';

/** What a test file uses. */
export interface Fixture {
  /** The file's server (started in `before`). */
  readonly server: TestServer;
  /** Outboxes closed after each test. */
  readonly opened: Opened;
  /** A fresh temporary folder, removed after the test. */
  dir(): string;
}

/** Registers the hooks of a test file and returns its fixture. */
export function suiteFixture(): Fixture {
  let server: TestServer | undefined;
  let stopKeepAlive = () => {};
  const opened = new Opened();
  const cleanups: (() => void)[] = [];
  before(async () => {
    stopKeepAlive = keepAlive();
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
    stopKeepAlive();
  });
  afterEach(async () => {
    await opened.closeAll();
    for (const remove of cleanups.splice(0)) remove();
    assert.deepEqual(reportedErrors.splice(0), [], 'no error reached onError');
  });
  return {
    get server() {
      if (!server) throw new Error('the test server is not started yet');
      return server;
    },
    opened,
    dir() {
      const t = tempDir();
      cleanups.push(t.remove);
      return t.dir;
    },
  };
}
