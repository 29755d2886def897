import { useState } from 'react';
import { FlatList, Text, View } from 'react-native';
import { useOutbox, usePendingCommands } from '@outbox-sdk/react-native';
import type { Command } from '@outbox-sdk/react-native';

import { styles } from '../styles';
import { Button } from './Button';

/** The order a command is about (createOrder / voidOrder args carry `id`). */
function subject(c: Command): string {
  const args = c.args;
  if (args !== null && typeof args === 'object' && !Array.isArray(args)) {
    if (typeof args.id === 'string') return args.id;
    if (typeof args.product_id === 'string') return args.product_id;
  }
  return c.id;
}

/** Whether the cashier can decide about `c` here. */
export const canRetry = (c: Command) => c.state === 'wedged';
export const canDiscard = (c: Command) => c.state === 'failed' || c.state === 'wedged';

/**
 * Unfinished sales (pending, sending, failed, wedged...), oldest first. A wedged one (its
 * attempts ran out) can be retried with a fresh budget; a failed or wedged one can be
 * discarded, which rolls back its order and stock changes.
 */
export function PendingScreen() {
  const outbox = useOutbox();
  const commands = usePendingCommands();
  const [error, setError] = useState<string | null>(null);
  const act = (what: (id: string) => Promise<void>, id: string) => {
    setError(null);
    what(id).catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  };
  return (
    <View testID="pending" style={styles.screen}>
      {error ? <Text style={styles.error}>{error}</Text> : null}
      <FlatList
        data={commands}
        keyExtractor={(c) => c.id}
        ListEmptyComponent={<Text testID="pending-empty" style={styles.muted}>Every sale is synced.</Text>}
        renderItem={({ item }) => (
          <View testID={`pending-${subject(item)}`} style={styles.row}>
            <View style={styles.grow}>
              <Text style={styles.title}>
                {item.mutator} {subject(item)}
              </Text>
              <Text testID={`pending-state-${subject(item)}`} style={styles.muted}>
                {item.state}
                {item.attempts > 0 ? ` · ${item.attempts} attempt${item.attempts === 1 ? '' : 's'}` : ''}
                {item.lastError ? ` · ${item.lastError}` : ''}
              </Text>
            </View>
            {canRetry(item) ? <Button testID={`retry-${subject(item)}`} label="Retry" onPress={() => act((id) => outbox.retry(id), item.id)} /> : null}
            {canDiscard(item) ? (
              <Button testID={`discard-${subject(item)}`} label="Discard" danger onPress={() => act((id) => outbox.discard(id), item.id)} />
            ) : null}
          </View>
        )}
      />
    </View>
  );
}
