/**
 * Renders hooks with react-test-renderer inside an `<OutboxProvider>` and waits for their
 * values, flushing React updates inside `act` (the updates come from engine callbacks).
 */
import { createElement } from 'react';
import type { ReactElement } from 'react';
import TestRenderer, { act } from 'react-test-renderer';
import type { ReactTestRenderer } from 'react-test-renderer';

import { OutboxProvider } from '../../src/api';
import type { Outbox } from '../../src/api';
import { sleep } from './wait';

// React's test mode (act) and React Native's (silences react-test-renderer's deprecation
// notice, which is aimed at web apps).
Object.assign(globalThis, { IS_REACT_ACT_ENVIRONMENT: true, IS_REACT_NATIVE_TEST_ENVIRONMENT: true });

/** The latest value a hook returned, and every value in order. */
export interface HookProbe<T> {
  readonly current: T;
  readonly history: T[];
  rerender(): Promise<void>;
  unmount(): Promise<void>;
}

/** Renders `useHook()` in a component under `<OutboxProvider outbox={outbox}>`. */
export async function renderHook<T>(outbox: Outbox | null, useHook: () => T): Promise<HookProbe<T>> {
  return mount(outbox, useHook);
}

/** A probe whose provider can be switched to another Outbox (a cashier change). */
export interface SwitchableProbe<T> extends HookProbe<T> {
  setOutbox(outbox: Outbox): Promise<void>;
}

/** Like {@link renderHook}, with the provider's `outbox` changeable after the first render. */
export async function renderHookSwitchable<T>(outbox: Outbox, useHook: () => T): Promise<SwitchableProbe<T>> {
  return mount(outbox, useHook);
}

async function mount<T>(initial: Outbox | null, useHook: () => T): Promise<SwitchableProbe<T>> {
  let outbox = initial;
  const history: T[] = [];
  function Probe(): null {
    history.push(useHook());
    return null;
  }
  const tree = (): ReactElement =>
    outbox === null ? createElement(Probe) : createElement(OutboxProvider, { outbox }, createElement(Probe));
  let renderer: ReactTestRenderer | undefined;
  await act(async () => {
    renderer = TestRenderer.create(tree());
  });
  return {
    get current() {
      const v = history.at(-1);
      if (v === undefined) throw new Error('the hook has not rendered');
      return v;
    },
    history,
    async rerender() {
      await act(async () => renderer?.update(tree()));
    },
    async setOutbox(next: Outbox) {
      outbox = next;
      await act(async () => renderer?.update(tree()));
    },
    async unmount() {
      await act(async () => renderer?.unmount());
    },
  };
}

/** Lets React process updates until `check(probe.current)` holds; fails after `timeoutMs`. */
export async function waitForHook<T>(probe: HookProbe<T>, what: string, check: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check(probe.current)) return probe.current;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(probe.current)}`);
    await act(async () => {
      await sleep(15);
    });
  }
}

export { act };
