//! Event contexts for retrieval and prompt building.

use uuid::Uuid;

use super::{App, AppError, Caller};
use crate::domain::resources::EventContext;
use crate::store::contexts;

/// Most events one BatchGetEventContexts takes.
pub const MAX_CONTEXTS: usize = 100;

impl App {
    /// The contexts of `ids`, in that order; NOT_FOUND naming the first missing event. One statement, whatever the
    /// number of events and related rows.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "event_contexts", db.system = "postgresql"))]
    pub async fn event_contexts(&self, caller: &Caller, ids: &[Uuid]) -> Result<Vec<EventContext>, AppError> {
        if ids.is_empty() || ids.len() > MAX_CONTEXTS {
            return Err(AppError::invalid("ids", format!("must hold 1 to {MAX_CONTEXTS} event ids")));
        }
        let found = self
            .read(caller, |mut reader| async move {
                let found = contexts::event_contexts(&mut reader, caller.org_id, ids).await?;
                reader.finish().await?;
                Ok(found)
            })
            .await?;
        if found.len() != ids.len() {
            let missing = ids
                .iter()
                .find(|id| !found.iter().any(|c| c.event.id == **id))
                .map(Uuid::to_string)
                .unwrap_or_default();
            return Err(AppError::NotFound { kind: "event", id: missing });
        }
        Ok(found)
    }
}
