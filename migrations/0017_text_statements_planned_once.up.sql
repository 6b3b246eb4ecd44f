-- Full text without filters runs statements planned once per session (docs/search.md, "Full text").
--
-- search_events_text (migration 0015) and search_events_text_candidates (hybrid search's text list, migration
-- 0014) built its statement with format() and ran it with EXECUTE, which PL/pgSQL
-- parses and plans on every call; planning a RUM scan includes the index's cost estimate, which extracts the
-- query's lexemes and reads the index. pgbench, runtime role, 2 clients, the load generator's words: the function's
-- first page 636-654 calls/s against 877 for RUM's first 21 ids alone (docs/performance.md). Searches without
-- filters (most of them, and every one of the benchmark) now run static statements (the first page, a page after a
-- cursor, hybrid's candidates), whose plans PL/pgSQL caches; `plan_cache_mode = force_generic_plan` makes it plan each
-- once per session instead of five custom plans and a cost comparison. Their generic plans are the plans the
-- dynamic statement had: the exact-name branch on the organization's name index, RUM's ordered scan for the rest
-- (sorts are off without filters, as before). Searches with filters keep the dynamic statement: which filters are
-- set picks its shape, and the values matter to the plan. The candidates' function also turns JIT off, as the paged
-- one does since migration 0012: a plan's cost must never make a search compile code. The answer is unchanged.
--
-- The EXPLAIN path (p_explain, for the plan tests) explains the generic plan of the first page's (or the
-- candidates') statement, prepared under the function owner, as the cached statement runs it. Keep its text and
-- the static one the same.

CREATE OR REPLACE FUNCTION search_events_text(
  p_query text, p_after_distance float8, p_after_id uuid, p_limit int,
  p_start_from timestamptz, p_start_before timestamptz, p_status text, p_city text, p_country text,
  p_topic_id uuid, p_speaker_id uuid, p_company_id uuid, p_explain boolean DEFAULT false,
  p_after_skip uuid[] DEFAULT NULL)
RETURNS TABLE (id uuid, distance float8, plan text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public
-- Settings as migration 0012 gave them, for the reasons given there: RUM's ordered scan is the plan to want.
SET enable_bitmapscan = off
SET enable_seqscan = off
SET enable_sort = on
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
  org uuid := current_org_id();
  skip uuid[] := coalesce(p_after_skip, '{}');
  after_distance float4 := p_after_distance;
  after_id uuid := coalesce(p_after_id, '00000000-0000-0000-0000-000000000000');
  statement text;
BEGIN
  IF org IS NULL OR p_limit < 1 THEN
    RETURN;
  END IF;
  IF num_nonnulls(p_start_from, p_start_before, p_status, p_city, p_country, p_topic_id, p_speaker_id,
                  p_company_id) = 0 THEN
    -- Without filters the ordered scan is always the plan to want (migration 0012).
    PERFORM set_config('enable_sort', 'off', true);
    IF p_explain THEN
      IF EXISTS (SELECT FROM pg_prepared_statements p WHERE p.name = 'search_events_text_explained') THEN
        DEALLOCATE search_events_text_explained;
      END IF;
      EXECUTE $sql$
        PREPARE search_events_text_explained(text, int, uuid) AS
          SELECT h.id, h.distance::float8, NULL::text FROM (
            (SELECT t.id, 0::float4 AS distance FROM events t
              WHERE t.org_id = $3 AND t.name_lower = lower(btrim($1))
                AND t.search @@ websearch_to_tsquery('english', $1))
            UNION ALL
            (SELECT t.id, t.search <=> websearch_to_tsquery('english', $1) AS distance FROM events t
              WHERE t.org_id = $3 AND t.search @@ websearch_to_tsquery('english', $1)
                AND t.name_lower <> lower(btrim($1))
              ORDER BY t.search <=> websearch_to_tsquery('english', $1) LIMIT $2)
          ) h
          ORDER BY h.distance, h.id LIMIT $2
      $sql$;
      -- A utility statement takes no parameters: the values go in as literals (the generic plan does not read them).
      FOR plan IN EXECUTE format('EXPLAIN EXECUTE search_events_text_explained(%L, %L, %L)', p_query, p_limit, org)
      LOOP
        RETURN NEXT;
      END LOOP;
      DEALLOCATE search_events_text_explained;
      RETURN;
    END IF;
    IF p_after_distance IS NULL THEN
      -- The first page: the exact name, and RUM's first rows (migration 0015).
      RETURN QUERY
        SELECT h.id, h.distance::float8, NULL::text FROM (
          (SELECT t.id, 0::float4 AS distance FROM events t
            WHERE t.org_id = org AND t.name_lower = lower(btrim(p_query))
              AND t.search @@ websearch_to_tsquery('english', p_query))
          UNION ALL
          (SELECT t.id, t.search <=> websearch_to_tsquery('english', p_query) AS distance FROM events t
            WHERE t.org_id = org AND t.search @@ websearch_to_tsquery('english', p_query)
              AND t.name_lower <> lower(btrim(p_query))
            ORDER BY t.search <=> websearch_to_tsquery('english', p_query) LIMIT p_limit)
        ) h
        ORDER BY h.distance, h.id LIMIT p_limit;
    ELSE
      -- After a cursor: the matches in (distance, id) order past it, the tie at its distance read in full.
      RETURN QUERY
        SELECT h.id, h.distance::float8, NULL::text FROM (
          (SELECT t.id, 0::float4 AS distance FROM events t
            WHERE t.org_id = org AND t.name_lower = lower(btrim(p_query))
              AND t.search @@ websearch_to_tsquery('english', p_query))
          UNION ALL
          (SELECT r.id, r.distance FROM (
              SELECT t.id, t.search <=> websearch_to_tsquery('english', p_query) AS distance FROM events t
              WHERE t.org_id = org AND t.search @@ websearch_to_tsquery('english', p_query)
                AND t.name_lower <> lower(btrim(p_query))
              ORDER BY t.search <=> websearch_to_tsquery('english', p_query)) r
            WHERE (r.distance, r.id) > (after_distance, after_id)
              AND NOT (r.distance = after_distance AND r.id = ANY (skip))
            ORDER BY r.distance, r.id LIMIT p_limit)
        ) h
        WHERE (h.distance, h.id) > (after_distance, after_id) AND NOT (h.distance = after_distance AND h.id = ANY (skip))
        ORDER BY h.distance, h.id LIMIT p_limit;
    END IF;
    RETURN;
  END IF;
  -- With filters: the statement of the filters set, planned for their values (migration 0015).
  statement := search_events_text_sql(p_after_distance IS NOT NULL, p_start_from IS NOT NULL,
    p_start_before IS NOT NULL, p_status IS NOT NULL, p_city IS NOT NULL, p_country IS NOT NULL,
    p_topic_id IS NOT NULL, p_speaker_id IS NOT NULL, p_company_id IS NOT NULL);
  IF p_explain THEN
    FOR plan IN EXECUTE 'EXPLAIN ' || statement
      USING p_query, p_after_distance, after_id, p_limit, p_start_from, p_start_before, p_status, p_city, p_country,
            p_topic_id, p_speaker_id, p_company_id, org, skip
    LOOP
      RETURN NEXT;
    END LOOP;
    RETURN;
  END IF;
  RETURN QUERY EXECUTE 'SELECT s.id, s.distance, NULL::text FROM (' || statement || ') s'
    USING p_query, p_after_distance, after_id, p_limit, p_start_from, p_start_before, p_status, p_city, p_country,
          p_topic_id, p_speaker_id, p_company_id, org, skip;
END
$fn$;

CREATE OR REPLACE FUNCTION search_events_text_candidates(
  p_query text, p_limit int,
  p_start_from timestamptz, p_start_before timestamptz, p_status text, p_city text, p_country text,
  p_topic_id uuid, p_speaker_id uuid, p_company_id uuid, p_explain boolean DEFAULT false)
RETURNS TABLE (id uuid, distance float8, plan text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public
SET enable_bitmapscan = off
SET enable_seqscan = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
  org uuid := current_org_id();
  statement text;
BEGIN
  IF org IS NULL OR p_limit < 1 THEN
    RETURN;
  END IF;
  IF num_nonnulls(p_start_from, p_start_before, p_status, p_city, p_country, p_topic_id, p_speaker_id,
                  p_company_id) = 0 THEN
    IF p_explain THEN
      IF EXISTS (SELECT FROM pg_prepared_statements p WHERE p.name = 'search_events_text_candidates_explained') THEN
        DEALLOCATE search_events_text_candidates_explained;
      END IF;
      EXECUTE $sql$
        PREPARE search_events_text_candidates_explained(text, int, uuid) AS
          SELECT h.id, h.distance::float8, NULL::text FROM (
            (SELECT t.id, 0::float4 AS distance FROM events t
              WHERE t.org_id = $3 AND t.name_lower = lower(btrim($1))
                AND t.search @@ websearch_to_tsquery('english', $1)
              ORDER BY t.id LIMIT $2)
            UNION ALL
            (SELECT t.id, t.search <=> websearch_to_tsquery('english', $1) AS distance FROM events t
              WHERE t.org_id = $3 AND t.search @@ websearch_to_tsquery('english', $1)
                AND t.name_lower <> lower(btrim($1))
              ORDER BY t.search <=> websearch_to_tsquery('english', $1) LIMIT $2)
          ) h
          ORDER BY h.distance, h.id LIMIT $2
      $sql$;
      FOR plan IN EXECUTE format('EXPLAIN EXECUTE search_events_text_candidates_explained(%L, %L, %L)', p_query,
        p_limit, org)
      LOOP
        RETURN NEXT;
      END LOOP;
      DEALLOCATE search_events_text_candidates_explained;
      RETURN;
    END IF;
    RETURN QUERY
      SELECT h.id, h.distance::float8, NULL::text FROM (
        (SELECT t.id, 0::float4 AS distance FROM events t
          WHERE t.org_id = org AND t.name_lower = lower(btrim(p_query))
            AND t.search @@ websearch_to_tsquery('english', p_query)
          ORDER BY t.id LIMIT p_limit)
        UNION ALL
        (SELECT t.id, t.search <=> websearch_to_tsquery('english', p_query) AS distance FROM events t
          WHERE t.org_id = org AND t.search @@ websearch_to_tsquery('english', p_query)
            AND t.name_lower <> lower(btrim(p_query))
          ORDER BY t.search <=> websearch_to_tsquery('english', p_query) LIMIT p_limit)
      ) h
      ORDER BY h.distance, h.id LIMIT p_limit;
    RETURN;
  END IF;
  -- With filters: the statement of the filters set, planned for their values (migration 0014).
  statement := format($sql$
    SELECT h.id, h.distance::float8 FROM (
      (SELECT t.id, 0::float4 AS distance FROM events t
        WHERE t.org_id = $13 AND t.name_lower = lower(btrim($1))
          AND t.search @@ websearch_to_tsquery('english', $1) %1$s
        ORDER BY t.id LIMIT $4)
      UNION ALL
      (SELECT t.id, t.search <=> websearch_to_tsquery('english', $1) AS distance FROM events t
        WHERE t.org_id = $13 AND t.search @@ websearch_to_tsquery('english', $1)
          AND t.name_lower <> lower(btrim($1)) %1$s
        ORDER BY t.search <=> websearch_to_tsquery('english', $1) LIMIT $4)
    ) h
    ORDER BY h.distance, h.id LIMIT $4
  $sql$,
  search_events_filters_sql(p_start_from IS NOT NULL, p_start_before IS NOT NULL, p_status IS NOT NULL,
    p_city IS NOT NULL, p_country IS NOT NULL, p_topic_id IS NOT NULL, p_speaker_id IS NOT NULL,
    p_company_id IS NOT NULL));
  -- $2 and $3 (the paged statement's cursor) are unused here: NULLs keep the filters' parameter numbers.
  IF p_explain THEN
    FOR plan IN EXECUTE 'EXPLAIN ' || statement
      USING p_query, NULL::float8, NULL::uuid, p_limit, p_start_from, p_start_before, p_status, p_city, p_country,
            p_topic_id, p_speaker_id, p_company_id, org
    LOOP
      RETURN NEXT;
    END LOOP;
    RETURN;
  END IF;
  RETURN QUERY EXECUTE 'SELECT s.id, s.distance, NULL::text FROM (' || statement || ') s'
    USING p_query, NULL::float8, NULL::uuid, p_limit, p_start_from, p_start_before, p_status, p_city, p_country,
          p_topic_id, p_speaker_id, p_company_id, org;
END
$fn$;
