//! Embeddings, more-like-this, full-text search (ranking, syntax, hostile input), name lookup, hybrid fusion, and
//! the organization boundary of every search.

use eventdata::proto::v1 as pb;
use pb::embedding_service_client::EmbeddingServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::search_service_client::SearchServiceClient;
use tonic::Code;

use crate::common::{TestApp, error_details};
use crate::fixtures::{create_event, create_speaker, embed, new_event};

/// A unit vector pointing mostly along axis `axis`, tilted by `tilt` towards axis `axis + 1`.
fn axis_vector(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0f32; 1536];
    v[axis] = 1.0;
    v[(axis + 1) % 1536] = tilt;
    v
}

fn like(id: &str) -> Option<pb::SimilarityQuery> {
    Some(pb::SimilarityQuery { query: Some(pb::similarity_query::Query::LikeId(id.into())) })
}

fn vector(values: Vec<f32>) -> Option<pb::SimilarityQuery> {
    Some(pb::SimilarityQuery { query: Some(pb::similarity_query::Query::Vector(pb::VectorQuery { values })) })
}

async fn event_with(app: &TestApp, name: &str, slug: &str, description: &str) -> pb::Event {
    let mut event = new_event(name, slug);
    event.description = Some(description.into());
    EventServiceClient::new(app.rw())
        .create_event(pb::CreateEventRequest { event: Some(event), request_id: String::new() })
        .await
        .expect("create")
        .into_inner()
}

#[tokio::test]
async fn embeddings_are_validated_stored_cleared_and_logged_without_the_vector() {
    let app = TestApp::start().await;
    let event = create_event(app.rw(), "Conf", "conf").await;
    let mut embeddings = EmbeddingServiceClient::new(app.rw());
    let bad = |values: Vec<f32>, model: &str| pb::SetEmbeddingRequest {
        embedding: Some(pb::Embedding {
            resource_type: pb::EmbeddedType::Event as i32,
            resource_id: event.id.clone(),
            values,
            model: model.into(),
        }),
    };
    let short = embeddings.set_embedding(bad(vec![0.1; 3], "m")).await.expect_err("short");
    assert_eq!((short.code(), error_details(&short).1), (Code::InvalidArgument, vec!["embedding.values".to_string()]));
    let mut nan = vec![0.1; 1536];
    nan[42] = f32::NAN;
    let nan = embeddings.set_embedding(bad(nan, "")).await.expect_err("NaN and no model");
    assert_eq!(error_details(&nan).1, vec!["embedding.values[42]".to_string(), "embedding.model".to_string()]);
    let mut infinite = vec![0.1; 1536];
    infinite[0] = f32::INFINITY;
    assert_eq!(embeddings.set_embedding(bad(infinite, "m")).await.expect_err("inf").code(), Code::InvalidArgument);

    embed(app.rw(), pb::EmbeddedType::Event, &event.id, axis_vector(0, 0.1)).await;
    let got = embeddings
        .get_embedding(pb::GetEmbeddingRequest {
            resource_type: pb::EmbeddedType::Event as i32,
            resource_id: event.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!((got.values.len(), got.model.as_str(), got.values[0]), (1536, "m-1", 1.0));
    let plain = EventServiceClient::new(app.rw())
        .get_event(pb::GetEventRequest { id: event.id.clone() })
        .await
        .expect("get event");
    assert_eq!(plain.into_inner().etag, event.etag, "an embedding does not change the etag");

    embeddings
        .clear_embedding(pb::ClearEmbeddingRequest {
            resource_type: pb::EmbeddedType::Event as i32,
            resource_id: event.id.clone(),
        })
        .await
        .expect("clear");
    let gone = embeddings
        .get_embedding(pb::GetEmbeddingRequest {
            resource_type: pb::EmbeddedType::Event as i32,
            resource_id: event.id.clone(),
        })
        .await
        .expect_err("cleared");
    assert_eq!(gone.code(), Code::NotFound);

    let changes: Vec<_> = app.changes().await.into_iter().filter(|c| c.0 == "event.embedding_updated").collect();
    assert_eq!(changes.len(), 2);
    assert_eq!((changes[0].2["model"].as_str(), changes[0].2["dimension"].as_i64()), (Some("m-1"), Some(1536)));
    assert_eq!((changes[1].2["cleared"].as_bool(), changes[1].2["dimension"].as_i64()), (Some(true), Some(0)));
    assert!(!changes[0].2.to_string().contains("0.1"), "the vector is not in the change log");
}

#[tokio::test]
async fn more_like_this_excludes_the_event_and_similar_speakers_and_topics_work() {
    let app = TestApp::start().await;
    let mut ids = Vec::new();
    for (i, tilt) in [0.0f32, 0.1, 0.5, 3.0].into_iter().enumerate() {
        let event = create_event(app.rw(), "E", &format!("e-{i}")).await;
        embed(app.rw(), pb::EmbeddedType::Event, &event.id, axis_vector(0, tilt)).await;
        ids.push(event.id);
    }
    let mut search = SearchServiceClient::new(app.rw());
    let found = search
        .similar_events(pb::SimilarEventsRequest { query: like(&ids[0]), k: 10, ..Default::default() })
        .await
        .expect("more like this")
        .into_inner()
        .results;
    let found_ids: Vec<String> = found.iter().map(|r| r.event.as_ref().expect("event").id.clone()).collect();
    assert_eq!(found_ids, ids[1..].to_vec(), "nearest first, without the event itself");

    let no_embedding = create_event(app.rw(), "Bare", "bare").await;
    let err = search
        .similar_events(pb::SimilarEventsRequest { query: like(&no_embedding.id), ..Default::default() })
        .await
        .expect_err("nothing to compare");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let info = tonic_types::StatusExt::get_details_error_info(&err).expect("ErrorInfo");
    assert_eq!((info.reason.as_str(), info.metadata["field"].as_str()), ("NO_EMBEDDING", "query.like_id"));
    for k in [-1, 101] {
        let err = search
            .similar_events(pb::SimilarEventsRequest { query: vector(axis_vector(0, 0.0)), k, ..Default::default() })
            .await
            .expect_err("k out of range");
        assert_eq!(error_details(&err).1, vec!["k".to_string()]);
    }
    let err = search
        .similar_events(pb::SimilarEventsRequest {
            query: vector(axis_vector(0, 0.0)),
            ef_search: 5000,
            ..Default::default()
        })
        .await
        .expect_err("ef_search out of range");
    assert_eq!(err.code(), Code::InvalidArgument);

    let ada = create_speaker(app.rw(), "Ada").await;
    let bea = create_speaker(app.rw(), "Bea").await;
    embed(app.rw(), pb::EmbeddedType::Speaker, &ada.id, axis_vector(5, 0.0)).await;
    embed(app.rw(), pb::EmbeddedType::Speaker, &bea.id, axis_vector(5, 0.2)).await;
    let speakers = search
        .similar_speakers(pb::SimilarRequest { query: like(&ada.id), k: 5, ef_search: 0 })
        .await
        .expect("similar speakers")
        .into_inner()
        .results;
    assert_eq!(speakers.iter().map(|s| s.speaker.as_ref().expect("s").id.clone()).collect::<Vec<_>>(), vec![bea.id]);
    let topics = search
        .similar_topics(pb::SimilarRequest { query: vector(axis_vector(9, 0.0)), k: 5, ef_search: 0 })
        .await
        .expect("similar topics")
        .into_inner();
    assert!(topics.results.is_empty(), "no topic has an embedding");
}

#[tokio::test]
async fn full_text_ranks_exact_names_first_and_takes_web_search_syntax() {
    let app = TestApp::start().await;
    let exact = event_with(&app, "Rust Belt", "rust-belt", "A regional meetup.").await;
    let mentions = event_with(
        &app,
        "Systems Week",
        "systems-week",
        "Rust, Rust and more Rust belt buckles for systems programmers.",
    )
    .await;
    let go = event_with(&app, "GopherCon", "gophercon", "All about Go and concurrency.").await;
    let mut search = SearchServiceClient::new(app.rw());
    let query = |q: &str| pb::SearchEventsRequest { query: q.into(), ..Default::default() };

    let hits = search.search_events(query("rust belt")).await.expect("search").into_inner().hits;
    let ids: Vec<String> = hits.iter().map(|h| h.event.as_ref().expect("event").id.clone()).collect();
    assert_eq!(ids, vec![exact.id.clone(), mentions.id.clone()], "the exact name match first");
    assert!(hits[1].snippet.contains("<mark>"), "snippets highlight: {}", hits[1].snippet);

    let phrase = search.search_events(query("\"belt buckles\"")).await.expect("phrase").into_inner().hits;
    assert_eq!(
        phrase.iter().map(|h| h.event.as_ref().expect("e").id.clone()).collect::<Vec<_>>(),
        vec![mentions.id.clone()]
    );
    let either = search.search_events(query("gophercon OR meetup")).await.expect("or").into_inner().hits;
    assert_eq!(either.len(), 2);
    let negated = search.search_events(query("rust -buckles")).await.expect("negation").into_inner().hits;
    assert_eq!(
        negated.iter().map(|h| h.event.as_ref().expect("e").id.clone()).collect::<Vec<_>>(),
        vec![exact.id.clone()]
    );

    // Hostile input is text (or INVALID_ARGUMENT), never an error 500, and changes nothing.
    for hostile in ["'; DROP TABLE events; --", "\"unbalanced", "a\u{7}b\u{1b}[31m", "!!! ((( :: &|", "-", "\"\""] {
        search.search_events(query(hostile)).await.unwrap_or_else(|e| panic!("{hostile:?}: {e:?}"));
    }
    for refused in ["x".repeat(10_000), "nul\0byte".to_string(), "   ".to_string()] {
        let err = search.search_events(query(&refused)).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    let still = EventServiceClient::new(app.rw()).list_events(pb::ListEventsRequest::default()).await.expect("list");
    assert_eq!(still.into_inner().events.len(), 3, "the catalogue is intact");
    let _ = go;

    // Paging through hits.
    let first = search
        .search_events(pb::SearchEventsRequest { query: "rust".into(), page_size: 1, ..Default::default() })
        .await
        .expect("page 1")
        .into_inner();
    let second = search
        .search_events(pb::SearchEventsRequest {
            query: "rust".into(),
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_ne!(first.hits[0].event.as_ref().map(|e| e.id.clone()), second.hits[0].event.as_ref().map(|e| e.id.clone()));
    assert!(second.next_page_token.is_empty());
}

/// Paging through a long tie (many events of one rank) returns every match exactly once, best first: the first
/// page takes RUM's first rows at its last distance, whatever their ids, and the next pages the others of that
/// distance in id order, then the rest (migration 0015).
#[tokio::test]
async fn pages_of_full_text_return_every_match_of_a_long_tie_once() {
    let app = TestApp::start().await;
    let event = |name: String, description: &str| {
        let mut event = new_event(&name, &name.to_lowercase().replace(' ', "-"));
        event.description = Some(description.into());
        pb::CreateEventRequest { event: Some(event), request_id: String::new() }
    };
    // The same words at the same places: one rank for the 40. Five rank above them; one has the query as its name.
    let mut requests: Vec<pb::CreateEventRequest> =
        (10..50).map(|i| event(format!("Tie Event {i}"), "Gophers gather here.")).collect();
    requests.extend((10..15).map(|i| event(format!("Lead Event {i}"), "Gophers, gophers and more gophers.")));
    requests.push(event("Gophers".into(), "The exact name."));
    let created = EventServiceClient::new(app.rw())
        .batch_create_events(pb::BatchCreateEventsRequest { requests, request_id: String::new() })
        .await
        .expect("batch create")
        .into_inner()
        .events;

    // Without filters the search runs its statements planned once (migration 0017); with a filter every event
    // passes, the statement built for the filters: the same pages either way.
    let mut search = SearchServiceClient::new(app.rw());
    let everyone = pb::EventSearchFilter { country: Some("DE".into()), ..Default::default() };
    let mut pages_of = Vec::new();
    for filter in [None, Some(everyone)] {
        let (mut hits, mut page_token, mut pages) = (Vec::new(), String::new(), 0);
        loop {
            let request =
                pb::SearchEventsRequest { query: "gophers".into(), filter: filter.clone(), page_size: 7, page_token };
            let page = search.search_events(request).await.expect("a page").into_inner();
            pages += 1;
            hits.extend(page.hits.into_iter().map(|h| (h.event.expect("event").name, h.rank)));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        assert_eq!(pages, 7, "46 matches in pages of 7");
        let mut names: Vec<&str> = hits.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names[0], "Gophers", "the exact name first");
        assert!(names[1..6].iter().all(|n| n.starts_with("Lead")), "the better rank next: {names:?}");
        assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1), "best first over every page: {hits:?}");
        names.sort_unstable();
        let mut expected: Vec<&str> = created.iter().map(|e| e.name.as_str()).collect();
        expected.sort_unstable();
        assert_eq!(names, expected, "every match exactly once");
        pages_of.push(hits.iter().map(|(_, rank)| *rank).collect::<Vec<_>>());
    }
    assert_eq!(pages_of[0], pages_of[1], "the same ranks in the same order, with and without the filter");
}

#[tokio::test]
async fn name_lookup_tolerates_typos() {
    let app = TestApp::start().await;
    let ada = create_speaker(app.rw(), "Ada Lovelace").await;
    create_speaker(app.rw(), "Grace Hopper").await;
    let found = SearchServiceClient::new(app.rw())
        .lookup_names(pb::LookupNamesRequest {
            resource_type: "speaker".into(),
            name: "Ada Lovelase".into(),
            limit: 3,
            min_similarity: None,
        })
        .await
        .expect("lookup")
        .into_inner()
        .matches;
    assert_eq!(found.first().map(|m| m.id.clone()), Some(ada.id));
    assert!(found.len() == 1 && found[0].similarity > 0.5 && found[0].similarity < 1.0);
}

#[tokio::test]
async fn hybrid_search_fuses_text_only_and_vector_only_matches() {
    let app = TestApp::start().await;
    let text_only = event_with(&app, "Kubernetes Summit", "k8s", "Clusters and containers.").await;
    let vector_only = event_with(&app, "Quiet Gathering", "quiet", "Nothing in common with the words.").await;
    let both = event_with(&app, "Kubernetes Day", "k8s-day", "More containers.").await;
    embed(app.rw(), pb::EmbeddedType::Event, &vector_only.id, axis_vector(3, 0.0)).await;
    embed(app.rw(), pb::EmbeddedType::Event, &both.id, axis_vector(3, 0.3)).await;
    let hits = SearchServiceClient::new(app.rw())
        .hybrid_search_events(pb::HybridSearchEventsRequest {
            text: "kubernetes".into(),
            vector: Some(pb::VectorQuery { values: axis_vector(3, 0.0) }),
            k: 10,
            ..Default::default()
        })
        .await
        .expect("hybrid")
        .into_inner()
        .hits;
    let by_id = |id: &str| hits.iter().find(|h| h.event.as_ref().is_some_and(|e| e.id == id)).cloned();
    let (t, v, b) = (
        by_id(&text_only.id).expect("text-only hit"),
        by_id(&vector_only.id).expect("vector-only hit"),
        by_id(&both.id).expect("both"),
    );
    assert_eq!((t.vector_rank, v.text_rank), (0, 0), "each says which list it came from");
    assert!(t.text_rank > 0 && v.vector_rank > 0 && b.text_rank > 0 && b.vector_rank > 0);
    let rrf = |ranks: &[i32]| ranks.iter().filter(|r| **r > 0).map(|r| 1.0 / (60.0 + f64::from(*r))).sum::<f64>();
    for hit in [&t, &v, &b] {
        assert!((hit.score - rrf(&[hit.text_rank, hit.vector_rank])).abs() < 1e-9, "score = sum 1/(60 + rank)");
    }
    assert_eq!(hits[0].event.as_ref().map(|e| e.id.clone()), Some(both.id), "in both lists: first");
    let neither = SearchServiceClient::new(app.rw())
        .hybrid_search_events(pb::HybridSearchEventsRequest::default())
        .await
        .expect_err("no query");
    assert_eq!(neither.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn searches_never_cross_organizations() {
    let app = TestApp::start().await;
    let ours = event_with(&app, "Secret Summit", "secret", "Only for us.").await;
    embed(app.rw(), pb::EmbeddedType::Event, &ours.id, axis_vector(7, 0.0)).await;
    let speaker = create_speaker(app.rw(), "Ada Lovelace").await;
    embed(app.rw(), pb::EmbeddedType::Speaker, &speaker.id, axis_vector(7, 0.0)).await;

    let other = app.db.create_org("other").await;
    let theirs = app.as_key(Some(&app.db.create_key(other, &["read", "write"]).await));
    let mut search = SearchServiceClient::new(theirs.clone());
    let similar = search
        .similar_events(pb::SimilarEventsRequest { query: vector(axis_vector(7, 0.0)), ..Default::default() })
        .await
        .expect("similar")
        .into_inner();
    assert!(similar.results.is_empty());
    let like_ours = search
        .similar_events(pb::SimilarEventsRequest { query: like(&ours.id), ..Default::default() })
        .await
        .expect_err("our event is not theirs");
    assert_eq!(like_ours.code(), Code::NotFound);
    let speakers = search
        .similar_speakers(pb::SimilarRequest { query: vector(axis_vector(7, 0.0)), k: 5, ef_search: 0 })
        .await
        .expect("speakers");
    assert!(speakers.into_inner().results.is_empty());
    let text = search
        .search_events(pb::SearchEventsRequest { query: "secret".into(), ..Default::default() })
        .await
        .expect("text");
    assert!(text.into_inner().hits.is_empty());
    let names = search
        .lookup_names(pb::LookupNamesRequest {
            resource_type: "speaker".into(),
            name: "Ada Lovelace".into(),
            limit: 5,
            min_similarity: Some(0.1),
        })
        .await
        .expect("lookup");
    assert!(names.into_inner().matches.is_empty());
    let hybrid = search
        .hybrid_search_events(pb::HybridSearchEventsRequest {
            text: "secret".into(),
            vector: Some(pb::VectorQuery { values: axis_vector(7, 0.0) }),
            ..Default::default()
        })
        .await
        .expect("hybrid");
    assert!(hybrid.into_inner().hits.is_empty());
    let embedding = EmbeddingServiceClient::new(theirs)
        .get_embedding(pb::GetEmbeddingRequest {
            resource_type: pb::EmbeddedType::Event as i32,
            resource_id: ours.id.clone(),
        })
        .await
        .expect_err("our embedding");
    assert_eq!(embedding.code(), Code::NotFound);
}

/// Searches take turns (`EVENTDATA_DB_SEARCH_CONCURRENCY`): with one turn, a lookup that holds it (blocked here
/// on a table lock) makes the next wait, and one that waits longer than the acquire timeout is refused as
/// UNAVAILABLE `SEARCHES_BUSY`; the turn holder still answers, and the turn serves the next search after it.
#[tokio::test]
async fn a_search_waits_for_its_turn_and_is_refused_as_busy_when_none_comes() {
    use std::time::Duration;

    use crate::common::{BearerAuth, TestDb, TestServer, test_config, wait_for_lock_waiters};

    let db = TestDb::migrated().await;
    let mut settings = db.settings();
    settings.search_concurrency = 1;
    settings.acquire_timeout = Duration::from_millis(300);
    let server = TestServer::start(test_config(settings)).await;
    let org = db.create_org("acme").await;
    let key = db.create_key(org, &["read", "write"]).await;
    let channel = tonic::service::interceptor::InterceptedService::new(
        server.channel().await,
        BearerAuth(Some(format!("Bearer {key}").parse().expect("ascii"))),
    );
    let lookup = |name: &'static str| {
        let mut search = SearchServiceClient::new(channel.clone());
        async move {
            let request = pb::LookupNamesRequest {
                resource_type: "speaker".into(),
                name: name.into(),
                limit: 3,
                min_similarity: None,
            };
            search.lookup_names(request).await
        }
    };
    lookup("warm up the connection").await.expect("a lookup with the turn free");

    let observer = db.observer().await;
    let mut lock = observer.begin().await.expect("begin");
    sqlx::query("LOCK TABLE speakers IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.expect("lock speakers");
    let holder = tokio::spawn(lookup("Ada Lovelace"));
    wait_for_lock_waiters(&db, "lookup_names", 1).await;

    let refused = lookup("Grace Hopper").await.expect_err("no turn within the acquire timeout");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(error_details(&refused).0, "SEARCHES_BUSY");

    lock.commit().await.expect("release the lock");
    holder.await.expect("joined").expect("the turn holder answers once the lock is gone");
    lookup("Grace Hopper").await.expect("the turn is free again");
}
