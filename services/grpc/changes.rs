//! `eventdata.v1.ChangeFeedService`: the organization's change log, live and paged.

use std::pin::Pin;

use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert::{json_to_struct, parse_opt_id};
use super::handlers::Api;
use crate::app::AppError;
use crate::app::changes::Start;
use crate::domain::api_key::Scope;
use crate::domain::catalogue::Kind;
use crate::domain::change::LoggedChange;
use crate::domain::queries::FeedFilter;
use crate::proto::v1 as pb;
use crate::proto::v1::change_feed_service_server::ChangeFeedService;

/// The stream WatchChanges returns.
pub type ChangeStream = Pin<Box<dyn Stream<Item = Result<pb::Change, Status>> + Send>>;

#[tonic::async_trait]
impl ChangeFeedService for Api {
    type WatchChangesStream = ChangeStream;

    async fn watch_changes(
        &self,
        request: Request<pb::WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::WatchChangesRequest { after_cursor, start, resource_types } = request.into_inner();
        let filter = FeedFilter { resource_types: resource_types_filter(resource_types)?, ..Default::default() };
        let after = match after_cursor.as_str() {
            "" => None,
            cursor => Some(self.app.parse_change_cursor(&caller, "after_cursor", cursor)?),
        };
        let start = match pb::watch_changes_request::Start::try_from(start) {
            Ok(pb::watch_changes_request::Start::Beginning) => Start::Beginning,
            Ok(_) => Start::Now,
            Err(_) => return Err(AppError::invalid("start", "unknown start").into()),
        };
        let receiver = self.app.watch_changes(caller, after, start, filter).await?;
        let stream = tokio_stream::StreamExt::map(ReceiverStream::new(receiver), |item| match item {
            Ok((change, cursor)) => Ok(to_proto(change, cursor)),
            Err(err) => Err(Status::from(err)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_changes(
        &self,
        request: Request<pb::ListChangesRequest>,
    ) -> Result<Response<pb::ListChangesResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::ListChangesRequest { page_size, page_token, resource_types, resource_id, actor_key_id, after_cursor } =
            request.into_inner();
        let filter = FeedFilter {
            resource_types: resource_types_filter(resource_types)?,
            resource_id: parse_opt_id("resource_id", resource_id.as_deref())?,
            actor_key_id: parse_opt_id("actor_key_id", actor_key_id.as_deref())?,
        };
        let after = match after_cursor.as_str() {
            "" => None,
            cursor => Some(self.app.parse_change_cursor(&caller, "after_cursor", cursor)?),
        };
        let page = self.app.list_changes(&caller, &filter, after, page_size, &page_token).await?;
        Ok(Response::new(pb::ListChangesResponse {
            changes: page.changes.into_iter().map(|(change, cursor)| to_proto(change, cursor)).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

fn resource_types_filter(types: Vec<String>) -> Result<Vec<String>, Status> {
    for (i, t) in types.iter().enumerate() {
        if !Kind::ALL.iter().any(|k| k.name() == t) {
            return Err(AppError::invalid(
                format!("resource_types[{i}]"),
                "must be event, speaker, company, topic or media",
            )
            .into());
        }
    }
    Ok(types)
}

fn to_proto(change: LoggedChange, cursor: String) -> pb::Change {
    let payload =
        serde_json::from_str::<serde_json::Value>(&change.payload).ok().and_then(|v| v.as_object().map(json_to_struct));
    pb::Change {
        id: change.change_id.to_string(),
        position: change.position,
        org_id: change.org_id.to_string(),
        resource_type: change.aggregate_type,
        resource_id: change.aggregate_id.to_string(),
        r#type: change.change_type,
        payload,
        actor_key_id: change.actor_key_id.map(|id| id.to_string()).unwrap_or_default(),
        traceparent: change.traceparent.unwrap_or_default(),
        tracestate: change.tracestate.unwrap_or_default(),
        create_time: Some(prost_types::Timestamp {
            seconds: change.created_at.timestamp(),
            nanos: change.created_at.timestamp_subsec_nanos() as i32,
        }),
        cursor,
    }
}
