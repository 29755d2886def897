/** The background drain bound to the app's native module (see ./api/background). */
import { NativeModules } from 'react-native';

import { makeBackgroundDrain } from './api/background';
import type { NativeBackgroundModule } from './api/background';

const drain = makeBackgroundDrain(
  () => (NativeModules as Record<string, NativeBackgroundModule | undefined>).RnOutboxBackground ?? null,
);

/** See `makeBackgroundDrain`: schedules the OS background drain of `outbox`'s database. */
export const enableBackgroundDrain = drain.enableBackgroundDrain;
/** Cancels the OS background drain. */
export const disableBackgroundDrain = drain.disableBackgroundDrain;
