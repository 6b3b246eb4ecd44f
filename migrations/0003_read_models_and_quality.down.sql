-- Reverses 0003_read_models_and_quality.
DROP VIEW IF EXISTS event_context_v, event_speakers_v, event_topics_v;
DROP TRIGGER IF EXISTS events_quality_crossings ON events;
DROP TRIGGER IF EXISTS speakers_quality_crossings ON speakers;
DROP TRIGGER IF EXISTS companies_quality_crossings ON companies;
DROP FUNCTION IF EXISTS note_quality_crossings();
DROP TRIGGER IF EXISTS event_speakers_counted_insert ON event_speakers;
DROP TRIGGER IF EXISTS event_speakers_counted_delete ON event_speakers;
DROP TRIGGER IF EXISTS event_companies_counted_insert ON event_companies;
DROP TRIGGER IF EXISTS event_companies_counted_delete ON event_companies;
DROP TRIGGER IF EXISTS event_topics_counted_insert ON event_topics;
DROP TRIGGER IF EXISTS event_topics_counted_delete ON event_topics;
DROP TRIGGER IF EXISTS media_counted_insert ON media;
DROP TRIGGER IF EXISTS media_counted_delete ON media;
DROP TRIGGER IF EXISTS speakers_employer_counted_insert ON speakers;
DROP TRIGGER IF EXISTS speakers_employer_counted_delete ON speakers;
DROP TRIGGER IF EXISTS speakers_employer_counted_update ON speakers;
DROP FUNCTION IF EXISTS count_relations(), count_employer_changes();
ALTER TABLE events DROP COLUMN IF EXISTS quality_score, DROP COLUMN IF EXISTS quality_reasons,
  DROP COLUMN IF EXISTS speaker_count, DROP COLUMN IF EXISTS company_count, DROP COLUMN IF EXISTS topic_count,
  DROP COLUMN IF EXISTS media_count;
ALTER TABLE speakers DROP COLUMN IF EXISTS quality_score, DROP COLUMN IF EXISTS quality_reasons,
  DROP COLUMN IF EXISTS event_count;
ALTER TABLE companies DROP COLUMN IF EXISTS quality_score, DROP COLUMN IF EXISTS quality_reasons,
  DROP COLUMN IF EXISTS event_count, DROP COLUMN IF EXISTS employee_count;
DROP FUNCTION IF EXISTS event_quality(text, timestamptz, text, text, text, boolean, int, int),
  event_quality_reasons(text, timestamptz, text, text, text, boolean, int, int),
  speaker_quality(text, text, uuid, boolean, boolean, double precision, int),
  speaker_quality_reasons(text, text, uuid, boolean, boolean, double precision, int),
  company_quality(text, text, text, text, text, int, int),
  company_quality_reasons(text, text, text, text, text, int, int);
