/**
 * The register's Outbox config: the reference server's dev seed (alice / dev-alice in
 * ws-1, the POS catalog) and one database file per (user, workspace).
 */
import { databasePath } from '@outbox-sdk/react-native';
import type { OutboxConfig } from '@outbox-sdk/react-native';

import { POS_MUTATORS } from './catalog';

/** The signed-in cashier. A real app gets these from its sign-in. */
export const CASHIER = { userId: 'alice', workspaceId: 'ws-1', token: 'dev-alice' };

/** The config for `createOutbox`, with the database under `baseDir` (the app's documents folder). */
export function posConfig(baseDir: string, serverUrl: string, extra: Partial<OutboxConfig> = {}): OutboxConfig {
  return {
    path: databasePath(baseDir, CASHIER.userId, CASHIER.workspaceId),
    userId: CASHIER.userId,
    workspaceId: CASHIER.workspaceId,
    serverUrl,
    token: CASHIER.token,
    mutators: POS_MUTATORS,
    ...extra,
  };
}
