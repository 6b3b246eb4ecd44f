-- Readers of the change log poll instead of being notified (docs/relay.md, "Wake-up").
--
-- A statement-level trigger sent NOTIFY on every outbox insert. NOTIFY takes a cluster-wide lock from the commit's
-- pre-commit step until the commit is done, so every writing transaction of the API queued behind every other one
-- (measured: a one-statement insert of an event and its outbox row at 16 clients ran 4,068 tps without the
-- trigger, 1,729 with it). The relay now polls the log itself at an adaptive interval, and the API's change feed
-- polls the head of the log's position sequence and the snapshot horizon: neither needs a lock or anything from
-- the writers.

DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS notify_outbox();

-- The change feed's probe: the last position handed out (pg_sequence_last_value), never nextval.
GRANT SELECT ON SEQUENCE outbox_position_seq TO eventdata_runtime;
