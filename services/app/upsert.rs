//! Ingest upserts: find a speaker, company or topic by its natural key and update it, or create it, without ever
//! creating a duplicate (the unique constraints decide races; the loser retries and finds the winner's row).

use super::catalogue::CreateRequest;
use super::{App, AppError, Caller};
use crate::domain::catalogue::Kind;
use crate::domain::fields::{Columns, Input, validate_update};
use crate::domain::new_resources::NewResource;
use crate::domain::resources::Resource;
use crate::store::catalogue::{self as store, NaturalKey};

/// How often an upsert that lost a creation race looks again.
const ATTEMPTS: usize = 4;

impl App {
    /// Upserts the resource `inputs` describe (keyed by API path): created with every field (defaults applied) when
    /// no resource has its natural key, else patched with every field the caller gave except the name (the key it
    /// was found by). Returns the resource and whether it was created.
    pub async fn upsert(
        &self,
        caller: &Caller,
        kind: Kind,
        inputs: &[(&'static str, Input)],
    ) -> Result<(Resource, bool), AppError> {
        let create = NewResource::parse(kind, inputs).map_err(AppError::InvalidArgument)?;
        let given: Vec<String> = inputs
            .iter()
            .filter(|(path, input)| *path != "name" && input.is_present())
            .map(|(path, _)| path.to_string())
            .collect();
        let patch = if given.is_empty() {
            Columns::default()
        } else {
            validate_update(kind.fields(), inputs, &given, kind.output_only())
                .map_err(AppError::InvalidArgument)?
                .columns
        };
        self.upsert_columns(caller, kind, &create, &patch).await
    }

    /// Upserts by natural key: for companies the domain when `create` has one, else the normalized name.
    /// `create` is the whole resource (defaults applied); `patch` only the columns the caller gave.
    /// Returns the resource and whether it was created.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "upsert", db.system = "postgresql"))]
    async fn upsert_columns(
        &self,
        caller: &Caller,
        kind: Kind,
        create: &NewResource,
        patch: &Columns,
    ) -> Result<(Resource, bool), AppError> {
        let name = create.name().unwrap_or_default().to_owned();
        let domain = create.domain().map(str::to_owned);
        for attempt in 1..=ATTEMPTS {
            let mut tx = self.begin(caller).await?;
            let mut existing = None;
            if let Some(domain) = &domain {
                existing = store::find_id_by_natural_key(&mut tx, kind, NaturalKey::Domain(domain)).await?;
            }
            if existing.is_none() {
                existing = store::find_id_by_natural_key(&mut tx, kind, NaturalKey::Name(&name)).await?;
            }
            tx.rollback().await?;
            let result = match existing {
                Some(id) if patch.is_empty() => self.get(caller, kind, &[id]).await.map(|mut v| (v.remove(0), false)),
                Some(id) => self.update(caller, kind, id, patch, None).await.map(|v| (v, false)),
                None => {
                    let request = CreateRequest {
                        kind,
                        rows: vec![create.clone()],
                        request_id: None,
                        method: "Upsert",
                        batch: false,
                    };
                    self.create(caller, &request).await.map(|mut v| (v.remove(0), true))
                }
            };
            match result {
                // Someone created it (or took its name) in between: look again.
                Err(AppError::AlreadyExists { .. }) if attempt < ATTEMPTS => continue,
                Err(AppError::NotFound { .. }) if attempt < ATTEMPTS => continue,
                other => return other,
            }
        }
        Err(AppError::Conflict)
    }
}
