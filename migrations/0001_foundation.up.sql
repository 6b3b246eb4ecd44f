-- eventdata foundation: tenants, catalogue, relations, outbox (change log), idempotency, API keys.
--
-- Rules that hold for every table below (docs/schema.md explains them):
--  * Every business row has org_id. Row-level security is ENABLEd and FORCEd on every tenant table with the policy
--    org_id = current_org_id(), so neither the runtime role nor the owner can read or write across organizations.
--  * Relations carry org_id and reference their ends by (org_id, id): a link between two organizations' rows cannot
--    be stored, whatever the application does.
--  * Absent optional text is NULL, never ''. Names are never blank. Scores are in [0, 1]. ends_at >= starts_at.
--  * ON DELETE: an organization takes everything with it (CASCADE); an event takes its media and relation rows
--    (CASCADE); a speaker, company or topic takes its relation rows (CASCADE); a company that is somebody's current
--    employer, or a topic that is somebody's parent, only clears that reference (SET NULL of that one column).
--  * version is the optimistic-concurrency counter behind each resource's etag; the service increments it.

CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'eventdata_runtime')
     OR NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'eventdata_relayer') THEN
    RAISE EXCEPTION 'roles eventdata_runtime and eventdata_relayer must exist before migrating: run scripts/setup.sh';
  END IF;
END
$$;

-- The organization of the current transaction, set by the service with SET LOCAL app.org_id.
-- NULL when unset (or reset to ''), so every policy below then matches nothing.
CREATE FUNCTION current_org_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.org_id', true), '')::uuid $$;

-- The one definition of a normalized name, used by generated columns and the ingest upserts:
-- Unicode NFKC, lower case, inner runs of white space folded to one space, trimmed.
CREATE FUNCTION normalize_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT lower(normalize(btrim(regexp_replace(name, '\s+', ' ', 'g')), NFKC)) $$;

-- Tenants --------------------------------------------------------------------------------------------

CREATE TABLE organizations (
  id         uuid PRIMARY KEY,
  slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9](-?[a-z0-9])*$' AND length(slug) <= 63),
  name       text NOT NULL CHECK (length(btrim(name)) > 0 AND length(name) <= 200),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- API keys: only the SHA-256 of the secret is stored. The service never reads this table directly; it calls
-- authenticate_api_key() below, which runs as the owner.
CREATE TABLE api_keys (
  id          uuid PRIMARY KEY,
  org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  name        text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
  secret_hash bytea NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
  scopes      text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write', 'admin']),
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
CREATE INDEX api_keys_org_id_idx ON api_keys (org_id);

-- Catalogue ------------------------------------------------------------------------------------------

CREATE TABLE events (
  id              uuid PRIMARY KEY,
  org_id          uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  name            text NOT NULL CHECK (length(btrim(name)) > 0 AND length(name) <= 500),
  slug            text NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 200),
  description     text CHECK (length(description) <= 20000),
  status          text NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft', 'scheduled', 'live', 'completed', 'cancelled')),
  starts_at       timestamptz,
  ends_at         timestamptz,
  timezone        text CHECK (length(btrim(timezone)) > 0 AND length(timezone) <= 64),
  venue           text CHECK (length(btrim(venue)) > 0 AND length(venue) <= 500),
  city            text CHECK (length(btrim(city)) > 0 AND length(city) <= 200),
  country         text CHECK (country ~ '^[A-Z]{2}$'),
  online_url      text CHECK (online_url ~ '^https?://' AND length(online_url) <= 2048),
  website_url     text CHECK (website_url ~ '^https?://' AND length(website_url) <= 2048),
  metadata        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  embedding       vector(1536),
  embedding_model text CHECK (length(btrim(embedding_model)) > 0 AND length(embedding_model) <= 200),
  search          tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', name), 'A')
                    || setweight(to_tsvector('english', coalesce(description, '')), 'B')
                    || setweight(to_tsvector('simple', coalesce(venue, '') || ' ' || coalesce(city, '')), 'C')
                  ) STORED,
  -- Keyset sort key: events without a start time list last (a finite sentinel, so clients can decode it).
  sort_start      timestamptz NOT NULL GENERATED ALWAYS AS (coalesce(starts_at, '9999-12-31 23:59:59+00'::timestamptz)) STORED,
  version         bigint NOT NULL DEFAULT 1 CHECK (version > 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT events_ends_after_start CHECK (ends_at >= starts_at),
  CONSTRAINT events_end_needs_start CHECK (ends_at IS NULL OR starts_at IS NOT NULL),
  CONSTRAINT events_embedding_has_model CHECK ((embedding IS NULL) = (embedding_model IS NULL)),
  CONSTRAINT events_org_slug_key UNIQUE (org_id, slug),
  CONSTRAINT events_org_id_key UNIQUE (org_id, id)
);

CREATE TABLE companies (
  id              uuid PRIMARY KEY,
  org_id          uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  name            text NOT NULL CHECK (length(btrim(name)) > 0 AND length(name) <= 300),
  normalized_name text NOT NULL GENERATED ALWAYS AS (normalize_name(name)) STORED,
  domain          text CHECK (domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
                              AND length(domain) <= 253),
  description     text CHECK (length(description) <= 20000),
  website_url     text CHECK (website_url ~ '^https?://' AND length(website_url) <= 2048),
  logo_url        text CHECK (logo_url ~ '^https?://' AND length(logo_url) <= 2048),
  size            text CHECK (size IN ('1-10', '11-50', '51-200', '201-500', '501-1000', '1001-5000',
                                       '5001-10000', '10001+')),
  location        text CHECK (length(btrim(location)) > 0 AND length(location) <= 300),
  version         bigint NOT NULL DEFAULT 1 CHECK (version > 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT companies_org_normalized_name_key UNIQUE (org_id, normalized_name),
  CONSTRAINT companies_org_domain_key UNIQUE (org_id, domain),
  CONSTRAINT companies_org_id_key UNIQUE (org_id, id)
);

CREATE TABLE speakers (
  id               uuid PRIMARY KEY,
  org_id           uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  name             text NOT NULL CHECK (length(btrim(name)) > 0 AND length(name) <= 300),
  normalized_name  text NOT NULL GENERATED ALWAYS AS (normalize_name(name)) STORED,
  title            text CHECK (length(btrim(title)) > 0 AND length(title) <= 300),
  bio              text CHECK (length(bio) <= 20000),
  company_id       uuid,
  linkedin_url     text CHECK (linkedin_url ~ '^https?://' AND length(linkedin_url) <= 2048),
  twitter_url      text CHECK (twitter_url ~ '^https?://' AND length(twitter_url) <= 2048),
  website_url      text CHECK (website_url ~ '^https?://' AND length(website_url) <= 2048),
  avatar_url       text CHECK (avatar_url ~ '^https?://' AND length(avatar_url) <= 2048),
  confidence_score double precision NOT NULL DEFAULT 1 CHECK (confidence_score BETWEEN 0 AND 1),
  embedding        vector(1536),
  embedding_model  text CHECK (length(btrim(embedding_model)) > 0 AND length(embedding_model) <= 200),
  version          bigint NOT NULL DEFAULT 1 CHECK (version > 0),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT speakers_embedding_has_model CHECK ((embedding IS NULL) = (embedding_model IS NULL)),
  CONSTRAINT speakers_org_normalized_name_key UNIQUE (org_id, normalized_name),
  CONSTRAINT speakers_org_id_key UNIQUE (org_id, id),
  -- Deleting the employer clears only company_id, never org_id.
  CONSTRAINT speakers_company_fkey FOREIGN KEY (org_id, company_id)
    REFERENCES companies (org_id, id) ON DELETE SET NULL (company_id)
);

CREATE TABLE topics (
  id              uuid PRIMARY KEY,
  org_id          uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  name            text NOT NULL CHECK (length(btrim(name)) > 0 AND length(name) <= 200),
  normalized_name text NOT NULL GENERATED ALWAYS AS (normalize_name(name)) STORED,
  description     text CHECK (length(description) <= 20000),
  parent_id       uuid CONSTRAINT topics_not_own_parent CHECK (parent_id <> id),
  embedding       vector(1536),
  embedding_model text CHECK (length(btrim(embedding_model)) > 0 AND length(embedding_model) <= 200),
  version         bigint NOT NULL DEFAULT 1 CHECK (version > 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT topics_embedding_has_model CHECK ((embedding IS NULL) = (embedding_model IS NULL)),
  CONSTRAINT topics_org_normalized_name_key UNIQUE (org_id, normalized_name),
  CONSTRAINT topics_org_id_key UNIQUE (org_id, id),
  CONSTRAINT topics_parent_fkey FOREIGN KEY (org_id, parent_id)
    REFERENCES topics (org_id, id) ON DELETE SET NULL (parent_id)
);

CREATE TABLE media (
  id          uuid PRIMARY KEY,
  org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  event_id    uuid NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('image', 'video', 'audio', 'document', 'slides', 'other')),
  url         text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
  title       text CHECK (length(btrim(title)) > 0 AND length(title) <= 500),
  mime_type   text CHECK (mime_type ~ '^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$'
                          AND length(mime_type) <= 255),
  bytes       bigint CHECK (bytes >= 0),
  captured_at timestamptz,
  metadata    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  version     bigint NOT NULL DEFAULT 1 CHECK (version > 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT media_org_id_key UNIQUE (org_id, id),
  CONSTRAINT media_event_fkey FOREIGN KEY (org_id, event_id) REFERENCES events (org_id, id) ON DELETE CASCADE
);

-- Relations ------------------------------------------------------------------------------------------

CREATE TABLE event_speakers (
  org_id     uuid NOT NULL,
  event_id   uuid NOT NULL,
  speaker_id uuid NOT NULL,
  role       text NOT NULL DEFAULT 'speaker' CHECK (role IN ('keynote', 'speaker', 'panelist', 'moderator')),
  talk_title text CHECK (length(btrim(talk_title)) > 0 AND length(talk_title) <= 500),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, speaker_id),
  CONSTRAINT event_speakers_event_fkey FOREIGN KEY (org_id, event_id)
    REFERENCES events (org_id, id) ON DELETE CASCADE,
  CONSTRAINT event_speakers_speaker_fkey FOREIGN KEY (org_id, speaker_id)
    REFERENCES speakers (org_id, id) ON DELETE CASCADE
);

CREATE TABLE event_companies (
  org_id     uuid NOT NULL,
  event_id   uuid NOT NULL,
  company_id uuid NOT NULL,
  relation   text NOT NULL DEFAULT 'sponsor' CHECK (relation IN ('host', 'sponsor', 'exhibitor', 'partner')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, company_id),
  CONSTRAINT event_companies_event_fkey FOREIGN KEY (org_id, event_id)
    REFERENCES events (org_id, id) ON DELETE CASCADE,
  CONSTRAINT event_companies_company_fkey FOREIGN KEY (org_id, company_id)
    REFERENCES companies (org_id, id) ON DELETE CASCADE
);

CREATE TABLE event_topics (
  org_id     uuid NOT NULL,
  event_id   uuid NOT NULL,
  topic_id   uuid NOT NULL,
  relevance  double precision NOT NULL DEFAULT 1 CHECK (relevance BETWEEN 0 AND 1),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, topic_id),
  CONSTRAINT event_topics_event_fkey FOREIGN KEY (org_id, event_id)
    REFERENCES events (org_id, id) ON DELETE CASCADE,
  CONSTRAINT event_topics_topic_fkey FOREIGN KEY (org_id, topic_id)
    REFERENCES topics (org_id, id) ON DELETE CASCADE
);

-- Outbox: the change log ----------------------------------------------------------------------------
-- A reader orders by (txid, position) and reads only rows whose txid is below the xmin of its snapshot
-- (pg_snapshot_xmin(pg_current_snapshot())): every such transaction has finished, so no row can later appear
-- behind the reader's checkpoint. docs/relay.md argues this in full.
CREATE TABLE outbox (
  position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  txid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
  change_id      uuid NOT NULL DEFAULT gen_random_uuid(),
  org_id         uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  aggregate_type text NOT NULL CHECK (aggregate_type ~ '^[a-z][a-z_]*$'),
  aggregate_id   uuid NOT NULL,
  change_type    text NOT NULL CHECK (change_type ~ '^[a-z][a-z_]*\.[a-z][a-z_]*$'),
  payload        jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
  actor_key_id   uuid,
  traceparent    text CHECK (traceparent ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'),
  tracestate     text CHECK (length(tracestate) <= 512),
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_read_idx ON outbox (txid, position);
CREATE INDEX outbox_org_read_idx ON outbox (org_id, txid, position);
CREATE INDEX outbox_aggregate_idx ON outbox (org_id, aggregate_id, position);

-- Idempotency records for create requests (AIP-155), kept at least 24 hours.
CREATE TABLE idempotency_records (
  org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  request_id   uuid NOT NULL,
  method       text NOT NULL CHECK (length(method) > 0),
  request_hash bytea NOT NULL CHECK (length(request_hash) = 32),
  resource_ids uuid[] NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, request_id)
);
CREATE INDEX idempotency_records_created_at_idx ON idempotency_records (created_at);

-- Indexes for the access paths ----------------------------------------------------------------------
-- Keyset listing and filters (events).
CREATE INDEX events_org_sort_start_idx ON events (org_id, sort_start, id);
CREATE INDEX events_org_updated_at_idx ON events (org_id, updated_at, id);
CREATE INDEX events_org_status_idx ON events (org_id, status, sort_start, id);
CREATE INDEX events_org_country_idx ON events (org_id, country, sort_start, id);
CREATE INDEX events_org_city_idx ON events (org_id, city, sort_start, id);
CREATE INDEX events_org_name_prefix_idx ON events (org_id, lower(name) text_pattern_ops);
-- Search: full text, fuzzy names, similarity.
CREATE INDEX events_search_idx ON events USING gin (search);
CREATE INDEX events_name_trgm_idx ON events USING gin (name gin_trgm_ops);
CREATE INDEX events_embedding_idx ON events USING hnsw (embedding vector_cosine_ops);
CREATE INDEX speakers_name_trgm_idx ON speakers USING gin (normalized_name gin_trgm_ops);
CREATE INDEX speakers_embedding_idx ON speakers USING hnsw (embedding vector_cosine_ops);
CREATE INDEX companies_name_trgm_idx ON companies USING gin (normalized_name gin_trgm_ops);
CREATE INDEX topics_name_trgm_idx ON topics USING gin (normalized_name gin_trgm_ops);
CREATE INDEX topics_embedding_idx ON topics USING hnsw (embedding vector_cosine_ops);
-- Foreign keys (the other direction of each relation, and every referencing column).
CREATE INDEX speakers_company_idx ON speakers (org_id, company_id);
CREATE INDEX topics_parent_idx ON topics (org_id, parent_id);
CREATE INDEX media_event_captured_at_idx ON media (org_id, event_id, captured_at);
CREATE INDEX media_event_id_idx ON media (org_id, event_id, id);
CREATE INDEX event_speakers_speaker_idx ON event_speakers (org_id, speaker_id, event_id);
CREATE INDEX event_speakers_event_idx ON event_speakers (org_id, event_id);
CREATE INDEX event_companies_company_idx ON event_companies (org_id, company_id, event_id);
CREATE INDEX event_companies_event_idx ON event_companies (org_id, event_id);
CREATE INDEX event_topics_topic_idx ON event_topics (org_id, topic_id, event_id);
CREATE INDEX event_topics_event_idx ON event_topics (org_id, event_id);

-- Row-level security ---------------------------------------------------------------------------------
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['events', 'companies', 'speakers', 'topics', 'media', 'event_speakers',
                           'event_companies', 'event_topics', 'outbox', 'idempotency_records'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (org_id = current_org_id()) '
                   'WITH CHECK (org_id = current_org_id())', t);
  END LOOP;
END
$$;

-- Control-plane tables: managed by the owner role (CLI); RLS enabled but not forced, so the owner (and the
-- SECURITY DEFINER lookup below) sees every row while any other role sees only its own organization.
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON organizations USING (id = current_org_id());
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys USING (org_id = current_org_id());

-- The relay reads and prunes every organization's changes (and nothing else).
CREATE POLICY relay_all ON outbox TO eventdata_relayer USING (true);

-- The service's one way into api_keys: look a key up by the hash of its secret (before any organization is known).
CREATE FUNCTION authenticate_api_key(p_secret_hash bytea)
RETURNS TABLE (key_id uuid, org_id uuid, scopes text[])
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  SELECT k.id, k.org_id, k.scopes FROM api_keys k
  WHERE k.secret_hash = p_secret_hash AND k.revoked_at IS NULL
$$;

-- Grants: the runtime role gets exactly what the service needs.
REVOKE ALL ON FUNCTION authenticate_api_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION authenticate_api_key(bytea) TO eventdata_runtime;
GRANT SELECT ON organizations TO eventdata_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE
  ON events, companies, speakers, topics, media, event_speakers, event_companies, event_topics
  TO eventdata_runtime;
GRANT SELECT, INSERT ON outbox TO eventdata_runtime;
GRANT SELECT, INSERT, DELETE ON idempotency_records TO eventdata_runtime;
GRANT SELECT ON _sqlx_migrations TO eventdata_runtime, eventdata_relayer;
GRANT SELECT, DELETE ON outbox TO eventdata_relayer;
