//! `eventdata.v1.MediaService`.

use tonic::{Request, Response, Status};

use super::convert::parse_id;
use super::handlers::Api;
use super::resources::{media_from, media_inputs};
use crate::app::AppError;
use crate::domain::api_key::Scope;
use crate::domain::catalogue::Kind;
use crate::domain::queries::SimpleFilter;
use crate::proto::v1 as pb;
use crate::proto::v1::media_service_server::MediaService;

#[tonic::async_trait]
impl MediaService for Api {
    async fn get_media(&self, request: Request<pb::GetMediaRequest>) -> Result<Response<pb::Media>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        Ok(Response::new(media_from(self.get(&caller, Kind::Media, &request.get_ref().id).await?)?))
    }

    async fn list_media(
        &self,
        request: Request<pb::ListMediaRequest>,
    ) -> Result<Response<pb::ListMediaResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let r = request.get_ref();
        let event_id = parse_id("event_id", &r.event_id)?;
        let filter = SimpleFilter { equals: vec![("event_id", event_id)], ..Default::default() };
        let query = format!("ListMedia|{event_id}");
        let parent = Some((Kind::Event, event_id));
        let page = self.list_by_id(&caller, Kind::Media, &filter, parent, &query, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListMediaResponse {
            media: page.items.into_iter().map(media_from).collect::<Result<_, _>>()?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn batch_get_media(
        &self,
        request: Request<pb::BatchGetMediaRequest>,
    ) -> Result<Response<pb::BatchGetMediaResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let found = self.batch_get(&caller, Kind::Media, &request.get_ref().ids).await?;
        Ok(Response::new(pb::BatchGetMediaResponse {
            media: found.into_iter().map(media_from).collect::<Result<_, _>>()?,
        }))
    }

    async fn create_media(&self, request: Request<pb::CreateMediaRequest>) -> Result<Response<pb::Media>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::CreateMediaRequest { media: input, request_id } = request.into_inner();
        let created =
            self.create(&caller, Kind::Media, input.map(media_inputs), &request_id, "CreateMedia", "media.").await?;
        Ok(Response::new(media_from(created)?))
    }

    async fn update_media(&self, request: Request<pb::UpdateMediaRequest>) -> Result<Response<pb::Media>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        let pb::UpdateMediaRequest { media: input, update_mask } = request.into_inner();
        let input = input.ok_or_else(|| AppError::invalid("media", "is required"))?;
        let (id, etag) = (input.id.clone(), input.etag.clone());
        let updated = self.update(&caller, Kind::Media, &id, &etag, media_inputs(input), update_mask, "media.").await?;
        Ok(Response::new(media_from(updated)?))
    }

    async fn delete_media(&self, request: Request<pb::DeleteMediaRequest>) -> Result<Response<()>, Status> {
        let caller = self.caller(&request, Scope::Write).await?;
        self.delete(&caller, Kind::Media, &request.get_ref().id, &request.get_ref().etag).await?;
        Ok(Response::new(()))
    }
}
