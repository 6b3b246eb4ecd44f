//! GraphService against a breadth-first search computed here over the same small graph: neighbourhoods, shortest
//! paths, limits and bounds, related events, co-speakers, and the organization boundary.

use std::collections::{HashMap, HashSet, VecDeque};

use eventdata::proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use pb::graph_service_client::GraphServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;
use tonic::Code;

use crate::common::{AuthChannel, TestApp};
use crate::fixtures::{create_event, create_speaker};

type Key = (i32, String);

/// The test's own copy of the graph: adjacency by node.
#[derive(Default)]
struct Graph {
    adjacency: HashMap<Key, Vec<Key>>,
}

impl Graph {
    fn link(&mut self, a: Key, b: Key) {
        self.adjacency.entry(a.clone()).or_default().push(b.clone());
        self.adjacency.entry(b).or_default().push(a);
    }

    /// Distances from `start` up to `depth`.
    fn bfs(&self, start: &Key, depth: i32) -> HashMap<Key, i32> {
        let mut seen = HashMap::from([(start.clone(), 0)]);
        let mut queue = VecDeque::from([start.clone()]);
        while let Some(node) = queue.pop_front() {
            let d = seen[&node];
            if d == depth {
                continue;
            }
            for next in self.adjacency.get(&node).into_iter().flatten() {
                if !seen.contains_key(next) {
                    seen.insert(next.clone(), d + 1);
                    queue.push_back(next.clone());
                }
            }
        }
        seen
    }
}

const EVENT: i32 = pb::NodeType::Event as i32;
const SPEAKER: i32 = pb::NodeType::Speaker as i32;
const COMPANY: i32 = pb::NodeType::Company as i32;
const TOPIC: i32 = pb::NodeType::Topic as i32;

fn node(kind: i32, id: &str) -> Option<pb::NodeRef> {
    Some(pb::NodeRef { r#type: kind, id: id.into() })
}

/// Builds a chain-with-branches graph through the API and mirrors it in a [`Graph`].
async fn build(app: &TestApp) -> (Graph, Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    let channel = app.rw();
    let mut events_client = EventServiceClient::new(channel.clone());
    let mut graph = Graph::default();
    let mut events = Vec::new();
    let mut speakers = Vec::new();
    for i in 0..6 {
        events.push(create_event(channel.clone(), "E", &format!("g-e{i}")).await.id);
        speakers.push(create_speaker(channel.clone(), &format!("Speaker {i}")).await.id);
    }
    let mut companies = Vec::new();
    let mut topics = Vec::new();
    for i in 0..3 {
        companies.push(company(channel.clone(), &format!("Company {i}")).await);
        topics.push(topic(channel.clone(), &format!("Topic {i}")).await);
    }
    // speaker i speaks at events i and i+1: a chain e0-s0-e1-s1-e2-...-e5-s5
    for (i, speaker) in speakers.iter().enumerate() {
        for e in [i, i + 1] {
            if e < events.len() {
                events_client
                    .add_event_speaker(pb::AddEventSpeakerRequest {
                        event_speaker: Some(pb::EventSpeaker {
                            event_id: events[e].clone(),
                            speaker_id: speaker.clone(),
                            ..Default::default()
                        }),
                    })
                    .await
                    .expect("speaker");
                graph.link((EVENT, events[e].clone()), (SPEAKER, speaker.clone()));
            }
        }
    }
    // company 0 at event 0 and 5 (a shortcut), topic 1 on events 2 and 3, speaker 4 works at company 2
    for e in [0, 5] {
        events_client
            .add_event_company(pb::AddEventCompanyRequest {
                event_company: Some(pb::EventCompany {
                    event_id: events[e].clone(),
                    company_id: companies[0].clone(),
                    ..Default::default()
                }),
            })
            .await
            .expect("company");
        graph.link((EVENT, events[e].clone()), (COMPANY, companies[0].clone()));
    }
    for e in [2, 3] {
        events_client
            .add_event_topic(pb::AddEventTopicRequest {
                event_topic: Some(pb::EventTopic {
                    event_id: events[e].clone(),
                    topic_id: topics[1].clone(),
                    ..Default::default()
                }),
            })
            .await
            .expect("topic");
        graph.link((EVENT, events[e].clone()), (TOPIC, topics[1].clone()));
    }
    SpeakerServiceClient::new(channel)
        .update_speaker(pb::UpdateSpeakerRequest {
            speaker: Some(pb::Speaker {
                id: speakers[4].clone(),
                company_id: Some(companies[2].clone()),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["company_id".into()] }),
        })
        .await
        .expect("employment");
    graph.link((SPEAKER, speakers[4].clone()), (COMPANY, companies[2].clone()));
    (graph, events, speakers, companies, topics)
}

async fn company(channel: AuthChannel, name: &str) -> String {
    crate::fixtures::create_company(channel, name).await.id
}

async fn topic(channel: AuthChannel, name: &str) -> String {
    crate::fixtures::create_topic(channel, name).await.id
}

#[tokio::test]
async fn neighborhoods_and_paths_match_a_breadth_first_search() {
    let app = TestApp::start().await;
    let (graph, events, speakers, companies, topics) = build(&app).await;
    let mut client = GraphServiceClient::new(app.rw());

    for (start, depth) in [
        ((EVENT, events[0].clone()), 1),
        ((EVENT, events[0].clone()), 3),
        ((SPEAKER, speakers[2].clone()), 2),
        ((TOPIC, topics[1].clone()), 3),
    ] {
        let found = client
            .get_neighborhood(pb::GetNeighborhoodRequest {
                start: node(start.0, &start.1),
                depth,
                ..Default::default()
            })
            .await
            .expect("neighborhood")
            .into_inner();
        let got: HashMap<Key, i32> = found.nodes.iter().map(|n| ((n.r#type, n.id.clone()), n.depth)).collect();
        assert_eq!(got, graph.bfs(&start, depth), "neighborhood of {start:?} at depth {depth}");
        assert!(!found.truncated);
        assert!(found.nodes.iter().all(|n| !n.label.is_empty()), "nodes carry names");
        for edge in &found.edges {
            let (a, b) = (edge.from.as_ref().expect("from"), edge.to.as_ref().expect("to"));
            assert!(got.contains_key(&(a.r#type, a.id.clone())) && got.contains_key(&(b.r#type, b.id.clone())));
        }
    }

    let only_speaking = client
        .get_neighborhood(pb::GetNeighborhoodRequest {
            start: node(EVENT, &events[0]),
            depth: 1,
            edge_kinds: vec![pb::EdgeKind::SpeaksAt as i32],
            ..Default::default()
        })
        .await
        .expect("filtered")
        .into_inner();
    assert!(only_speaking.nodes.iter().all(|n| n.r#type != COMPANY), "edge-kind filter");

    for (from, to) in [
        ((EVENT, events[0].clone()), (EVENT, events[3].clone())),
        ((SPEAKER, speakers[0].clone()), (COMPANY, companies[2].clone())),
        ((TOPIC, topics[1].clone()), (EVENT, events[5].clone())),
        ((COMPANY, companies[0].clone()), (SPEAKER, speakers[3].clone())),
    ] {
        let path = client
            .find_path(pb::FindPathRequest { from: node(from.0, &from.1), to: node(to.0, &to.1), ..Default::default() })
            .await
            .expect("path")
            .into_inner();
        let shortest = graph.bfs(&from, 6).get(&to).copied();
        assert_eq!(path.found, shortest.is_some());
        assert_eq!(path.edges.len() as i32, shortest.expect("reachable"), "{from:?} -> {to:?} is shortest");
        assert_eq!(path.nodes.first().map(|n| n.id.clone()), Some(from.1.clone()));
        assert_eq!(path.nodes.last().map(|n| n.id.clone()), Some(to.1.clone()));
        for (i, pair) in path.nodes.windows(2).enumerate() {
            let (a, b) = ((pair[0].r#type, pair[0].id.clone()), (pair[1].r#type, pair[1].id.clone()));
            assert!(graph.adjacency[&a].contains(&b), "step {i} of the path is an edge");
        }
    }
    let isolated = company(app.rw(), "Alone").await;
    let none = client
        .find_path(pb::FindPathRequest {
            from: node(EVENT, &events[0]),
            to: node(COMPANY, &isolated),
            ..Default::default()
        })
        .await
        .expect("no path")
        .into_inner();
    assert!(!none.found && none.nodes.is_empty());
    let too_short = client
        .find_path(pb::FindPathRequest {
            from: node(SPEAKER, &speakers[0]),
            to: node(COMPANY, &companies[2]),
            max_depth: 2,
            ..Default::default()
        })
        .await
        .expect("bounded")
        .into_inner();
    assert!(!too_short.found, "no path within depth 2");
}

#[tokio::test]
async fn limits_truncate_and_bounds_are_enforced() {
    let app = TestApp::start().await;
    let (graph, events, ..) = build(&app).await;
    let mut client = GraphServiceClient::new(app.rw());
    let start = (EVENT, events[0].clone());
    let full = graph.bfs(&start, 3).len() as i32;
    let cut = client
        .get_neighborhood(pb::GetNeighborhoodRequest {
            start: node(EVENT, &events[0]),
            depth: 3,
            node_limit: full - 2,
            ..Default::default()
        })
        .await
        .expect("limited")
        .into_inner();
    assert!(cut.truncated);
    assert_eq!(cut.nodes.len() as i32, full - 2);
    for bad in [
        pb::GetNeighborhoodRequest { start: node(EVENT, &events[0]), depth: 4, ..Default::default() },
        pb::GetNeighborhoodRequest { start: node(EVENT, &events[0]), node_limit: 10_001, ..Default::default() },
        pb::GetNeighborhoodRequest { start: node(0, &events[0]), ..Default::default() },
    ] {
        assert_eq!(client.get_neighborhood(bad).await.expect_err("bound").code(), Code::InvalidArgument);
    }
    let deep = client
        .find_path(pb::FindPathRequest {
            from: node(EVENT, &events[0]),
            to: node(EVENT, &events[1]),
            max_depth: 7,
            ..Default::default()
        })
        .await
        .expect_err("max depth 6");
    assert_eq!(deep.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn related_events_and_co_speakers() {
    let app = TestApp::start().await;
    let (_, events, speakers, ..) = build(&app).await;
    let mut client = GraphServiceClient::new(app.rw());
    let related = client
        .related_events(pb::RelatedEventsRequest { event_id: events[2].clone(), limit: 10, similarity_weight: 0.0 })
        .await
        .expect("related")
        .into_inner()
        .events;
    // Event 2 shares speaker 1 with event 1, speaker 2 and topic 1 with event 3.
    let first = &related[0];
    assert_eq!(first.event.as_ref().map(|e| e.id.clone()), Some(events[3].clone()));
    assert_eq!((first.shared_speakers, first.shared_topics), (1, 1));
    assert_eq!(related[1].event.as_ref().map(|e| e.id.clone()), Some(events[1].clone()));
    assert!(related.iter().all(|r| r.event.as_ref().is_some_and(|e| e.id != events[2])));

    let co = client
        .co_speakers(pb::CoSpeakersRequest { speaker_id: speakers[2].clone(), limit: 10 })
        .await
        .expect("co-speakers")
        .into_inner()
        .speakers;
    let ids: HashSet<String> = co.iter().map(|c| c.speaker.as_ref().expect("speaker").id.clone()).collect();
    assert_eq!(ids, HashSet::from([speakers[1].clone(), speakers[3].clone()]));
    assert!(co.iter().all(|c| c.shared_events == 1));
}

#[tokio::test]
async fn traversals_stay_inside_the_organization() {
    let app = TestApp::start().await;
    let (_, events, speakers, ..) = build(&app).await;
    let other = app.db.create_org("other").await;
    let theirs = app.as_key(Some(&app.db.create_key(other, &["read", "write"]).await));
    let their_event = create_event(theirs.clone(), "Theirs", "theirs").await;
    let mut client = GraphServiceClient::new(theirs);
    let err = client
        .get_neighborhood(pb::GetNeighborhoodRequest { start: node(EVENT, &events[0]), ..Default::default() })
        .await
        .expect_err("our node");
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .find_path(pb::FindPathRequest {
            from: node(EVENT, &their_event.id),
            to: node(EVENT, &events[0]),
            ..Default::default()
        })
        .await
        .expect_err("path into our graph");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        client
            .co_speakers(pb::CoSpeakersRequest { speaker_id: speakers[0].clone(), limit: 5 })
            .await
            .expect_err("co")
            .code(),
        Code::NotFound
    );
    assert_eq!(
        client
            .related_events(pb::RelatedEventsRequest { event_id: events[0].clone(), ..Default::default() })
            .await
            .expect_err("related")
            .code(),
        Code::NotFound
    );
    let own = client
        .get_neighborhood(pb::GetNeighborhoodRequest {
            start: node(EVENT, &their_event.id),
            depth: 3,
            ..Default::default()
        })
        .await
        .expect("their own")
        .into_inner();
    assert_eq!(own.nodes.len(), 1, "nothing of ours appears around their node");
}
