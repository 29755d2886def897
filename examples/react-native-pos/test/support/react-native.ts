/**
 * A test-only stand-in for `react-native` (which cannot run under Node): the host
 * components the app uses as plain elements named like them, so react-test-renderer shows
 * `View`, `Text`, `Pressable` and `FlatList` nodes with the app's props (`testID`,
 * `onPress`, `disabled`). Wired in by ./alias.ts for the test run only; the app and its
 * type-check use the real react-native.
 */
import { createElement, Fragment } from 'react';
import type { ReactElement, ReactNode } from 'react';

type Props = Record<string, unknown> & { children?: ReactNode };

const host = (name: string) => {
  const component = (props: Props) => createElement(name, props);
  component.displayName = name;
  return component;
};

export const View = host('View');
export const Text = host('Text');
export const SafeAreaView = host('SafeAreaView');

export function Pressable(props: Props & { disabled?: boolean; onPress?: () => void }) {
  // Like React Native: a disabled Pressable does not call onPress.
  const { onPress, disabled, ...rest } = props;
  return createElement('Pressable', { ...rest, disabled, onPress: disabled ? undefined : onPress });
}

interface FlatListProps<T> {
  data?: readonly T[] | null;
  renderItem: (info: { item: T; index: number; separators: Record<string, () => void> }) => ReactNode;
  keyExtractor?: (item: T, index: number) => string;
  ListEmptyComponent?: ReactElement | null;
  [prop: string]: unknown;
}

/** Renders every item (no virtualisation), or `ListEmptyComponent`. */
export function FlatList<T>(props: FlatListProps<T>) {
  const { data, renderItem, keyExtractor, ListEmptyComponent, ...rest } = props;
  const items = data ?? [];
  const separators = { highlight: () => {}, unhighlight: () => {}, updateProps: () => {} };
  const children =
    items.length === 0
      ? (ListEmptyComponent ?? null)
      : items.map((item, index) =>
          createElement(Fragment, { key: keyExtractor ? keyExtractor(item, index) : String(index) }, renderItem({ item, index, separators })),
        );
  return createElement('FlatList', rest, children);
}

export const StyleSheet = {
  hairlineWidth: 1,
  create<T>(styles: T): T {
    return styles;
  },
};

export const Platform = { OS: 'test', select: <T>(spec: { default?: T }) => spec.default };
