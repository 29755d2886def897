import { useState } from 'react';
import { FlatList, Text, View } from 'react-native';
import type { Doc } from '@outbox-sdk/react-native';

import type { Cart, Product } from '../catalog';
import { cartTotal, formatPrice } from '../catalog';
import { styles } from '../styles';
import { Button } from './Button';

/**
 * The cart and "Charge". `onCharge` enqueues the sale (durable on the device when it
 * resolves, online or not); the cart empties then.
 */
export function CartScreen(props: {
  cart: Cart;
  products: Doc<Product>[];
  onRemove: (productId: string) => void;
  onCharge: () => Promise<string>;
}) {
  const { cart, products, onRemove, onCharge } = props;
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const lines = Object.entries(cart).map(([id, qty]) => ({ id, qty, product: products.find((p) => p.id === id) }));
  const total = cartTotal(cart, products);
  const charge = async () => {
    setBusy(true);
    setMessage(null);
    try {
      const orderId = await onCharge();
      setMessage({ text: `Sale ${orderId} recorded`, error: false });
    } catch (e) {
      setMessage({ text: `Could not charge: ${e instanceof Error ? e.message : String(e)}`, error: true });
    } finally {
      setBusy(false);
    }
  };
  return (
    <View testID="cart" style={styles.screen}>
      <FlatList
        data={lines}
        keyExtractor={(l) => l.id}
        ListEmptyComponent={<Text style={styles.muted}>The cart is empty.</Text>}
        renderItem={({ item }) => (
          <View testID={`cart-line-${item.id}`} style={styles.row}>
            <Text style={styles.grow}>
              {item.qty} × {item.product?.value.name ?? item.id}
            </Text>
            <Text>{formatPrice((item.product?.value.price ?? 0) * item.qty)}</Text>
            <Button testID={`remove-${item.id}`} label="−" onPress={() => onRemove(item.id)} />
          </View>
        )}
      />
      <Text testID="cart-total" style={styles.title}>
        Total {formatPrice(total)}
      </Text>
      {message ? (
        <Text testID="charge-message" style={message.error ? styles.error : styles.muted}>
          {message.text}
        </Text>
      ) : null}
      <Button testID="charge" label={busy ? 'Charging…' : `Charge ${formatPrice(total)}`} disabled={busy || lines.length === 0} onPress={() => void charge()} style={styles.big} />
    </View>
  );
}
