/**
 * The point-of-sale model, as plain functions (no React, no engine): products as the
 * reference server seeds them, the cart, and what "Charge" enqueues.
 *
 * The server's `createOrder` (rust/outbox-server/src/mutators.rs) takes
 * `{ id, lines: [{ product_id, qty }] }`, checks stock, decrements it, and stores the order
 * (its args plus `status: "open"` and `total`). The app shows the same effect at once with
 * optimistic ops: the order inserted, and each product's stock patched to its new value.
 * When the server applies the command, its own versions replace the optimistic ones; if it
 * rejects it, the ops roll back.
 */
import type { Doc, JsonObject, OptimisticOp } from '@outbox-sdk/react-native';

/** The mutators this app registers (the allowlist). */
export const POS_MUTATORS = ['createOrder', 'adjustStock', 'voidOrder'];

/** A `products` document: `{ name, price (cents), stock }`. */
export interface Product {
  name: string;
  price: number;
  stock: number;
}

/** One order line, as `createOrder` takes it. */
export interface OrderLine {
  product_id: string;
  qty: number;
}

/** An `orders` document: the args of `createOrder`, plus what the server adds. */
export interface Order {
  id: string;
  lines: OrderLine[];
  /** Sum of price × qty in cents. */
  total?: number;
  /** `open` once created (`voided` after `voidOrder`). */
  status?: string;
  /** When the register rang it up (ms since the epoch); sent in the args, kept by the server. */
  created_at?: number;
}

/** Quantities by product id. */
export type Cart = Readonly<Record<string, number>>;

/** "€2.80" style, from cents. */
export function formatPrice(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(Math.round(cents));
  return `${sign}€${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** Number of items in the cart. */
export function cartCount(cart: Cart): number {
  return Object.values(cart).reduce((n, q) => n + q, 0);
}

/** Cart total in cents, at the prices of `products`. */
export function cartTotal(cart: Cart, products: readonly Doc<Product>[]): number {
  let total = 0;
  for (const [id, qty] of Object.entries(cart)) {
    const p = products.find((d) => d.id === id);
    if (p) total += p.value.price * qty;
  }
  return total;
}

/** Whether one more of `productId` fits in the stock the register sees. */
export function canAdd(cart: Cart, product: Doc<Product>): boolean {
  return (cart[product.id] ?? 0) < product.value.stock;
}

/** What "Charge" enqueues: `createOrder`'s args and the optimistic ops that go with it. */
export interface ChargePlan {
  orderId: string;
  args: JsonObject;
  optimistic: OptimisticOp[];
  total: number;
}

/** Why a cart cannot be charged. */
export class ChargeError extends Error {}

/**
 * Plans the sale of `cart` as order `orderId`: one line per product (in catalog order),
 * the order inserted locally, and each product's stock patched to `stock - qty`. Throws
 * `ChargeError` for an empty cart, an unknown product or more than the stock.
 */
export function chargePlan(orderId: string, cart: Cart, products: readonly Doc<Product>[], now: number): ChargePlan {
  const lines: OrderLine[] = [];
  const optimistic: OptimisticOp[] = [];
  let total = 0;
  for (const [productId, qty] of Object.entries(cart)) {
    if (!(qty > 0)) continue;
    const product = products.find((d) => d.id === productId);
    if (!product) throw new ChargeError(`unknown product ${productId}`);
    if (qty > product.value.stock) throw new ChargeError(`only ${product.value.stock} ${product.value.name} in stock`);
    lines.push({ product_id: productId, qty });
    total += product.value.price * qty;
    optimistic.push({ collection: 'products', id: productId, patch: { stock: product.value.stock - qty } });
  }
  if (lines.length === 0) throw new ChargeError('the cart is empty');
  const jsonLines = lines.map((l) => ({ product_id: l.product_id, qty: l.qty }));
  const args: JsonObject = { id: orderId, lines: jsonLines, created_at: now };
  optimistic.unshift({ collection: 'orders', id: orderId, insert: { ...args, lines: jsonLines, status: 'open', total } });
  return { orderId, args, optimistic, total };
}

/** A register-local order id: time, then randomness (`sale-lq3k9x-4f2a`). */
export function newOrderId(): string {
  return `sale-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}
