import { useEffect, useState } from 'react';
import { Text, View } from 'react-native';
import { OutboxProvider } from '@outbox-sdk/react-native';
import type { Outbox } from '@outbox-sdk/react-native';

import { PosApp } from './PosApp';
import type { Tab } from './PosApp';
import { styles } from './styles';

/**
 * Opens the register's Outbox with `open` (App.tsx passes the package's `createOutbox`;
 * the tests pass the N-API one), provides it to the app, and closes it on unmount.
 * `open` should be stable (defined outside the component or memoised).
 */
export function PosRoot(props: { open: () => Promise<Outbox>; initialTab?: Tab; newOrderId?: () => string }) {
  const { open } = props;
  const [state, setState] = useState<{ outbox: Outbox } | { error: string } | null>(null);
  useEffect(() => {
    let cancelled = false;
    let opened: Outbox | null = null;
    open().then(
      (outbox) => {
        if (cancelled) {
          void outbox.close();
          return;
        }
        opened = outbox;
        setState({ outbox });
      },
      (e: unknown) => {
        if (!cancelled) setState({ error: e instanceof Error ? e.message : String(e) });
      },
    );
    return () => {
      cancelled = true;
      if (opened !== null) void opened.close();
    };
  }, [open]);
  if (state === null) {
    return (
      <View style={styles.screen}>
        <Text testID="opening">Opening the register…</Text>
      </View>
    );
  }
  if ('error' in state) {
    return (
      <View style={styles.screen}>
        <Text testID="open-error" style={styles.error}>
          Could not open the register: {state.error}
        </Text>
      </View>
    );
  }
  return (
    <OutboxProvider outbox={state.outbox}>
      <PosApp initialTab={props.initialTab} newOrderId={props.newOrderId} />
    </OutboxProvider>
  );
}
