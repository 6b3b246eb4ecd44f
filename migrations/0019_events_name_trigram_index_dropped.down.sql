-- The trigram index on event names, as migration 0001 made it.
CREATE INDEX events_name_trgm_idx ON events USING gin (name gin_trgm_ops);
