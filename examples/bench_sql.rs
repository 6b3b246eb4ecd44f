//! Writes the raw pgbench scripts scripts/bench.sh runs beside `eventdata loadgen`: for each workload, the SQL the
//! service runs for one call, as directly as PostgreSQL can take it (one prepared statement where the service
//! needs a transaction, no gRPC, no JSON decoding). The projections come from the service's own code, so the
//! raw scripts build the same JSON from the same rows.
//!
//! Most scripts run as the runtime role with `app.org_id` set for the session (PGOPTIONS), so row-level security
//! applies as it does to the service. `text`, `hybrid` and `lookup` are the true ceiling instead: bench.sh runs
//! them as a superuser with the organization as an explicit condition (`:org`), because beneath a policy their
//! operators (`@@`, `%`) cannot use an index, and a raw script carrying that handicap would hide the gap. Ids come
//! from sample tables bench.sh fills: `bench_events`, `bench_embedded`, `bench_speakers` (`n`, `id`),
//! `bench_names` (`n`, `name`) and `bench_countries` (`n`, `code`); their sizes arrive as pgbench variables
//! `nevents`, `nembedded`, `nspeakers`, `nnames`.
//!
//! Usage: `cargo run --release --example bench_sql -- DIR`

use eventdata::domain::catalogue::{Kind, RelationKind};
use eventdata::loadgen::BATCH_CREATE_SIZE;
use eventdata::store::tables::resource_table;

fn main() -> std::io::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/bench/sql".into()));
    std::fs::create_dir_all(&dir)?;
    let event = resource_table(Kind::Event).projection;
    let mut scripts = vec![
        // CreateEvent: the service's own statement (the event row and its outbox row) with one row.
        ("create", batch_create_sql(1)),
        (
            "get",
            format!(
                "\\set n random(1, :nevents)
SELECT {event} FROM events t WHERE t.id = (SELECT id FROM bench_events WHERE n = :n);
"
            ),
        ),
        (
            "list",
            format!(
                "\\set n random(1, 10)
SELECT {event}, t.sort_start, t.id FROM events t
WHERE true AND t.country = (SELECT code FROM bench_countries WHERE n = :n)
ORDER BY t.sort_start, t.id LIMIT 51;
"
            ),
        ),
        (
            "similar",
            format!(
                "\\set n random(1, :nembedded)
SELECT resource, distance FROM (
  SELECT {event} AS resource, t.embedding <=> (SELECT embedding FROM events WHERE id = (SELECT id FROM bench_embedded WHERE n = :n)) AS distance
  FROM events t
  WHERE t.embedding IS NOT NULL AND t.id <> (SELECT id FROM bench_embedded WHERE n = :n)
  ORDER BY t.embedding <=> (SELECT embedding FROM events WHERE id = (SELECT id FROM bench_embedded WHERE n = :n))
  LIMIT 10
) r ORDER BY distance;
"
            ),
        ),
        ("text", format!("\\set n random(1, {})\n{}", eventdata::loadgen::TEXT_WORDS.len(), text_sql(event, 21, true))),
        (
            "hybrid",
            // HybridSearchEvents, k = 10: the ids of 50 text candidates (RUM's ranked top) and 50 vector
            // candidates, fused by reciprocal rank (k = 60, equal weights), only the 10 fused events rendered.
            format!(
                "\\set n random(1, :nembedded)
\\set w random(1, {words})
WITH txt AS (SELECT id, row_number() OVER (ORDER BY distance, id) AS r FROM ({text}) x),
vec AS (SELECT id, row_number() OVER (ORDER BY distance) AS r FROM (
  SELECT t.id, t.embedding <=> (SELECT embedding FROM events WHERE id = (SELECT id FROM bench_embedded WHERE n = :n)) AS distance
  FROM events t WHERE t.org_id = CAST(:org AS uuid) AND t.embedding IS NOT NULL
  ORDER BY t.embedding <=> (SELECT embedding FROM events WHERE id = (SELECT id FROM bench_embedded WHERE n = :n))
  LIMIT 50) y),
fused AS (SELECT id, sum(1.0 / (60 + r)) AS score FROM (SELECT * FROM txt UNION ALL SELECT * FROM vec) c
  GROUP BY id ORDER BY score DESC, id LIMIT 10)
SELECT {event}, f.score FROM fused f JOIN events t ON t.id = f.id ORDER BY f.score DESC;
",
                text = text_ids_sql(50).replace("[:n]", "[:w]"),
                words = eventdata::loadgen::TEXT_WORDS.len()
            ),
        ),
        (
            "lookup",
            // LookupNames of a speaker with a typo: the trigram index with the organization inside it, at the first
            // step's threshold (bench.sh sets pg_trgm.similarity_threshold = 0.6 for this script).
            "\\set n random(1, :nnames)
SELECT t.id, t.name, t.normalized_name, similarity(t.normalized_name, normalize_name(b.name))::float8 AS sim
FROM bench_names b, speakers t
WHERE b.n = :n AND t.org_id = CAST(:org AS uuid) AND t.normalized_name % normalize_name(b.name)
ORDER BY sim DESC, t.id LIMIT 10;
"
            .to_string(),
        ),
        (
            "neighborhood",
            // GetNeighborhood depth 2 from a speaker: the service's edge query for each frontier, then names.
            format!(
                "\\set n random(1, :nspeakers)
SELECT {ends} FROM ({edges1}) x \\gset one_
SELECT {ends} FROM ({edges2}) x \\gset two_
SELECT id, name FROM events WHERE id = ANY(CAST(:two_events AS uuid[]));
SELECT id, name FROM speakers WHERE id = ANY(CAST(:two_speakers AS uuid[]));
SELECT id, name FROM companies WHERE id = ANY(CAST(:two_companies AS uuid[]));
SELECT id, name FROM topics WHERE id = ANY(CAST(:two_topics AS uuid[]));
",
                ends = "coalesce(array_agg(DISTINCT x.a) FILTER (WHERE x.k IN (1, 2, 3)), '{}') AS events,
       coalesce(array_agg(DISTINCT CASE x.k WHEN 1 THEN x.b ELSE x.a END) FILTER (WHERE x.k IN (1, 4)), '{}') AS speakers,
       coalesce(array_agg(DISTINCT x.b) FILTER (WHERE x.k IN (2, 4)), '{}') AS companies,
       coalesce(array_agg(DISTINCT x.b) FILTER (WHERE x.k = 3), '{}') AS topics",
                edges1 = edges_sql("'{}'::uuid[]", "ARRAY[(SELECT id FROM bench_speakers WHERE n = :n)]", "'{}'::uuid[]", "'{}'::uuid[]"),
                edges2 = edges_sql("CAST(:one_events AS uuid[])", "'{}'::uuid[]", "CAST(:one_companies AS uuid[])", "'{}'::uuid[]"),
            ),
        ),
        (
            "path",
            // FindPath between two speakers: no single statement does the service's two-ended search, so the
            // raw figure is the best one-statement alternative, a recursive CTE over speaker-event edges that
            // stops at the first hit (6 edges at most).
            "\\set a random(1, :nspeakers)
\\set b random(1, :nspeakers)
WITH RECURSIVE walk(speaker, depth, seen) AS (
  SELECT s.id, 0, ARRAY[s.id] FROM bench_speakers b JOIN speakers s ON s.id = b.id WHERE b.n = :a
  UNION ALL
  SELECT DISTINCT ON (o.speaker_id) o.speaker_id, w.depth + 1, w.seen || o.speaker_id
  FROM walk w JOIN event_speakers e ON e.speaker_id = w.speaker JOIN event_speakers o ON o.event_id = e.event_id
  WHERE w.depth < 3 AND NOT o.speaker_id = ANY(w.seen)
    AND NOT EXISTS (SELECT FROM bench_speakers t WHERE t.n = :b AND t.id = w.speaker)
)
SELECT depth * 2 AS edges FROM walk WHERE speaker = (SELECT id FROM bench_speakers WHERE n = :b) ORDER BY depth LIMIT 1;
"
            .to_string(),
        ),
    ];
    scripts.push((
        "lean_insert",
        // The write path's true ceiling: an event row with the columns the API sets (primary key and one GIN
        // index) and its outbox row in one statement, no trigger, run as a superuser (bench.sh makes
        // bench_lean_events). Its text has the shape of loadgen's events (`new_event`): as many words, the id
        // once, so the full-text index gets as many entries.
        "WITH e AS (
  INSERT INTO bench_lean_events (id, org_id, name, slug, description, status, city, country)
  SELECT u, CAST(:org AS uuid), 'Lean Event ' || replace(u::text, '-', ''), 'lean-' || replace(u::text, '-', ''),
         'Created by eventdata lean.', 'draft', 'Berlin', 'DE'
  FROM (SELECT bench_uuid7() AS u) g
  RETURNING id, org_id, name)
INSERT INTO outbox (org_id, aggregate_type, aggregate_id, change_type, payload)
SELECT org_id, 'event', id, 'event.created', jsonb_build_object('id', id, 'name', name) FROM e;
"
        .to_string(),
    ));
    scripts.push(("batch-create", batch_create_sql(BATCH_CREATE_SIZE)));
    scripts.extend(write_profile_scripts());
    for (name, sql) in scripts {
        std::fs::write(dir.join(format!("{name}.sql")), sql)?;
    }
    println!("wrote raw pgbench scripts to {}", dir.display());
    Ok(())
}

/// RUM's ranked top `limit` ids and distances for word `:n` of loadgen's list (`:org` explicit, as below).
fn text_ids_sql(limit: usize) -> String {
    let query = format!("websearch_to_tsquery('english', ({})[:n])", text_words());
    format!(
        "SELECT t.id, t.search <=> {query} AS distance FROM events t
      WHERE t.org_id = CAST(:org AS uuid) AND t.search @@ {query}
      ORDER BY t.search <=> {query} LIMIT {limit}"
    )
}

/// loadgen's words for text search (`eventdata::loadgen::TEXT_WORDS`), as an SQL array indexed by `:n`.
fn text_words() -> String {
    let quoted: Vec<String> = eventdata::loadgen::TEXT_WORDS.iter().map(|w| format!("'{w}'")).collect();
    format!("ARRAY[{}]", quoted.join(", "))
}

/// The true ceiling of SearchEvents for word `:n` of loadgen's list: RUM's ranked top `limit` of the organization
/// (`:org`, an explicit condition: these scripts run as a superuser, without the policy) and only those rows
/// rendered, with snippets when `snippets`. The service adds the exact-name branch and the policy on the rendering.
fn text_sql(projection: &str, limit: usize, snippets: bool) -> String {
    let query = format!("websearch_to_tsquery('english', ({})[:n])", text_words());
    let snippet = if snippets {
        format!(
            "ts_headline('english', t.name || coalesce(' — ' || t.description, ''), {query},
       'StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=30, MinWords=8')"
        )
    } else {
        "''".to_owned()
    };
    format!(
        "SELECT {projection}, top.distance::float8, {snippet}, t.id
FROM (SELECT t.id, t.search <=> {query} AS distance FROM events t
      WHERE t.org_id = CAST(:org AS uuid) AND t.search @@ {query}
      ORDER BY t.search <=> {query} LIMIT {limit}) top
JOIN events t ON t.id = top.id ORDER BY top.distance, top.id;
"
    )
}

/// The service's edge query (services/store/graph.rs) for one frontier, every edge kind: rows (k, a, b) with
/// k = 1 speaks at (event, speaker), 2 takes part in (event, company), 3 about (event, topic), 4 works at
/// (speaker, company).
fn edges_sql(events: &str, speakers: &str, companies: &str, topics: &str) -> String {
    format!(
        "SELECT 1 AS k, event_id AS a, speaker_id AS b FROM event_speakers
           WHERE event_id = ANY({events}) OR speaker_id = ANY({speakers})
         UNION ALL SELECT 2, event_id, company_id FROM event_companies
           WHERE event_id = ANY({events}) OR company_id = ANY({companies})
         UNION ALL SELECT 3, event_id, topic_id FROM event_topics
           WHERE event_id = ANY({events}) OR topic_id = ANY({topics})
         UNION ALL SELECT 4, id, company_id FROM speakers
           WHERE company_id IS NOT NULL AND (id = ANY({speakers}) OR company_id = ANY({companies}))"
    )
}

/// The scripts of scripts/profile-writes.sh: the service's own create and relation-add statements (from
/// `store::catalogue::create_sql` and `store::relations::add_sql`) with their parameters written as SQL, so each
/// variant of the schema runs exactly what the service sends. Ids are UUIDv7 like the service's
/// (`profile_uuid7()`, made by the profile script); a relation add pairs client `:client_id`'s own fresh speaker
/// with the client's next event (`:i` counts the client's transactions), so no pair repeats and clients do not
/// queue on one event's row.
fn write_profile_scripts() -> Vec<(&'static str, String)> {
    let row = "(SELECT jsonb_build_array(jsonb_build_object('id', u, 'name', 'Profile event ' || u, \
               'slug', 'profile-' || replace(u::text, '-', ''), 'description', 'Created by the write profile.', \
               'status', 'draft', 'city', 'Berlin', 'country', 'DE', 'metadata', '{}'::jsonb)) \
               FROM (SELECT profile_uuid7() AS u) g)";
    let create = |claim: bool| {
        let (request_id, method, hash, ids) = if claim {
            (
                "gen_random_uuid()",
                "'eventdata.v1.EventService/CreateEvent'",
                "sha256('profile'::bytea)",
                "ARRAY[]::uuid[]",
            )
        } else {
            ("NULL::uuid", "NULL::text", "NULL::bytea", "NULL::uuid[]")
        };
        let sql = eventdata::store::catalogue::create_sql(Kind::Event)
            .as_str()
            .replace("$6", "'{}'::jsonb")
            .replace("$5", ids)
            .replace("$4", hash)
            .replace("$3", method)
            .replace("$2", request_id)
            .replace("$1", row);
        format!("{sql};\n")
    };
    let add = eventdata::store::relations::add_sql(RelationKind::Speaker, &["role"])
        .as_str()
        .replace("$4", "'{}'::jsonb")
        .replace("$3", "'{\"role\": \"speaker\"}'::jsonb")
        .replace("$2", "(SELECT id FROM profile_speakers WHERE n = :speaker)")
        .replace("$1", "(SELECT id FROM profile_events WHERE n = :event)");
    vec![
        ("profile_create", create(false)),
        ("profile_create_claim", create(true)),
        (
            "profile_create_lean_payload",
            // The same row, returning only its id, with an outbox payload of the id alone: what the projection
            // (the resource rendered into RETURNING and the payload) costs.
            "WITH created AS (
  INSERT INTO events (id, org_id, name, slug, description, status, city, country)
  SELECT u, current_org_id(), 'Profile event ' || u, 'profile-' || replace(u::text, '-', ''),
         'Created by the write profile.', 'draft', 'Berlin', 'DE'
  FROM (SELECT profile_uuid7() AS u) g
  RETURNING id
)
INSERT INTO outbox (org_id, aggregate_type, aggregate_id, change_type, payload)
SELECT current_org_id(), 'event', id, 'event.created', jsonb_build_object('id', id) FROM created;
"
            .to_string(),
        ),
        (
            "profile_add_speaker",
            format!(
                "\\set speaker :client_id + 1
\\set i :i + 1
\\set event (:client_id * 997 + :i) % :nevents + 1
{add};
"
            ),
        ),
    ]
}

/// CreateEvent (`size` 1) or BatchCreateEvents of `size` events: the service's own statement
/// (`store::catalogue::create_sql`) with `size` new rows, as one prepared statement. Ids are UUIDv7 like the
/// service's (`bench_uuid7()`, made by bench.sh), so both insert into the same places of the btrees, and the
/// text has the shape of loadgen's events (as many words, the id once), so both put as many entries into the
/// full-text index.
fn batch_create_sql(size: usize) -> String {
    let rows = format!(
        "(SELECT jsonb_agg(jsonb_build_object('id', u, 'name', 'Raw Event ' || replace(u::text, '-', ''), 'slug', 'raw-' || replace(u::text, '-', ''), \
         'description', 'Created by eventdata pgbench.', 'status', 'draft', 'city', 'Berlin', 'country', 'DE', 'metadata', '{{}}'::jsonb)) \
         FROM (SELECT bench_uuid7() AS u FROM generate_series(1, {size})) g)"
    );
    let sql = eventdata::store::catalogue::create_sql(Kind::Event)
        .as_str()
        .replace("$6", "'{}'::jsonb")
        .replace("$5", "NULL::uuid[]")
        .replace("$4", "NULL::bytea")
        .replace("$3", "NULL::text")
        .replace("$2", "NULL::uuid")
        .replace("$1", &rows);
    format!("{sql};\n")
}
