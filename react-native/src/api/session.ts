/**
 * Registers shared by several cashiers: where each (user, workspace) database lives, and
 * switching from one to the other without touching the first one's file.
 *
 * Data is scoped per (user, workspace), one SQLite file each. Switching cashier closes one
 * engine (waiting until nothing of it is in flight) and opens the other; the first file
 * and its unsent sales stay on the device and drain when that cashier signs in again.
 * Logging out for good is `Outbox.logout`.
 */
import { OutboxError } from './errors';
import type { Outbox, OutboxConfig } from './outbox';

/**
 * The database file of one (user, workspace) in `baseDir` (the app's private documents
 * folder, which exists): `<baseDir>/outbox+<workspace>+<user>.db`. Each id is
 * percent-encoded (`/`, `.` and `+` included), so no id can name another cashier's file or
 * leave `baseDir`, and no folder needs creating.
 */
export function databasePath(baseDir: string, userId: string, workspaceId: string): string {
  if (typeof baseDir !== 'string' || baseDir.length === 0) throw new OutboxError('invalid_config', 'baseDir must be a non-empty string');
  const part = (what: string, id: string) => {
    if (typeof id !== 'string' || id.length === 0) throw new OutboxError('invalid_config', `${what} must be a non-empty string`);
    // encodeURIComponent leaves '.' alone ("." and ".." would stay special) and escapes '+'.
    return encodeURIComponent(id).replace(/\./g, '%2E');
  };
  const base = baseDir.endsWith('/') ? baseDir.slice(0, -1) : baseDir;
  return `${base}/outbox+${part('workspaceId', workspaceId)}+${part('userId', userId)}.db`;
}

/**
 * Builds `switchUser` over a `createOutbox`. The returned function opens `next` first and
 * only then closes `current`, so a failed open (a corrupt file, a bad config) leaves the
 * current cashier signed in and rejects with the open's error.
 */
export function makeSwitchUser(createOutbox: (config: OutboxConfig) => Promise<Outbox>) {
  return async function switchUser(current: Outbox | null, next: OutboxConfig): Promise<Outbox> {
    if (current !== null && !current.isClosed && current.path === next.path) {
      throw new OutboxError('invalid_state', 'that user is already signed in on this Outbox');
    }
    const opened = await createOutbox(next);
    if (current !== null) await current.close();
    return opened;
  };
}
