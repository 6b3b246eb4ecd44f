-- The count triggers as migration 0003 made them: one generic function with dynamic SQL.

DROP TRIGGER event_speakers_counted_insert ON event_speakers;
DROP TRIGGER event_speakers_counted_delete ON event_speakers;
DROP TRIGGER event_companies_counted_insert ON event_companies;
DROP TRIGGER event_companies_counted_delete ON event_companies;
DROP TRIGGER event_topics_counted_insert ON event_topics;
DROP TRIGGER event_topics_counted_delete ON event_topics;
DROP TRIGGER media_counted_insert ON media;
DROP TRIGGER media_counted_delete ON media;
DROP TRIGGER speakers_employer_counted_insert ON speakers;
DROP TRIGGER speakers_employer_counted_delete ON speakers;

CREATE FUNCTION count_relations() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  source text := CASE TG_OP WHEN 'INSERT' THEN 'changed_new' ELSE 'changed_old' END;
  delta int := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
  i int := 0;
BEGIN
  WHILE i < TG_NARGS LOOP
    -- Lock the target rows in id order first: two statements counting into overlapping rows (a popular
    -- speaker) then wait for each other instead of deadlocking. NO KEY UPDATE is what the UPDATE takes anyway,
    -- and it does not conflict with the KEY SHARE locks of foreign-key checks.
    EXECUTE format(
      'SELECT count(*) FROM (SELECT 1 FROM %1$I t WHERE t.id IN (SELECT %3$I FROM %2$I) ORDER BY t.id FOR NO KEY UPDATE) l',
      TG_ARGV[i], source, TG_ARGV[i + 2]);
    EXECUTE format(
      'UPDATE %1$I t SET %2$I = t.%2$I + d.n * %5$s
       FROM (SELECT %4$I AS k, count(*) AS n FROM %3$I WHERE %4$I IS NOT NULL GROUP BY 1 ORDER BY 1) d
       WHERE t.id = d.k',
      TG_ARGV[i], TG_ARGV[i + 1], source, TG_ARGV[i + 2], delta);
    i := i + 3;
  END LOOP;
  RETURN NULL;
END
$$;

CREATE TRIGGER event_speakers_counted_insert AFTER INSERT ON event_speakers REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'speaker_count', 'event_id', 'speakers', 'event_count', 'speaker_id');
CREATE TRIGGER event_speakers_counted_delete AFTER DELETE ON event_speakers REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'speaker_count', 'event_id', 'speakers', 'event_count', 'speaker_id');
CREATE TRIGGER event_companies_counted_insert AFTER INSERT ON event_companies REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'company_count', 'event_id', 'companies', 'event_count', 'company_id');
CREATE TRIGGER event_companies_counted_delete AFTER DELETE ON event_companies REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'company_count', 'event_id', 'companies', 'event_count', 'company_id');
CREATE TRIGGER event_topics_counted_insert AFTER INSERT ON event_topics REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'topic_count', 'event_id');
CREATE TRIGGER event_topics_counted_delete AFTER DELETE ON event_topics REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'topic_count', 'event_id');
CREATE TRIGGER media_counted_insert AFTER INSERT ON media REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'media_count', 'event_id');
CREATE TRIGGER media_counted_delete AFTER DELETE ON media REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('events', 'media_count', 'event_id');
-- Employees: a speaker's company_id is set on insert, changed on update, dropped on delete.
CREATE TRIGGER speakers_employer_counted_insert AFTER INSERT ON speakers REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('companies', 'employee_count', 'company_id');
CREATE TRIGGER speakers_employer_counted_delete AFTER DELETE ON speakers REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_relations('companies', 'employee_count', 'company_id');

DROP FUNCTION count_event_speakers(), count_event_companies(), count_event_topics(), count_media(), count_employees();
DROP FUNCTION event_counts_preset();
