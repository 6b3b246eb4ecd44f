-- lookup_names as migration 0005 made it: one query at the caller's threshold.

CREATE OR REPLACE FUNCTION lookup_names(p_table text, p_name text, p_min_similarity float8, p_limit int,
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
