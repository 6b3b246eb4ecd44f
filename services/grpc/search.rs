//! `EmbeddingService` and `SearchService`.

use tonic::{Request, Response, Status};

use super::convert::{enum_input, parse_id, parse_opt_id, text_filter, time_filter};
use super::handlers::Api;
use super::resources::{event, event_from, speaker_from, topic_from};
use crate::app::AppError;
use crate::app::search::{DEFAULT_EF_SEARCH, MAX_EF_SEARCH, Near};
use crate::domain::api_key::Scope;
use crate::domain::catalogue::{EVENT_STATUSES, Kind};
use crate::domain::embedding::Embedding;
use crate::domain::fields::Input;
use crate::domain::fusion::DEFAULT_K;
use crate::domain::queries::EventFilter;
use crate::proto::v1 as pb;
use crate::proto::v1::embedding_service_server::EmbeddingService;
use crate::proto::v1::search_service_server::SearchService;

/// Longest text query.
pub const MAX_QUERY_CHARS: usize = 1000;

fn embedded_kind(field: &str, value: i32) -> Result<Kind, AppError> {
    match pb::EmbeddedType::try_from(value) {
        Ok(pb::EmbeddedType::Event) => Ok(Kind::Event),
        Ok(pb::EmbeddedType::Speaker) => Ok(Kind::Speaker),
        Ok(pb::EmbeddedType::Topic) => Ok(Kind::Topic),
        _ => Err(AppError::invalid(field, "must be EVENT, SPEAKER or TOPIC")),
    }
}

/// `k` of a similarity search: 1..=100, default 10.
fn top_k(k: i32) -> Result<i64, AppError> {
    match k {
        0 => Ok(10),
        1..=100 => Ok(i64::from(k)),
        _ => Err(AppError::invalid("k", "must be 1 to 100")),
    }
}

fn ef_search(value: i32) -> Result<u32, AppError> {
    match u32::try_from(value) {
        Ok(0) => Ok(DEFAULT_EF_SEARCH),
        Ok(n) if n <= MAX_EF_SEARCH => Ok(n),
        _ => Err(AppError::invalid("ef_search", format!("must be 0 (default) to {MAX_EF_SEARCH}"))),
    }
}

fn near(query: Option<pb::SimilarityQuery>) -> Result<Near, AppError> {
    match query.and_then(|q| q.query) {
        Some(pb::similarity_query::Query::Vector(v)) => {
            Ok(Near::Vector(Embedding::parse("query.vector.values", v.values).map_err(AppError::InvalidArgument)?))
        }
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

/// A text query: 1..=1000 characters, no NUL, not only white space.
fn text_query(field: &str, raw: &str) -> Result<String, AppError> {
    if raw.trim().is_empty() {
        return Err(AppError::invalid(field, "is required"));
    }
    if raw.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::invalid(field, format!("must be at most {MAX_QUERY_CHARS} characters")));
    }
    if raw.contains('\0') {
        return Err(AppError::invalid(field, "must not contain NUL characters"));
    }
    Ok(raw.to_owned())
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
        let parsed = Embedding::parse("embedding.values", input.values.clone());
        let mut violations = parsed.as_ref().err().cloned().unwrap_or_default();
        if model.is_empty() || model.chars().count() > 200 {
            violations.add("embedding.model", "is required, at most 200 characters");
        } else if model.contains('\0') {
            violations.add("embedding.model", "must not contain NUL characters");
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
        let found = self.app.similar(&caller, Kind::Event, near, Some(&filter), k, ef).await?;
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
        let found = self.app.similar(&caller, Kind::Speaker, near(query)?, None, top_k(k)?, ef_search(ef)?).await?;
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
        let found = self.app.similar(&caller, Kind::Topic, near(query)?, None, top_k(k)?, ef_search(ef)?).await?;
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
        let size = match page_size {
            0 => 20,
            n if n < 0 => return Err(AppError::invalid("page_size", "must not be negative").into()),
            n => i64::from(n).min(100),
        };
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
        let limit = match limit {
            0 => 5,
            1..=50 => i64::from(limit),
            _ => return Err(AppError::invalid("limit", "must be 1 to 50").into()),
        };
        let min_similarity = min_similarity.unwrap_or(0.3);
        if !(0.0..=1.0).contains(&min_similarity) {
            return Err(AppError::invalid("min_similarity", "must be from 0 to 1").into());
        }
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
        let vector = vector
            .map(|v| Embedding::parse("vector.values", v.values).map_err(AppError::InvalidArgument))
            .transpose()?;
        if text.is_none() && vector.is_none() {
            return Err(AppError::invalid("text", "text or vector is required").into());
        }
        let rrf_k = match u32::try_from(rrf_k) {
            Ok(0) => DEFAULT_K,
            Ok(n) if n <= 10_000 => n,
            _ => return Err(AppError::invalid("rrf_k", "must be 0 (default 60) to 10000").into()),
        };
        let weight = |field: &str, w: Option<f64>| match w.unwrap_or(1.0) {
            w if w.is_finite() && (0.0..=100.0).contains(&w) => Ok(w),
            _ => Err(AppError::invalid(field, "must be a number from 0 to 100")),
        };
        let weights = (weight("text_weight", text_weight)?, weight("vector_weight", vector_weight)?);
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
