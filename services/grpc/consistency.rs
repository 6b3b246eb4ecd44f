//! Read-your-writes across a read replica: a tower layer that puts a consistency token on the response of every
//! successful call that may write (`x-eventdata-consistency-token`, the primary's WAL position after the commit).
//! A read that sends it back is served by the replica only once the replica has replayed it (`app::App::reader`).
//! Without a replica the layer adds nothing and costs nothing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::auth::CONSISTENCY_TOKEN;
use crate::app::App;

/// Method-name prefixes of the calls that never write: their responses carry no token.
const READ_ONLY: &[&str] = &[
    "Get",
    "List",
    "BatchGet",
    "Search",
    "Similar",
    "Lookup",
    "Hybrid",
    "Find",
    "Related",
    "CoSpeakers",
    "Watch",
    "Check",
    "ServerReflectionInfo",
];

/// Whether a call to `path` (`/package.Service/Method`) may write.
pub fn may_write(path: &str) -> bool {
    let method = path.rsplit('/').next().unwrap_or_default();
    !READ_ONLY.iter().any(|prefix| method.starts_with(prefix))
}

/// Adds [`ConsistencyToken`] to a service.
#[derive(Clone)]
pub struct ConsistencyTokenLayer {
    app: App,
}

impl ConsistencyTokenLayer {
    /// Tokens from `app`'s primary.
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

impl<S> tower::Layer<S> for ConsistencyTokenLayer {
    type Service = ConsistencyToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConsistencyToken { inner, app: self.app.clone() }
    }
}

/// The token wrapper of one service.
#[derive(Clone)]
pub struct ConsistencyToken<S> {
    inner: S,
    app: App,
}

impl<S, B, R> tower::Service<http::Request<B>> for ConsistencyToken<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone is the one that is ready; keep it for this call (tower's ready-service contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let app = self.app.clone();
        let writes = may_write(request.uri().path());
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            // A failed call travels as a trailers-only response, its status in the headers.
            let failed = response.headers().get("grpc-status").is_some_and(|code| code != "0");
            if writes
                && !failed
                && let Some(token) = app.consistency_token().await
                && let Ok(value) = http::HeaderValue::from_str(&token)
            {
                response.headers_mut().insert(CONSISTENCY_TOKEN, value);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_told_from_reads_by_method_name() {
        for write in [
            "CreateEvent",
            "UpdateSpeaker",
            "DeleteTopic",
            "AddEventSpeaker",
            "BatchCreateEvents",
            "UpsertSpeaker",
            "SetEmbedding",
            "ClearEmbedding",
            "RemoveEventTopic",
            "BatchAddEventSpeakers",
        ] {
            assert!(may_write(&format!("/eventdata.v1.X/{write}")), "{write}");
        }
        for read in [
            "GetEvent",
            "ListEvents",
            "BatchGetEvents",
            "SearchEvents",
            "SimilarEvents",
            "LookupNames",
            "HybridSearchEvents",
            "GetNeighborhood",
            "FindPath",
            "RelatedEvents",
            "CoSpeakers",
            "WatchChanges",
            "ListChanges",
            "GetEventContext",
            "BatchGetEventContexts",
            "GetEmbedding",
        ] {
            assert!(!may_write(&format!("/eventdata.v1.X/{read}")), "{read}");
        }
    }
}
