-- The trigram index on event names goes: no read path uses it, and every create paid for it.
--
-- Migration 0001 made it for a fuzzy name lookup on events that the API never had: name lookup (`LookupNames`,
-- docs/search.md) runs on speakers, companies and topics, through their own organization-scoped trigram indexes
-- (migration 0005); events are found by full text (the RUM index), by name
-- prefix (`events_org_name_lower_idx`) and by similarity. Beneath row-level security the runtime role could not
-- have used it anyway (pg_trgm's operators are not leakproof) and no SECURITY DEFINER function reads it. Yet each
-- new or renamed event put its trigrams into the index's pending list: about 17% of a create's WAL and 1.17×
-- the creates a second without it (docs/performance.md, "The trigram index on event names dropped").
DROP INDEX IF EXISTS events_name_trgm_idx;
-- A seed interrupted after dropping it for its load would otherwise build it again.
DELETE FROM seed_deferred_indexes WHERE name = 'events_name_trgm_idx';
