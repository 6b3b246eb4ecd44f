-- Full text that reads what it returns (docs/search.md, "Full text" and "Hybrid search"):
-- hybrid search's candidates in RUM's order without the tie-break that paging needs, and the paged search on RUM's
-- ordered scan whatever the estimates say when no filter is set.
--
-- `search_events_text` orders by (distance, id) so that a page token (distance, id) continues exactly where the
-- page ended. RUM returns matches by distance only, so the tie-break is an incremental sort that must read every
-- match sharing the distance of the last row of the page: on the seeded data, 1,000-1,500 rows for half of the
-- benchmark's words, each a heap fetch, where the page itself is 21 rows. Hybrid search does not page: it fuses
-- the positions of its best `limit` text matches with the vector list's, so any `limit` matches of the smallest
-- distances are as good as any other. `search_events_text_candidates` returns those straight from the RUM scan
-- (`LIMIT` on the ordered scan, no tie-break), exact-name matches first as before, then sorts that short list by
-- (distance, id). Same SECURITY DEFINER pattern as migration 0005: owned by eventdata_searcher, adds
-- `org_id = current_org_id()` itself, nothing without an organization, executable by the runtime role only.

-- The filter conditions of both text statements, written once: $5.. are the filters in the order of
-- search_events_text's parameters.
CREATE FUNCTION search_events_filters_sql(
  p_start_from boolean, p_start_before boolean, p_status boolean, p_city boolean, p_country boolean,
  p_topic boolean, p_speaker boolean, p_company boolean)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, public
AS $fn$
  SELECT concat(
    CASE WHEN p_start_from THEN ' AND t.starts_at IS NOT NULL AND t.sort_start >= $5' END,
    CASE WHEN p_start_before THEN ' AND t.sort_start < $6' END,
    CASE WHEN p_status THEN ' AND t.status = $7' END,
    CASE WHEN p_city THEN ' AND t.city = $8' END,
    CASE WHEN p_country THEN ' AND t.country = $9' END,
    CASE WHEN p_topic THEN ' AND EXISTS (SELECT FROM event_topics x WHERE x.event_id = t.id AND x.topic_id = $10)' END,
    CASE WHEN p_speaker THEN ' AND EXISTS (SELECT FROM event_speakers x WHERE x.event_id = t.id AND x.speaker_id = $11)' END,
    CASE WHEN p_company THEN ' AND EXISTS (SELECT FROM event_companies x WHERE x.event_id = t.id AND x.company_id = $12)' END)
$fn$;

-- The paged statement, as migration 0005 wrote it, with its filters from the function above.
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
  search_events_filters_sql(p_start_from, p_start_before, p_status, p_city, p_country, p_topic, p_speaker,
    p_company),
  CASE WHEN p_after THEN ' WHERE (h.distance, h.id) > ($2::float4, $3)' ELSE '' END)
$fn$;

-- The paged search keeps RUM's ordered scan for an unfiltered query whatever the estimates say.
CREATE OR REPLACE FUNCTION search_events_text(
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
-- Set here so that the set_config below ends with the function; jit off, because a plan priced with a sort turned
-- off costs billions, far above jit_above_cost, and compiling it would take longer than running it.
SET enable_sort = on
SET jit = off
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
  -- The ranked branch is a subquery ordered by distance alone (RUM orders by nothing else), tie-broken by id
  -- above it, so the planner prices that subquery for all its rows: for a word in 11,000 events, reading the
  -- organization's rows and sorting them all beat the ordered scan on estimates by 2% and took 70 ms against
  -- 4 ms. Without filters the ordered scan is always the plan to want; with a selective filter, reading the
  -- filter's rows and sorting them may well be cheaper, so the planner keeps the choice there.
  IF num_nonnulls(p_start_from, p_start_before, p_status, p_city, p_country, p_topic_id, p_speaker_id,
                  p_company_id) = 0 THEN
    PERFORM set_config('enable_sort', 'off', true);
  END IF;
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

-- At most p_limit events matching `p_query` in the caller's organization with the smallest distances, best first:
-- exact-name matches (distance 0) first, then the first rows of RUM's ordered scan; ties at the last distance are
-- cut where the scan cuts them. Parameters and result as search_events_text's, without the cursor.
CREATE FUNCTION search_events_text_candidates(
  p_query text, p_limit int,
  p_start_from timestamptz, p_start_before timestamptz, p_status text, p_city text, p_country text,
  p_topic_id uuid, p_speaker_id uuid, p_company_id uuid, p_explain boolean DEFAULT false)
RETURNS TABLE (id uuid, distance float8, plan text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public
-- As for search_events_text: the ordered RUM scan is the point; the planner prices it above reading every match.
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $fn$
DECLARE
  statement text;
BEGIN
  IF current_org_id() IS NULL OR p_limit < 1 THEN
    RETURN;
  END IF;
  statement := format($sql$
    SELECT h.id, h.distance::float8 FROM (
      (SELECT t.id, 0::float4 AS distance FROM events t
        WHERE t.org_id = current_org_id() AND t.name_lower = lower(btrim($1))
          AND t.search @@ websearch_to_tsquery('english', $1) %1$s
        ORDER BY t.id LIMIT $4)
      UNION ALL
      (SELECT t.id, t.search <=> websearch_to_tsquery('english', $1) AS distance FROM events t
        WHERE t.org_id = current_org_id() AND t.search @@ websearch_to_tsquery('english', $1)
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
            p_topic_id, p_speaker_id, p_company_id
    LOOP
      RETURN NEXT;
    END LOOP;
    RETURN;
  END IF;
  RETURN QUERY EXECUTE 'SELECT s.id, s.distance, NULL::text FROM (' || statement || ') s'
    USING p_query, NULL::float8, NULL::uuid, p_limit, p_start_from, p_start_before, p_status, p_city, p_country,
          p_topic_id, p_speaker_id, p_company_id;
END
$fn$;

ALTER FUNCTION search_events_filters_sql(boolean, boolean, boolean, boolean, boolean, boolean, boolean, boolean)
  OWNER TO eventdata_searcher;
ALTER FUNCTION search_events_text_candidates(text, int, timestamptz, timestamptz, text, text, text, uuid, uuid, uuid,
  boolean) OWNER TO eventdata_searcher;
REVOKE ALL ON FUNCTION
  search_events_filters_sql(boolean, boolean, boolean, boolean, boolean, boolean, boolean, boolean),
  search_events_text_candidates(text, int, timestamptz, timestamptz, text, text, text, uuid, uuid, uuid, boolean)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  search_events_text_candidates(text, int, timestamptz, timestamptz, text, text, text, uuid, uuid, uuid, boolean)
  TO eventdata_runtime;
