-- Read models and data quality (docs/schema.md, "Data quality" and "Read models").
--
--  * Relation counts on events, speakers and companies, kept by statement-level triggers on the relation
--    tables (one aggregated UPDATE per statement, so a bulk load pays per statement, not per row).
--  * quality_score in [0, 1] and quality_reasons, generated columns over the row and its counts: always current,
--    indexable, and computed by one documented rule (the *_quality functions below).
--  * A score that crosses the threshold (0.5) is noted in the outbox payload of the change that caused it.
--  * event_context_v and friends: the read model of GetEventContext, for SQL users, under row-level security.

-- Relation counts --------------------------------------------------------------------------------------------
ALTER TABLE events
  ADD COLUMN speaker_count integer NOT NULL DEFAULT 0 CHECK (speaker_count >= 0),
  ADD COLUMN company_count integer NOT NULL DEFAULT 0 CHECK (company_count >= 0),
  ADD COLUMN topic_count   integer NOT NULL DEFAULT 0 CHECK (topic_count >= 0),
  ADD COLUMN media_count   integer NOT NULL DEFAULT 0 CHECK (media_count >= 0);
ALTER TABLE speakers
  ADD COLUMN event_count integer NOT NULL DEFAULT 0 CHECK (event_count >= 0);
ALTER TABLE companies
  ADD COLUMN event_count    integer NOT NULL DEFAULT 0 CHECK (event_count >= 0),
  ADD COLUMN employee_count integer NOT NULL DEFAULT 0 CHECK (employee_count >= 0);

-- Adds (inserts) or subtracts (deletes) the number of changed relation rows per target row to a count column.
-- TG_ARGV: the counted table, its count column, the relation's column pointing at it; repeated. Transition tables
-- are visible only to the trigger function's own statements, hence the dynamic SQL here rather than in a helper.
CREATE FUNCTION count_relations() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  source text := CASE TG_OP WHEN 'INSERT' THEN 'changed_new' ELSE 'changed_old' END;
  delta int := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
  i int := 0;
BEGIN
  WHILE i < TG_NARGS LOOP
    -- Lock the target rows in id order first: two statements counting into overlapping rows (a popular
    -- speaker) then wait for each other instead of deadlocking. NO KEY UPDATE is what the UPDATE takes anyway,
    -- and it does not conflict with the KEY SHARE locks of foreign-key checks.
    EXECUTE format(
      'SELECT count(*) FROM (SELECT 1 FROM %1$I t WHERE t.id IN (SELECT %3$I FROM %2$I) ORDER BY t.id FOR NO KEY UPDATE) l',
      TG_ARGV[i], source, TG_ARGV[i + 2]);
    EXECUTE format(
      'UPDATE %1$I t SET %2$I = t.%2$I + d.n * %5$s
       FROM (SELECT %4$I AS k, count(*) AS n FROM %3$I WHERE %4$I IS NOT NULL GROUP BY 1 ORDER BY 1) d
       WHERE t.id = d.k',
      TG_ARGV[i], TG_ARGV[i + 1], source, TG_ARGV[i + 2], delta);
    i := i + 3;
  END LOOP;
  RETURN NULL;
END
$$;

CREATE TRIGGER event_speakers_counted_insert AFTER INSERT ON event_speakers REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'speaker_count', 'event_id', 'speakers', 'event_count', 'speaker_id');
CREATE TRIGGER event_speakers_counted_delete AFTER DELETE ON event_speakers REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'speaker_count', 'event_id', 'speakers', 'event_count', 'speaker_id');
CREATE TRIGGER event_companies_counted_insert AFTER INSERT ON event_companies REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'company_count', 'event_id', 'companies', 'event_count', 'company_id');
CREATE TRIGGER event_companies_counted_delete AFTER DELETE ON event_companies REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'company_count', 'event_id', 'companies', 'event_count', 'company_id');
CREATE TRIGGER event_topics_counted_insert AFTER INSERT ON event_topics REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'topic_count', 'event_id');
CREATE TRIGGER event_topics_counted_delete AFTER DELETE ON event_topics REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'topic_count', 'event_id');
CREATE TRIGGER media_counted_insert AFTER INSERT ON media REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'media_count', 'event_id');
CREATE TRIGGER media_counted_delete AFTER DELETE ON media REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'media_count', 'event_id');
-- Employees: a speaker's company_id is set on insert, changed on update, dropped on delete.
CREATE TRIGGER speakers_employer_counted_insert AFTER INSERT ON speakers REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('companies', 'employee_count', 'company_id');
CREATE TRIGGER speakers_employer_counted_delete AFTER DELETE ON speakers REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('companies', 'employee_count', 'company_id');

CREATE FUNCTION count_employer_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Only rows whose employer changed; each side counted like a delete and an insert.
  UPDATE companies c SET employee_count = c.employee_count + d.n
  FROM (
    SELECT k, sum(n) AS n FROM (
      SELECT o.company_id AS k, -1 AS n FROM changed_old o JOIN changed_new n ON n.id = o.id
        WHERE o.company_id IS DISTINCT FROM n.company_id AND o.company_id IS NOT NULL
      UNION ALL
      SELECT n.company_id, 1 FROM changed_old o JOIN changed_new n ON n.id = o.id
        WHERE o.company_id IS DISTINCT FROM n.company_id AND n.company_id IS NOT NULL
    ) x GROUP BY k HAVING sum(n) <> 0 ORDER BY k
  ) d
  WHERE c.id = d.k;
  RETURN NULL;
END
$$;
CREATE TRIGGER speakers_employer_counted_update AFTER UPDATE ON speakers
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_employer_changes();

-- The quality rule -------------------------------------------------------------------------------------------
-- Each missing item costs its weight; weights add up to 1. Scores are rounded to two decimals.
-- Events:    description 0.20, start time 0.15, location (venue, city or online URL) 0.10, embedding 0.15,
--            at least one speaker 0.25, at least one topic 0.15.
-- Speakers:  title 0.10, bio 0.15, current company 0.10, a profile URL (LinkedIn, Twitter or website) 0.10,
--            embedding 0.15, confidence 0.15 × confidence_score (reason below 0.5), at least one event 0.25.
-- Companies: domain 0.15, description 0.20, website 0.10, size 0.05, location 0.05, at least one event 0.25,
--            at least one employee 0.20.
-- A record is *thin* below 0.5: crossing that threshold is noted in the change that caused it.

CREATE FUNCTION event_quality_reasons(description text, starts_at timestamptz, venue text, city text,
                                      online_url text, has_embedding boolean, speaker_count int, topic_count int)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_remove(ARRAY[
    CASE WHEN description IS NULL THEN 'missing_description' END,
    CASE WHEN starts_at IS NULL THEN 'missing_start_time' END,
    CASE WHEN venue IS NULL AND city IS NULL AND online_url IS NULL THEN 'missing_location' END,
    CASE WHEN NOT has_embedding THEN 'no_embedding' END,
    CASE WHEN speaker_count = 0 THEN 'no_speakers' END,
    CASE WHEN topic_count = 0 THEN 'no_topics' END
  ], NULL)
$$;

CREATE FUNCTION event_quality(description text, starts_at timestamptz, venue text, city text,
                              online_url text, has_embedding boolean, speaker_count int, topic_count int)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT round((
      CASE WHEN description IS NOT NULL THEN 0.20 ELSE 0 END
    + CASE WHEN starts_at IS NOT NULL THEN 0.15 ELSE 0 END
    + CASE WHEN venue IS NOT NULL OR city IS NOT NULL OR online_url IS NOT NULL THEN 0.10 ELSE 0 END
    + CASE WHEN has_embedding THEN 0.15 ELSE 0 END
    + CASE WHEN speaker_count > 0 THEN 0.25 ELSE 0 END
    + CASE WHEN topic_count > 0 THEN 0.15 ELSE 0 END)::numeric, 2)::double precision
$$;

CREATE FUNCTION speaker_quality_reasons(title text, bio text, company_id uuid, has_profile boolean,
                                        has_embedding boolean, confidence double precision, event_count int)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_remove(ARRAY[
    CASE WHEN title IS NULL THEN 'missing_title' END,
    CASE WHEN bio IS NULL THEN 'missing_bio' END,
    CASE WHEN company_id IS NULL THEN 'missing_company' END,
    CASE WHEN NOT has_profile THEN 'missing_profile_url' END,
    CASE WHEN NOT has_embedding THEN 'no_embedding' END,
    CASE WHEN confidence < 0.5 THEN 'low_confidence' END,
    CASE WHEN event_count = 0 THEN 'no_events' END
  ], NULL)
$$;

CREATE FUNCTION speaker_quality(title text, bio text, company_id uuid, has_profile boolean,
                                has_embedding boolean, confidence double precision, event_count int)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT round((
      CASE WHEN title IS NOT NULL THEN 0.10 ELSE 0 END
    + CASE WHEN bio IS NOT NULL THEN 0.15 ELSE 0 END
    + CASE WHEN company_id IS NOT NULL THEN 0.10 ELSE 0 END
    + CASE WHEN has_profile THEN 0.10 ELSE 0 END
    + CASE WHEN has_embedding THEN 0.15 ELSE 0 END
    + 0.15 * confidence
    + CASE WHEN event_count > 0 THEN 0.25 ELSE 0 END)::numeric, 2)::double precision
$$;

CREATE FUNCTION company_quality_reasons(domain text, description text, website_url text, size text,
                                        location text, event_count int, employee_count int)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_remove(ARRAY[
    CASE WHEN domain IS NULL THEN 'missing_domain' END,
    CASE WHEN description IS NULL THEN 'missing_description' END,
    CASE WHEN website_url IS NULL THEN 'missing_website' END,
    CASE WHEN size IS NULL THEN 'missing_size' END,
    CASE WHEN location IS NULL THEN 'missing_location' END,
    CASE WHEN event_count = 0 THEN 'no_events' END,
    CASE WHEN employee_count = 0 THEN 'no_employees' END
  ], NULL)
$$;

CREATE FUNCTION company_quality(domain text, description text, website_url text, size text,
                                location text, event_count int, employee_count int)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT round((
      CASE WHEN domain IS NOT NULL THEN 0.15 ELSE 0 END
    + CASE WHEN description IS NOT NULL THEN 0.20 ELSE 0 END
    + CASE WHEN website_url IS NOT NULL THEN 0.10 ELSE 0 END
    + CASE WHEN size IS NOT NULL THEN 0.05 ELSE 0 END
    + CASE WHEN location IS NOT NULL THEN 0.05 ELSE 0 END
    + CASE WHEN event_count > 0 THEN 0.25 ELSE 0 END
    + CASE WHEN employee_count > 0 THEN 0.20 ELSE 0 END)::numeric, 2)::double precision
$$;

-- Backfill the counts of existing rows. Row-level security is forced even on the owner, so it is lifted for
-- the backfill and forced again in the same transaction.
ALTER TABLE events NO FORCE ROW LEVEL SECURITY;
ALTER TABLE speakers NO FORCE ROW LEVEL SECURITY;
ALTER TABLE companies NO FORCE ROW LEVEL SECURITY;
ALTER TABLE event_speakers NO FORCE ROW LEVEL SECURITY;
ALTER TABLE event_companies NO FORCE ROW LEVEL SECURITY;
ALTER TABLE event_topics NO FORCE ROW LEVEL SECURITY;
ALTER TABLE media NO FORCE ROW LEVEL SECURITY;
-- Grouped counts joined back, not a correlated count per row: the relation indexes lead with org_id, so a
-- per-row count by speaker_id or company_id alone would scan the relation table once per row.
UPDATE events e SET speaker_count = x.n FROM (SELECT event_id, count(*) AS n FROM event_speakers GROUP BY 1) x
  WHERE x.event_id = e.id;
UPDATE events e SET company_count = x.n FROM (SELECT event_id, count(*) AS n FROM event_companies GROUP BY 1) x
  WHERE x.event_id = e.id;
UPDATE events e SET topic_count = x.n FROM (SELECT event_id, count(*) AS n FROM event_topics GROUP BY 1) x
  WHERE x.event_id = e.id;
UPDATE events e SET media_count = x.n FROM (SELECT event_id, count(*) AS n FROM media GROUP BY 1) x
  WHERE x.event_id = e.id;
UPDATE speakers s SET event_count = x.n FROM (SELECT speaker_id, count(*) AS n FROM event_speakers GROUP BY 1) x
  WHERE x.speaker_id = s.id;
UPDATE companies c SET event_count = x.n FROM (SELECT company_id, count(*) AS n FROM event_companies GROUP BY 1) x
  WHERE x.company_id = c.id;
UPDATE companies c SET employee_count = x.n
  FROM (SELECT company_id, count(*) AS n FROM speakers WHERE company_id IS NOT NULL GROUP BY 1) x
  WHERE x.company_id = c.id;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
ALTER TABLE speakers FORCE ROW LEVEL SECURITY;
ALTER TABLE companies FORCE ROW LEVEL SECURITY;
ALTER TABLE event_speakers FORCE ROW LEVEL SECURITY;
ALTER TABLE event_companies FORCE ROW LEVEL SECURITY;
ALTER TABLE event_topics FORCE ROW LEVEL SECURITY;
ALTER TABLE media FORCE ROW LEVEL SECURITY;

ALTER TABLE events
  ADD COLUMN quality_score double precision NOT NULL GENERATED ALWAYS AS (event_quality(
    description, starts_at, venue, city, online_url, embedding IS NOT NULL, speaker_count, topic_count)) STORED,
  ADD COLUMN quality_reasons text[] NOT NULL GENERATED ALWAYS AS (event_quality_reasons(
    description, starts_at, venue, city, online_url, embedding IS NOT NULL, speaker_count, topic_count)) STORED;
ALTER TABLE speakers
  ADD COLUMN quality_score double precision NOT NULL GENERATED ALWAYS AS (speaker_quality(
    title, bio, company_id, coalesce(linkedin_url, twitter_url, website_url) IS NOT NULL,
    embedding IS NOT NULL, confidence_score, event_count)) STORED,
  ADD COLUMN quality_reasons text[] NOT NULL GENERATED ALWAYS AS (speaker_quality_reasons(
    title, bio, company_id, coalesce(linkedin_url, twitter_url, website_url) IS NOT NULL,
    embedding IS NOT NULL, confidence_score, event_count)) STORED;
ALTER TABLE companies
  ADD COLUMN quality_score double precision NOT NULL GENERATED ALWAYS AS (company_quality(
    domain, description, website_url, size, location, event_count, employee_count)) STORED,
  ADD COLUMN quality_reasons text[] NOT NULL GENERATED ALWAYS AS (company_quality_reasons(
    domain, description, website_url, size, location, event_count, employee_count)) STORED;

-- "The 100 thinnest speakers": keyset (quality_score, id) within an organization.
CREATE INDEX events_org_quality_idx ON events (org_id, quality_score, id);
CREATE INDEX speakers_org_quality_idx ON speakers (org_id, quality_score, id);
CREATE INDEX companies_org_quality_idx ON companies (org_id, quality_score, id);

-- Threshold crossings into the outbox ------------------------------------------------------------------------
-- After any statement that changed scores, the records whose score crossed 0.5 are appended, as
-- `quality_crossings`, to the payload of the newest change this transaction wrote: the change of the statement
-- that caused them (every mutation writes its change in the same statement as its data). The relay reads a
-- transaction's changes only after it commits, so amending an uncommitted change is invisible to it.
-- SECURITY DEFINER: the runtime role may insert changes but never update them; this function is the one
-- exception, and it touches only the current transaction's newest change.
CREATE FUNCTION note_quality_crossings() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  crossings jsonb;
BEGIN
  SELECT jsonb_agg(jsonb_build_object(
           'resource_type', TG_ARGV[0], 'resource_id', n.id, 'previous_score', o.quality_score,
           'score', n.quality_score, 'direction', CASE WHEN n.quality_score >= 0.5 THEN 'above' ELSE 'below' END,
           'reasons', to_jsonb(n.quality_reasons)) ORDER BY n.id)
    INTO crossings
  FROM changed_new n JOIN changed_old o ON o.id = n.id
  WHERE (o.quality_score >= 0.5) <> (n.quality_score >= 0.5);
  IF crossings IS NOT NULL THEN
    UPDATE outbox SET payload = payload || jsonb_build_object(
      'quality_crossings', coalesce(payload -> 'quality_crossings', '[]'::jsonb) || crossings)
    WHERE position = (SELECT max(position) FROM outbox WHERE txid = pg_current_xact_id());
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER events_quality_crossings AFTER UPDATE ON events
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION note_quality_crossings('event');
CREATE TRIGGER speakers_quality_crossings AFTER UPDATE ON speakers
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION note_quality_crossings('speaker');
CREATE TRIGGER companies_quality_crossings AFTER UPDATE ON companies
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION note_quality_crossings('company');
REVOKE ALL ON FUNCTION note_quality_crossings() FROM PUBLIC;

-- Read models ------------------------------------------------------------------------------------------------
-- security_invoker: the caller's row-level security applies to every table the views read, so a view shows an
-- organization's rows only to a session whose app.org_id is that organization.

-- One row per speaker appearance, with the speaker's employer.
CREATE VIEW event_speakers_v WITH (security_invoker = true) AS
SELECT es.org_id, es.event_id, s.id AS speaker_id, s.name, es.role, es.talk_title, s.title,
       c.id AS company_id, c.name AS company_name, s.quality_score
FROM event_speakers es
JOIN speakers s ON s.id = es.speaker_id
LEFT JOIN companies c ON c.id = s.company_id;

-- One row per event topic, with its parent topic.
CREATE VIEW event_topics_v WITH (security_invoker = true) AS
SELECT et.org_id, et.event_id, t.id AS topic_id, t.name, et.relevance, p.id AS parent_id, p.name AS parent_name
FROM event_topics et
JOIN topics t ON t.id = et.topic_id
LEFT JOIN topics p ON p.id = t.parent_id;

-- One row per event: the event and everything GetEventContext returns, as JSON in the API's field names.
CREATE VIEW event_context_v WITH (security_invoker = true) AS
SELECT e.org_id, e.id AS event_id, e.name, e.quality_score,
  (SELECT coalesce(jsonb_agg(jsonb_build_object(
      'speaker', jsonb_build_object('id', s.id, 'name', s.name, 'title', s.title, 'company_id', s.company_id,
                                    'quality_score', s.quality_score),
      'role', es.role, 'talk_title', es.talk_title,
      'company', CASE WHEN c.id IS NOT NULL THEN jsonb_build_object('id', c.id, 'name', c.name, 'domain', c.domain) END)
    ORDER BY array_position(ARRAY['keynote', 'speaker', 'panelist', 'moderator'], es.role), s.name, s.id), '[]')
   FROM event_speakers es JOIN speakers s ON s.id = es.speaker_id LEFT JOIN companies c ON c.id = s.company_id
   WHERE es.event_id = e.id) AS speakers,
  (SELECT coalesce(jsonb_agg(jsonb_build_object(
      'company', jsonb_build_object('id', c.id, 'name', c.name, 'domain', c.domain, 'website_url', c.website_url,
                                    'quality_score', c.quality_score),
      'relation', ec.relation)
    ORDER BY array_position(ARRAY['host', 'sponsor', 'exhibitor', 'partner'], ec.relation), c.name, c.id), '[]')
   FROM event_companies ec JOIN companies c ON c.id = ec.company_id
   WHERE ec.event_id = e.id) AS companies,
  (SELECT coalesce(jsonb_agg(jsonb_build_object(
      'topic', jsonb_build_object('id', t.id, 'name', t.name),
      'relevance', et.relevance,
      'parent', CASE WHEN p.id IS NOT NULL THEN jsonb_build_object('id', p.id, 'name', p.name) END)
    ORDER BY et.relevance DESC, t.name, t.id), '[]')
   FROM event_topics et JOIN topics t ON t.id = et.topic_id LEFT JOIN topics p ON p.id = t.parent_id
   WHERE et.event_id = e.id) AS topics,
  (SELECT coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'kind', m.kind, 'url', m.url, 'title', m.title,
                                                'mime_type', m.mime_type)
    ORDER BY m.captured_at NULLS LAST, m.id), '[]')
   FROM media m WHERE m.event_id = e.id) AS media,
  jsonb_build_object('speakers', e.speaker_count, 'companies', e.company_count, 'topics', e.topic_count,
                     'media', e.media_count) AS counts
FROM events e;

GRANT SELECT ON event_context_v, event_speakers_v, event_topics_v TO eventdata_runtime;
