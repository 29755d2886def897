/** The POS model's plain functions (no engine): what "Charge" enqueues. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Doc } from '../../../react-native/src/api';
import type { Product } from '../src/catalog';
import { canAdd, cartCount, cartTotal, ChargeError, chargePlan, formatPrice } from '../src/catalog';

const doc = (id: string, name: string, price: number, stock: number): Doc<Product> => ({
  collection: 'products',
  id,
  value: { name, price, stock },
  version: 1,
  status: 'synced',
  commands: [],
});
const products = [doc('espresso', 'Espresso', 280, 200), doc('muffin', 'Blueberry muffin', 325, 1)];

describe('catalog', () => {
  test('chargePlan: createOrder args, the order inserted and each stock patched to its new value', () => {
    const plan = chargePlan('sale-1', { espresso: 2, muffin: 1 }, products, 1_700_000_000_000);
    assert.deepEqual(plan.args, {
      id: 'sale-1',
      lines: [
        { product_id: 'espresso', qty: 2 },
        { product_id: 'muffin', qty: 1 },
      ],
      created_at: 1_700_000_000_000,
    });
    assert.equal(plan.total, 885);
    assert.deepEqual(plan.optimistic, [
      { collection: 'orders', id: 'sale-1', insert: { ...plan.args, status: 'open', total: 885 } },
      { collection: 'products', id: 'espresso', patch: { stock: 198 } },
      { collection: 'products', id: 'muffin', patch: { stock: 0 } },
    ]);
  });

  test('chargePlan refuses an empty cart, an unknown product and more than the stock', () => {
    assert.throws(() => chargePlan('s', {}, products, 0), ChargeError);
    assert.throws(() => chargePlan('s', { bagel: 1 }, products, 0), /unknown product bagel/);
    assert.throws(() => chargePlan('s', { muffin: 2 }, products, 0), /only 1 Blueberry muffin in stock/);
  });

  test('cart helpers and prices', () => {
    assert.equal(cartCount({ espresso: 2, muffin: 1 }), 3);
    assert.equal(cartTotal({ espresso: 2, muffin: 1 }, products), 885);
    assert.equal(canAdd({ muffin: 1 }, products[1]!), false);
    assert.equal(canAdd({}, products[1]!), true);
    assert.equal(formatPrice(910), '€9.10');
    assert.equal(formatPrice(5), '€0.05');
  });
});
