-- Back to migrations 0015 and 0014: every search builds its statement and plans it on every call (EXECUTE).

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
AS $fn$
DECLARE
  org uuid := current_org_id();
  skip uuid[] := coalesce(p_after_skip, '{}');
  statement text;
BEGIN
  IF org IS NULL OR p_limit < 1 THEN
    RETURN;
  END IF;
  -- A cursor is a distance with an id, ids to skip at that distance, or both.
  statement := search_events_text_sql(p_after_distance IS NOT NULL, p_start_from IS NOT NULL,
    p_start_before IS NOT NULL, p_status IS NOT NULL, p_city IS NOT NULL, p_country IS NOT NULL,
    p_topic_id IS NOT NULL, p_speaker_id IS NOT NULL, p_company_id IS NOT NULL);
  -- Without filters the ordered scan is always the plan to want (migration 0012).
  IF num_nonnulls(p_start_from, p_start_before, p_status, p_city, p_country, p_topic_id, p_speaker_id,
                  p_company_id) = 0 THEN
    PERFORM set_config('enable_sort', 'off', true);
  END IF;
  IF p_explain THEN
    FOR plan IN EXECUTE 'EXPLAIN ' || statement
      USING p_query, p_after_distance, coalesce(p_after_id, '00000000-0000-0000-0000-000000000000'), p_limit,
            p_start_from, p_start_before, p_status, p_city, p_country, p_topic_id, p_speaker_id, p_company_id, org,
            skip
    LOOP
      RETURN NEXT;
    END LOOP;
    RETURN;
  END IF;
  RETURN QUERY EXECUTE 'SELECT s.id, s.distance, NULL::text FROM (' || statement || ') s'
    USING p_query, p_after_distance, coalesce(p_after_id, '00000000-0000-0000-0000-000000000000'), p_limit,
          p_start_from, p_start_before, p_status, p_city, p_country, p_topic_id, p_speaker_id, p_company_id, org,
          skip;
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
AS $fn$
DECLARE
  org uuid := current_org_id();
  statement text;
BEGIN
  IF org IS NULL OR p_limit < 1 THEN
    RETURN;
  END IF;
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
