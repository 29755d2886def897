import { FlatList, Text, View } from 'react-native';
import type { Doc } from '@outbox-sdk/react-native';

import type { Cart, Product } from '../catalog';
import { canAdd, formatPrice } from '../catalog';
import { styles } from '../styles';
import { Button } from './Button';

/** Products with price and stock (pending sales already taken off); "Add" puts one in the cart. */
export function CatalogScreen(props: { products: Doc<Product>[]; loading: boolean; cart: Cart; onAdd: (p: Doc<Product>) => void }) {
  const { products, loading, cart, onAdd } = props;
  return (
    <FlatList
      testID="catalog"
      style={styles.screen}
      data={products}
      keyExtractor={(p) => p.id}
      ListEmptyComponent={<Text style={styles.muted}>{loading ? 'Loading catalog…' : 'No products yet: go online once to load the catalog.'}</Text>}
      renderItem={({ item }) => (
        <View testID={`product-${item.id}`} style={styles.row}>
          <View style={styles.grow}>
            <Text style={styles.title}>{item.value.name}</Text>
            <Text testID={`stock-${item.id}`} style={styles.muted}>
              {formatPrice(item.value.price)} · {item.value.stock} in stock{item.status === 'pending' ? ' (pending)' : ''}
            </Text>
          </View>
          {cart[item.id] ? <Text testID={`in-cart-${item.id}`}>×{cart[item.id]}</Text> : null}
          <Button testID={`add-${item.id}`} label="Add" disabled={!canAdd(cart, item)} onPress={() => onAdd(item)} />
        </View>
      )}
    />
  );
}
