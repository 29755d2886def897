// `import Outbox` also brings in the generated engine API (module OutboxFFI:
// `Outbox`, `OutboxConfig`, `EnqueueRequest`, `Status`, `OutboxEvent`, `OutboxError`, ...).
@_exported import OutboxFFI
