//! `SpeakerService`, `CompanyService` and `TopicService`: the same eight methods over resources identified by a
//! normalized name, written once as a macro over the generated types; only their list filters differ.

use tonic::{Request, Response, Status};

use super::convert::{known_enum, parse_opt_id, quality_range, text_filter};
use super::handlers::Api;
use super::resources::{
    company_from, company_inputs, event_company_from, event_speaker_from, event_topic_from, speaker_from,
    speaker_inputs, topic_from, topic_inputs,
};
use crate::app::AppError;
use crate::domain::api_key::Scope;
use crate::domain::catalogue::{Kind, RelationKind};
use crate::domain::queries::From;
use crate::domain::queries::SimpleFilter;
use crate::proto::v1 as pb;

macro_rules! named_service {
    (
        $service_mod:ident :: $service:ident for $kind:expr, $relation:expr, field $field:ident, prefix $prefix:literal,
        inputs $inputs:path, render $render:path, render_relation $render_relation:path,
        get $get:ident($get_req:ident) -> $msg:ident,
        list $list:ident($list_req:ident) -> $list_resp:ident.$items:ident,
        batch $batch:ident($batch_req:ident) -> $batch_resp:ident,
        create $create:ident($create_req:ident, $create_method:literal),
        update $update:ident($update_req:ident),
        delete $delete:ident($delete_req:ident),
        upsert $upsert:ident($upsert_req:ident) -> $upsert_resp:ident,
        events $events:ident($events_req:ident, $anchor:ident) -> $events_resp:ident.$relations:ident,
        filter $filter:path
    ) => {
        #[tonic::async_trait]
        impl pb::$service_mod::$service for Api {
            async fn $get(&self, request: Request<pb::$get_req>) -> Result<Response<pb::$msg>, Status> {
                let caller = self.caller(&request, Scope::Read).await?;
                Ok(Response::new($render(self.get(&caller, $kind, &request.get_ref().id).await?)?))
            }

            async fn $list(&self, request: Request<pb::$list_req>) -> Result<Response<pb::$list_resp>, Status> {
                let caller = self.caller(&request, Scope::Read).await?;
                let r = request.get_ref();
                let (filter, by_quality) = $filter(r)?;
                let query = format!("{}|{filter:?}|{by_quality}", stringify!($list));
                let page = if by_quality {
                    self.list_by_quality(&caller, $kind, &filter, &query, r.page_size, &r.page_token).await?
                } else {
                    self.list_by_id(&caller, $kind, &filter, None, &query, r.page_size, &r.page_token).await?
                };
                Ok(Response::new(pb::$list_resp {
                    $items: page.items.into_iter().map($render).collect::<Result<_, _>>()?,
                    next_page_token: page.next_page_token,
                }))
            }

            async fn $batch(&self, request: Request<pb::$batch_req>) -> Result<Response<pb::$batch_resp>, Status> {
                let caller = self.caller(&request, Scope::Read).await?;
                let found = self.batch_get(&caller, $kind, &request.get_ref().ids).await?;
                Ok(Response::new(pb::$batch_resp { $items: found.into_iter().map($render).collect::<Result<_, _>>()? }))
            }

            async fn $create(&self, request: Request<pb::$create_req>) -> Result<Response<pb::$msg>, Status> {
                let caller = self.caller(&request, Scope::Write).await?;
                let pb::$create_req { $field: input, request_id } = request.into_inner();
                let created =
                    self.create(&caller, $kind, input.map($inputs), &request_id, $create_method, $prefix).await?;
                Ok(Response::new($render(created)?))
            }

            async fn $update(&self, request: Request<pb::$update_req>) -> Result<Response<pb::$msg>, Status> {
                let caller = self.caller(&request, Scope::Write).await?;
                let pb::$update_req { $field: input, update_mask } = request.into_inner();
                let input = input.ok_or_else(|| crate::app::AppError::invalid(stringify!($field), "is required"))?;
                let (id, etag) = (input.id.clone(), input.etag.clone());
                let updated = self.update(&caller, $kind, &id, &etag, $inputs(input), update_mask, $prefix).await?;
                Ok(Response::new($render(updated)?))
            }

            async fn $delete(&self, request: Request<pb::$delete_req>) -> Result<Response<()>, Status> {
                let caller = self.caller(&request, Scope::Write).await?;
                self.delete(&caller, $kind, &request.get_ref().id, &request.get_ref().etag).await?;
                Ok(Response::new(()))
            }

            async fn $upsert(&self, request: Request<pb::$upsert_req>) -> Result<Response<pb::$upsert_resp>, Status> {
                let caller = self.caller(&request, Scope::Write).await?;
                let input = request.into_inner().$field.map($inputs);
                let (resource, created) = self.upsert(&caller, $kind, input, $prefix).await?;
                Ok(Response::new(pb::$upsert_resp { $field: Some($render(resource)?), created }))
            }

            async fn $events(&self, request: Request<pb::$events_req>) -> Result<Response<pb::$events_resp>, Status> {
                let caller = self.caller(&request, Scope::Read).await?;
                let r = request.get_ref();
                let field = stringify!($anchor);
                let page = self
                    .list_relations(&caller, $relation, From::Other, &r.$anchor, field, r.page_size, &r.page_token)
                    .await?;
                Ok(Response::new(pb::$events_resp {
                    $relations: page.items.into_iter().map($render_relation).collect::<Result<_, _>>()?,
                    next_page_token: page.next_page_token,
                }))
            }
        }
    };
}

named_service! {
    speaker_service_server::SpeakerService for Kind::Speaker, RelationKind::Speaker, field speaker, prefix "speaker.",
    inputs speaker_inputs, render speaker_from, render_relation event_speaker_from,
    get get_speaker(GetSpeakerRequest) -> Speaker,
    list list_speakers(ListSpeakersRequest) -> ListSpeakersResponse.speakers,
    batch batch_get_speakers(BatchGetSpeakersRequest) -> BatchGetSpeakersResponse,
    create create_speaker(CreateSpeakerRequest, "CreateSpeaker"),
    update update_speaker(UpdateSpeakerRequest),
    delete delete_speaker(DeleteSpeakerRequest),
    upsert upsert_speaker(UpsertSpeakerRequest) -> UpsertSpeakerResponse,
    events list_speaker_events(ListSpeakerEventsRequest, speaker_id) -> ListSpeakerEventsResponse.event_speakers,
    filter speaker_filter
}

named_service! {
    company_service_server::CompanyService for Kind::Company, RelationKind::Company, field company, prefix "company.",
    inputs company_inputs, render company_from, render_relation event_company_from,
    get get_company(GetCompanyRequest) -> Company,
    list list_companies(ListCompaniesRequest) -> ListCompaniesResponse.companies,
    batch batch_get_companies(BatchGetCompaniesRequest) -> BatchGetCompaniesResponse,
    create create_company(CreateCompanyRequest, "CreateCompany"),
    update update_company(UpdateCompanyRequest),
    delete delete_company(DeleteCompanyRequest),
    upsert upsert_company(UpsertCompanyRequest) -> UpsertCompanyResponse,
    events list_company_events(ListCompanyEventsRequest, company_id) -> ListCompanyEventsResponse.event_companies,
    filter company_filter
}

named_service! {
    topic_service_server::TopicService for Kind::Topic, RelationKind::Topic, field topic, prefix "topic.",
    inputs topic_inputs, render topic_from, render_relation event_topic_from,
    get get_topic(GetTopicRequest) -> Topic,
    list list_topics(ListTopicsRequest) -> ListTopicsResponse.topics,
    batch batch_get_topics(BatchGetTopicsRequest) -> BatchGetTopicsResponse,
    create create_topic(CreateTopicRequest, "CreateTopic"),
    update update_topic(UpdateTopicRequest),
    delete delete_topic(DeleteTopicRequest),
    upsert upsert_topic(UpsertTopicRequest) -> UpsertTopicResponse,
    events list_topic_events(ListTopicEventsRequest, topic_id) -> ListTopicEventsResponse.event_topics,
    filter topic_filter
}

fn prefix(raw: &Option<String>) -> Result<Option<String>, AppError> {
    text_filter("name_prefix", raw.clone().filter(|p| !p.trim().is_empty()))
}

/// A listing's filter, and whether it is ordered by quality score.
type Listing = (SimpleFilter, bool);

fn speaker_filter(r: &pb::ListSpeakersRequest) -> Result<Listing, Status> {
    let equals =
        parse_opt_id("company_id", r.company_id.as_deref())?.map(|id| ("company_id", id)).into_iter().collect();
    let quality = quality_range(r.min_quality_score, r.max_quality_score)?;
    let order = known_enum::<pb::ListOrder>("order_by", r.order_by)?;
    let filter = SimpleFilter { equals, name_prefix: prefix(&r.name_prefix)?, quality };
    Ok((filter, order == pb::ListOrder::QualityScore))
}

fn company_filter(r: &pb::ListCompaniesRequest) -> Result<Listing, Status> {
    let quality = quality_range(r.min_quality_score, r.max_quality_score)?;
    let order = known_enum::<pb::ListOrder>("order_by", r.order_by)?;
    let filter = SimpleFilter { equals: Vec::new(), name_prefix: prefix(&r.name_prefix)?, quality };
    Ok((filter, order == pb::ListOrder::QualityScore))
}

fn topic_filter(r: &pb::ListTopicsRequest) -> Result<Listing, Status> {
    let equals = parse_opt_id("parent_id", r.parent_id.as_deref())?.map(|id| ("parent_id", id)).into_iter().collect();
    Ok((SimpleFilter { equals, name_prefix: prefix(&r.name_prefix)?, ..Default::default() }, false))
}
