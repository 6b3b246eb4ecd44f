-- Search that uses its indexes under row-level security (docs/search.md, "Indexes under row-level security").
--
-- Beneath a policy PostgreSQL uses a condition as an index condition only when its operator is LEAKPROOF. Full-text
-- `@@` and pg_trgm's `%` are not, so as the runtime role their indexes were never used: every search scanned the
-- organization's rows. Name prefixes used LIKE, which is not leakproof either.
--
-- * Name prefixes become ranges of `~>=~` / `~<~` (text_pattern_ops, leakproof) in the service's SQL: no function
--   needed, the policy stays where it is.
-- * Full text and trigram lookups run in SECURITY DEFINER functions owned by eventdata_searcher, a NOLOGIN role
--   (made by scripts/setup.sh) that a policy of its own lets read every row of the four searchable tables. Inside
--   them no policy filter stands between the operator and its index; each function adds
--   `org_id = current_org_id()` itself and returns nothing when no organization is set. Only the runtime role may
--   execute them. No superuser, no BYPASSRLS, no LEAKPROOF on built-ins: this works on managed PostgreSQL.
-- * Full text is ranked by a RUM index (`ORDER BY search <=> query LIMIT n`): the top of the ranking comes out of
--   the index, so a page reads only its rows instead of ranking every match.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'eventdata_searcher') THEN
    RAISE EXCEPTION 'role eventdata_searcher must exist before migrating: run scripts/setup.sh';
  END IF;
END
$$;

CREATE EXTENSION IF NOT EXISTS rum;
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- Indexes -------------------------------------------------------------------------------------------------

-- RUM answers `@@` like the GIN index it replaces, and also returns matches in rank order.
CREATE INDEX events_search_rum_idx ON events USING rum (search rum_tsvector_ops);
DROP INDEX events_search_idx;

-- Trigram lookups with the organization inside the index (btree_gin), so a small tenant does not pay for a
-- large one's names.
CREATE INDEX speakers_org_name_trgm_idx ON speakers USING gin (org_id, normalized_name gin_trgm_ops);
CREATE INDEX companies_org_name_trgm_idx ON companies USING gin (org_id, normalized_name gin_trgm_ops);
CREATE INDEX topics_org_name_trgm_idx ON topics USING gin (org_id, normalized_name gin_trgm_ops);
DROP INDEX speakers_name_trgm_idx, companies_name_trgm_idx, topics_name_trgm_idx;

-- Name prefixes as leakproof ranges over stored columns: a function applied to a column (`lower(name)`) is not
-- leakproof either, so the events' prefix index moves from the expression to a generated column.
ALTER TABLE events ADD COLUMN name_lower text GENERATED ALWAYS AS (lower(name)) STORED;
CREATE INDEX events_org_name_lower_idx ON events (org_id, name_lower text_pattern_ops);
DROP INDEX events_org_name_prefix_idx;
CREATE INDEX speakers_org_name_pattern_idx ON speakers (org_id, normalized_name text_pattern_ops);
CREATE INDEX companies_org_name_pattern_idx ON companies (org_id, normalized_name text_pattern_ops);
CREATE INDEX topics_org_name_pattern_idx ON topics (org_id, normalized_name text_pattern_ops);

-- How many embedded rows an organization has, bounded and index-only: the similarity search reads it to choose an
-- exact scan for small tenants (the HNSW index holds every tenant's vectors, docs/search.md).
CREATE INDEX events_org_embedded_idx ON events (org_id) WHERE embedding IS NOT NULL;
CREATE INDEX speakers_org_embedded_idx ON speakers (org_id) WHERE embedding IS NOT NULL;
CREATE INDEX topics_org_embedded_idx ON topics (org_id) WHERE embedding IS NOT NULL;

-- The searcher ----------------------------------------------------------------------------------------------

GRANT USAGE, CREATE ON SCHEMA public TO eventdata_searcher;
GRANT SELECT ON events, speakers, companies, topics, event_speakers, event_companies, event_topics
  TO eventdata_searcher;
CREATE POLICY searcher_reads_all ON events FOR SELECT TO eventdata_searcher USING (true);
CREATE POLICY searcher_reads_all ON speakers FOR SELECT TO eventdata_searcher USING (true);
CREATE POLICY searcher_reads_all ON companies FOR SELECT TO eventdata_searcher USING (true);
CREATE POLICY searcher_reads_all ON topics FOR SELECT TO eventdata_searcher USING (true);
-- (The relation tables keep only their tenant policy: the filters below compare uuids, which are leakproof.)
--
-- Policies apply to a role's members too, and the migrating role is a member of eventdata_searcher (it must be, to
-- hand the functions over). A restrictive policy keeps it inside its organization on these tables whatever
-- permissive policy it inherits.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['events', 'speakers', 'companies', 'topics'] LOOP
    EXECUTE format('CREATE POLICY owner_stays_in_org ON %I AS RESTRICTIVE TO %I USING (org_id = current_org_id()) '
                   'WITH CHECK (org_id = current_org_id())', t, current_user);
  END LOOP;
END
$$;

-- The statement of search_events_text for the filters that are set (NULL is "no filter"): dynamic SQL, so each
-- call is planned with its own values and only the filters it uses. $1 query text, $2/$3 cursor (distance, id),
-- $4 limit, $5.. the filters in the order of search_events_text's parameters.
CREATE FUNCTION search_events_text_sql(
  p_after boolean, p_start_from boolean, p_start_before boolean, p_status boolean, p_city boolean,
  p_country boolean, p_topic boolean, p_speaker boolean, p_company boolean)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, public
AS $fn$
  SELECT format($sql$
    SELECT h.id, h.distance::float8 FROM (
      (SELECT t.id, 0::float4 AS distance FROM events t
        WHERE t.org_id = current_org_id() AND t.name_lower = lower(btrim($1))
          AND t.search @@ websearch_to_tsquery('english', $1) %1$s)
      UNION ALL
      (SELECT h.id, h.distance FROM (
          SELECT t.id, t.search <=> websearch_to_tsquery('english', $1) AS distance FROM events t
          WHERE t.org_id = current_org_id() AND t.search @@ websearch_to_tsquery('english', $1)
            AND t.name_lower <> lower(btrim($1)) %1$s
          ORDER BY t.search <=> websearch_to_tsquery('english', $1)) h
        %2$s
        ORDER BY h.distance, h.id LIMIT $4)
    ) h %2$s
    ORDER BY h.distance, h.id LIMIT $4
  $sql$,
  concat(
    CASE WHEN p_start_from THEN ' AND t.starts_at IS NOT NULL AND t.sort_start >= $5' END,
    CASE WHEN p_start_before THEN ' AND t.sort_start < $6' END,
    CASE WHEN p_status THEN ' AND t.status = $7' END,
    CASE WHEN p_city THEN ' AND t.city = $8' END,
    CASE WHEN p_country THEN ' AND t.country = $9' END,
    CASE WHEN p_topic THEN ' AND EXISTS (SELECT FROM event_topics x WHERE x.event_id = t.id AND x.topic_id = $10)' END,
    CASE WHEN p_speaker THEN ' AND EXISTS (SELECT FROM event_speakers x WHERE x.event_id = t.id AND x.speaker_id = $11)' END,
    CASE WHEN p_company THEN ' AND EXISTS (SELECT FROM event_companies x WHERE x.event_id = t.id AND x.company_id = $12)' END),
  CASE WHEN p_after THEN ' WHERE (h.distance, h.id) > ($2::float4, $3)' ELSE '' END)
$fn$;

-- Events matching `p_query` (web-search syntax) in the caller's organization, best first, after the cursor
-- (p_after_distance, p_after_id), at most p_limit. `distance` is 0 for an event whose name equals the query
-- (ignoring case and surrounding space), else RUM's distance for the query (smaller is better). With
-- p_explain, the plan of that statement instead (one line a row, distance NULL): for the plan tests.
CREATE FUNCTION search_events_text(
  p_query text, p_after_distance float8, p_after_id uuid, p_limit int,
  p_start_from timestamptz, p_start_before timestamptz, p_status text, p_city text, p_country text,
  p_topic_id uuid, p_speaker_id uuid, p_company_id uuid, p_explain boolean DEFAULT false)
RETURNS TABLE (id uuid, distance float8, plan text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public
-- The planner prices RUM's ordered scan (under the incremental sort that breaks ties by id) above a bitmap or
-- sequential scan of every match plus a sort, which reads every matching row: measured for a word in 5,600 of
-- 100,000 events, 170 ms (bitmap) or 200 ms (sequential) against 6 ms for the ordered scan. Here the ordered scan
-- is always the point, so the function turns the other two off for itself.
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $fn$
DECLARE
  statement text;
BEGIN
  IF current_org_id() IS NULL OR p_limit < 1 THEN
    RETURN;
  END IF;
  statement := search_events_text_sql(p_after_id IS NOT NULL, p_start_from IS NOT NULL, p_start_before IS NOT NULL,
    p_status IS NOT NULL, p_city IS NOT NULL, p_country IS NOT NULL, p_topic_id IS NOT NULL,
    p_speaker_id IS NOT NULL, p_company_id IS NOT NULL);
  IF p_explain THEN
    FOR plan IN EXECUTE 'EXPLAIN ' || statement
      USING p_query, p_after_distance, p_after_id, p_limit, p_start_from, p_start_before, p_status, p_city,
            p_country, p_topic_id, p_speaker_id, p_company_id
    LOOP
      RETURN NEXT;
    END LOOP;
    RETURN;
  END IF;
  RETURN QUERY EXECUTE 'SELECT s.id, s.distance, NULL::text FROM (' || statement || ') s'
    USING p_query, p_after_distance, p_after_id, p_limit, p_start_from, p_start_before, p_status, p_city, p_country,
          p_topic_id, p_speaker_id, p_company_id;
END
$fn$;

-- Speakers, companies or topics (p_table) of the caller's organization whose normalized name is trigram-similar to
-- normalize_name(p_name) (similarity at least p_min_similarity), most similar first, at most p_limit. With
-- p_explain, the plan instead (one line a row in `plan`).
CREATE FUNCTION lookup_names(p_table text, p_name text, p_min_similarity float8, p_limit int,
  p_explain boolean DEFAULT false)
RETURNS TABLE (id uuid, name text, normalized_name text, similarity float8, plan text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  statement text;
BEGIN
  IF p_table NOT IN ('speakers', 'companies', 'topics') THEN
    RAISE EXCEPTION 'lookup_names: unknown table %', p_table USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF current_org_id() IS NULL OR p_limit < 1 THEN
    RETURN;
  END IF;
  -- `%` compares against this threshold; transaction-local, like the SET LOCAL it replaces.
  PERFORM set_config('pg_trgm.similarity_threshold', p_min_similarity::text, true);
  statement := format($sql$
    SELECT t.id, t.name, t.normalized_name, similarity(t.normalized_name, normalize_name($1))::float8 AS sim,
           NULL::text
    FROM %I t
    WHERE t.org_id = current_org_id() AND t.normalized_name %% normalize_name($1)
    ORDER BY sim DESC, t.id LIMIT $2
  $sql$, p_table);
  IF p_explain THEN
    FOR plan IN EXECUTE 'EXPLAIN ' || statement USING p_name, p_limit LOOP
      RETURN NEXT;
    END LOOP;
    RETURN;
  END IF;
  RETURN QUERY EXECUTE statement USING p_name, p_limit;
END
$fn$;

ALTER FUNCTION search_events_text_sql(boolean, boolean, boolean, boolean, boolean, boolean, boolean, boolean, boolean)
  OWNER TO eventdata_searcher;
ALTER FUNCTION search_events_text(text, float8, uuid, int, timestamptz, timestamptz, text, text, text, uuid, uuid, uuid, boolean)
  OWNER TO eventdata_searcher;
ALTER FUNCTION lookup_names(text, text, float8, int, boolean) OWNER TO eventdata_searcher;
REVOKE ALL ON FUNCTION
  search_events_text_sql(boolean, boolean, boolean, boolean, boolean, boolean, boolean, boolean, boolean),
  search_events_text(text, float8, uuid, int, timestamptz, timestamptz, text, text, text, uuid, uuid, uuid, boolean),
  lookup_names(text, text, float8, int, boolean)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  search_events_text(text, float8, uuid, int, timestamptz, timestamptz, text, text, text, uuid, uuid, uuid, boolean),
  lookup_names(text, text, float8, int, boolean)
  TO eventdata_runtime;
