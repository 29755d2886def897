import { Pressable, Text } from 'react-native';
import { useSyncStatus } from '@outbox-sdk/react-native';
import type { SyncStatus } from '@outbox-sdk/react-native';

import { styles } from '../styles';

/** What the badge says, from the sync status. */
export function badgeText(s: SyncStatus): string {
  const attention = s.failed + s.conflict + s.wedged;
  if (!s.online) return s.outstanding > 0 ? `Offline · ${s.outstanding} pending` : 'Offline';
  if (s.outstanding > 0) return `Syncing ${s.outstanding}`;
  if (attention > 0) return `${attention} need attention`;
  return 'Synced';
}

function badgeColor(s: SyncStatus): string {
  if (s.failed + s.conflict + s.wedged > 0) return '#f6c6c6';
  if (!s.online) return '#e0e0e0';
  return s.outstanding > 0 ? '#fff1b8' : '#c8f0d0';
}

/** Online state and queue counts; pressing it asks the engine to sync now. */
export function SyncBadge() {
  const status = useSyncStatus();
  return (
    <Pressable testID="sync-badge" accessibilityRole="button" onPress={() => void status.syncNow().catch(() => {})}>
      <Text style={[styles.pill, { backgroundColor: badgeColor(status) }]}>{badgeText(status)}</Text>
    </Pressable>
  );
}
