/**
 * The app's hooks, on top of the package's: the catalog, the cart and "Charge".
 */
import { useCallback, useMemo, useState } from 'react';
import { useMutation, useQuery } from '@outbox-sdk/react-native';
import type { Doc, OutboxError } from '@outbox-sdk/react-native';

import type { Cart, Order, Product } from './catalog';
import { canAdd, chargePlan, newOrderId } from './catalog';

/** Live products by name, as the register sees them (pending sales' stock decrements applied). */
export function useCatalog(): { products: Doc<Product>[]; loading: boolean; error: OutboxError | null } {
  const { data, loading, error } = useQuery<Product>('products', { orderBy: 'name' });
  return { products: data, loading, error };
}

/** Live recent orders, newest first, each with its sync status. */
export function useSales(limit = 50): Doc<Order>[] {
  return useQuery<Order>('orders', { orderBy: 'created_at', descending: true, limit }).data;
}

/** The cart: quantities by product id, bounded by the stock the register sees. */
export function useCart() {
  const [cart, setCart] = useState<Cart>({});
  const add = useCallback((product: Doc<Product>) => {
    setCart((c) => (canAdd(c, product) ? { ...c, [product.id]: (c[product.id] ?? 0) + 1 } : c));
  }, []);
  const remove = useCallback((productId: string) => {
    setCart((c) => {
      const qty = (c[productId] ?? 0) - 1;
      const next = { ...c };
      if (qty > 0) next[productId] = qty;
      else delete next[productId];
      return next;
    });
  }, []);
  const clear = useCallback(() => setCart({}), []);
  return useMemo(() => ({ cart, add, remove, clear }), [cart, add, remove, clear]);
}

/**
 * "Charge": enqueues `createOrder` with its optimistic ops (the order, the stock
 * decrements) and reports the live state of the last sale. Resolves to the order id once
 * the sale is durable on the device, online or not.
 */
export function useCharge(makeId: () => string = newOrderId) {
  const { mutate, state, error, commandId } = useMutation('createOrder');
  const [orderId, setOrderId] = useState<string | null>(null);
  const charge = useCallback(
    async (cart: Cart, products: readonly Doc<Product>[]) => {
      const plan = chargePlan(makeId(), cart, products, Date.now());
      await mutate(plan.args, { optimistic: plan.optimistic });
      setOrderId(plan.orderId);
      return plan.orderId;
    },
    [mutate, makeId],
  );
  return { charge, orderId, commandId, state, error };
}
