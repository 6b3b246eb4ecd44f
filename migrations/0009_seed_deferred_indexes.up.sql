-- Indexes `eventdata seed` took off a table that held no rows at all, to load it and build them in bulk afterwards
-- (docs/performance.md, "Write path"). Maintaining the full-text RUM index row by row was most of a bulk load's
-- time; building it once over the loaded rows takes a second per 100,000 events. A definition stays here until
-- its index exists again, so a load that is interrupted leaves its definitions behind and the next run of
-- `eventdata seed` builds them first. Only the owner uses this table.
CREATE TABLE seed_deferred_indexes (
  name       text PRIMARY KEY,
  definition text NOT NULL CHECK (definition ~ '^CREATE (UNIQUE )?INDEX '),
  dropped_at timestamptz NOT NULL DEFAULT now()
);
