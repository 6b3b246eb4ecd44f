//! `eventdata.v1.EventService`.

use tonic::{Request, Response, Status};

use super::convert::{Checks, known_enum, parse_id, parse_opt_id, quality_range, text_filter, time_filter};
use super::handlers::{Api, mask_paths};
use super::resources::{event, event_company, event_context, event_inputs, event_speaker, event_topic};
use crate::app::AppError;
use crate::domain::api_key::Scope;
use crate::domain::catalogue::{EVENT_STATUSES, Kind, RelationKind};
use crate::domain::fields::{Input, validate_create, validate_update};
use crate::domain::queries::EventFilter;
use crate::domain::queries::{From, NewRelation};
use crate::proto::v1 as pb;
use crate::proto::v1::event_service_server::EventService;

/// Most events one BatchCreateEvents takes.
pub const MAX_BATCH_CREATE: usize = 500;

#[tonic::async_trait]
impl EventService for Api {
    async fn get_event(&self, request: Request<pb::GetEventRequest>) -> Result<Response<pb::Event>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        Ok(Response::new(event(&self.get(&caller, Kind::Event, &request.get_ref().id).await?)?))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::ListEventsRequest {
            page_size,
            page_token,
            start_time_from,
            start_time_before,
            status,
            city,
            country,
            topic_id,
            speaker_id,
            company_id,
            name_prefix,
            order_by,
            max_quality_score,
            min_quality_score,
        } = request.into_inner();
        let quality = quality_range(min_quality_score, max_quality_score)?;
        let order = known_enum::<pb::EventOrder>("order_by", order_by)?;
        let status = match super::convert::enum_input(status, EVENT_STATUSES) {
            Input::Enum(status) => status,
            _ => return Err(AppError::invalid("status", "unknown status").into()),
        };
        let filter = EventFilter {
            start_from: time_filter("start_time_from", start_time_from)?,
            start_before: time_filter("start_time_before", start_time_before)?,
            status,
            city: text_filter("city", city)?,
            country: text_filter("country", country)?,
            topic_id: parse_opt_id("topic_id", topic_id.as_deref())?,
            speaker_id: parse_opt_id("speaker_id", speaker_id.as_deref())?,
            company_id: parse_opt_id("company_id", company_id.as_deref())?,
            name_prefix: text_filter("name_prefix", name_prefix)?,
            by_update_time: order == pb::EventOrder::UpdateTime,
            quality,
        };
        let page =
            self.app.page_request(&caller, &format!("ListEvents|{filter:?}|{order_by}"), page_size, &page_token)?;
        let page = if order == pb::EventOrder::QualityScore {
            if filter != (EventFilter { quality, ..Default::default() }) {
                return Err(AppError::invalid(
                    "order_by",
                    "ordering by quality score combines with max_quality_score and min_quality_score only",
                )
                .into());
            }
            self.app.list_by_quality(&caller, Kind::Event, quality, &page).await?
        } else {
            self.app.list_events(&caller, &filter, &page).await?
        };
        Ok(Response::new(pb::ListEventsResponse {
            events: page.items.iter().map(event).collect::<Result<_, _>>()?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn batch_get_events(
        &self,
        request: Request<pb::BatchGetEventsRequest>,
    ) -> Result<Response<pb::BatchGetEventsResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let events = self.batch_get(&caller, Kind::Event, &request.get_ref().ids).await?;
        Ok(Response::new(pb::BatchGetEventsResponse { events: events.iter().map(event).collect::<Result<_, _>>()? }))
    }

    async fn get_event_context(
        &self,
        request: Request<pb::GetEventContextRequest>,
    ) -> Result<Response<pb::EventContext>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::GetEventContextRequest { id, format } = request.into_inner();
        let id = parse_id("id", &id)?;
        let with_text = context_text(format)?;
        let found = self.app.event_contexts(&caller, &[id]).await?;
        Ok(Response::new(event_context(&found[0], with_text)?))
    }

    async fn batch_get_event_contexts(
        &self,
        request: Request<pb::BatchGetEventContextsRequest>,
    ) -> Result<Response<pb::BatchGetEventContextsResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::BatchGetEventContextsRequest { ids, format } = request.into_inner();
        let ids = super::convert::parse_ids("ids", &ids)?;
        let with_text = context_text(format)?;
        let found = self.app.event_contexts(&caller, &ids).await?;
        Ok(Response::new(pb::BatchGetEventContextsResponse {
            contexts: found.iter().map(|c| event_context(c, with_text)).collect::<Result<_, _>>()?,
        }))
    }

    async fn create_event(&self, request: Request<pb::CreateEventRequest>) -> Result<Response<pb::Event>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::CreateEventRequest { event: input, request_id } = request.into_inner();
        let created =
            self.create(&caller, Kind::Event, input.map(event_inputs), &request_id, "CreateEvent", "event.").await?;
        Ok(Response::new(event(&created)?))
    }

    async fn batch_create_events(
        &self,
        request: Request<pb::BatchCreateEventsRequest>,
    ) -> Result<Response<pb::BatchCreateEventsResponse>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::BatchCreateEventsRequest { requests, request_id } = request.into_inner();
        if requests.is_empty() || requests.len() > MAX_BATCH_CREATE {
            return Err(AppError::invalid("requests", format!("must hold 1 to {MAX_BATCH_CREATE} events")).into());
        }
        let items = requests.into_iter().map(|r| r.event.map(event_inputs)).collect();
        let created = self.create_many(&caller, Kind::Event, items, &request_id, "BatchCreateEvents", "event.").await?;
        Ok(Response::new(pb::BatchCreateEventsResponse {
            events: created.iter().map(event).collect::<Result<_, _>>()?,
        }))
    }

    async fn update_event(&self, request: Request<pb::UpdateEventRequest>) -> Result<Response<pb::Event>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::UpdateEventRequest { event: input, update_mask } = request.into_inner();
        let input = input.ok_or_else(|| AppError::invalid("event", "is required"))?;
        let (id, etag) = (input.id.clone(), input.etag.clone());
        let updated = self.update(&caller, Kind::Event, &id, &etag, event_inputs(input), update_mask, "event.").await?;
        Ok(Response::new(event(&updated)?))
    }

    async fn delete_event(&self, request: Request<pb::DeleteEventRequest>) -> Result<Response<()>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        self.delete(&caller, Kind::Event, &request.get_ref().id, &request.get_ref().etag).await?;
        Ok(Response::new(()))
    }

    async fn add_event_speaker(
        &self,
        request: Request<pb::AddEventSpeakerRequest>,
    ) -> Result<Response<pb::EventSpeaker>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let r = request.into_inner().event_speaker.unwrap_or_default();
        let attributes = speaker_attributes(&r);
        let added = self
            .add_relation(&caller, RelationKind::Speaker, &r.event_id, &r.speaker_id, attributes, "event_speaker.")
            .await?;
        Ok(Response::new(event_speaker(&added)?))
    }

    async fn batch_add_event_speakers(
        &self,
        request: Request<pb::BatchAddEventSpeakersRequest>,
    ) -> Result<Response<pb::BatchAddEventSpeakersResponse>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let items = request.into_inner().requests.into_iter().map(|r| {
            let r = r.event_speaker.unwrap_or_default();
            let attributes = speaker_attributes(&r);
            (r.event_id, r.speaker_id, attributes)
        });
        let added = self.add_relations(&caller, RelationKind::Speaker, items.collect(), "event_speaker.").await?;
        Ok(Response::new(pb::BatchAddEventSpeakersResponse {
            event_speakers: added.iter().map(event_speaker).collect::<Result<_, _>>()?,
        }))
    }

    async fn update_event_speaker(
        &self,
        request: Request<pb::UpdateEventSpeakerRequest>,
    ) -> Result<Response<pb::EventSpeaker>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::UpdateEventSpeakerRequest { event_speaker: r, update_mask } = request.into_inner();
        let r = r.unwrap_or_default();
        let attributes = speaker_attributes(&r);
        let updated = self
            .update_relation(
                &caller,
                RelationKind::Speaker,
                &r.event_id,
                &r.speaker_id,
                attributes,
                update_mask,
                "event_speaker.",
            )
            .await?;
        Ok(Response::new(event_speaker(&updated)?))
    }

    async fn remove_event_speaker(
        &self,
        request: Request<pb::RemoveEventSpeakerRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let r = request.get_ref();
        self.remove_relation(&caller, RelationKind::Speaker, &r.event_id, &r.speaker_id, "speaker_id").await
    }

    async fn list_event_speakers(
        &self,
        request: Request<pb::ListEventSpeakersRequest>,
    ) -> Result<Response<pb::ListEventSpeakersResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let r = request.get_ref();
        let page = self
            .list_relations(
                &caller,
                RelationKind::Speaker,
                From::Event,
                &r.event_id,
                "event_id",
                r.page_size,
                &r.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListEventSpeakersResponse {
            event_speakers: page.items.iter().map(event_speaker).collect::<Result<_, _>>()?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn add_event_company(
        &self,
        request: Request<pb::AddEventCompanyRequest>,
    ) -> Result<Response<pb::EventCompany>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let r = request.into_inner().event_company.unwrap_or_default();
        let attributes = company_attributes(&r);
        let added = self
            .add_relation(&caller, RelationKind::Company, &r.event_id, &r.company_id, attributes, "event_company.")
            .await?;
        Ok(Response::new(event_company(&added)?))
    }

    async fn batch_add_event_companies(
        &self,
        request: Request<pb::BatchAddEventCompaniesRequest>,
    ) -> Result<Response<pb::BatchAddEventCompaniesResponse>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let items = request.into_inner().requests.into_iter().map(|r| {
            let r = r.event_company.unwrap_or_default();
            let attributes = company_attributes(&r);
            (r.event_id, r.company_id, attributes)
        });
        let added = self.add_relations(&caller, RelationKind::Company, items.collect(), "event_company.").await?;
        Ok(Response::new(pb::BatchAddEventCompaniesResponse {
            event_companies: added.iter().map(event_company).collect::<Result<_, _>>()?,
        }))
    }

    async fn update_event_company(
        &self,
        request: Request<pb::UpdateEventCompanyRequest>,
    ) -> Result<Response<pb::EventCompany>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::UpdateEventCompanyRequest { event_company: r, update_mask } = request.into_inner();
        let r = r.unwrap_or_default();
        let attributes =
            vec![("relation", super::convert::enum_input(r.relation, crate::domain::catalogue::COMPANY_RELATIONS))];
        let updated = self
            .update_relation(
                &caller,
                RelationKind::Company,
                &r.event_id,
                &r.company_id,
                attributes,
                update_mask,
                "event_company.",
            )
            .await?;
        Ok(Response::new(event_company(&updated)?))
    }

    async fn remove_event_company(
        &self,
        request: Request<pb::RemoveEventCompanyRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let r = request.get_ref();
        self.remove_relation(&caller, RelationKind::Company, &r.event_id, &r.company_id, "company_id").await
    }

    async fn list_event_companies(
        &self,
        request: Request<pb::ListEventCompaniesRequest>,
    ) -> Result<Response<pb::ListEventCompaniesResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let r = request.get_ref();
        let page = self
            .list_relations(
                &caller,
                RelationKind::Company,
                From::Event,
                &r.event_id,
                "event_id",
                r.page_size,
                &r.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListEventCompaniesResponse {
            event_companies: page.items.iter().map(event_company).collect::<Result<_, _>>()?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn add_event_topic(
        &self,
        request: Request<pb::AddEventTopicRequest>,
    ) -> Result<Response<pb::EventTopic>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let r = request.into_inner().event_topic.unwrap_or_default();
        let attributes = topic_attributes(&r);
        let added = self
            .add_relation(&caller, RelationKind::Topic, &r.event_id, &r.topic_id, attributes, "event_topic.")
            .await?;
        Ok(Response::new(event_topic(&added)?))
    }

    async fn batch_add_event_topics(
        &self,
        request: Request<pb::BatchAddEventTopicsRequest>,
    ) -> Result<Response<pb::BatchAddEventTopicsResponse>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let items = request.into_inner().requests.into_iter().map(|r| {
            let r = r.event_topic.unwrap_or_default();
            let attributes = topic_attributes(&r);
            (r.event_id, r.topic_id, attributes)
        });
        let added = self.add_relations(&caller, RelationKind::Topic, items.collect(), "event_topic.").await?;
        Ok(Response::new(pb::BatchAddEventTopicsResponse {
            event_topics: added.iter().map(event_topic).collect::<Result<_, _>>()?,
        }))
    }

    async fn update_event_topic(
        &self,
        request: Request<pb::UpdateEventTopicRequest>,
    ) -> Result<Response<pb::EventTopic>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::UpdateEventTopicRequest { event_topic: r, update_mask } = request.into_inner();
        let r = r.unwrap_or_default();
        let attributes = vec![("relevance", Input::Float(r.relevance))];
        let updated = self
            .update_relation(
                &caller,
                RelationKind::Topic,
                &r.event_id,
                &r.topic_id,
                attributes,
                update_mask,
                "event_topic.",
            )
            .await?;
        Ok(Response::new(event_topic(&updated)?))
    }

    async fn remove_event_topic(&self, request: Request<pb::RemoveEventTopicRequest>) -> Result<Response<()>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let r = request.get_ref();
        self.remove_relation(&caller, RelationKind::Topic, &r.event_id, &r.topic_id, "topic_id").await
    }

    async fn list_event_topics(
        &self,
        request: Request<pb::ListEventTopicsRequest>,
    ) -> Result<Response<pb::ListEventTopicsResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let r = request.get_ref();
        let page = self
            .list_relations(
                &caller,
                RelationKind::Topic,
                From::Event,
                &r.event_id,
                "event_id",
                r.page_size,
                &r.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListEventTopicsResponse {
            event_topics: page.items.iter().map(event_topic).collect::<Result<_, _>>()?,
            next_page_token: page.next_page_token,
        }))
    }
}

fn speaker_attributes(r: &pb::EventSpeaker) -> Vec<(&'static str, Input)> {
    vec![
        ("role", super::convert::enum_input(r.role, crate::domain::catalogue::SPEAKER_ROLES)),
        ("talk_title", Input::Text(r.talk_title.clone())),
    ]
}

fn company_attributes(r: &pb::EventCompany) -> Vec<(&'static str, Input)> {
    vec![("relation", super::convert::enum_input(r.relation, crate::domain::catalogue::COMPANY_RELATIONS))]
}

fn topic_attributes(r: &pb::EventTopic) -> Vec<(&'static str, Input)> {
    vec![("relevance", Input::Float(r.relevance))]
}

/// One item of a batch of relation adds: event id, other id, attributes, as the request holds them.
type RelationItem = (String, String, Vec<(&'static str, Input)>);

/// Relation handlers shared by the three relation kinds.
impl Api {
    /// Adds the relations of a batch (`requests`), all or none: every item checked first, violations named by
    /// item (`requests[2].event_topic.topic_id`), a pair named twice refused.
    async fn add_relations(
        &self,
        caller: &crate::app::Caller,
        kind: RelationKind,
        items: Vec<RelationItem>,
        prefix: &'static str,
    ) -> Result<Vec<serde_json::Value>, Status> {
        if items.is_empty() || items.len() > MAX_BATCH_CREATE {
            return Err(AppError::invalid("requests", format!("must hold 1 to {MAX_BATCH_CREATE} relations")).into());
        }
        let mut checks = Checks::default();
        let mut relations = Vec::with_capacity(items.len());
        let mut seen = std::collections::HashMap::new();
        for (i, (event_id, other_id, attributes)) in items.iter().enumerate() {
            let item = format!("requests[{i}].{prefix}");
            let ids = checks.take(relation_ids(kind, event_id, other_id, &item));
            let columns = checks.take_violations(validate_create(kind.fields(), attributes, &item));
            let (Some((event_id, other_id)), Some(columns)) = (ids, columns) else { continue };
            let first = *seen.entry((event_id, other_id)).or_insert(i);
            if first != i {
                let mut repeated = crate::domain::fields::Violations::default();
                repeated.add(format!("{item}{}_id", kind.target().name()), format!("repeats requests[{first}]"));
                checks.add(repeated);
            }
            relations.push(NewRelation { event_id, other_id, columns });
        }
        checks.finish()?;
        Ok(self.app.add_relations(caller, kind, &relations, "requests", prefix).await?)
    }

    async fn add_relation(
        &self,
        caller: &crate::app::Caller,
        kind: RelationKind,
        event_id: &str,
        other_id: &str,
        attributes: Vec<(&'static str, Input)>,
        prefix: &'static str,
    ) -> Result<serde_json::Value, Status> {
        let (event_id, other_id) = relation_ids(kind, event_id, other_id, prefix)?;
        let columns = validate_create(kind.fields(), &attributes, prefix).map_err(AppError::InvalidArgument)?;
        Ok(self.app.add_relation(caller, kind, event_id, other_id, &columns, prefix).await?)
    }

    #[expect(clippy::too_many_arguments, reason = "mirrors the Update request fields")]
    async fn update_relation(
        &self,
        caller: &crate::app::Caller,
        kind: RelationKind,
        event_id: &str,
        other_id: &str,
        attributes: Vec<(&'static str, Input)>,
        mask: Option<prost_types::FieldMask>,
        prefix: &'static str,
    ) -> Result<serde_json::Value, Status> {
        let (event_id, other_id) = relation_ids(kind, event_id, other_id, prefix)?;
        let output_only = ["event_id", "speaker_id", "company_id", "topic_id", "create_time", "update_time"];
        let (columns, _) = validate_update(kind.fields(), &attributes, &mask_paths(mask), &output_only, prefix)
            .map_err(AppError::InvalidArgument)?;
        Ok(self.app.update_relation(caller, kind, event_id, other_id, &columns, prefix).await?)
    }

    async fn remove_relation(
        &self,
        caller: &crate::app::Caller,
        kind: RelationKind,
        event_id: &str,
        other_id: &str,
        other_field: &str,
    ) -> Result<Response<()>, Status> {
        let event_id = parse_id("event_id", event_id)?;
        let other_id = parse_id(other_field, other_id)?;
        self.app.remove_relation(caller, kind, event_id, other_id).await?;
        Ok(Response::new(()))
    }
}

fn relation_ids(
    kind: RelationKind,
    event_id: &str,
    other_id: &str,
    prefix: &str,
) -> Result<(uuid::Uuid, uuid::Uuid), AppError> {
    let other_field = format!("{prefix}{}_id", kind.target().name());
    Ok((parse_id(&format!("{prefix}event_id"), event_id)?, parse_id(&other_field, other_id)?))
}

/// Whether a context request asks for the text rendering.
fn context_text(format: i32) -> Result<bool, AppError> {
    match pb::ContextFormat::try_from(format) {
        Ok(pb::ContextFormat::Text) => Ok(true),
        Ok(_) => Ok(false),
        Err(_) => Err(AppError::invalid("format", "unknown format")),
    }
}
