//! Event contexts (GetEventContext): an event with its speakers, companies, topics, media and counts, built by one
//! statement whatever the number of related rows. Every resource inside is rendered by its kind's projection, so
//! a context holds exactly what the individual Get calls return.

use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::sql::Sql;
use super::tables::resource_table;
use crate::domain::catalogue::Kind;
use crate::domain::resources::EventContext;

/// The contexts of the events among `ids` that exist in `org`, in the order of `ids` (one confined statement).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT event contexts", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn event_contexts(
    conn: &mut PgConnection,
    org: Uuid,
    ids: &[Uuid],
) -> Result<Vec<EventContext>, sqlx::Error> {
    let found: Vec<Json<EventContext>> = sqlx::query_scalar(super::confined::wrap(context_sql(), 2))
        .persistent(crate::db::named_statements())
        .bind(ids)
        .bind(super::confined::org_text(org))
        .fetch_all(&mut *conn)
        .await?;
    Ok(found.into_iter().map(|context| context.0).collect())
}

/// The statement. Each nested resource is a scalar subquery over its table aliased `t` (the alias the
/// projections use); `r.id` is the event's id throughout. Orders are stable: speakers by role (keynote first)
/// then name, companies by relation (host first) then name, topics by relevance then name, media by capture time.
fn context_sql() -> Sql {
    Sql::template(
        "SELECT c.context FROM unnest($1::uuid[]) WITH ORDINALITY AS r(id, n)
         CROSS JOIN LATERAL (
           SELECT jsonb_build_object(
             'event', {event},
             'speakers', (
               SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'speaker', (SELECT {speaker} FROM speakers t WHERE t.id = sp.id),
                        'role', es.role, 'talk_title', es.talk_title,
                        'company', (SELECT {company} FROM companies t WHERE t.id = sp.company_id))
                      ORDER BY array_position(ARRAY['keynote', 'speaker', 'panelist', 'moderator'], es.role),
                               sp.normalized_name, sp.id), '[]')
               FROM event_speakers es JOIN speakers sp ON sp.id = es.speaker_id WHERE es.event_id = r.id),
             'companies', (
               SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'company', (SELECT {company} FROM companies t WHERE t.id = co.id), 'relation', ec.relation)
                      ORDER BY array_position(ARRAY['host', 'sponsor', 'exhibitor', 'partner'], ec.relation),
                               co.normalized_name, co.id), '[]')
               FROM event_companies ec JOIN companies co ON co.id = ec.company_id WHERE ec.event_id = r.id),
             'topics', (
               SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'topic', (SELECT {topic} FROM topics t WHERE t.id = tp.id), 'relevance', et.relevance,
                        'parent', (SELECT {topic} FROM topics t WHERE t.id = tp.parent_id))
                      ORDER BY et.relevance DESC, tp.normalized_name, tp.id), '[]')
               FROM event_topics et JOIN topics tp ON tp.id = et.topic_id WHERE et.event_id = r.id),
             'media', (
               SELECT coalesce(jsonb_agg({media} ORDER BY t.captured_at NULLS LAST, t.id), '[]')
               FROM media t WHERE t.event_id = r.id),
             'counts', jsonb_build_object('speakers', t.speaker_count, 'companies', t.company_count,
                                          'topics', t.topic_count, 'media', t.media_count)
           ) AS context
           FROM events t WHERE t.id = r.id
         ) c
         ORDER BY r.n",
        &[
            ("event", resource_table(Kind::Event).projection.into()),
            ("speaker", resource_table(Kind::Speaker).projection.into()),
            ("company", resource_table(Kind::Company).projection.into()),
            ("topic", resource_table(Kind::Topic).projection.into()),
            ("media", resource_table(Kind::Media).projection.into()),
        ],
    )
}
