// enableBackgroundDrain / disableBackgroundDrain: input checks and the absent native module
// (what Node and an app without RnOutboxBackgroundPackage see). The native side is tested on
// the JVM (android/src/jvmTest: StandaloneBackgroundDrainTest).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { backgroundDrainRequest, makeBackgroundDrain } from '../src/api/background';
import { OutboxError } from '../src/api/errors';

const outbox = { config: { path: '/data/user/0/app/no_backup/outbox-alice-ws-1.db', userId: 'alice', workspaceId: 'ws-1', serverUrl: 'https://sync.example.test' } };

function rejectsWith(code: string) {
  return (e: unknown) => e instanceof OutboxError && e.code === code;
}

test('the native module gets only path, user, workspace and server URL', () => {
  const withToken = { config: { ...outbox.config, token: async () => 'secret' } };
  assert.deepEqual(backgroundDrainRequest(withToken, { minIntervalMinutes: 15 }), {
    path: outbox.config.path,
    userId: 'alice',
    workspaceId: 'ws-1',
    serverUrl: 'https://sync.example.test',
    minIntervalMinutes: 15,
    requiresCharging: false,
  });
});

test('bad options are invalid_config errors', () => {
  for (const options of [{ minIntervalMinutes: 14 }, { minIntervalMinutes: 15.5 }, { minIntervalMinutes: Number.NaN }, { minIntervalMinutes: 30, requiresCharging: 'yes' }, null]) {
    assert.throws(() => backgroundDrainRequest(outbox, options as never), rejectsWith('invalid_config'), JSON.stringify(options));
  }
  assert.throws(() => backgroundDrainRequest({ config: { ...outbox.config, path: 'relative.db' } }, { minIntervalMinutes: 15 }), rejectsWith('invalid_config'));
  assert.throws(() => backgroundDrainRequest(null as never, { minIntervalMinutes: 15 }), rejectsWith('invalid_config'));
});

test('without the native module both calls reject with background_unavailable', async () => {
  const { enableBackgroundDrain, disableBackgroundDrain } = makeBackgroundDrain(() => null);
  await assert.rejects(enableBackgroundDrain(outbox, { minIntervalMinutes: 15 }), rejectsWith('background_unavailable'));
  await assert.rejects(disableBackgroundDrain(), rejectsWith('background_unavailable'));
  // Bad input is reported first, as bad input.
  await assert.rejects(enableBackgroundDrain(outbox, { minIntervalMinutes: 1 }), rejectsWith('invalid_config'));
});
