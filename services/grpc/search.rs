//! `EmbeddingService` and `SearchService`.

use tonic::{Request, Response, Status};

use super::convert::{enum_input, parse_id, parse_opt_id, text_filter, time_filter};
use super::handlers::{Api, Place};
use super::resources::{event, event_from, speaker_from, topic_from};
use crate::app::AppError;
use crate::app::search::Near;
use crate::domain::api_key::Scope;
use crate::domain::catalogue::{EVENT_STATUSES, Kind};
use crate::domain::embedding::Embedding;
use crate::domain::fields::Input;
use crate::domain::queries::EventFilter;
use crate::domain::search_params;
use crate::proto::v1 as pb;
use crate::proto::v1::embedding_service_server::EmbeddingService;
use crate::proto::v1::search_service_server::SearchService;

fn embedded_kind(field: &str, value: i32) -> Result<Kind, AppError> {
    match pb::EmbeddedType::try_from(value) {
        Ok(pb::EmbeddedType::Event) => Ok(Kind::Event),
        Ok(pb::EmbeddedType::Speaker) => Ok(Kind::Speaker),
        Ok(pb::EmbeddedType::Topic) => Ok(Kind::Topic),
        _ => Err(AppError::invalid(field, "must be EVENT, SPEAKER or TOPIC")),
    }
}

/// A search parameter checked by its rule (`domain::search_params`), refused as a violation of request field
/// `field`.
fn param<T>(field: &str, checked: Result<T, String>) -> Result<T, AppError> {
    checked.map_err(|reason| AppError::invalid(field, reason))
}

fn top_k(k: i32) -> Result<i64, AppError> {
    param("k", search_params::top_k(k))
}

fn ef_search(value: i32) -> Result<u32, AppError> {
    param("ef_search", search_params::ef_search(value))
}

/// A similarity search's error with the fields of its query (`like_id`) at their request path (`query.like_id`).
fn in_query(err: AppError) -> AppError {
    Place::single("query.").locate(err)
}

/// A vector of request field `field`.
fn embedding(field: &str, values: Vec<f32>) -> Result<Embedding, AppError> {
    Embedding::parse(values).map_err(|violations| AppError::InvalidArgument(violations.under(field)))
}

fn near(query: Option<pb::SimilarityQuery>) -> Result<Near, AppError> {
    match query.and_then(|q| q.query) {
        Some(pb::similarity_query::Query::Vector(v)) => Ok(Near::Vector(embedding("query.vector.values", v.values)?)),
        Some(pb::similarity_query::Query::LikeId(id)) => Ok(Near::Like(parse_id("query.like_id", &id)?)),
        None => Err(AppError::invalid("query", "needs a vector or a like_id")),
    }
}

/// The event filters of a search request.
pub fn event_filter(filter: Option<pb::EventSearchFilter>) -> Result<EventFilter, AppError> {
    let pb::EventSearchFilter {
        start_time_from,
        start_time_before,
        status,
        country,
        city,
        topic_id,
        speaker_id,
        company_id,
    } = filter.unwrap_or_default();
    let status = match enum_input(status, EVENT_STATUSES) {
        Input::Enum(status) => status,
        _ => return Err(AppError::invalid("filter.status", "unknown status")),
    };
    Ok(EventFilter {
        start_from: time_filter("filter.start_time_from", start_time_from)?,
        start_before: time_filter("filter.start_time_before", start_time_before)?,
        status,
        city: text_filter("filter.city", city)?,
        country: text_filter("filter.country", country)?,
        topic_id: parse_opt_id("filter.topic_id", topic_id.as_deref())?,
        speaker_id: parse_opt_id("filter.speaker_id", speaker_id.as_deref())?,
        company_id: parse_opt_id("filter.company_id", company_id.as_deref())?,
        name_prefix: None,
        by_update_time: false,
        quality: Default::default(),
    })
}

fn text_query(field: &str, raw: &str) -> Result<String, AppError> {
    param(field, search_params::text_query(raw))
}

fn score(distance: f64) -> f64 {
    (1.0 - distance / 2.0).clamp(0.0, 1.0)
}

#[tonic::async_trait]
impl EmbeddingService for Api {
    async fn set_embedding(
        &self,
        request: Request<pb::SetEmbeddingRequest>,
    ) -> Result<Response<pb::Embedding>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let input = request.into_inner().embedding.ok_or_else(|| AppError::invalid("embedding", "is required"))?;
        let kind = embedded_kind("embedding.resource_type", input.resource_type)?;
        let id = parse_id("embedding.resource_id", &input.resource_id)?;
        let model = input.model.trim().to_owned();
        let parsed = Embedding::parse(input.values.clone()).map_err(|v| v.under("embedding.values"));
        let mut violations = parsed.as_ref().err().cloned().unwrap_or_default();
        if model.is_empty() || model.chars().count() > 200 {
            violations.add_in_request("embedding.model", "is required, at most 200 characters");
        } else if model.contains('\0') {
            violations.add_in_request("embedding.model", "must not contain NUL characters");
        }
        let embedding = match (parsed, violations.0.is_empty()) {
            (Ok(embedding), true) => embedding,
            _ => return Err(AppError::InvalidArgument(violations).into()),
        };
        self.app.set_embedding(&caller, kind, id, Some((embedding, model.clone()))).await?;
        Ok(Response::new(pb::Embedding { model, ..input }))
    }

    async fn get_embedding(
        &self,
        request: Request<pb::GetEmbeddingRequest>,
    ) -> Result<Response<pb::Embedding>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let r = request.into_inner();
        let kind = embedded_kind("resource_type", r.resource_type)?;
        let id = parse_id("resource_id", &r.resource_id)?;
        let (values, model) = self.app.get_embedding(&caller, kind, id).await?;
        Ok(Response::new(pb::Embedding { resource_type: r.resource_type, resource_id: r.resource_id, values, model }))
    }

    async fn clear_embedding(&self, request: Request<pb::ClearEmbeddingRequest>) -> Result<Response<()>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let r = request.into_inner();
        let kind = embedded_kind("resource_type", r.resource_type)?;
        let id = parse_id("resource_id", &r.resource_id)?;
        self.app.set_embedding(&caller, kind, id, None).await?;
        Ok(Response::new(()))
    }
}

#[tonic::async_trait]
impl SearchService for Api {
    async fn similar_events(
        &self,
        request: Request<pb::SimilarEventsRequest>,
    ) -> Result<Response<pb::SimilarEventsResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::SimilarEventsRequest { query, k, filter, ef_search: ef } = request.into_inner();
        let (near, k, ef, filter) = (near(query)?, top_k(k)?, ef_search(ef)?, event_filter(filter)?);
        let found = self.app.similar(&caller, Kind::Event, near, Some(&filter), k, ef).await.map_err(in_query)?;
        let results = found
            .into_iter()
            .map(|(e, d)| Ok(pb::SimilarEvent { event: Some(event_from(e)?), distance: d, score: score(d) }))
            .collect::<Result<_, AppError>>()?;
        Ok(Response::new(pb::SimilarEventsResponse { results }))
    }

    async fn similar_speakers(
        &self,
        request: Request<pb::SimilarRequest>,
    ) -> Result<Response<pb::SimilarSpeakersResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::SimilarRequest { query, k, ef_search: ef } = request.into_inner();
        let (near, k, ef) = (near(query)?, top_k(k)?, ef_search(ef)?);
        let found = self.app.similar(&caller, Kind::Speaker, near, None, k, ef).await.map_err(in_query)?;
        let results = found
            .into_iter()
            .map(|(s, d)| Ok(pb::SimilarSpeaker { speaker: Some(speaker_from(s)?), distance: d, score: score(d) }))
            .collect::<Result<_, AppError>>()?;
        Ok(Response::new(pb::SimilarSpeakersResponse { results }))
    }

    async fn similar_topics(
        &self,
        request: Request<pb::SimilarRequest>,
    ) -> Result<Response<pb::SimilarTopicsResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::SimilarRequest { query, k, ef_search: ef } = request.into_inner();
        let (near, k, ef) = (near(query)?, top_k(k)?, ef_search(ef)?);
        let found = self.app.similar(&caller, Kind::Topic, near, None, k, ef).await.map_err(in_query)?;
        let results = found
            .into_iter()
            .map(|(t, d)| Ok(pb::SimilarTopic { topic: Some(topic_from(t)?), distance: d, score: score(d) }))
            .collect::<Result<_, AppError>>()?;
        Ok(Response::new(pb::SimilarTopicsResponse { results }))
    }

    async fn search_events(
        &self,
        request: Request<pb::SearchEventsRequest>,
    ) -> Result<Response<pb::SearchEventsResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::SearchEventsRequest { query, filter, page_size, page_token } = request.into_inner();
        let query = text_query("query", &query)?;
        let filter = event_filter(filter)?;
        let size = param("page_size", search_params::text_page_size(page_size))?;
        let (hits, next_page_token) = self.app.search_text(&caller, &query, &filter, size, &page_token, true).await?;
        let hits = hits.into_iter().map(|(e, rank, snippet)| pb::TextHit { event: Some(event(e)), rank, snippet });
        let hits = hits.collect();
        Ok(Response::new(pb::SearchEventsResponse { hits, next_page_token }))
    }

    async fn lookup_names(
        &self,
        request: Request<pb::LookupNamesRequest>,
    ) -> Result<Response<pb::LookupNamesResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::LookupNamesRequest { resource_type, name, limit, min_similarity } = request.into_inner();
        let kind = match resource_type.as_str() {
            "speaker" => Kind::Speaker,
            "company" => Kind::Company,
            "topic" => Kind::Topic,
            _ => return Err(AppError::invalid("resource_type", "must be speaker, company or topic").into()),
        };
        let name = text_query("name", &name)?;
        let limit = param("limit", search_params::lookup_limit(limit))?;
        let min_similarity = param("min_similarity", search_params::min_similarity(min_similarity))?;
        let found = self.app.lookup_names(&caller, kind, &name, min_similarity, limit).await?;
        let matches = found
            .into_iter()
            .map(|(id, name, normalized_name, similarity)| pb::NameMatch {
                id: id.to_string(),
                name,
                normalized_name,
                similarity,
            })
            .collect();
        Ok(Response::new(pb::LookupNamesResponse { matches }))
    }

    async fn hybrid_search_events(
        &self,
        request: Request<pb::HybridSearchEventsRequest>,
    ) -> Result<Response<pb::HybridSearchEventsResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::HybridSearchEventsRequest { text, vector, filter, k, rrf_k, text_weight, vector_weight } =
            request.into_inner();
        let text = match text.trim() {
            "" => None,
            _ => Some(text_query("text", &text)?),
        };
        let vector = vector.map(|v| embedding("vector.values", v.values)).transpose()?;
        if text.is_none() && vector.is_none() {
            return Err(AppError::invalid("text", "text or vector is required").into());
        }
        let rrf_k = param("rrf_k", search_params::rrf_k(rrf_k))?;
        let weights = (
            param("text_weight", search_params::fusion_weight(text_weight))?,
            param("vector_weight", search_params::fusion_weight(vector_weight))?,
        );
        let filter = event_filter(filter)?;
        let found =
            self.app.hybrid_search(&caller, text.as_deref(), vector, &filter, top_k(k)?, rrf_k, weights).await?;
        let hits = found
            .into_iter()
            .map(|h| pb::HybridHit {
                event: Some(event(h.event)),
                score: h.score,
                text_rank: h.text_rank as i32,
                vector_rank: h.vector_rank as i32,
            })
            .collect();
        Ok(Response::new(pb::HybridSearchEventsResponse { hits }))
    }
}
