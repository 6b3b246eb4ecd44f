//! The workloads: which RPC each call makes, with which sampled ids.

use http::uri::PathAndQuery;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::grpc::codec::ProtoCodec;
use crate::proto::v1 as pb;
use pb::embedding_service_client::EmbeddingServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;

/// One kind of call, or a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// CreateEvent with a new event each call.
    Create,
    /// BatchCreateEvents with [`BATCH_CREATE_SIZE`] new events each call.
    BatchCreate,
    /// GetEvent of a sampled event.
    Get,
    /// ListEvents, 50 a page, filtered by a country.
    List,
    /// SimilarEvents (k = 10, default ef_search) like a sampled embedded event.
    Similar,
    /// SearchEvents (full text) for a topic word.
    Text,
    /// HybridSearchEvents: a topic word and a sampled embedding, k = 10.
    Hybrid,
    /// LookupNames of speakers: a sampled speaker's name with its last letter dropped (a typo), 10 candidates.
    Lookup,
    /// GetNeighborhood of a sampled speaker, depth 2, at most 500 nodes.
    Neighborhood,
    /// FindPath between two sampled speakers (at most 6 edges).
    Path,
    /// Reads and writes in the proportions of an interactive client.
    Mixed,
}

/// Words to search for; every seeded description names topics.
pub const WORDS: &[&str] = &[
    "kubernetes",
    "rust",
    "databases",
    "observability",
    "security",
    "python",
    "search",
    "compilers",
    "robotics",
    "serverless",
    "privacy",
    "postgresql",
    "networking",
    "frontend",
    "testing",
];
/// Events per BatchCreateEvents call of the `batch-create` workload.
pub const BATCH_CREATE_SIZE: usize = 100;

/// A new event as an API client would create it.
fn new_event() -> pb::Event {
    let id = uuid::Uuid::now_v7().simple().to_string();
    pb::Event {
        name: format!("Loadgen Event {id}"),
        slug: format!("loadgen-{id}"),
        description: Some("Created by eventdata loadgen.".into()),
        city: Some("Berlin".into()),
        country: Some("DE".into()),
        ..Default::default()
    }
}

const COUNTRIES: &[&str] = &["DE", "FR", "GB", "US", "NL", "ES", "JP", "IN", "BR", "CA"];

impl Workload {
    /// Resources one successful call writes or reads as its unit of work (events per batch create; 1 otherwise).
    pub fn items_per_call(self) -> usize {
        match self {
            Workload::BatchCreate => BATCH_CREATE_SIZE,
            _ => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::BatchCreate => "batch-create",
            Workload::Get => "get",
            Workload::List => "list",
            Workload::Similar => "similar",
            Workload::Text => "text",
            Workload::Hybrid => "hybrid",
            Workload::Lookup => "lookup",
            Workload::Neighborhood => "neighborhood",
            Workload::Path => "path",
            Workload::Mixed => "mixed",
        }
    }

    /// Makes call number `n`.
    pub(super) async fn call(self, clients: &Clients, sample: &Sample, n: u64) -> Result<(), Status> {
        let pick = spread(n);
        let workload = match self {
            // 40 % get, 15 % list, 10 % each create/text/similar, 5 % each hybrid/neighbourhood/path.
            Workload::Mixed => match pick % 20 {
                0..=7 => Workload::Get,
                8..=10 => Workload::List,
                11 | 12 => Workload::Create,
                13 | 14 => Workload::Text,
                15 | 16 => Workload::Similar,
                17 => Workload::Hybrid,
                18 => Workload::Neighborhood,
                _ => Workload::Path,
            },
            other => other,
        };
        let pick = (pick / 20) as usize;
        match workload {
            Workload::Create => {
                let request = pb::CreateEventRequest { event: Some(new_event()), request_id: String::new() };
                clients.call("/eventdata.v1.EventService/CreateEvent", request).await
            }
            Workload::BatchCreate => {
                let requests = (0..BATCH_CREATE_SIZE)
                    .map(|_| pb::CreateEventRequest { event: Some(new_event()), request_id: String::new() })
                    .collect();
                let request = pb::BatchCreateEventsRequest { requests, request_id: String::new() };
                clients.call("/eventdata.v1.EventService/BatchCreateEvents", request).await
            }
            // Mixed has resolved to one of the others above.
            Workload::Get | Workload::Mixed => {
                let id = sample.events[pick % sample.events.len()].clone();
                clients.call("/eventdata.v1.EventService/GetEvent", pb::GetEventRequest { id }).await
            }
            Workload::List => {
                let request = pb::ListEventsRequest {
                    page_size: 50,
                    country: Some(COUNTRIES[pick % COUNTRIES.len()].into()),
                    ..Default::default()
                };
                clients.call("/eventdata.v1.EventService/ListEvents", request).await
            }
            Workload::Similar => {
                let like = sample.embedded[pick % sample.embedded.len()].0.clone();
                let request = pb::SimilarEventsRequest {
                    query: Some(pb::SimilarityQuery { query: Some(pb::similarity_query::Query::LikeId(like)) }),
                    k: 10,
                    ..Default::default()
                };
                clients.call("/eventdata.v1.SearchService/SimilarEvents", request).await
            }
            Workload::Text => {
                let request = pb::SearchEventsRequest {
                    query: WORDS[pick % WORDS.len()].into(),
                    page_size: 20,
                    ..Default::default()
                };
                clients.call("/eventdata.v1.SearchService/SearchEvents", request).await
            }
            Workload::Hybrid => {
                let vector = sample.embedded[pick % sample.embedded.len()].1.clone();
                let request = pb::HybridSearchEventsRequest {
                    text: WORDS[pick % WORDS.len()].into(),
                    vector: Some(pb::VectorQuery { values: vector }),
                    k: 10,
                    ..Default::default()
                };
                clients.call("/eventdata.v1.SearchService/HybridSearchEvents", request).await
            }
            Workload::Lookup => {
                let name = &sample.speaker_names[pick % sample.speaker_names.len()];
                let typo: String = name.chars().take(name.chars().count().saturating_sub(1)).collect();
                let request = pb::LookupNamesRequest {
                    resource_type: "speaker".into(),
                    name: typo,
                    limit: 10,
                    ..Default::default()
                };
                clients.call("/eventdata.v1.SearchService/LookupNames", request).await
            }
            Workload::Neighborhood => {
                let id = sample.speakers[pick % sample.speakers.len()].clone();
                let request = pb::GetNeighborhoodRequest {
                    start: Some(pb::NodeRef { r#type: pb::NodeType::Speaker as i32, id }),
                    depth: 2,
                    node_limit: 500,
                    ..Default::default()
                };
                clients.call("/eventdata.v1.GraphService/GetNeighborhood", request).await
            }
            Workload::Path => {
                let speakers = &sample.speakers;
                let from = speakers[pick % speakers.len()].clone();
                let to = speakers[(pick / speakers.len().max(1) + pick * 7 + 1) % speakers.len()].clone();
                let node = |id| Some(pb::NodeRef { r#type: pb::NodeType::Speaker as i32, id });
                let request = pb::FindPathRequest { from: node(from), to: node(to), ..Default::default() };
                clients.call("/eventdata.v1.GraphService/FindPath", request).await
            }
        }
    }
}

/// A well-mixed number from a call counter (splitmix64), so consecutive calls pick unrelated ids.
fn spread(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Adds the API key to every call.
#[derive(Clone)]
pub(super) struct Bearer(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// The clients of one connection.
pub(super) struct Clients {
    /// For the calls of a run, which skip their responses ([`Clients::call`]).
    channel: Authed,
    events: EventServiceClient<Authed>,
    speakers: SpeakerServiceClient<Authed>,
    embeddings: EmbeddingServiceClient<Authed>,
}

impl Clients {
    pub(super) fn new(channel: Channel, key: &str) -> anyhow::Result<Clients> {
        let bearer = Bearer(format!("Bearer {key}").parse().map_err(|_| anyhow::anyhow!("the API key is not ASCII"))?);
        let authed = InterceptedService::new(channel, bearer);
        Ok(Clients {
            channel: authed.clone(),
            events: EventServiceClient::new(authed.clone()),
            speakers: SpeakerServiceClient::new(authed.clone()),
            embeddings: EmbeddingServiceClient::new(authed),
        })
    }
}

impl Clients {
    /// Calls `method` (its path, `/eventdata.v1.Service/Method`) and reads the response only as far as gRPC needs: its
    /// status, and the message's top-level fields skipped, not decoded. pgbench, the raw ceiling beside it,
    /// receives its rows without parsing their JSON; decoding 50 events a call here took the generator itself 230
    /// µs of CPU (on the same two cores as the service and PostgreSQL, so it lowered the service's figure).
    /// Responses are decoded in full by the tests and by the sampling before a run.
    async fn call<M: prost::Message + Send + 'static>(&self, method: &'static str, request: M) -> Result<(), Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready().await.map_err(|e| Status::unavailable(format!("the connection is not ready: {e}")))?;
        let path = PathAndQuery::from_static(method);
        grpc.unary(Request::new(request), path, ProtoCodec::<M, Skipped>::default()).await.map(drop)
    }
}

/// Any message, its fields skipped (see [`Clients::call`]).
#[derive(Clone, PartialEq, prost::Message)]
struct Skipped {}

/// Ids (and a few embeddings) of the organization's data, read through the API before the run.
pub(super) struct Sample {
    events: Vec<String>,
    speakers: Vec<String>,
    /// The sampled speakers' names, in the same order.
    speaker_names: Vec<String>,
    /// Events with an embedding, and the embedding.
    embedded: Vec<(String, Vec<f32>)>,
}

/// How many ids of each kind to sample.
const SAMPLE: usize = 2_000;
/// How many embedded events to find for similar and hybrid.
const EMBEDDED: usize = 50;

impl Sample {
    pub(super) async fn collect(clients: &Clients, workload: Workload) -> anyhow::Result<Sample> {
        let mut events = Vec::new();
        let mut page_token = String::new();
        while events.len() < SAMPLE {
            let request = pb::ListEventsRequest { page_size: 1000, page_token, ..Default::default() };
            let page = clients.events.clone().list_events(request).await?.into_inner();
            events.extend(page.events.into_iter().map(|e| e.id));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let request = pb::ListSpeakersRequest { page_size: 1000, ..Default::default() };
        let speakers = clients.speakers.clone().list_speakers(request).await?.into_inner().speakers;
        let speaker_names = speakers.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        let speakers = speakers.into_iter().map(|s| s.id).collect::<Vec<_>>();
        let mut embedded = Vec::new();
        if matches!(workload, Workload::Similar | Workload::Hybrid | Workload::Mixed) {
            for id in &events {
                let request =
                    pb::GetEmbeddingRequest { resource_type: pb::EmbeddedType::Event as i32, resource_id: id.clone() };
                if let Ok(found) = clients.embeddings.clone().get_embedding(request).await {
                    embedded.push((id.clone(), found.into_inner().values));
                    if embedded.len() >= EMBEDDED {
                        break;
                    }
                }
            }
        }
        let needs = |what: &str, empty: bool, needed: bool| {
            if empty && needed {
                anyhow::bail!("the organization has no {what}: seed it first (eventdata seed --org ...)")
            }
            Ok(())
        };
        let mixed = workload == Workload::Mixed;
        needs("events", events.is_empty(), matches!(workload, Workload::Get) || mixed)?;
        let speaker_workload = matches!(workload, Workload::Neighborhood | Workload::Path | Workload::Lookup);
        needs("speakers", speakers.is_empty(), speaker_workload || mixed)?;
        needs(
            "embedded events",
            embedded.is_empty(),
            matches!(workload, Workload::Similar | Workload::Hybrid) || mixed,
        )?;
        Ok(Sample { events, speakers, speaker_names, embedded })
    }
}
