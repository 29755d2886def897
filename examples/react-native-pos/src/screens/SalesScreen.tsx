import { FlatList, Text, View } from 'react-native';
import type { DocStatus } from '@outbox-sdk/react-native';

import { formatPrice } from '../catalog';
import { useSales } from '../hooks';
import { styles } from '../styles';

const STATUS_TEXT: Record<DocStatus, string> = { synced: 'synced', pending: 'pending', failed: 'failed', conflict: 'conflict' };

/** Recent sales, newest first, each with its sync status. */
export function SalesScreen() {
  const sales = useSales();
  return (
    <FlatList
      testID="sales"
      style={styles.screen}
      data={sales}
      keyExtractor={(o) => o.id}
      ListEmptyComponent={<Text style={styles.muted}>No sales yet.</Text>}
      renderItem={({ item }) => (
        <View testID={`sale-${item.id}`} style={styles.row}>
          <View style={styles.grow}>
            <Text style={styles.title}>{item.id}</Text>
            <Text style={styles.muted}>
              {item.value.lines?.reduce((n, l) => n + l.qty, 0) ?? 0} items · {formatPrice(item.value.total ?? 0)}
            </Text>
          </View>
          <Text testID={`sale-status-${item.id}`}>{STATUS_TEXT[item.status]}</Text>
        </View>
      )}
    />
  );
}
