//! Adding, changing, removing and listing an event's speakers, companies and topics.

use uuid::Uuid;

use super::catalogue::Page;
use super::error::Culprit;
use super::paging::PageRequest;
use super::{App, AppError, Caller, retrying};
use crate::domain::catalogue::{Kind, RelationKind};
use crate::domain::fields::Columns;
use crate::domain::new_resources::NewAttributes;
use crate::domain::resources::Relation;
use crate::store::relations::{self as store, From, NewRelation};
use crate::store::{lists, locks};

impl App {
    /// Adds a relation. NOT_FOUND when the event is missing; FAILED_PRECONDITION when the other end is;
    /// ALREADY_EXISTS when the relation exists.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "add_relation", db.system = "postgresql"))]
    pub async fn add_relation(
        &self,
        caller: &Caller,
        kind: RelationKind,
        event_id: Uuid,
        other_id: Uuid,
        attributes: &NewAttributes,
    ) -> Result<Relation, AppError> {
        retrying(|| async move {
            let mut tx = self.begin(caller).await?;
            locks::lock_aggregates(&mut tx, &[event_id]).await?;
            if !lists::exists(&mut tx, caller.org_id, Kind::Event, event_id).await? {
                return Err(AppError::NotFound { kind: "event", id: event_id.to_string() });
            }
            let added = store::add(&mut tx, kind, event_id, other_id, attributes, &caller.change_context())
                .await
                .map_err(AppError::from_db)?;
            tx.commit().await?;
            Ok(added)
        })
        .await
    }

    /// Adds several relations, all or none, in one transaction. Errors as [`App::add_relation`]'s, the field of
    /// an ALREADY_EXISTS or FAILED_PRECONDITION naming the item at fault.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "add_relations", db.system = "postgresql"))]
    pub async fn add_relations(
        &self,
        caller: &Caller,
        kind: RelationKind,
        relations: &[NewRelation],
    ) -> Result<Vec<Relation>, AppError> {
        let added = retrying(|| async move {
            let mut tx = self.begin(caller).await?;
            let mut events: Vec<Uuid> = relations.iter().map(|r| r.event_id).collect();
            events.sort();
            events.dedup();
            locks::lock_aggregates(&mut tx, &events).await?;
            let found = lists::existing_ids(&mut tx, Kind::Event, &events).await?;
            if let Some(missing) = relations.iter().find(|r| !found.contains(&r.event_id)) {
                return Err(AppError::NotFound { kind: "event", id: missing.event_id.to_string() });
            }
            let added =
                store::add_many(&mut tx, kind, relations, &caller.change_context()).await.map_err(AppError::from_db)?;
            tx.commit().await?;
            Ok(added)
        })
        .await;
        match added {
            Err(err @ (AppError::AlreadyExists { .. } | AppError::FailedPrecondition { .. })) => {
                match self.locate_relation_fault(caller, kind, relations).await {
                    Ok(Some(located)) => Err(located),
                    Ok(None) => Err(err),
                    Err(lookup) => Err(lookup),
                }
            }
            added => added,
        }
    }

    /// After a batch of relation adds failed: the first item whose pair exists already, or whose other side does
    /// not exist.
    async fn locate_relation_fault(
        &self,
        caller: &Caller,
        kind: RelationKind,
        relations: &[NewRelation],
    ) -> Result<Option<AppError>, AppError> {
        let field = |i: usize| Culprit::item(i, format!("{}_id", kind.target().name()));
        let mut tx = self.begin(caller).await?;
        let events: Vec<Uuid> = relations.iter().map(|r| r.event_id).collect();
        let others: Vec<Uuid> = relations.iter().map(|r| r.other_id).collect();
        let existing = store::existing_pairs(&mut tx, kind, &events, &others).await?;
        if let Some(i) = relations.iter().position(|r| existing.contains(&(r.event_id, r.other_id))) {
            let message = "is already related to the event".into();
            return Ok(Some(AppError::AlreadyExists { field: field(i), reason: "RELATION_EXISTS", message }));
        }
        let found = lists::existing_ids(&mut tx, kind.target(), &others).await?;
        if let Some(i) = relations.iter().position(|r| !found.contains(&r.other_id)) {
            let (field, reason) = (field(i), "REFERENCED_RESOURCE_NOT_FOUND");
            let message = "refers to nothing in this organization".into();
            return Ok(Some(AppError::FailedPrecondition { field, reason, message }));
        }
        Ok(None)
    }

    /// Changes a relation's attributes; NOT_FOUND when it does not exist.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "update_relation", db.system = "postgresql"))]
    pub async fn update_relation(
        &self,
        caller: &Caller,
        kind: RelationKind,
        event_id: Uuid,
        other_id: Uuid,
        columns: &Columns,
    ) -> Result<Relation, AppError> {
        retrying(|| async move {
            let mut tx = self.begin(caller).await?;
            locks::lock_aggregates(&mut tx, &[event_id]).await?;
            let updated = store::update(&mut tx, kind, event_id, other_id, columns, &caller.change_context())
                .await
                .map_err(AppError::from_db)?;
            tx.commit().await?;
            updated.ok_or_else(|| relation_not_found(kind, event_id, other_id))
        })
        .await
    }

    /// Removes a relation; NOT_FOUND when it does not exist.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "remove_relation", db.system = "postgresql"))]
    pub async fn remove_relation(
        &self,
        caller: &Caller,
        kind: RelationKind,
        event_id: Uuid,
        other_id: Uuid,
    ) -> Result<Relation, AppError> {
        retrying(|| async move {
            let mut tx = self.begin(caller).await?;
            locks::lock_aggregates(&mut tx, &[event_id]).await?;
            let removed = store::remove(&mut tx, kind, event_id, other_id, &caller.change_context()).await?;
            tx.commit().await?;
            removed.ok_or_else(|| relation_not_found(kind, event_id, other_id))
        })
        .await
    }

    /// A page of relations seen from `from` (an event, or the other end with id `id`); NOT_FOUND when that
    /// resource does not exist.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "list_relations", db.system = "postgresql"))]
    pub async fn list_relations(
        &self,
        caller: &Caller,
        kind: RelationKind,
        from: From,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Relation>, AppError> {
        let anchor = match from {
            From::Event => Kind::Event,
            From::Other => kind.target(),
        };
        let mut rows = self
            .read(caller, |mut reader| async move {
                let rows =
                    store::list(&mut reader, caller.org_id, kind, from, id, page.after_id(), page.size + 1).await?;
                if rows.is_empty() && !lists::exists(&mut reader, caller.org_id, anchor, id).await? {
                    return Err(AppError::NotFound { kind: anchor.name(), id: id.to_string() });
                }
                reader.finish().await?;
                Ok(rows)
            })
            .await?;
        let has_more = rows.len() as i64 > page.size;
        rows.truncate(page.size as usize);
        let last = rows.last().map(|(_, far)| (None, *far));
        Ok(Page {
            next_page_token: self.next_page_token(page, has_more, last),
            items: rows.into_iter().map(|(relation, _)| relation).collect(),
        })
    }
}

fn relation_not_found(kind: RelationKind, event_id: Uuid, other_id: Uuid) -> AppError {
    AppError::RelationNotFound { kind, event_id, other_id }
}
