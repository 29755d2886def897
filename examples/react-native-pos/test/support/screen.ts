/**
 * Renders the app with react-test-renderer and reads it like a cashier would: find an
 * element by `testID`, read its text, press it. React updates are flushed inside `act`.
 */
import { createElement } from 'react';
import type { ReactElement } from 'react';
import TestRenderer, { act } from 'react-test-renderer';
import type { ReactTestInstance, ReactTestRenderer } from 'react-test-renderer';

// React's test mode (act) and React Native's (silences react-test-renderer's deprecation notice).
Object.assign(globalThis, { IS_REACT_ACT_ENVIRONMENT: true, IS_REACT_NATIVE_TEST_ENVIRONMENT: true });

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

/** The text under `node`, its strings joined. */
export function textOf(node: ReactTestInstance | string): string {
  if (typeof node === 'string') return node;
  return node.children.map(textOf).join('');
}

/** A rendered element tree. */
export class Screen {
  private constructor(private readonly renderer: ReactTestRenderer) {}

  static async render(element: ReactElement): Promise<Screen> {
    let renderer: ReactTestRenderer | undefined;
    await act(async () => {
      renderer = TestRenderer.create(element);
    });
    return new Screen(renderer!);
  }

  /** Host elements (`View`, `Text`, `Pressable`, ...) whose `testID` matches. */
  all(testID: string | RegExp): ReactTestInstance[] {
    const match = (id: unknown) => typeof id === 'string' && (typeof testID === 'string' ? id === testID : testID.test(id));
    return this.renderer.root.findAll((n) => typeof n.type === 'string' && match(n.props.testID));
  }

  /** The host element with this `testID`, or `null`. */
  query(testID: string): ReactTestInstance | null {
    return this.all(testID)[0] ?? null;
  }

  /** The host element with this `testID`; throws when there is none. */
  get(testID: string): ReactTestInstance {
    const n = this.query(testID);
    if (n === null) throw new Error(`no element with testID ${testID}; screen: ${this.text()}`);
    return n;
  }

  /** The text of the element with this `testID`, or of the whole screen. */
  text(testID?: string): string {
    if (testID === undefined) return textOf(this.renderer.root);
    return textOf(this.get(testID));
  }

  /** Presses the `Pressable` with this `testID` (a disabled one does nothing, as on a device). */
  async press(testID: string): Promise<void> {
    const node = this.get(testID);
    const onPress = node.props.onPress as (() => void) | undefined;
    await act(async () => {
      onPress?.();
    });
  }

  /** Whether the `Pressable` with this `testID` is disabled. */
  disabled(testID: string): boolean {
    return this.get(testID).props.disabled === true;
  }

  /** Lets React process updates until `check()` holds; fails with the screen's text after `timeoutMs`. */
  async waitFor(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let ok = false;
      try {
        ok = check();
      } catch {
        ok = false;
      }
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen: ${this.text()}`);
      await act(async () => {
        await sleep(15);
      });
    }
  }

  async unmount(): Promise<void> {
    await act(async () => this.renderer.unmount());
  }
}

export { act, createElement };
