//! Every ListEvents filter and order is served by an index: with sequential scans priced out, no plan reads the
//! whole events table.

use eventdata::store::lists::{EventFilter, explain_events};
use uuid::Uuid;

use crate::common::TestDb;

#[tokio::test]
async fn each_event_filter_uses_an_index() {
    let db = TestDb::migrated().await;
    let org = db.create_org("plans").await;
    let id = Uuid::now_v7();
    let filters = [
        ("no filter", EventFilter::default()),
        ("by update time", EventFilter { by_update_time: true, ..Default::default() }),
        (
            "time window",
            EventFilter {
                start_from: Some(chrono::Utc::now()),
                start_before: Some(chrono::Utc::now()),
                ..Default::default()
            },
        ),
        ("status", EventFilter { status: Some("live"), ..Default::default() }),
        ("city", EventFilter { city: Some("Berlin".into()), ..Default::default() }),
        ("country", EventFilter { country: Some("DE".into()), ..Default::default() }),
        ("topic", EventFilter { topic_id: Some(id), ..Default::default() }),
        ("speaker", EventFilter { speaker_id: Some(id), ..Default::default() }),
        ("company", EventFilter { company_id: Some(id), ..Default::default() }),
        ("name prefix", EventFilter { name_prefix: Some("rust".into()), ..Default::default() }),
    ];
    let mut tx = eventdata::db::begin_for_org(&db.admin, org).await.expect("begin");
    sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.expect("price out seq scans");
    for (what, filter) in filters {
        let plan = explain_events(&mut tx, org, &filter).await.expect("explain");
        assert!(!plan.contains("Seq Scan"), "{what} reads a table sequentially:\n{plan}");
        assert!(plan.contains("Index"), "{what} uses no index:\n{plan}");
    }
}
