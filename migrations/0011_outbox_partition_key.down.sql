-- Drops the stored partition key and with it any per-partition-count index of `eventdata relay prepare`.
ALTER TABLE outbox DROP COLUMN partition_key;
