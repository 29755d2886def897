-- Schema version 5: the server's receipt of a succeeded command (its change-feed position
-- and the server time it was applied). NULL for every command before this version, and for
-- commands not (yet) known to be applied.
--
-- Scans: none (two nullable columns are added without rewriting a row).
ALTER TABLE commands ADD COLUMN receipt_server_seq INTEGER;
ALTER TABLE commands ADD COLUMN receipt_applied_at INTEGER;
