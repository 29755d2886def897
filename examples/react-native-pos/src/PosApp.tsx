import { useState } from 'react';
import { Text, View } from 'react-native';
import { usePendingCommands } from '@outbox-sdk/react-native';

import { cartCount } from './catalog';
import { useCart, useCatalog, useCharge } from './hooks';
import { CartScreen } from './screens/CartScreen';
import { CatalogScreen } from './screens/CatalogScreen';
import { PendingScreen } from './screens/PendingScreen';
import { SalesScreen } from './screens/SalesScreen';
import { SyncBadge } from './screens/SyncBadge';
import { Button } from './screens/Button';
import { styles } from './styles';

export type Tab = 'catalog' | 'cart' | 'sales' | 'pending';

/**
 * The register: a header with the sync badge, four tabs (catalog, cart, sales, pending)
 * and the screen of the current one. Needs an `<OutboxProvider>` above it.
 */
export function PosApp(props: { initialTab?: Tab; newOrderId?: () => string }) {
  const [tab, setTab] = useState<Tab>(props.initialTab ?? 'catalog');
  const catalog = useCatalog();
  const cart = useCart();
  const { charge } = useCharge(props.newOrderId);
  const pending = usePendingCommands();
  const tabs: [Tab, string][] = [
    ['catalog', 'Catalog'],
    ['cart', `Cart (${cartCount(cart.cart)})`],
    ['sales', 'Sales'],
    ['pending', `Pending (${pending.length})`],
  ];
  return (
    <View style={{ flex: 1 }}>
      <View style={[styles.row, { paddingHorizontal: 12 }]}>
        <Text style={[styles.title, styles.grow]}>Outbox POS</Text>
        <SyncBadge />
      </View>
      {catalog.error ? <Text style={styles.error}>{catalog.error.message}</Text> : null}
      <View style={[styles.row, { paddingHorizontal: 4 }]}>
        {tabs.map(([id, label]) => (
          <Button key={id} testID={`tab-${id}`} label={label} disabled={tab === id} onPress={() => setTab(id)} />
        ))}
      </View>
      {tab === 'catalog' ? <CatalogScreen products={catalog.products} loading={catalog.loading} cart={cart.cart} onAdd={cart.add} /> : null}
      {tab === 'cart' ? (
        <CartScreen
          cart={cart.cart}
          products={catalog.products}
          onRemove={cart.remove}
          onCharge={async () => {
            const id = await charge(cart.cart, catalog.products);
            cart.clear();
            return id;
          }}
        />
      ) : null}
      {tab === 'sales' ? <SalesScreen /> : null}
      {tab === 'pending' ? <PendingScreen /> : null}
    </View>
  );
}
