-- Reverses 0001_foundation. The vector and pg_trgm extensions stay: other databases objects may use them,
-- and creating them needs more rights than dropping our own objects.
DROP FUNCTION IF EXISTS authenticate_api_key(bytea);
DROP TABLE IF EXISTS idempotency_records, outbox, event_topics, event_companies, event_speakers, media, topics,
  speakers, companies, events, api_keys, organizations;
DROP FUNCTION IF EXISTS normalize_name(text);
DROP FUNCTION IF EXISTS current_org_id();
