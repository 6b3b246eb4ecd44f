//! `GraphService`.

use std::time::Duration;

use tonic::{Request, Response, Status};

use super::convert::parse_id;
use super::handlers::Api;
use super::resources::{event, speaker};
use crate::app::AppError;
use crate::app::graph::{GraphNode, NodeKey};
use crate::domain::api_key::Scope;
use crate::domain::catalogue::Kind;
use crate::domain::queries::EdgeKind;
use crate::proto::v1 as pb;
use crate::proto::v1::graph_service_server::GraphService;

/// Deepest neighbourhood.
pub const MAX_NEIGHBORHOOD_DEPTH: i32 = 3;
/// Default and largest node limit of a neighbourhood.
pub const NODE_LIMITS: (i32, i32) = (500, 10_000);
/// Longest path.
pub const MAX_PATH_DEPTH: i32 = 6;
/// Time a neighbourhood may take before it is returned truncated.
pub const NEIGHBORHOOD_BUDGET: Duration = Duration::from_secs(2);

fn node_kind(field: &str, value: i32) -> Result<Kind, AppError> {
    match pb::NodeType::try_from(value) {
        Ok(pb::NodeType::Event) => Ok(Kind::Event),
        Ok(pb::NodeType::Speaker) => Ok(Kind::Speaker),
        Ok(pb::NodeType::Company) => Ok(Kind::Company),
        Ok(pb::NodeType::Topic) => Ok(Kind::Topic),
        _ => Err(AppError::invalid(field, "must be EVENT, SPEAKER, COMPANY or TOPIC")),
    }
}

fn node_type(kind: Kind) -> i32 {
    match kind {
        Kind::Event => pb::NodeType::Event as i32,
        Kind::Speaker => pb::NodeType::Speaker as i32,
        Kind::Company => pb::NodeType::Company as i32,
        Kind::Topic | Kind::Media => pb::NodeType::Topic as i32,
    }
}

fn node_ref(field: &str, node: Option<pb::NodeRef>) -> Result<NodeKey, AppError> {
    let node = node.ok_or_else(|| AppError::invalid(field, "is required"))?;
    Ok((node_kind(&format!("{field}.type"), node.r#type)?, parse_id(&format!("{field}.id"), &node.id)?))
}

fn edge_kinds(kinds: &[i32]) -> Result<Vec<EdgeKind>, AppError> {
    if kinds.is_empty() {
        return Ok(vec![EdgeKind::SpeaksAt, EdgeKind::TakesPartIn, EdgeKind::About, EdgeKind::WorksAt]);
    }
    kinds
        .iter()
        .enumerate()
        .map(|(i, k)| match pb::EdgeKind::try_from(*k) {
            Ok(pb::EdgeKind::SpeaksAt) => Ok(EdgeKind::SpeaksAt),
            Ok(pb::EdgeKind::TakesPartIn) => Ok(EdgeKind::TakesPartIn),
            Ok(pb::EdgeKind::About) => Ok(EdgeKind::About),
            Ok(pb::EdgeKind::WorksAt) => Ok(EdgeKind::WorksAt),
            _ => Err(AppError::invalid(format!("edge_kinds[{i}]"), "unknown edge kind")),
        })
        .collect()
}

fn edge_kind(kind: EdgeKind) -> i32 {
    match kind {
        EdgeKind::SpeaksAt => pb::EdgeKind::SpeaksAt as i32,
        EdgeKind::TakesPartIn => pb::EdgeKind::TakesPartIn as i32,
        EdgeKind::About => pb::EdgeKind::About as i32,
        EdgeKind::WorksAt => pb::EdgeKind::WorksAt as i32,
    }
}

fn to_ref((kind, id): NodeKey) -> pb::NodeRef {
    pb::NodeRef { r#type: node_type(kind), id: id.to_string() }
}

fn to_node(node: GraphNode) -> pb::Node {
    pb::Node { r#type: node_type(node.key.0), id: node.key.1.to_string(), label: node.label, depth: node.depth as i32 }
}

fn to_edge((kind, from, to): (EdgeKind, NodeKey, NodeKey)) -> pb::Edge {
    pb::Edge { from: Some(to_ref(from)), to: Some(to_ref(to)), kind: edge_kind(kind) }
}

fn bounded(field: &str, value: i32, default: i32, max: i32) -> Result<i32, AppError> {
    match value {
        0 => Ok(default),
        n if (1..=max).contains(&n) => Ok(n),
        _ => Err(AppError::invalid(field, format!("must be 1 to {max}"))),
    }
}

#[tonic::async_trait]
impl GraphService for Api {
    async fn get_neighborhood(
        &self,
        request: Request<pb::GetNeighborhoodRequest>,
    ) -> Result<Response<pb::GetNeighborhoodResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::GetNeighborhoodRequest { start, depth, edge_kinds: kinds, node_limit } = request.into_inner();
        let start = node_ref("start", start)?;
        let depth = bounded("depth", depth, 1, MAX_NEIGHBORHOOD_DEPTH)?;
        let limit = bounded("node_limit", node_limit, NODE_LIMITS.0, NODE_LIMITS.1)?;
        let kinds = edge_kinds(&kinds)?;
        let found =
            self.app.neighborhood(&caller, start, depth as u32, &kinds, limit as usize, NEIGHBORHOOD_BUDGET).await?;
        Ok(Response::new(pb::GetNeighborhoodResponse {
            nodes: found.nodes.into_iter().map(to_node).collect(),
            edges: found.edges.into_iter().map(to_edge).collect(),
            truncated: found.truncated,
        }))
    }

    async fn find_path(&self, request: Request<pb::FindPathRequest>) -> Result<Response<pb::FindPathResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::FindPathRequest { from, to, max_depth, edge_kinds: kinds } = request.into_inner();
        let (from, to) = (node_ref("from", from)?, node_ref("to", to)?);
        let max_depth = bounded("max_depth", max_depth, MAX_PATH_DEPTH, MAX_PATH_DEPTH)?;
        let kinds = edge_kinds(&kinds)?;
        let response = match self.app.find_path(&caller, from, to, max_depth as u32, &kinds).await? {
            Some(path) => pb::FindPathResponse {
                found: true,
                nodes: path.nodes.into_iter().map(to_node).collect(),
                edges: path.edges.into_iter().map(to_edge).collect(),
            },
            None => pb::FindPathResponse { found: false, nodes: vec![], edges: vec![] },
        };
        Ok(Response::new(response))
    }

    async fn related_events(
        &self,
        request: Request<pb::RelatedEventsRequest>,
    ) -> Result<Response<pb::RelatedEventsResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::RelatedEventsRequest { event_id, limit, similarity_weight } = request.into_inner();
        let id = parse_id("event_id", &event_id)?;
        let limit = bounded("limit", limit, 10, 100)?;
        if !(0.0..=1.0).contains(&similarity_weight) {
            return Err(AppError::invalid("similarity_weight", "must be from 0 to 1").into());
        }
        let found = self.app.related_events(&caller, id, i64::from(limit), similarity_weight).await?;
        let events = found
            .into_iter()
            .map(|(e, s, c, t, score)| pb::RelatedEvent {
                event: Some(event(e)),
                shared_speakers: s as i32,
                shared_companies: c as i32,
                shared_topics: t as i32,
                score,
            })
            .collect();
        Ok(Response::new(pb::RelatedEventsResponse { events }))
    }

    async fn co_speakers(
        &self,
        request: Request<pb::CoSpeakersRequest>,
    ) -> Result<Response<pb::CoSpeakersResponse>, Status> {
        let caller = self.caller(&request, Scope::Read).await?;
        let pb::CoSpeakersRequest { speaker_id, limit } = request.into_inner();
        let id = parse_id("speaker_id", &speaker_id)?;
        let limit = bounded("limit", limit, 20, 100)?;
        let found = self.app.co_speakers(&caller, id, i64::from(limit)).await?;
        let speakers = found
            .into_iter()
            .map(|(s, n)| pb::CoSpeaker { speaker: Some(speaker(s)), shared_events: n as i32 })
            .collect();
        Ok(Response::new(pb::CoSpeakersResponse { speakers }))
    }
}
