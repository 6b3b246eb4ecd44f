-- Relation counts in static SQL, and a bulk load that sets events' counts itself (docs/performance.md, "Write
-- path").
--
-- Measured with scripts/profile-writes.sh (16 clients): AddEventSpeaker's statement ran 597 tps with the count
-- triggers of migration 0003 and 3,173 without them. Those triggers were one generic function that built its
-- statements with format() and EXECUTE on every call, so each relation add parsed and planned four statements
-- afresh. Here each relation table has its own trigger function with static statements, which PL/pgSQL plans once
-- per session and then reuses; what they do is unchanged: one aggregated UPDATE per counted table per statement,
-- after locking the target rows in id order (two statements counting into the same popular speaker wait for each
-- other instead of deadlocking; NO KEY UPDATE does not conflict with the KEY SHARE locks of foreign-key checks).
--
-- A bulk load may set events' counts itself: `eventdata seed` inserts each event with the counts of the relations
-- it loads in the same transaction and sets eventdata.event_counts_preset = on (transaction-local), so the
-- triggers leave those events alone instead of rewriting every event row just inserted once per relation table
-- (not a HOT update: the counts move the indexed quality score, so every index of events took a new entry each
-- time). Speakers' and companies' counts are still kept here. The setting is heeded only for a member of the
-- events table owner's role: the runtime roles may set any custom setting, and for them counts are always kept.

CREATE FUNCTION event_counts_preset() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('eventdata.event_counts_preset', true), '') = 'on'
     AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'events'::regclass), 'USAGE')
$$;

CREATE FUNCTION count_event_speakers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NOT event_counts_preset() THEN
      PERFORM 1 FROM (SELECT 1 FROM events t WHERE t.id IN (SELECT event_id FROM changed_new) ORDER BY t.id FOR NO KEY UPDATE) l;
      UPDATE events t SET speaker_count = t.speaker_count + d.n
        FROM (SELECT event_id AS k, count(*) AS n FROM changed_new WHERE event_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
    END IF;
    PERFORM 1 FROM (SELECT 1 FROM speakers t WHERE t.id IN (SELECT speaker_id FROM changed_new) ORDER BY t.id FOR NO KEY UPDATE) l;
    UPDATE speakers t SET event_count = t.event_count + d.n
      FROM (SELECT speaker_id AS k, count(*) AS n FROM changed_new WHERE speaker_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
  ELSE
    PERFORM 1 FROM (SELECT 1 FROM events t WHERE t.id IN (SELECT event_id FROM changed_old) ORDER BY t.id FOR NO KEY UPDATE) l;
    UPDATE events t SET speaker_count = t.speaker_count - d.n
      FROM (SELECT event_id AS k, count(*) AS n FROM changed_old WHERE event_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
    PERFORM 1 FROM (SELECT 1 FROM speakers t WHERE t.id IN (SELECT speaker_id FROM changed_old) ORDER BY t.id FOR NO KEY UPDATE) l;
    UPDATE speakers t SET event_count = t.event_count - d.n
      FROM (SELECT speaker_id AS k, count(*) AS n FROM changed_old WHERE speaker_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION count_event_companies() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NOT event_counts_preset() THEN
      PERFORM 1 FROM (SELECT 1 FROM events t WHERE t.id IN (SELECT event_id FROM changed_new) ORDER BY t.id FOR NO KEY UPDATE) l;
      UPDATE events t SET company_count = t.company_count + d.n
        FROM (SELECT event_id AS k, count(*) AS n FROM changed_new WHERE event_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
    END IF;
    PERFORM 1 FROM (SELECT 1 FROM companies t WHERE t.id IN (SELECT company_id FROM changed_new) ORDER BY t.id FOR NO KEY UPDATE) l;
    UPDATE companies t SET event_count = t.event_count + d.n
      FROM (SELECT company_id AS k, count(*) AS n FROM changed_new WHERE company_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
  ELSE
    PERFORM 1 FROM (SELECT 1 FROM events t WHERE t.id IN (SELECT event_id FROM changed_old) ORDER BY t.id FOR NO KEY UPDATE) l;
    UPDATE events t SET company_count = t.company_count - d.n
      FROM (SELECT event_id AS k, count(*) AS n FROM changed_old WHERE event_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
    PERFORM 1 FROM (SELECT 1 FROM companies t WHERE t.id IN (SELECT company_id FROM changed_old) ORDER BY t.id FOR NO KEY UPDATE) l;
    UPDATE companies t SET event_count = t.event_count - d.n
      FROM (SELECT company_id AS k, count(*) AS n FROM changed_old WHERE company_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION count_event_topics() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NOT event_counts_preset() THEN
      PERFORM 1 FROM (SELECT 1 FROM events t WHERE t.id IN (SELECT event_id FROM changed_new) ORDER BY t.id FOR NO KEY UPDATE) l;
      UPDATE events t SET topic_count = t.topic_count + d.n
        FROM (SELECT event_id AS k, count(*) AS n FROM changed_new WHERE event_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
    END IF;
  ELSE
    PERFORM 1 FROM (SELECT 1 FROM events t WHERE t.id IN (SELECT event_id FROM changed_old) ORDER BY t.id FOR NO KEY UPDATE) l;
    UPDATE events t SET topic_count = t.topic_count - d.n
      FROM (SELECT event_id AS k, count(*) AS n FROM changed_old WHERE event_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION count_media() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NOT event_counts_preset() THEN
      PERFORM 1 FROM (SELECT 1 FROM events t WHERE t.id IN (SELECT event_id FROM changed_new) ORDER BY t.id FOR NO KEY UPDATE) l;
      UPDATE events t SET media_count = t.media_count + d.n
        FROM (SELECT event_id AS k, count(*) AS n FROM changed_new WHERE event_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
    END IF;
  ELSE
    PERFORM 1 FROM (SELECT 1 FROM events t WHERE t.id IN (SELECT event_id FROM changed_old) ORDER BY t.id FOR NO KEY UPDATE) l;
    UPDATE events t SET media_count = t.media_count - d.n
      FROM (SELECT event_id AS k, count(*) AS n FROM changed_old WHERE event_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION count_employees() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM 1 FROM (SELECT 1 FROM companies t WHERE t.id IN (SELECT company_id FROM changed_new) ORDER BY t.id FOR NO KEY UPDATE) l;
    UPDATE companies t SET employee_count = t.employee_count + d.n
      FROM (SELECT company_id AS k, count(*) AS n FROM changed_new WHERE company_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
  ELSE
    PERFORM 1 FROM (SELECT 1 FROM companies t WHERE t.id IN (SELECT company_id FROM changed_old) ORDER BY t.id FOR NO KEY UPDATE) l;
    UPDATE companies t SET employee_count = t.employee_count - d.n
      FROM (SELECT company_id AS k, count(*) AS n FROM changed_old WHERE company_id IS NOT NULL GROUP BY 1) d WHERE t.id = d.k;
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER event_speakers_counted_insert ON event_speakers;
DROP TRIGGER event_speakers_counted_delete ON event_speakers;
CREATE TRIGGER event_speakers_counted_insert AFTER INSERT ON event_speakers REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_event_speakers();
CREATE TRIGGER event_speakers_counted_delete AFTER DELETE ON event_speakers REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_event_speakers();
DROP TRIGGER event_companies_counted_insert ON event_companies;
DROP TRIGGER event_companies_counted_delete ON event_companies;
CREATE TRIGGER event_companies_counted_insert AFTER INSERT ON event_companies REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_event_companies();
CREATE TRIGGER event_companies_counted_delete AFTER DELETE ON event_companies REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_event_companies();
DROP TRIGGER event_topics_counted_insert ON event_topics;
DROP TRIGGER event_topics_counted_delete ON event_topics;
CREATE TRIGGER event_topics_counted_insert AFTER INSERT ON event_topics REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_event_topics();
CREATE TRIGGER event_topics_counted_delete AFTER DELETE ON event_topics REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_event_topics();
DROP TRIGGER media_counted_insert ON media;
DROP TRIGGER media_counted_delete ON media;
CREATE TRIGGER media_counted_insert AFTER INSERT ON media REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_media();
CREATE TRIGGER media_counted_delete AFTER DELETE ON media REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_media();
DROP TRIGGER speakers_employer_counted_insert ON speakers;
DROP TRIGGER speakers_employer_counted_delete ON speakers;
CREATE TRIGGER speakers_employer_counted_insert AFTER INSERT ON speakers REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION count_employees();
CREATE TRIGGER speakers_employer_counted_delete AFTER DELETE ON speakers REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION count_employees();

DROP FUNCTION count_relations();
