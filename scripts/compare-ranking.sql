-- RUM's ranking (what SearchEvents uses) beside ts_rank_cd over every match (what it used before), on a seeded
-- database: for each of loadgen's 15 search words and five multi-word queries, how many of the top 10 the two
-- share, and whether their first results agree. Run against the bench database (docs/search.md, "Full text"):
--   psql postgres://postgres@127.0.0.1:5432/eventdata_bench -v org="'<organization uuid>'" -f scripts/compare-ranking.sql
\set ON_ERROR_STOP on
WITH words(word) AS (
  SELECT unnest(ARRAY['kubernetes', 'rust', 'databases', 'observability', 'security', 'python', 'search', 'compilers',
                      'robotics', 'serverless', 'privacy', 'postgresql', 'networking', 'frontend', 'testing',
                      'kubernetes security', 'rust databases workshop', 'python or privacy', '"observability days"',
                      'berlin search'])
), ranked AS (
  SELECT w.word,
         ARRAY(SELECT e.id FROM events e
               WHERE e.org_id = :org AND e.search @@ websearch_to_tsquery('english', w.word)
               ORDER BY e.search <=> websearch_to_tsquery('english', w.word), e.id LIMIT 10) AS rum,
         ARRAY(SELECT e.id FROM events e
               WHERE e.org_id = :org AND e.search @@ websearch_to_tsquery('english', w.word)
               ORDER BY ts_rank_cd(e.search, websearch_to_tsquery('english', w.word)) DESC, e.id LIMIT 10) AS cd,
         (SELECT count(*) FROM events e
          WHERE e.org_id = :org AND e.search @@ websearch_to_tsquery('english', w.word)) AS matches
  FROM words w
)
SELECT word, matches,
       (SELECT count(*) FROM unnest(rum) r WHERE r = ANY(cd)) AS shared_top10,
       rum[1] = cd[1] AS same_first,
       (SELECT name FROM events WHERE id = rum[1]) AS rum_first,
       (SELECT name FROM events WHERE id = cd[1]) AS ts_rank_cd_first
FROM ranked ORDER BY word;
