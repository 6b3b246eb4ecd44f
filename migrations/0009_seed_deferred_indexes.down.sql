-- Builds any index a load left deferred, then drops the table that remembered them.
DO $$
DECLARE
  deferred record;
BEGIN
  FOR deferred IN SELECT name, definition FROM seed_deferred_indexes LOOP
    IF to_regclass(deferred.name) IS NULL THEN
      EXECUTE deferred.definition;
    END IF;
  END LOOP;
END
$$;
DROP TABLE seed_deferred_indexes;
