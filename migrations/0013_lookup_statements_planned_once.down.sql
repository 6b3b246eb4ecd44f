-- lookup_names as migration 0006 made it: each step a dynamic statement, planned on every call.

CREATE OR REPLACE FUNCTION lookup_names(p_table text, p_name text, p_min_similarity float8, p_limit int,
  p_explain boolean DEFAULT false)
RETURNS TABLE (id uuid, name text, normalized_name text, similarity float8, plan text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  statement text;
  thresholds float8[];
  threshold float8;
  above float8 := 'Infinity';
  missing int := p_limit;
  got int;
BEGIN
  IF p_table NOT IN ('speakers', 'companies', 'topics') THEN
    RAISE EXCEPTION 'lookup_names: unknown table %', p_table USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF current_org_id() IS NULL OR p_limit < 1 THEN
    RETURN;
  END IF;
  thresholds := ARRAY(SELECT s FROM unnest(ARRAY[0.6, 0.45]::float8[]) s WHERE s > p_min_similarity)
    || p_min_similarity;
  -- $3: names strictly below the previous step's threshold (the previous steps returned every name above it).
  statement := format($sql$
    SELECT t.id, t.name, t.normalized_name, similarity(t.normalized_name, normalize_name($1))::float8 AS sim,
           NULL::text
    FROM %I t
    WHERE t.org_id = current_org_id() AND t.normalized_name %% normalize_name($1)
      AND similarity(t.normalized_name, normalize_name($1)) < $3
    ORDER BY sim DESC, t.id LIMIT $2
  $sql$, p_table);
  FOREACH threshold IN ARRAY thresholds LOOP
    -- `%` compares against this threshold; transaction-local, like the SET LOCAL it replaces.
    PERFORM set_config('pg_trgm.similarity_threshold', threshold::text, true);
    IF p_explain THEN
      -- The plan of the first step (every step runs the same statement).
      FOR plan IN EXECUTE 'EXPLAIN ' || statement USING p_name, missing, above LOOP
        RETURN NEXT;
      END LOOP;
      RETURN;
    END IF;
    RETURN QUERY EXECUTE statement USING p_name, missing, above;
    GET DIAGNOSTICS got = ROW_COUNT;
    missing := missing - got;
    EXIT WHEN missing <= 0;
    above := threshold;
  END LOOP;
END
$fn$;
