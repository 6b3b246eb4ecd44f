-- SQL functions that statements inline, with their bodies parsed once (SQL-standard bodies, `RETURN ...`).
--
-- PostgreSQL inlines a simple SQL function into the expression that calls it. For a body written as a string
-- (`AS $$ SELECT ... $$`) that means parsing and analysing the string again each time the expression is planned,
-- and some expressions are planned on every statement: a table's stored generated columns, when the statement
-- starts (every create of an event, speaker or company, and every UPDATE the relation-count triggers make, computes
-- the quality columns or `normalized_name`), and the policies' `current_org_id()` in a statement planned for each
-- execution (behind a transaction pooler the service's statements are unnamed). A SQL-standard body is stored
-- parsed: inlining reads the stored tree. The definitions are the same expressions as before (migrations 0001 and
-- 0003); nothing stored changes. What it saved: docs/performance.md, "Function bodies parsed once".

CREATE OR REPLACE FUNCTION current_org_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
RETURN nullif(current_setting('app.org_id', true), '')::uuid;

CREATE OR REPLACE FUNCTION normalize_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN lower(normalize(btrim(regexp_replace(name, '\s+', ' ', 'g')), NFKC));

CREATE OR REPLACE FUNCTION event_quality_reasons(description text, starts_at timestamptz, venue text, city text,
                                                 online_url text, has_embedding boolean, speaker_count int,
                                                 topic_count int)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_remove(ARRAY[
    CASE WHEN description IS NULL THEN 'missing_description' END,
    CASE WHEN starts_at IS NULL THEN 'missing_start_time' END,
    CASE WHEN venue IS NULL AND city IS NULL AND online_url IS NULL THEN 'missing_location' END,
    CASE WHEN NOT has_embedding THEN 'no_embedding' END,
    CASE WHEN speaker_count = 0 THEN 'no_speakers' END,
    CASE WHEN topic_count = 0 THEN 'no_topics' END
  ], NULL);

CREATE OR REPLACE FUNCTION event_quality(description text, starts_at timestamptz, venue text, city text,
                                         online_url text, has_embedding boolean, speaker_count int, topic_count int)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN round((
      CASE WHEN description IS NOT NULL THEN 0.20 ELSE 0 END
    + CASE WHEN starts_at IS NOT NULL THEN 0.15 ELSE 0 END
    + CASE WHEN venue IS NOT NULL OR city IS NOT NULL OR online_url IS NOT NULL THEN 0.10 ELSE 0 END
    + CASE WHEN has_embedding THEN 0.15 ELSE 0 END
    + CASE WHEN speaker_count > 0 THEN 0.25 ELSE 0 END
    + CASE WHEN topic_count > 0 THEN 0.15 ELSE 0 END)::numeric, 2)::double precision;

CREATE OR REPLACE FUNCTION speaker_quality_reasons(title text, bio text, company_id uuid, has_profile boolean,
                                                   has_embedding boolean, confidence double precision,
                                                   event_count int)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_remove(ARRAY[
    CASE WHEN title IS NULL THEN 'missing_title' END,
    CASE WHEN bio IS NULL THEN 'missing_bio' END,
    CASE WHEN company_id IS NULL THEN 'missing_company' END,
    CASE WHEN NOT has_profile THEN 'missing_profile_url' END,
    CASE WHEN NOT has_embedding THEN 'no_embedding' END,
    CASE WHEN confidence < 0.5 THEN 'low_confidence' END,
    CASE WHEN event_count = 0 THEN 'no_events' END
  ], NULL);

CREATE OR REPLACE FUNCTION speaker_quality(title text, bio text, company_id uuid, has_profile boolean,
                                           has_embedding boolean, confidence double precision, event_count int)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN round((
      CASE WHEN title IS NOT NULL THEN 0.10 ELSE 0 END
    + CASE WHEN bio IS NOT NULL THEN 0.15 ELSE 0 END
    + CASE WHEN company_id IS NOT NULL THEN 0.10 ELSE 0 END
    + CASE WHEN has_profile THEN 0.10 ELSE 0 END
    + CASE WHEN has_embedding THEN 0.15 ELSE 0 END
    + 0.15 * confidence
    + CASE WHEN event_count > 0 THEN 0.25 ELSE 0 END)::numeric, 2)::double precision;

CREATE OR REPLACE FUNCTION company_quality_reasons(domain text, description text, website_url text, size text,
                                                   location text, event_count int, employee_count int)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_remove(ARRAY[
    CASE WHEN domain IS NULL THEN 'missing_domain' END,
    CASE WHEN description IS NULL THEN 'missing_description' END,
    CASE WHEN website_url IS NULL THEN 'missing_website' END,
    CASE WHEN size IS NULL THEN 'missing_size' END,
    CASE WHEN location IS NULL THEN 'missing_location' END,
    CASE WHEN event_count = 0 THEN 'no_events' END,
    CASE WHEN employee_count = 0 THEN 'no_employees' END
  ], NULL);

CREATE OR REPLACE FUNCTION company_quality(domain text, description text, website_url text, size text,
                                           location text, event_count int, employee_count int)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN round((
      CASE WHEN domain IS NOT NULL THEN 0.15 ELSE 0 END
    + CASE WHEN description IS NOT NULL THEN 0.20 ELSE 0 END
    + CASE WHEN website_url IS NOT NULL THEN 0.10 ELSE 0 END
    + CASE WHEN size IS NOT NULL THEN 0.05 ELSE 0 END
    + CASE WHEN location IS NOT NULL THEN 0.05 ELSE 0 END
    + CASE WHEN event_count > 0 THEN 0.25 ELSE 0 END
    + CASE WHEN employee_count > 0 THEN 0.20 ELSE 0 END)::numeric, 2)::double precision;
