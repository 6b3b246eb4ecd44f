-- Back to migration 0012: the statements read the organization with current_org_id() on every row.

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

CREATE OR REPLACE FUNCTION search_events_text_candidates(
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

