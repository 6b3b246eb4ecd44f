//! The statements the store builds from a kind and a field mask (`store::sql`) are valid for every kind and every
//! mask, not only for the ones the other tests happen to send: PostgreSQL prepares (parses, analyses and plans)
//! each of them, on a connection of the service's own role.

use eventdata::domain::catalogue::{Kind, RelationKind};
use eventdata::store::sql::Sql;
use eventdata::store::{catalogue, relations};
use sqlx::{Executor, SqlSafeStr};

use crate::common::TestDb;

/// Every mask worth trying for `columns`: all of them and each alone.
fn masks(columns: &[&'static str]) -> Vec<Vec<&'static str>> {
    std::iter::once(columns.to_vec()).chain(columns.iter().map(|c| vec![*c])).collect()
}

#[tokio::test]
async fn every_statement_built_for_every_kind_and_mask_prepares() {
    let db = TestDb::migrated().await;
    let pool = db.app_pool().await;
    let mut conn = pool.acquire().await.expect("connection");

    let mut statements: Vec<(String, Sql)> = Vec::new();
    for kind in Kind::ALL {
        let columns: Vec<&'static str> = kind.fields().iter().map(|f| f.column).collect();
        statements.push((format!("create {kind:?}"), catalogue::create_sql(kind)));
        statements.push((format!("create each {kind:?}"), catalogue::create_each_sql(kind)));
        statements.push((format!("get one {kind:?}"), catalogue::get_many_sql(kind, true)));
        statements.push((format!("get many {kind:?}"), catalogue::get_many_sql(kind, false)));
        statements.push((format!("delete {kind:?}"), catalogue::delete_sql(kind)));
        for mask in masks(&columns) {
            statements.push((format!("update {kind:?} {mask:?}"), catalogue::update_sql(kind, &mask)));
        }
    }
    for kind in [RelationKind::Speaker, RelationKind::Company, RelationKind::Topic] {
        let columns: Vec<&'static str> = kind.fields().iter().map(|f| f.column).collect();
        statements.push((format!("add {kind:?} []"), relations::add_sql(kind, &[])));
        for mask in masks(&columns) {
            statements.push((format!("add {kind:?} {mask:?}"), relations::add_sql(kind, &mask)));
            statements.push((format!("update {kind:?} {mask:?}"), relations::update_sql(kind, &mask)));
        }
    }

    let mut failed = Vec::new();
    for (what, statement) in &statements {
        if let Err(e) = (&mut *conn).prepare(statement.clone().into_sql_str()).await {
            failed.push(format!("{what}: {e}\n{}", statement.as_str()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} statements do not prepare:\n{}",
        failed.len(),
        statements.len(),
        failed.join("\n\n")
    );
    assert!(statements.len() > 40, "every kind and mask was built: {}", statements.len());
}
