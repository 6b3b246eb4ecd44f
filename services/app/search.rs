//! Embeddings and search: nearest neighbours, full text, name lookup and hybrid (reciprocal rank fusion).

use uuid::Uuid;

use super::error::Culprit;
use super::{App, AppError, Caller, retrying};
use crate::domain::catalogue::Kind;
use crate::domain::embedding::Embedding;
use crate::domain::fusion::reciprocal_rank_fusion;
use crate::domain::page_token::Cursor;
use crate::domain::resources::{Event, Resource};
use crate::domain::search_params::DEFAULT_EF_SEARCH;
use crate::store::lists::EventFilter;
use crate::store::search::NearestTo;
use crate::store::{catalogue, embeddings, locks, search};

/// How many candidates each list contributes to hybrid fusion, at least.
const HYBRID_CANDIDATES: i64 = 50;

/// What a similarity search is near to.
#[derive(Debug, Clone)]
pub enum Near {
    /// A vector.
    Vector(Embedding),
    /// The embedding of this resource (which is excluded from the results).
    Like(Uuid),
}

/// A hybrid hit: the event, the fused score, and its ranks in the text and vector lists (0 = absent).
#[derive(Debug, Clone)]
pub struct HybridHit {
    /// The event.
    pub event: Event,
    /// Fused score.
    pub score: f64,
    /// 1-based rank in the text list, or 0.
    pub text_rank: u32,
    /// 1-based rank in the vector list, or 0.
    pub vector_rank: u32,
}

/// A page of text hits: (event, rank, snippet) and the next token.
pub type TextPage = (Vec<(Event, f64, String)>, String);

impl App {
    /// Sets or clears (`None`) an embedding; NOT_FOUND when the resource does not exist.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "set_embedding", db.system = "postgresql"))]
    pub async fn set_embedding(
        &self,
        caller: &Caller,
        kind: Kind,
        id: Uuid,
        embedding: Option<(Embedding, String)>,
    ) -> Result<(), AppError> {
        retrying(|| {
            let embedding = embedding.clone();
            async move {
                let mut tx = self.begin(caller).await?;
                locks::lock_aggregates(&mut tx, &[id]).await?;
                let values = embedding.map(|(e, model)| (e.into_inner(), model));
                let found = embeddings::set(
                    &mut tx,
                    kind,
                    id,
                    values.as_ref().map(|(v, m)| (v.clone(), m.as_str())),
                    &caller.change_context(),
                )
                .await?;
                tx.commit().await?;
                if found { Ok(()) } else { Err(AppError::NotFound { kind: kind.name(), id: id.to_string() }) }
            }
        })
        .await
    }

    /// A resource's embedding and model; NOT_FOUND when the resource or its embedding does not exist.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "get_embedding", db.system = "postgresql"))]
    pub async fn get_embedding(&self, caller: &Caller, kind: Kind, id: Uuid) -> Result<(Vec<f32>, String), AppError> {
        let found = self
            .read(caller, |mut reader| async move {
                let found = embeddings::get(&mut reader, caller.org_id, kind, id).await?;
                reader.finish().await?;
                Ok(found)
            })
            .await?;
        match found {
            Some(Some(embedding)) => Ok(embedding),
            Some(None) => Err(AppError::NotFound { kind: "embedding", id: format!("of {} {id}", kind.name()) }),
            None => Err(AppError::NotFound { kind: kind.name(), id: id.to_string() }),
        }
    }

    /// The `k` nearest resources of `kind` (events may be filtered) and their cosine distances, nearest first.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "similar", db.system = "postgresql"))]
    pub async fn similar(
        &self,
        caller: &Caller,
        kind: Kind,
        near: Near,
        filter: Option<&EventFilter>,
        k: i64,
        ef_search: u32,
    ) -> Result<Vec<(Resource, f64)>, AppError> {
        // One confined statement (it sets the search settings itself); a second only when nothing was found near a
        // stored resource, to tell a missing resource from one without an embedding.
        let _turn = self.search_turn().await?;
        let values;
        let (target, like) = match near {
            Near::Vector(embedding) => {
                values = embedding.into_inner();
                (NearestTo::Vector(&values), None)
            }
            Near::Like(id) => (NearestTo::Stored(id), Some(id)),
        };
        self.read(caller, |mut reader| async move {
            let found = search::nearest(&mut reader, caller.org_id, kind, target, filter, k, ef_search).await?;
            if let (Some(id), true) = (like, found.is_empty()) {
                match embeddings::get(&mut reader, caller.org_id, kind, id).await? {
                    Some(Some(_)) => {}
                    Some(None) => {
                        return Err(AppError::FailedPrecondition {
                            field: Culprit::resource("like_id"),
                            reason: "NO_EMBEDDING",
                            message: format!("names {} {id}, which has no embedding to compare with", kind.name()),
                        });
                    }
                    None => return Err(AppError::NotFound { kind: kind.name(), id: id.to_string() }),
                }
            }
            reader.finish().await?;
            Ok(found)
        })
        .await
    }

    /// A page of full-text hits for `query`, with snippets when `snippets` (only pages shown to people need them).
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "search_text", db.system = "postgresql"))]
    pub async fn search_text(
        &self,
        caller: &Caller,
        query: &str,
        filter: &EventFilter,
        page_size: i64,
        page_token: &str,
        snippets: bool,
    ) -> Result<TextPage, AppError> {
        // The cursor holds the RUM distance (since migration 0005); `v2` makes older rank cursors invalid.
        let scope = format!("{}|SearchEvents.v2|{query}|{filter:?}", caller.org_id);
        let cursor = match page_token {
            "" => None,
            token => {
                let cursor: Cursor =
                    self.tokens.decode(&scope, token).map_err(|e| AppError::invalid("page_token", e.to_string()))?;
                let distance: f64 = cursor
                    .sort
                    .as_deref()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| AppError::invalid("page_token", "page_token is malformed"))?;
                Some((distance, cursor))
            }
        };
        let after = cursor.as_ref().map(|(distance, cursor)| search::TextAfter {
            distance: *distance,
            id: Some(cursor.id).filter(|id| !id.is_nil()),
            skip: &cursor.skip,
        });
        let _turn = self.search_turn().await?;
        let mut rows = self
            .read(caller, |mut reader| async move {
                let rows =
                    search::text(&mut reader, caller.org_id, query, filter, after, page_size + 1, snippets).await?;
                reader.finish().await?;
                Ok(rows)
            })
            .await?;
        let has_more = rows.len() as i64 > page_size;
        rows.truncate(page_size as usize);
        let next = match rows.last() {
            Some(&(_, _, distance, _, id)) if has_more => {
                let sort = Some(format!("{distance:?}"));
                let cursor = match after {
                    // The first page holds RUM's first rows at its last distance, not those of the smallest ids:
                    // the next page starts that distance from the first id, without them (migration 0015).
                    None => {
                        let skip = rows.iter().filter(|row| row.2 == distance).map(|row| row.4).collect();
                        Cursor { sort, id: Uuid::nil(), skip }
                    }
                    // Later pages go in (distance, id) order, still without the first page's rows at its distance.
                    Some(after) => {
                        let skip = if after.distance == distance { after.skip.to_vec() } else { Vec::new() };
                        Cursor { sort, id, skip }
                    }
                };
                self.tokens.encode(&scope, cursor)
            }
            _ => String::new(),
        };
        Ok((rows.into_iter().map(|(event, rank, _, snippet, _)| (event, rank, snippet)).collect(), next))
    }

    /// Name candidates of `kind` similar to `name`.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "lookup_names", db.system = "postgresql"))]
    pub async fn lookup_names(
        &self,
        caller: &Caller,
        kind: Kind,
        name: &str,
        min_similarity: f64,
        limit: i64,
    ) -> Result<Vec<search::NameRow>, AppError> {
        let _turn = self.search_turn().await?;
        self.read(caller, |mut reader| async move {
            let found = search::similar_names(&mut reader, caller.org_id, kind, name, min_similarity, limit).await?;
            reader.finish().await?;
            Ok(found)
        })
        .await
    }

    /// Text and vector results fused by reciprocal rank fusion with constant `rrf_k` and the lists' weights.
    #[expect(clippy::too_many_arguments, reason = "mirrors the HybridSearchEvents request")]
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "hybrid_search", db.system = "postgresql"))]
    pub async fn hybrid_search(
        &self,
        caller: &Caller,
        text: Option<&str>,
        vector: Option<Embedding>,
        filter: &EventFilter,
        k: i64,
        rrf_k: u32,
        weights: (f64, f64),
    ) -> Result<Vec<HybridHit>, AppError> {
        let candidates = (k * 3).max(HYBRID_CANDIDATES);
        // Two confined statements: both candidate lists as ids, then only the fused page rendered.
        let _turn = self.search_turn().await?;
        let vector = vector.map(Embedding::into_inner);
        let vector = vector.as_deref();
        let (fused, events) = self
            .read(caller, |mut reader| async move {
                let (text_ids, vector_ids) = search::hybrid_candidates(
                    &mut reader,
                    caller.org_id,
                    text,
                    vector,
                    filter,
                    candidates,
                    DEFAULT_EF_SEARCH,
                )
                .await?;
                let fused = reciprocal_rank_fusion(&[(&text_ids[..], weights.0), (&vector_ids[..], weights.1)], rrf_k);
                let fused: Vec<_> = fused.into_iter().take(k as usize).collect();
                let ids: Vec<Uuid> = fused.iter().map(|f| f.item).collect();
                let events = catalogue::get_many(&mut reader, caller.org_id, Kind::Event, &ids).await?;
                reader.finish().await?;
                Ok((fused, events))
            })
            .await?;
        let mut by_id: std::collections::HashMap<Uuid, Event> =
            events.into_iter().map(|r| Ok((r.id(), r.into_event()?))).collect::<Result<_, AppError>>()?;
        // An event deleted between the two statements is left out, as before.
        Ok(fused
            .into_iter()
            .filter_map(|f| {
                by_id.remove(&f.item).map(|event| HybridHit {
                    event,
                    score: f.score,
                    text_rank: f.ranks[0],
                    vector_rank: f.ranks[1],
                })
            })
            .collect())
    }
}
