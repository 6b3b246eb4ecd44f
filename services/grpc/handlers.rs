//! What every catalogue handler does, once: authenticate, validate, call the use case, map the error.
//! The per-service modules are one line or three per method on top of these.

use std::sync::Arc;

use prost_types::FieldMask;
use tonic::{Request, Status};
use uuid::Uuid;

use super::convert::{Checks, parse_etag, parse_id, parse_ids, parse_request_id};
use crate::app::auth::Authenticator;
use crate::app::catalogue::{CreateRequest, Page};
use crate::app::error::Culprit;
use crate::app::{App, AppError, Caller};
use crate::domain::api_key::Scope;
use crate::domain::catalogue::{Kind, RelationKind};
use crate::domain::fields::{Input, Violations, request_path, validate_update};
use crate::domain::new_resources::NewResource;
use crate::domain::queries::From;
use crate::domain::resources::{Relation, Resource};

/// Validated inputs of one resource, keyed by API path.
pub type Inputs = Vec<(&'static str, Input)>;

/// The state every service shares.
#[derive(Clone)]
pub struct Api {
    /// Use cases.
    pub app: App,
    /// Credentials → caller.
    pub auth: Arc<Authenticator>,
}

/// Where a request carries the resource (or relation) it writes: the field holding it (`event.`, with its dot)
/// and, in a batch, the repeated field holding the items (`requests`). The use cases and the domain name fields as
/// the resource has them (`slug`, item 3); this puts them at their path in the request (`requests[3].event.slug`).
#[derive(Debug, Clone, Copy)]
pub struct Place {
    /// The field holding the resource, with a trailing dot.
    pub resource: &'static str,
    /// The repeated field of a batch's items.
    pub items: Option<&'static str>,
}

impl Place {
    /// A single resource in field `resource` (`event.`).
    pub fn single(resource: &'static str) -> Self {
        Place { resource, items: None }
    }

    /// Resources in field `resource` of each item of `items`.
    pub fn batch(items: &'static str, resource: &'static str) -> Self {
        Place { resource, items: Some(items) }
    }

    /// The request path of the resource (of item `item` of a batch), with a trailing dot.
    pub fn prefix(&self, item: Option<usize>) -> String {
        match (self.items, item) {
            (Some(items), Some(i)) => format!("{items}[{i}].{}", self.resource),
            _ => self.resource.to_owned(),
        }
    }

    /// `err` with every field it names relative to the resource put at its request path.
    pub fn locate(&self, err: AppError) -> AppError {
        let culprit = |field: Culprit| match field {
            Culprit::Resource { item, field } => Culprit::Request(request_path(&self.prefix(item), &field)),
            request => request,
        };
        match err {
            AppError::InvalidArgument(violations) => AppError::InvalidArgument(violations.under(&self.prefix(None))),
            AppError::AlreadyExists { field, reason, message } => {
                AppError::AlreadyExists { field: culprit(field), reason, message }
            }
            AppError::FailedPrecondition { field, reason, message } => {
                AppError::FailedPrecondition { field: culprit(field), reason, message }
            }
            other => other,
        }
    }
}

/// The update mask's paths (empty when absent: "every field the request sets", AIP-134).
pub fn mask_paths(mask: Option<FieldMask>) -> Vec<String> {
    mask.map(|m| m.paths).unwrap_or_default()
}

impl Api {
    /// The caller, if allowed `scope`.
    pub async fn caller<T>(&self, request: &Request<T>, scope: Scope) -> Result<Caller, Status> {
        Ok(super::auth::caller(&self.auth, request, scope).await?)
    }

    /// Get by id.
    pub async fn get(&self, caller: &Caller, kind: Kind, id: &str) -> Result<Resource, Status> {
        let id = parse_id("id", id)?;
        Ok(self.app.get(caller, kind, &[id]).await?.remove(0))
    }

    /// BatchGet by ids.
    pub async fn batch_get(&self, caller: &Caller, kind: Kind, ids: &[String]) -> Result<Vec<Resource>, Status> {
        let ids = parse_ids("ids", ids)?;
        Ok(self.app.get(caller, kind, &ids).await?)
    }

    /// Create one resource. Every violation of the request is reported at once.
    pub async fn create(
        &self,
        caller: &Caller,
        kind: Kind,
        inputs: Option<Inputs>,
        request_id: &str,
        method: &'static str,
        field_prefix: &'static str,
    ) -> Result<Resource, Status> {
        let mut checks = Checks::default();
        let request_id = checks.take(parse_request_id(request_id));
        let inputs = inputs.unwrap_or_default();
        let place = Place::single(field_prefix);
        let new = checks.take_violations(NewResource::parse(kind, &inputs).map_err(|v| v.under(field_prefix)));
        checks.finish()?;
        let (Some(request_id), Some(new)) = (request_id, new) else { return Err(checked_without_value()) };
        let request = CreateRequest { kind, rows: vec![new], request_id, method, batch: false };
        Ok(self.app.create(caller, &request).await.map_err(|e| place.locate(e))?.remove(0))
    }

    /// Create many resources, all or none; violations are reported per item (`requests[i].event.name`).
    pub async fn create_many(
        &self,
        caller: &Caller,
        kind: Kind,
        items: Vec<Option<Inputs>>,
        request_id: &str,
        method: &'static str,
        field_prefix: &'static str,
    ) -> Result<Vec<Resource>, Status> {
        let mut checks = Checks::default();
        let request_id = checks.take(parse_request_id(request_id));
        let place = Place::batch("requests", field_prefix);
        let mut violations = Violations::default();
        let mut rows = Vec::with_capacity(items.len());
        for (i, inputs) in items.into_iter().enumerate() {
            let (item, inputs) = (place.prefix(Some(i)), inputs.unwrap_or_default());
            match NewResource::parse(kind, &inputs) {
                Ok(new) => rows.push(new),
                Err(found) => violations.extend(found.under(&item)),
            }
        }
        checks.add(violations);
        checks.finish()?;
        let Some(request_id) = request_id else { return Err(checked_without_value()) };
        let request = CreateRequest { kind, rows, request_id, method, batch: true };
        Ok(self.app.create(caller, &request).await.map_err(|e| place.locate(e))?)
    }

    /// Update the fields of `mask` on resource `id`, only at `etag` when one is given.
    #[expect(clippy::too_many_arguments, reason = "one call site per service; a struct would only rename them")]
    pub async fn update(
        &self,
        caller: &Caller,
        kind: Kind,
        id: &str,
        etag: &str,
        inputs: Inputs,
        mask: Option<FieldMask>,
        field_prefix: &'static str,
    ) -> Result<Resource, Status> {
        let mut checks = Checks::default();
        let id = checks.take(parse_id(&format!("{field_prefix}id"), id));
        let etag = checks.take(parse_etag(&format!("{field_prefix}etag"), etag));
        let update = validate_update(kind.fields(), &inputs, &mask_paths(mask), kind.output_only());
        let columns = checks.take_violations(update.map_err(|v| v.under(field_prefix))).map(|patch| patch.columns);
        if let Some(columns) = &columns {
            checks.add(kind.check_together(columns).under(field_prefix));
        }
        checks.finish()?;
        let (Some(id), Some(etag), Some(columns)) = (id, etag, columns) else { return Err(checked_without_value()) };
        let updated = self.app.update(caller, kind, id, &columns, etag).await;
        Ok(updated.map_err(|e| Place::single(field_prefix).locate(e))?)
    }

    /// Delete by id, optionally only at `etag`.
    pub async fn delete(&self, caller: &Caller, kind: Kind, id: &str, etag: &str) -> Result<(), Status> {
        let mut checks = Checks::default();
        let id = checks.take(parse_id("id", id));
        let etag = checks.take(parse_etag("etag", etag));
        checks.finish()?;
        let (Some(id), Some(etag)) = (id, etag) else { return Err(checked_without_value()) };
        self.app.delete(caller, kind, id, etag).await?;
        Ok(())
    }

    /// Upsert by natural key; returns the resource and whether it was created.
    pub async fn upsert(
        &self,
        caller: &Caller,
        kind: Kind,
        inputs: Option<Inputs>,
        field_prefix: &'static str,
    ) -> Result<(Resource, bool), Status> {
        let upserted = self.app.upsert(caller, kind, &inputs.unwrap_or_default()).await;
        Ok(upserted.map_err(|e| Place::single(field_prefix).locate(e))?)
    }

    /// A page of `kind` listed in id order with `filter`.
    #[expect(clippy::too_many_arguments, reason = "mirrors the List request fields")]
    pub async fn list_by_id(
        &self,
        caller: &Caller,
        kind: Kind,
        filter: &crate::domain::queries::SimpleFilter,
        parent: Option<(Kind, Uuid)>,
        query: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Resource>, Status> {
        let page = self.app.page_request(caller, query, page_size, page_token)?;
        Ok(self.app.list_by_id(caller, kind, filter, parent, &page).await?)
    }

    /// A page of `kind` by quality score; the filter may hold quality bounds only.
    pub async fn list_by_quality(
        &self,
        caller: &Caller,
        kind: Kind,
        filter: &crate::domain::queries::SimpleFilter,
        query: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Resource>, Status> {
        let page = self.app.page_request(caller, query, page_size, page_token)?;
        Ok(self.app.list_by_quality(caller, kind, filter, &page).await?)
    }

    /// A page of relations of `kind` seen from `from`.
    #[expect(clippy::too_many_arguments, reason = "mirrors the List request fields")]
    pub async fn list_relations(
        &self,
        caller: &Caller,
        kind: RelationKind,
        from: From,
        id: &str,
        id_field: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Relation>, Status> {
        let id = parse_id(id_field, id)?;
        let query = format!("relations|{kind:?}|{from:?}|{id}");
        let page = self.app.page_request(caller, &query, page_size, page_token)?;
        Ok(self.app.list_relations(caller, kind, from, id, &page).await?)
    }
}

/// After `Checks::finish` passed every checked value is present; if one is not, that is a bug, never a panic.
fn checked_without_value() -> Status {
    AppError::Internal(anyhow::anyhow!("a request passed its checks without a value")).into()
}
