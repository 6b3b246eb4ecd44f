//! Graph traversals: a breadth-first neighbourhood that stops expanding at the node limit or the time budget, and
//! a bidirectional breadth-first shortest path that always grows the smaller frontier.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use sqlx::PgConnection;
use uuid::Uuid;

use super::{App, AppError, Caller};
use crate::domain::catalogue::Kind;
use crate::domain::resources::{Event, Speaker};
use crate::store::graph::{self, EdgeKind, Frontier};
use crate::store::lists::exists;

/// A node: its kind (event, speaker, company or topic) and id.
pub type NodeKey = (Kind, Uuid);

/// A node in a result, with its name and depth (or position on a path).
#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    /// Kind and id.
    pub key: NodeKey,
    /// Name.
    pub label: String,
    /// Depth or position.
    pub depth: u32,
}

/// A neighbourhood.
#[derive(Debug, Clone, Default)]
pub struct Neighborhood {
    /// Nodes by depth.
    pub nodes: Vec<GraphNode>,
    /// Edges followed between returned nodes.
    pub edges: Vec<(EdgeKind, NodeKey, NodeKey)>,
    /// Whether a limit cut it.
    pub truncated: bool,
}

/// A path: nodes from start to end, and the edges between consecutive ones.
#[derive(Debug, Clone, Default)]
pub struct Path {
    /// Nodes in order.
    pub nodes: Vec<GraphNode>,
    /// Edges in order.
    pub edges: Vec<(EdgeKind, NodeKey, NodeKey)>,
}

/// A related event: the event, shared speakers, companies and topics, and its score.
pub type RelatedEvent = (Event, i64, i64, i64, f64);

/// For each node a search side reached: the previous node towards that side's root, the edge kind, the distance.
type Parents = HashMap<NodeKey, (Option<NodeKey>, Option<EdgeKind>, u32)>;

/// The two ends of an edge row as nodes.
fn ends(kind: EdgeKind, a: Uuid, b: Uuid) -> (NodeKey, NodeKey) {
    match kind {
        EdgeKind::SpeaksAt => ((Kind::Event, a), (Kind::Speaker, b)),
        EdgeKind::TakesPartIn => ((Kind::Event, a), (Kind::Company, b)),
        EdgeKind::About => ((Kind::Event, a), (Kind::Topic, b)),
        EdgeKind::WorksAt => ((Kind::Speaker, a), (Kind::Company, b)),
    }
}

fn frontier_of<'a>(nodes: impl IntoIterator<Item = &'a NodeKey>) -> Frontier {
    let mut frontier = Frontier::default();
    for (kind, id) in nodes {
        match kind {
            Kind::Event => frontier.events.push(*id),
            Kind::Speaker => frontier.speakers.push(*id),
            Kind::Company => frontier.companies.push(*id),
            Kind::Topic | Kind::Media => frontier.topics.push(*id),
        }
    }
    frontier
}

/// The neighbours of `frontier` over `kinds`: (frontier node, neighbour, edge kind), in a deterministic order.
async fn expand(
    conn: &mut PgConnection,
    org: Uuid,
    frontier: &HashSet<NodeKey>,
    kinds: &[EdgeKind],
) -> Result<Vec<(NodeKey, NodeKey, EdgeKind)>, sqlx::Error> {
    let rows = graph::edges_touching(conn, org, &frontier_of(frontier.iter()), kinds).await?;
    let mut steps = BTreeSet::new();
    for (kind, a, b) in rows {
        let (x, y) = ends(kind, a, b);
        if frontier.contains(&x) {
            steps.insert((x, y, kind));
        }
        if frontier.contains(&y) {
            steps.insert((y, x, kind));
        }
    }
    Ok(steps.into_iter().collect())
}

impl App {
    /// Nodes within `depth` steps of `start`, at most `node_limit` of them, within `budget`.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "neighborhood", db.system = "postgresql"))]
    pub async fn neighborhood(
        &self,
        caller: &Caller,
        start: NodeKey,
        depth: u32,
        kinds: &[EdgeKind],
        node_limit: usize,
        budget: Duration,
    ) -> Result<Neighborhood, AppError> {
        let deadline = Instant::now() + budget;
        // Confined reads, one statement each (`store::confined`): no transaction around the traversal.
        self.read(caller, |mut reader| async move {
            if !exists(&mut reader, caller.org_id, start.0, start.1).await? {
                return Err(AppError::NotFound { kind: start.0.name(), id: start.1.to_string() });
            }
            let mut depth_of: HashMap<NodeKey, u32> = HashMap::from([(start, 0)]);
            let mut order = vec![start];
            let mut edges = BTreeSet::new();
            let mut frontier: HashSet<NodeKey> = HashSet::from([start]);
            let mut truncated = false;
            for level in 1..=depth {
                if frontier.is_empty() {
                    break;
                }
                if Instant::now() >= deadline {
                    truncated = true;
                    break;
                }
                let mut next = HashSet::new();
                for (from, to, kind) in expand(&mut reader, caller.org_id, &frontier, kinds).await? {
                    if let std::collections::hash_map::Entry::Vacant(slot) = depth_of.entry(to) {
                        if order.len() >= node_limit {
                            truncated = true;
                            continue;
                        }
                        slot.insert(level);
                        order.push(to);
                        next.insert(to);
                    }
                    edges.insert((kind, from.min(to), from.max(to)));
                }
                frontier = next;
            }
            let labels = self.labels(&mut reader, caller.org_id, &order).await?;
            let nodes = order
                .iter()
                .map(|key| GraphNode {
                    key: *key,
                    label: labels.get(key).cloned().unwrap_or_default(),
                    depth: depth_of[key],
                })
                .collect();
            let edges = edges.into_iter().map(|(kind, a, b)| oriented(kind, a, b)).collect();
            reader.finish().await?;
            Ok(Neighborhood { nodes, edges, truncated })
        })
        .await
    }

    /// A shortest path of at most `max_depth` edges from `from` to `to`, or `None`.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "find_path", db.system = "postgresql"))]
    pub async fn find_path(
        &self,
        caller: &Caller,
        from: NodeKey,
        to: NodeKey,
        max_depth: u32,
        kinds: &[EdgeKind],
    ) -> Result<Option<Path>, AppError> {
        self.read(caller, |mut reader| async move {
            for end in [from, to] {
                if !exists(&mut reader, caller.org_id, end.0, end.1).await? {
                    return Err(AppError::NotFound { kind: end.0.name(), id: end.1.to_string() });
                }
            }
            let mut sides: [Parents; 2] =
                [HashMap::from([(from, (None, None, 0))]), HashMap::from([(to, (None, None, 0))])];
            let mut frontiers: [HashSet<NodeKey>; 2] = [HashSet::from([from]), HashSet::from([to])];
            let mut meeting = (from == to).then_some(from);
            let mut depths = [0u32, 0u32];
            while meeting.is_none() && depths[0] + depths[1] < max_depth {
                let side = if frontiers[0].len() <= frontiers[1].len() { 0 } else { 1 };
                if frontiers[side].is_empty() {
                    break;
                }
                depths[side] += 1;
                let mut next = HashSet::new();
                for (parent, node, kind) in expand(&mut reader, caller.org_id, &frontiers[side], kinds).await? {
                    if let std::collections::hash_map::Entry::Vacant(slot) = sides[side].entry(node) {
                        slot.insert((Some(parent), Some(kind), depths[side]));
                        next.insert(node);
                    }
                }
                // The meeting node closest to the other root gives the shortest path found at this level.
                meeting =
                    next.iter().filter_map(|n| sides[1 - side].get(n).map(|(_, _, d)| (*d, *n))).min().map(|(_, n)| n);
                frontiers[side] = next;
            }
            let Some(meeting) = meeting else {
                reader.finish().await?;
                return Ok(None);
            };
            let mut keys = vec![meeting];
            let mut steps = Vec::new();
            let mut node = meeting;
            while let Some((Some(parent), Some(kind), _)) = sides[0].get(&node).copied() {
                keys.insert(0, parent);
                steps.insert(0, oriented(kind, parent, node));
                node = parent;
            }
            node = meeting;
            while let Some((Some(parent), Some(kind), _)) = sides[1].get(&node).copied() {
                keys.push(parent);
                steps.push(oriented(kind, node, parent));
                node = parent;
            }
            let labels = self.labels(&mut reader, caller.org_id, &keys).await?;
            let nodes = keys
                .iter()
                .enumerate()
                .map(|(i, key)| GraphNode {
                    key: *key,
                    label: labels.get(key).cloned().unwrap_or_default(),
                    depth: i as u32,
                })
                .collect();
            reader.finish().await?;
            Ok(Some(Path { nodes, edges: steps }))
        })
        .await
    }

    async fn labels(
        &self,
        tx: &mut PgConnection,
        org: Uuid,
        keys: &[NodeKey],
    ) -> Result<HashMap<NodeKey, String>, AppError> {
        let mut labels = HashMap::new();
        for kind in [Kind::Event, Kind::Speaker, Kind::Company, Kind::Topic] {
            let ids: Vec<Uuid> = keys.iter().filter(|(k, _)| *k == kind).map(|(_, id)| *id).collect();
            if ids.is_empty() {
                continue;
            }
            for (id, name) in graph::labels(tx, org, kind, &ids).await? {
                labels.insert((kind, id), name);
            }
        }
        Ok(labels)
    }

    /// Events related to `event_id`, blended with embedding similarity by `similarity_weight` in [0, 1]:
    /// (event, shared speakers, companies, topics, score).
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "related_events", db.system = "postgresql"))]
    pub async fn related_events(
        &self,
        caller: &Caller,
        event_id: Uuid,
        limit: i64,
        similarity_weight: f64,
    ) -> Result<Vec<RelatedEvent>, AppError> {
        // Rank more candidates than asked when blending, so similarity can lift an event into the top.
        let fetch = if similarity_weight > 0.0 { (limit * 5).max(100) } else { limit };
        // One confined read; a second only when it found nothing, to tell a lone event from a missing one.
        let rows = self
            .read(caller, |mut reader| async move {
                let rows = graph::related_events(&mut reader, caller.org_id, event_id, fetch).await?;
                if rows.is_empty() && !exists(&mut reader, caller.org_id, Kind::Event, event_id).await? {
                    return Err(AppError::NotFound { kind: "event", id: event_id.to_string() });
                }
                reader.finish().await?;
                Ok(rows)
            })
            .await?;
        let relation = |s: i64, c: i64, t: i64| (3 * s + 2 * c + t) as f64;
        let best = rows.iter().map(|r| relation(r.1, r.2, r.3)).fold(0.0, f64::max).max(1.0);
        let mut scored: Vec<_> = rows
            .into_iter()
            .map(|(event, s, c, t, distance)| {
                let similarity = distance.map(|d| 1.0 - d / 2.0).unwrap_or(0.0);
                let score = (1.0 - similarity_weight) * relation(s, c, t) / best + similarity_weight * similarity;
                (event, s, c, t, score)
            })
            .collect();
        scored.sort_by(|a, b| b.4.total_cmp(&a.4));
        scored.truncate(limit as usize);
        Ok(scored)
    }

    /// Speakers who shared events with `speaker_id`, with counts.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "co_speakers", db.system = "postgresql"))]
    pub async fn co_speakers(
        &self,
        caller: &Caller,
        speaker_id: Uuid,
        limit: i64,
    ) -> Result<Vec<(Speaker, i64)>, AppError> {
        self.read(caller, |mut reader| async move {
            let rows = graph::co_speakers(&mut reader, caller.org_id, speaker_id, limit).await?;
            if rows.is_empty() && !exists(&mut reader, caller.org_id, Kind::Speaker, speaker_id).await? {
                return Err(AppError::NotFound { kind: "speaker", id: speaker_id.to_string() });
            }
            reader.finish().await?;
            Ok(rows)
        })
        .await
    }
}

/// An edge with its ends in the documented direction (event side first; speaker first for WORKS_AT).
fn oriented(kind: EdgeKind, a: NodeKey, b: NodeKey) -> (EdgeKind, NodeKey, NodeKey) {
    let first = match kind {
        EdgeKind::WorksAt => Kind::Speaker,
        _ => Kind::Event,
    };
    if a.0 == first { (kind, a, b) } else { (kind, b, a) }
}
