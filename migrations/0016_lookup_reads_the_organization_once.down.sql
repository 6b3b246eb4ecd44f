-- Back to migration 0013: each step reads the organization with current_org_id() on every candidate.

CREATE OR REPLACE FUNCTION lookup_names(p_table text, p_name text, p_min_similarity float8, p_limit int,
  p_explain boolean DEFAULT false)
RETURNS TABLE (id uuid, name text, normalized_name text, similarity float8, plan text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  wanted text := normalize_name(p_name);
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
  IF p_explain THEN
    -- The generic plan of the first step's statement (every step runs the same one), as the cached copies below
    -- run it. Keep this text and theirs the same.
    PERFORM set_config('pg_trgm.similarity_threshold', thresholds[1]::text, true);
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    IF EXISTS (SELECT FROM pg_prepared_statements p WHERE p.name = 'lookup_names_explained') THEN
      DEALLOCATE lookup_names_explained;
    END IF;
    EXECUTE format($sql$
      PREPARE lookup_names_explained(text, float8, int) AS
      SELECT t.id, t.name, t.normalized_name, similarity(t.normalized_name, $1)::float8, NULL::text
      FROM %I t
      WHERE t.org_id = current_org_id() AND t.normalized_name %% $1 AND similarity(t.normalized_name, $1) < $2
      ORDER BY 4 DESC, t.id LIMIT $3
    $sql$, p_table);
    -- A utility statement takes no parameters: the values go in as literals (the generic plan does not read them).
    FOR plan IN EXECUTE format('EXPLAIN EXECUTE lookup_names_explained(%L, %L, %L)', wanted, above, missing) LOOP
      RETURN NEXT;
    END LOOP;
    DEALLOCATE lookup_names_explained;
    PERFORM set_config('plan_cache_mode', 'auto', true);
    RETURN;
  END IF;
  FOREACH threshold IN ARRAY thresholds LOOP
    -- `%` compares against this threshold; transaction-local, like the SET LOCAL it replaces.
    PERFORM set_config('pg_trgm.similarity_threshold', threshold::text, true);
    -- Names strictly below the previous step's threshold (the previous steps returned every name above it).
    IF p_table = 'speakers' THEN
      RETURN QUERY
        SELECT t.id, t.name, t.normalized_name, similarity(t.normalized_name, wanted)::float8, NULL::text
        FROM speakers t
        WHERE t.org_id = current_org_id() AND t.normalized_name % wanted AND similarity(t.normalized_name, wanted) < above
        ORDER BY 4 DESC, t.id LIMIT missing;
    ELSIF p_table = 'companies' THEN
      RETURN QUERY
        SELECT t.id, t.name, t.normalized_name, similarity(t.normalized_name, wanted)::float8, NULL::text
        FROM companies t
        WHERE t.org_id = current_org_id() AND t.normalized_name % wanted AND similarity(t.normalized_name, wanted) < above
        ORDER BY 4 DESC, t.id LIMIT missing;
    ELSE
      RETURN QUERY
        SELECT t.id, t.name, t.normalized_name, similarity(t.normalized_name, wanted)::float8, NULL::text
        FROM topics t
        WHERE t.org_id = current_org_id() AND t.normalized_name % wanted AND similarity(t.normalized_name, wanted) < above
        ORDER BY 4 DESC, t.id LIMIT missing;
    END IF;
    GET DIAGNOSTICS got = ROW_COUNT;
    missing := missing - got;
    EXIT WHEN missing <= 0;
    above := threshold;
  END LOOP;
END
$fn$;
