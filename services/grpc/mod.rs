//! The gRPC API: one module per proto service, the shared handler steps, conversions and the error mapping.
//! Handlers call `app` only; they never see SQL.

pub mod auth;
pub mod changes;
pub mod coalesced_writes;
pub mod codec;
pub mod consistency;
pub mod convert;
pub mod events;
pub mod graph;
pub mod handlers;
pub mod media;
pub mod named;
pub mod relations;
pub mod resources;
pub mod search;
pub mod status;
pub mod telemetry;

use crate::proto::v1::change_feed_service_server::ChangeFeedServiceServer;
use crate::proto::v1::company_service_server::CompanyServiceServer;
use crate::proto::v1::embedding_service_server::EmbeddingServiceServer;
use crate::proto::v1::event_service_server::EventServiceServer;
use crate::proto::v1::graph_service_server::GraphServiceServer;
use crate::proto::v1::media_service_server::MediaServiceServer;
use crate::proto::v1::search_service_server::SearchServiceServer;
use crate::proto::v1::speaker_service_server::SpeakerServiceServer;
use crate::proto::v1::topic_service_server::TopicServiceServer;
pub use handlers::Api;

/// Fully qualified names of the eventdata services (reported individually by `grpc.health.v1`).
pub const SERVICE_NAMES: &[&str] = &[
    "eventdata.v1.EventService",
    "eventdata.v1.SpeakerService",
    "eventdata.v1.CompanyService",
    "eventdata.v1.TopicService",
    "eventdata.v1.MediaService",
    "eventdata.v1.ChangeFeedService",
    "eventdata.v1.EmbeddingService",
    "eventdata.v1.SearchService",
    "eventdata.v1.GraphService",
];

/// Every eventdata service as tonic routes, accepting requests up to `max_request_bytes` (larger ones get
/// OUT_OF_RANGE with the limit in the message).
pub fn routes(api: Api, max_request_bytes: usize) -> tonic::service::Routes {
    #[expect(non_snake_case, reason = "reads like the constant it replaces")]
    let MAX_REQUEST_BYTES = max_request_bytes;
    tonic::service::Routes::new(EventServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(SpeakerServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(CompanyServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(TopicServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(MediaServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(ChangeFeedServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(EmbeddingServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(SearchServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(GraphServiceServer::new(api).max_decoding_message_size(MAX_REQUEST_BYTES))
}
