//! The change feed: an organization's change log, paged (ListChanges, the audit log) or followed live
//! (WatchChanges). Cursors are signed and bound to the organization.

use std::time::Duration;

use tokio::sync::mpsc;

use super::paging::page_size;
use super::{App, AppError, Caller};
use crate::outbox::feed::{self, FeedFilter};
use crate::outbox::log::{self, Checkpoint, LoggedChange};

/// How long a watcher waits without a tick of the commit notifier before reading anyway.
const WATCH_POLL: Duration = Duration::from_secs(1);
/// How many changes a watcher reads at a time.
const WATCH_BATCH: i64 = 200;

/// Where a watch begins without a cursor.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// Changes committed from now on.
    Now,
    /// Everything in the log.
    Beginning,
}

/// A page of changes with each change's cursor.
#[derive(Debug)]
pub struct ChangePage {
    /// The changes and their cursors.
    pub changes: Vec<(LoggedChange, String)>,
    /// Empty at the (current) end of the log.
    pub next_page_token: String,
}

impl App {
    fn cursor_scope(caller: &Caller) -> String {
        format!("{}|changes", caller.org_id)
    }

    /// The signed cursor of `change`.
    pub fn change_cursor(&self, caller: &Caller, change: &LoggedChange) -> String {
        self.tokens.encode(&Self::cursor_scope(caller), (change.txid, change.position))
    }

    /// The checkpoint in a cursor this service issued to the caller's organization.
    pub fn parse_change_cursor(&self, caller: &Caller, field: &str, cursor: &str) -> Result<Checkpoint, AppError> {
        let (txid, position): (i64, i64) = self
            .tokens
            .decode(&Self::cursor_scope(caller), cursor)
            .map_err(|e| AppError::invalid(field, e.to_string().replace("page_token", field)))?;
        Ok(Checkpoint { txid, position })
    }

    /// A page of the caller's changes after the cursor in `page_token` (or `after`).
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "list_changes", db.system = "postgresql"))]
    pub async fn list_changes(
        &self,
        caller: &Caller,
        filter: &FeedFilter,
        after: Option<Checkpoint>,
        requested_size: i32,
        page_token: &str,
    ) -> Result<ChangePage, AppError> {
        let size = page_size(requested_size)?;
        let query = format!("{}|ListChanges|{filter:?}", caller.org_id);
        let after = match page_token {
            "" => after.unwrap_or_default(),
            token => {
                let (txid, position): (i64, i64) =
                    self.tokens.decode(&query, token).map_err(|e| AppError::invalid("page_token", e.to_string()))?;
                Checkpoint { txid, position }
            }
        };
        // A transaction for the planner settings of an ordered page (a confined statement cannot set those).
        let mut tx =
            self.begin_with(caller, &log::ordered_reads().map(|(name, value)| (name, value.to_owned()))).await?;
        let mut rows = feed::read(&mut tx, caller.org_id, after, filter, size + 1).await?;
        tx.commit().await?;
        let has_more = rows.len() as i64 > size;
        rows.truncate(size as usize);
        let next_page_token = match rows.last() {
            Some(last) if has_more => self.tokens.encode(&query, (last.txid, last.position)),
            _ => String::new(),
        };
        let changes = rows
            .into_iter()
            .map(|c| {
                let cursor = self.change_cursor(caller, &c);
                (c, cursor)
            })
            .collect();
        Ok(ChangePage { changes, next_page_token })
    }

    /// Streams the caller's changes after `after` (or from `start`) into a channel until the receiver is dropped.
    pub async fn watch_changes(
        &self,
        caller: Caller,
        after: Option<Checkpoint>,
        start: Start,
        filter: FeedFilter,
    ) -> Result<mpsc::Receiver<Result<(LoggedChange, String), AppError>>, AppError> {
        let mut at = match (after, start) {
            (Some(at), _) => at,
            (None, Start::Beginning) => Checkpoint::default(),
            (None, Start::Now) => {
                let mut tx = self
                    .begin_with(&caller, &log::ordered_reads().map(|(name, value)| (name, value.to_owned())))
                    .await?;
                let now = feed::now(&mut tx).await?;
                tx.commit().await?;
                now
            }
        };
        let (sender, receiver) = mpsc::channel(WATCH_BATCH as usize);
        let notifier =
            self.notifier.as_ref().ok_or_else(|| AppError::Internal(anyhow::anyhow!("no commit notifier")))?;
        let mut ticks = notifier.subscribe();
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                // Before reading, so a commit during the read wakes the next wait.
                ticks.mark_unchanged();
                // One confined statement per poll: no BEGIN or COMMIT around it.
                let read = async {
                    let mut reader = app.primary_reader(&caller).await?;
                    let rows = feed::read(&mut reader, caller.org_id, at, &filter, WATCH_BATCH).await?;
                    reader.finish().await?;
                    Ok::<_, AppError>(rows)
                };
                let rows = match read.await {
                    Ok(rows) => rows,
                    Err(err) => {
                        let _ = sender.send(Err(err)).await;
                        return;
                    }
                };
                let full = rows.len() as i64 == WATCH_BATCH;
                for change in rows {
                    at = change.checkpoint();
                    let cursor = app.change_cursor(&caller, &change);
                    if sender.send(Ok((change, cursor))).await.is_err() {
                        return; // the client went away
                    }
                }
                if full {
                    continue;
                }
                tokio::select! {
                    _ = ticks.changed() => {}
                    _ = tokio::time::sleep(WATCH_POLL) => {}
                    _ = sender.closed() => return,
                }
            }
        });
        Ok(receiver)
    }
}
