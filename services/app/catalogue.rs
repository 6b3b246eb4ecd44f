//! Create, get, list, update and delete of catalogue resources, for every kind.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::Culprit;
use super::paging::PageRequest;
use super::{App, AppError, Caller, retrying};
use crate::domain::catalogue::Kind;
use crate::domain::fields::Columns;
use crate::domain::new_resources::NewResource;
use crate::domain::queries::QUALITY_ORDER_TAKES_ONLY_BOUNDS;
use crate::domain::resources::Resource;
use crate::store::catalogue::{self as store, DeleteOutcome, IdempotencyClaim, UpdateOutcome};
use crate::store::{idempotency, lists, locks};

/// Most ids a BatchGet takes.
pub const MAX_BATCH_GET: usize = 1000;

/// A page of resources or relations.
#[derive(Debug)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Empty on the last page.
    pub next_page_token: String,
}

/// A validated create request.
#[derive(Debug)]
pub struct CreateRequest {
    /// What to create.
    pub kind: Kind,
    /// The resources, each of `kind`.
    pub rows: Vec<NewResource>,
    /// AIP-155 request id.
    pub request_id: Option<Uuid>,
    /// The method, recorded with the request id (a request id is bound to one method).
    pub method: &'static str,
    /// Whether the rows are the items of a batch: a conflict then names the item at fault.
    pub batch: bool,
}

impl App {
    /// Creates the resources in a statement of their own, all or none, with one `<kind>.created` change each. A
    /// replay of the same request id with the same body returns the originally created resources and writes
    /// nothing.
    pub(super) async fn create_alone(
        &self,
        caller: &Caller,
        request: &CreateRequest,
    ) -> Result<Vec<Resource>, AppError> {
        let rows: Vec<Map<String, Value>> = request.rows.iter().map(NewResource::to_row).collect();
        let request_hash: [u8; 32] = Sha256::digest(serde_json::to_vec(&rows).unwrap_or_default()).into();
        let rows = &rows;
        let created = retrying(|| async move {
            let rows: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let mut row = row.clone();
                    row.insert("id".into(), Value::from(Uuid::now_v7().to_string()));
                    Value::Object(row)
                })
                .collect();
            let claim = request.request_id.map(|request_id| IdempotencyClaim {
                request_id,
                method: request.method,
                request_hash,
            });
            let mut tx = self.begin(caller).await?;
            let created = store::create(&mut tx, request.kind, &rows, claim.as_ref(), &caller.change_context())
                .await
                .map_err(AppError::from_db)?;
            let resources = match (created, claim) {
                (Some(resources), _) => resources,
                (None, Some(claim)) => replay(&mut tx, caller.org_id, request.kind, &claim).await?,
                (None, None) => return Err(AppError::Internal(anyhow::anyhow!("create returned no rows"))),
            };
            tx.commit().await?;
            Ok(resources)
        })
        .await;
        match (created, request.batch) {
            (
                Err(AppError::AlreadyExists { field: Culprit::Resource { item: None, field }, reason, message }),
                true,
            ) => Err(self.locate_conflict(caller, request, field, reason, message).await),
            (created, _) => created,
        }
    }

    /// A batch's uniqueness conflict names the item at fault: the later of two items that repeat a value, or the
    /// first item whose value another resource already holds. Runs only after the batch failed.
    async fn locate_conflict(
        &self,
        caller: &Caller,
        request: &CreateRequest,
        field: String,
        reason: &'static str,
        message: String,
    ) -> AppError {
        let unlocated =
            || AppError::AlreadyExists { field: Culprit::resource(field.clone()), reason, message: message.clone() };
        // The unique fields are columns of the same name (`slug`, `name`, `domain`).
        let column = field.as_str();
        let rows: Vec<Map<String, Value>> = request.rows.iter().map(NewResource::to_row).collect();
        let values: Vec<Option<&str>> = rows.iter().map(|row| row.get(column).and_then(Value::as_str)).collect();
        for (j, value) in values.iter().enumerate() {
            if let Some(i) = value.and_then(|v| values[..j].iter().position(|w| *w == Some(v))) {
                let message = format!("repeats the value of item {i} of the batch");
                return AppError::AlreadyExists { field: Culprit::item(j, field), reason, message };
            }
        }
        let wanted: Vec<String> = values.iter().flatten().map(|v| (*v).to_owned()).collect();
        let taken = match self.begin(caller).await {
            Ok(mut tx) => lists::taken(&mut tx, request.kind, column, &wanted).await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        match values.iter().position(|v| v.is_some_and(|v| taken.iter().any(|t| t == v))) {
            Some(j) => AppError::AlreadyExists {
                field: Culprit::item(j, field),
                reason,
                message: "is already taken in this organization".into(),
            },
            None => unlocated(),
        }
    }

    /// The resources with `ids`, in that order; NOT_FOUND naming the first missing one.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "get", db.system = "postgresql"))]
    pub async fn get(&self, caller: &Caller, kind: Kind, ids: &[Uuid]) -> Result<Vec<Resource>, AppError> {
        if ids.len() > MAX_BATCH_GET {
            return Err(AppError::invalid("ids", format!("at most {MAX_BATCH_GET} ids")));
        }
        let found = self
            .read(caller, |mut reader| async move {
                let found = store::get_many(&mut reader, caller.org_id, kind, ids).await?;
                reader.finish().await?;
                Ok(found)
            })
            .await?;
        if found.len() != ids.len() {
            let missing =
                ids.iter().find(|id| !found.iter().any(|r| r.id() == **id)).map(Uuid::to_string).unwrap_or_default();
            return Err(AppError::NotFound { kind: kind.name(), id: missing });
        }
        Ok(found)
    }

    /// Sets `columns` on resource `id`. A change that changes nothing writes nothing and emits no change.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "update", db.system = "postgresql"))]
    pub async fn update(
        &self,
        caller: &Caller,
        kind: Kind,
        id: Uuid,
        columns: &Columns,
        etag: Option<i64>,
    ) -> Result<Resource, AppError> {
        retrying(|| async move {
            let mut tx = self.begin(caller).await?;
            locks::lock_aggregates(&mut tx, &[id]).await?;
            let outcome = store::update(&mut tx, kind, id, columns, etag, &caller.change_context())
                .await
                .map_err(AppError::from_db)?;
            tx.commit().await?;
            match outcome {
                UpdateOutcome::Updated(resource) | UpdateOutcome::Unchanged(resource) => Ok(*resource),
                UpdateOutcome::NotFound => Err(AppError::NotFound { kind: kind.name(), id: id.to_string() }),
                UpdateOutcome::EtagMismatch => Err(stale(kind, id)),
            }
        })
        .await
    }

    /// Deletes resource `id`; returns its last state.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "delete", db.system = "postgresql"))]
    pub async fn delete(&self, caller: &Caller, kind: Kind, id: Uuid, etag: Option<i64>) -> Result<Resource, AppError> {
        retrying(|| async move {
            let mut tx = self.begin(caller).await?;
            locks::lock_aggregates(&mut tx, &[id]).await?;
            let outcome = store::delete(&mut tx, kind, id, etag, &caller.change_context()).await?;
            tx.commit().await?;
            match outcome {
                DeleteOutcome::Deleted(resource) => Ok(*resource),
                DeleteOutcome::NotFound => Err(AppError::NotFound { kind: kind.name(), id: id.to_string() }),
                DeleteOutcome::EtagMismatch => Err(stale(kind, id)),
            }
        })
        .await
    }

    /// A page of events matching `filter`, by start (or update) time, or by quality score when `by_quality` (which
    /// takes quality bounds only: INVALID_ARGUMENT on `order_by` otherwise).
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "list_events", db.system = "postgresql"))]
    pub async fn list_events(
        &self,
        caller: &Caller,
        filter: &lists::EventFilter,
        by_quality: bool,
        page: &PageRequest,
    ) -> Result<Page<Resource>, AppError> {
        if by_quality {
            if !filter.only_quality() {
                return Err(AppError::invalid("order_by", QUALITY_ORDER_TAKES_ONLY_BOUNDS));
            }
            return self.by_quality(caller, Kind::Event, filter.quality, page).await;
        }
        let after = page.after_time()?;
        let rows = self
            .read(caller, |mut reader| async move {
                let found = lists::events(&mut reader, caller.org_id, filter, after, page.size + 1).await?;
                reader.finish().await?;
                Ok(found)
            })
            .await?;
        Ok(self.page_of(rows, page))
    }

    /// A page of `kind` in creation order matching `filter`. With `parent`, NOT_FOUND when the parent is missing.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "list_by_id", db.system = "postgresql"))]
    pub async fn list_by_id(
        &self,
        caller: &Caller,
        kind: Kind,
        filter: &lists::SimpleFilter,
        parent: Option<(Kind, Uuid)>,
        page: &PageRequest,
    ) -> Result<Page<Resource>, AppError> {
        let rows = self
            .read(caller, |mut reader| async move {
                let rows =
                    lists::by_id(&mut reader, caller.org_id, kind, filter, page.after_id(), page.size + 1).await?;
                if let Some((parent_kind, parent_id)) = parent
                    && rows.is_empty()
                    && !lists::exists(&mut reader, caller.org_id, parent_kind, parent_id).await?
                {
                    return Err(AppError::NotFound { kind: parent_kind.name(), id: parent_id.to_string() });
                }
                reader.finish().await?;
                Ok(rows)
            })
            .await?;
        Ok(self.page_of(rows, page))
    }

    /// A page of `kind` (speakers, companies) by quality score, thinnest first, within the filter's quality
    /// bounds, which is all the filter may hold (INVALID_ARGUMENT on `order_by` otherwise).
    pub async fn list_by_quality(
        &self,
        caller: &Caller,
        kind: Kind,
        filter: &lists::SimpleFilter,
        page: &PageRequest,
    ) -> Result<Page<Resource>, AppError> {
        if !filter.only_quality() {
            return Err(AppError::invalid("order_by", QUALITY_ORDER_TAKES_ONLY_BOUNDS));
        }
        self.by_quality(caller, kind, filter.quality, page).await
    }

    /// A page of `kind` (events, speakers, companies) by quality score, thinnest first, within `range`.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "list_by_quality", db.system = "postgresql"))]
    async fn by_quality(
        &self,
        caller: &Caller,
        kind: Kind,
        range: lists::QualityRange,
        page: &PageRequest,
    ) -> Result<Page<Resource>, AppError> {
        let after = page.after_quality()?;
        let mut rows = self
            .read(caller, |mut reader| async move {
                let found = lists::by_quality(&mut reader, caller.org_id, kind, range, after, page.size + 1).await?;
                reader.finish().await?;
                Ok(found)
            })
            .await?;
        let has_more = rows.len() as i64 > page.size;
        rows.truncate(page.size as usize);
        let last = rows.last().map(|(_, score, id)| (Some(score.to_string()), *id));
        Ok(Page {
            next_page_token: self.next_page_token(page, has_more, last),
            items: rows.into_iter().map(|r| r.0).collect(),
        })
    }

    /// Cuts `rows` (fetched with one extra) to a page and signs the next token.
    fn page_of(&self, mut rows: Vec<lists::ListedRow>, page: &PageRequest) -> Page<Resource> {
        let has_more = rows.len() as i64 > page.size;
        rows.truncate(page.size as usize);
        let last = rows.last().map(|(_, sort, id)| (sort.map(|t| t.to_rfc3339()), *id));
        Page {
            next_page_token: self.next_page_token(page, has_more, last),
            items: rows.into_iter().map(|r| r.0).collect(),
        }
    }
}

/// The resources a replayed request created, or why it cannot be replayed.
async fn replay(
    tx: &mut sqlx::PgConnection,
    org: Uuid,
    kind: Kind,
    claim: &IdempotencyClaim<'_>,
) -> Result<Vec<Resource>, AppError> {
    let record = idempotency::find(tx, claim.request_id)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("idempotency record vanished")))?;
    if record.method != claim.method || record.request_hash != claim.request_hash {
        return Err(AppError::AlreadyExists {
            field: Culprit::Request("request_id".into()),
            reason: "REQUEST_ID_REUSED",
            message: "was already used for a different request".into(),
        });
    }
    let resources = store::get_many(tx, org, kind, &record.resource_ids).await?;
    if resources.len() != record.resource_ids.len() {
        return Err(AppError::FailedPrecondition {
            field: Culprit::Request("request_id".into()),
            reason: "REQUEST_RESULT_DELETED",
            message: "names a request already applied, but what it created has since been deleted".into(),
        });
    }
    Ok(resources)
}

fn stale(kind: Kind, id: Uuid) -> AppError {
    AppError::Aborted { message: format!("{} {id} changed since this etag was read; read it again", kind.name()) }
}
