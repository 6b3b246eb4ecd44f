//! The gRPC API: one module per proto service, the shared handler steps, conversions and the error mapping.
//! Handlers call `app` only; they never see SQL.

pub mod auth;
pub mod changes;
pub mod convert;
pub mod events;
pub mod handlers;
pub mod media;
pub mod named;
pub mod resources;
pub mod status;

use crate::proto::v1::change_feed_service_server::ChangeFeedServiceServer;
use crate::proto::v1::company_service_server::CompanyServiceServer;
use crate::proto::v1::event_service_server::EventServiceServer;
use crate::proto::v1::media_service_server::MediaServiceServer;
use crate::proto::v1::speaker_service_server::SpeakerServiceServer;
use crate::proto::v1::topic_service_server::TopicServiceServer;
pub use handlers::Api;

/// Largest request the services accept (bytes); a BatchCreateEvents of 500 full events fits.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Fully qualified names of the catalogue services (reported individually by `grpc.health.v1`).
pub const SERVICE_NAMES: &[&str] = &[
    "eventdata.v1.EventService",
    "eventdata.v1.SpeakerService",
    "eventdata.v1.CompanyService",
    "eventdata.v1.TopicService",
    "eventdata.v1.MediaService",
    "eventdata.v1.ChangeFeedService",
];

/// The catalogue services as tonic routes.
pub fn catalogue_routes(api: Api) -> tonic::service::Routes {
    tonic::service::Routes::new(EventServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(SpeakerServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(CompanyServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(TopicServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(MediaServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(ChangeFeedServiceServer::new(api))
}
