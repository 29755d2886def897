/**
 * Everything of the public API that does not depend on the native backend. `src/index.tsx`
 * (the app) and the Node tests each add `createOutbox` bound to their backend.
 */
export { Outbox, makeCreateOutbox } from './outbox';
export type { LogoutOptions, OutboxConfig } from './outbox';
export { databasePath, makeSwitchUser } from './session';
export { backgroundDrainRequest, makeBackgroundDrain, MIN_BACKGROUND_INTERVAL_MINUTES } from './background';
export type {
  BackgroundDrainOptions,
  BackgroundDrainSource,
  NativeBackgroundDrainOptions,
  NativeBackgroundModule,
} from './background';
export { OutboxError, isOutboxError } from './errors';
export type { LimitKind, LimitLevel, OutboxErrorCode } from './errors';
export { foregroundFromAppState, onlineFromNetInfo } from './platform';
export type { AppStateLike, NetInfoLike, NetInfoStateLike, Platform } from './platform';
export type { Backend, Durability, MutatorLimit, NativeOutbox, OpenOptions } from './backend';
export * from './types';
export {
  OutboxProvider,
  useMutation,
  useOutbox,
  usePendingCommands,
  useQuery,
  useRecordStatus,
  useQueueHealth,
  useSyncStatus,
} from '../react/hooks';
export type { MutationResult, QueryResult, RecordStatus, SyncStatusResult } from '../react/hooks';
