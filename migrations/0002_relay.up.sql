-- The outbox relay: per-partition checkpoints, a wake-up notification at commit, and retention rights.

-- Where each relay partition has published up to, in (txid, position) order. Keyed by the partition count too, so a
-- re-partitioned deployment starts its new partitions from the lowest old checkpoint instead of skipping anything.
CREATE TABLE relay_checkpoints (
  partitions integer NOT NULL CHECK (partitions > 0),
  partition  integer NOT NULL CHECK (partition >= 0 AND partition < partitions),
  txid       xid8 NOT NULL,
  position   bigint NOT NULL CHECK (position >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (partitions, partition)
);

-- Wakes relays and change feeds when changes commit (NOTIFY is delivered at commit, never for a rollback).
-- Statement-level: one notification per writing statement, however many rows it inserts.
CREATE FUNCTION notify_outbox() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM pg_notify('eventdata_outbox', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox();

GRANT SELECT, INSERT, UPDATE, DELETE ON relay_checkpoints TO eventdata_relayer;
-- Retention also expires idempotency records of every organization.
CREATE POLICY relay_retention ON idempotency_records TO eventdata_relayer USING (true);
GRANT SELECT, DELETE ON idempotency_records TO eventdata_relayer;
