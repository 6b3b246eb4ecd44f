-- The relay partition of a change, stored: the resource id hashed (the same hash the relay partitioned by before,
-- so checkpoints stay valid). A relay of N partitions (N > 1) reads `mod(partition_key, N) = p`, which an index
-- made for that N (`eventdata relay prepare`, CREATE INDEX CONCURRENTLY) answers in log order: each relay then
-- reads its own changes only, instead of every change after its checkpoint filtered by the hash.
-- Adding the column rewrites the outbox once (it holds the undelivered backlog and the retention window).
ALTER TABLE outbox
  ADD COLUMN partition_key bigint NOT NULL
  GENERATED ALWAYS AS (hashtextextended(aggregate_id::text, 0) & 9223372036854775807) STORED;
