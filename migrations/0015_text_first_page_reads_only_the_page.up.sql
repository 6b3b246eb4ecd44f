-- A first page of full text that reads only the page (docs/search.md, "Full text").
--
-- search_events_text ordered every page by (distance, id), so that a page token (distance, id) continued exactly
-- where the page ended. RUM returns matches by distance only, so the tie-break by id was an incremental sort that
-- read every match sharing the last row's distance: 1,000-1,500 rows for half of the benchmark's words on the
-- seeded data, where the page is 21. pgbench, runtime role, 2 clients, the benchmark's words: the paged statement
-- without a cursor 405-505 calls/s, the same scan stopped at its limit (as hybrid search's candidates, migration
-- 0012) 628 (docs/performance.md).
--
-- Now the first page (no cursor) takes the page's rows straight from RUM's ordered scan (LIMIT on the scan) and
-- sorts them by (distance, id): among matches tied at the page's last distance, the page holds those the scan
-- gave first, not those of the smallest ids. Every match of a smaller distance is on it all the same. So the page
-- token after a first page names the page's rows at its last distance (`p_after_skip`, at most a page of ids) and
-- no id: the next page starts with the other matches of that distance in id order, then goes on by
-- (distance, id) as before. Every match still comes exactly once over the pages. Pages after the first read the
-- tie as before. Same SECURITY DEFINER pattern as migration 0005.

CREATE OR REPLACE FUNCTION search_events_text_sql(
  p_after boolean, p_start_from boolean, p_start_before boolean, p_status boolean, p_city boolean,
  p_country boolean, p_topic boolean, p_speaker boolean, p_company boolean)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, public
AS $fn$
  SELECT format($sql$
    SELECT h.id, h.distance::float8 FROM (
      (SELECT t.id, 0::float4 AS distance FROM events t
        WHERE t.org_id = $13 AND t.name_lower = lower(btrim($1))
          AND t.search @@ websearch_to_tsquery('english', $1) %1$s)
      UNION ALL
      %2$s
    ) h %3$s
    ORDER BY h.distance, h.id LIMIT $4
  $sql$,
  search_events_filters_sql(p_start_from, p_start_before, p_status, p_city, p_country, p_topic, p_speaker,
    p_company),
  CASE WHEN p_after THEN
    -- After a cursor: the matches in (distance, id) order past it, the tie at its distance read in full.
    format($ranked$(SELECT h.id, h.distance FROM (
          SELECT t.id, t.search <=> websearch_to_tsquery('english', $1) AS distance FROM events t
          WHERE t.org_id = $13 AND t.search @@ websearch_to_tsquery('english', $1)
            AND t.name_lower <> lower(btrim($1)) %1$s
          ORDER BY t.search <=> websearch_to_tsquery('english', $1)) h
        WHERE (h.distance, h.id) > ($2::float4, $3) AND NOT (h.distance = $2::float4 AND h.id = ANY ($14))
        ORDER BY h.distance, h.id LIMIT $4)$ranked$,
      search_events_filters_sql(p_start_from, p_start_before, p_status, p_city, p_country, p_topic, p_speaker,
        p_company))
  ELSE
    -- The first page: the scan's first rows.
    format($ranked$(SELECT t.id, t.search <=> websearch_to_tsquery('english', $1) AS distance FROM events t
          WHERE t.org_id = $13 AND t.search @@ websearch_to_tsquery('english', $1)
            AND t.name_lower <> lower(btrim($1)) %1$s
          ORDER BY t.search <=> websearch_to_tsquery('english', $1) LIMIT $4)$ranked$,
      search_events_filters_sql(p_start_from, p_start_before, p_status, p_city, p_country, p_topic, p_speaker,
        p_company))
  END,
  CASE WHEN p_after
    THEN ' WHERE (h.distance, h.id) > ($2::float4, $3) AND NOT (h.distance = $2::float4 AND h.id = ANY ($14))'
    ELSE ''
  END)
$fn$;

-- The cursor's ids at its distance are a new last parameter, so the function is made again (a second signature
-- beside the old one would make calls with the old arguments ambiguous).
DROP FUNCTION search_events_text(text, float8, uuid, int, timestamptz, timestamptz, text, text, text, uuid, uuid,
  uuid, boolean);

CREATE FUNCTION search_events_text(
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

ALTER FUNCTION search_events_text(text, float8, uuid, int, timestamptz, timestamptz, text, text, text, uuid, uuid,
  uuid, boolean, uuid[]) OWNER TO eventdata_searcher;
REVOKE ALL ON FUNCTION search_events_text(text, float8, uuid, int, timestamptz, timestamptz, text, text, text, uuid,
  uuid, uuid, boolean, uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION search_events_text(text, float8, uuid, int, timestamptz, timestamptz, text, text, text,
  uuid, uuid, uuid, boolean, uuid[]) TO eventdata_runtime;
