//! `eventdata.v1.EventService`.

use tonic::{Request, Response, Status};

use super::convert::{known_enum, parse_id, parse_opt_id, quality_range, text_filter, time_filter};
use super::handlers::Api;
use super::resources::{event_context, event_from, event_inputs};
use crate::app::AppError;
use crate::domain::api_key::Scope;
use crate::domain::catalogue::{EVENT_STATUSES, Kind};
use crate::domain::fields::Input;
use crate::domain::queries::EventFilter;
use crate::proto::v1 as pb;
use crate::proto::v1::event_service_server::EventService;

/// Most events one BatchCreateEvents takes.
pub const MAX_BATCH_CREATE: usize = 500;

#[tonic::async_trait]
impl EventService for Api {
    async fn get_event(&self, request: Request<pb::GetEventRequest>) -> Result<Response<pb::Event>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        Ok(Response::new(event_from(self.get(&caller, Kind::Event, &request.get_ref().id).await?)?))
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
        let page = self.app.list_events(&caller, &filter, order == pb::EventOrder::QualityScore, &page).await?;
        Ok(Response::new(pb::ListEventsResponse {
            events: page.items.into_iter().map(event_from).collect::<Result<_, _>>()?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn batch_get_events(
        &self,
        request: Request<pb::BatchGetEventsRequest>,
    ) -> Result<Response<pb::BatchGetEventsResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let events = self.batch_get(&caller, Kind::Event, &request.get_ref().ids).await?;
        Ok(Response::new(pb::BatchGetEventsResponse {
            events: events.into_iter().map(event_from).collect::<Result<_, _>>()?,
        }))
    }

    async fn get_event_context(
        &self,
        request: Request<pb::GetEventContextRequest>,
    ) -> Result<Response<pb::EventContext>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::GetEventContextRequest { id, format } = request.into_inner();
        let id = parse_id("id", &id)?;
        let with_text = context_text(format)?;
        let found = self.app.event_contexts(&caller, &[id]).await?.into_iter().next();
        let found = found.ok_or_else(|| AppError::Internal(anyhow::anyhow!("a found context went missing")))?;
        Ok(Response::new(event_context(found, with_text)?))
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
            contexts: found.into_iter().map(|c| event_context(c, with_text)).collect::<Result<_, _>>()?,
        }))
    }

    async fn create_event(&self, request: Request<pb::CreateEventRequest>) -> Result<Response<pb::Event>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::CreateEventRequest { event: input, request_id } = request.into_inner();
        let created =
            self.create(&caller, Kind::Event, input.map(event_inputs), &request_id, "CreateEvent", "event.").await?;
        Ok(Response::new(event_from(created)?))
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
            events: created.into_iter().map(event_from).collect::<Result<_, _>>()?,
        }))
    }

    async fn update_event(&self, request: Request<pb::UpdateEventRequest>) -> Result<Response<pb::Event>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::UpdateEventRequest { event: input, update_mask } = request.into_inner();
        let input = input.ok_or_else(|| AppError::invalid("event", "is required"))?;
        let (id, etag) = (input.id.clone(), input.etag.clone());
        let updated = self.update(&caller, Kind::Event, &id, &etag, event_inputs(input), update_mask, "event.").await?;
        Ok(Response::new(event_from(updated)?))
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
        self.add_one(&caller, request.into_inner().event_speaker).await
    }

    async fn batch_add_event_speakers(
        &self,
        request: Request<pb::BatchAddEventSpeakersRequest>,
    ) -> Result<Response<pb::BatchAddEventSpeakersResponse>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let requests = request.into_inner().requests.into_iter().map(|r| r.event_speaker);
        Ok(Response::new(pb::BatchAddEventSpeakersResponse {
            event_speakers: self.add_batch(&caller, requests).await?,
        }))
    }

    async fn update_event_speaker(
        &self,
        request: Request<pb::UpdateEventSpeakerRequest>,
    ) -> Result<Response<pb::EventSpeaker>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::UpdateEventSpeakerRequest { event_speaker, update_mask } = request.into_inner();
        self.update_one(&caller, event_speaker, update_mask).await
    }

    async fn remove_event_speaker(
        &self,
        request: Request<pb::RemoveEventSpeakerRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let r = request.get_ref();
        self.remove_one::<pb::EventSpeaker>(&caller, &r.event_id, &r.speaker_id).await
    }

    async fn list_event_speakers(
        &self,
        request: Request<pb::ListEventSpeakersRequest>,
    ) -> Result<Response<pb::ListEventSpeakersResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let r = request.get_ref();
        let (event_speakers, next_page_token) =
            self.list_of_event(&caller, &r.event_id, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListEventSpeakersResponse { event_speakers, next_page_token }))
    }

    async fn add_event_company(
        &self,
        request: Request<pb::AddEventCompanyRequest>,
    ) -> Result<Response<pb::EventCompany>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        self.add_one(&caller, request.into_inner().event_company).await
    }

    async fn batch_add_event_companies(
        &self,
        request: Request<pb::BatchAddEventCompaniesRequest>,
    ) -> Result<Response<pb::BatchAddEventCompaniesResponse>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let requests = request.into_inner().requests.into_iter().map(|r| r.event_company);
        Ok(Response::new(pb::BatchAddEventCompaniesResponse {
            event_companies: self.add_batch(&caller, requests).await?,
        }))
    }

    async fn update_event_company(
        &self,
        request: Request<pb::UpdateEventCompanyRequest>,
    ) -> Result<Response<pb::EventCompany>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::UpdateEventCompanyRequest { event_company, update_mask } = request.into_inner();
        self.update_one(&caller, event_company, update_mask).await
    }

    async fn remove_event_company(
        &self,
        request: Request<pb::RemoveEventCompanyRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let r = request.get_ref();
        self.remove_one::<pb::EventCompany>(&caller, &r.event_id, &r.company_id).await
    }

    async fn list_event_companies(
        &self,
        request: Request<pb::ListEventCompaniesRequest>,
    ) -> Result<Response<pb::ListEventCompaniesResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let r = request.get_ref();
        let (event_companies, next_page_token) =
            self.list_of_event(&caller, &r.event_id, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListEventCompaniesResponse { event_companies, next_page_token }))
    }

    async fn add_event_topic(
        &self,
        request: Request<pb::AddEventTopicRequest>,
    ) -> Result<Response<pb::EventTopic>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        self.add_one(&caller, request.into_inner().event_topic).await
    }

    async fn batch_add_event_topics(
        &self,
        request: Request<pb::BatchAddEventTopicsRequest>,
    ) -> Result<Response<pb::BatchAddEventTopicsResponse>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let requests = request.into_inner().requests.into_iter().map(|r| r.event_topic);
        Ok(Response::new(pb::BatchAddEventTopicsResponse { event_topics: self.add_batch(&caller, requests).await? }))
    }

    async fn update_event_topic(
        &self,
        request: Request<pb::UpdateEventTopicRequest>,
    ) -> Result<Response<pb::EventTopic>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::UpdateEventTopicRequest { event_topic, update_mask } = request.into_inner();
        self.update_one(&caller, event_topic, update_mask).await
    }

    async fn remove_event_topic(&self, request: Request<pb::RemoveEventTopicRequest>) -> Result<Response<()>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let r = request.get_ref();
        self.remove_one::<pb::EventTopic>(&caller, &r.event_id, &r.topic_id).await
    }

    async fn list_event_topics(
        &self,
        request: Request<pb::ListEventTopicsRequest>,
    ) -> Result<Response<pb::ListEventTopicsResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let r = request.get_ref();
        let (event_topics, next_page_token) =
            self.list_of_event(&caller, &r.event_id, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListEventTopicsResponse { event_topics, next_page_token }))
    }
}

/// Whether a context request asks for the text rendering.
fn context_text(format: i32) -> Result<bool, AppError> {
    match pb::ContextFormat::try_from(format) {
        Ok(pb::ContextFormat::Text) => Ok(true),
        Ok(_) => Ok(false),
        Err(_) => Err(AppError::invalid("format", "unknown format")),
    }
}
