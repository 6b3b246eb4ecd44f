REVOKE SELECT, DELETE ON idempotency_records FROM eventdata_relayer;
DROP POLICY IF EXISTS relay_retention ON idempotency_records;
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS notify_outbox();
DROP TABLE IF EXISTS relay_checkpoints;
