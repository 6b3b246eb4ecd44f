//! Authentication as a use case: an API key's secret → the [`Caller`] it may act as. Keys are looked up by the
//! SHA-256 of the secret through `authenticate_api_key` and the answer (found or not) is trusted for a short TTL, so
//! a revoked key stops working at most that long after revocation. Scopes gate methods: `read` for reads, `write`
//! for mutations, `admin` both.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::{AppError, Caller};
use crate::domain::api_key::{Scope, Scopes, hash_secret};
use crate::store::api_keys::{self, KeyGrant};

/// Most cached lookups; the cache is emptied when full (so unknown keys cannot grow it without bound).
const CACHE_CAPACITY: usize = 10_000;

/// Cached lookups by key hash: when looked up, and what was found (None: unknown or revoked).
type GrantCache = HashMap<[u8; 32], (Instant, Option<KeyGrant>)>;

/// What a call brings besides its key: its trace context and its deadline.
#[derive(Debug, Default)]
pub struct CallContext {
    /// W3C `traceparent` (kept only when well formed).
    pub traceparent: Option<String>,
    /// W3C `tracestate` (kept only up to 512 bytes).
    pub tracestate: Option<String>,
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
    /// The consistency token the call sent back (`x-eventdata-consistency-token`): reads must see that write.
    pub consistency: Option<crate::domain::lsn::Lsn>,
}

/// Turns API-key secrets into callers.
pub struct Authenticator {
    pool: PgPool,
    ttl: Duration,
    cache: Mutex<GrantCache>,
}

impl Authenticator {
    /// Looks keys up on `pool`, trusting a lookup (positive or negative) for `ttl`.
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self { pool, ttl, cache: Mutex::new(HashMap::new()) }
    }

    /// The caller a key with `secret` is, if the key is valid and grants `scope`.
    pub async fn caller(&self, secret: &str, scope: Scope, call: CallContext) -> Result<Caller, AppError> {
        let grant =
            self.lookup(hash_secret(secret)).await?.ok_or(AppError::Unauthenticated("unknown or revoked API key"))?;
        let scopes = Scopes::from_names(&grant.scopes).map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        if !scopes.grants(scope) {
            return Err(AppError::PermissionDenied(format!("this API key lacks the `{scope}` scope")));
        }
        let span = tracing::Span::current();
        span.record("enduser.id", grant.key_id.to_string());
        span.record("eventdata.org_id", grant.org_id.to_string());
        Ok(Caller {
            org_id: grant.org_id,
            key_id: grant.key_id,
            scopes,
            traceparent: call.traceparent.filter(|t| is_traceparent(t)),
            tracestate: call.tracestate.filter(|t| t.len() <= 512),
            deadline: call.deadline,
            consistency: call.consistency,
        })
    }

    async fn lookup(&self, hash: [u8; 32]) -> Result<Option<KeyGrant>, AppError> {
        if let Some((at, grant)) = self.cache.lock().expect("auth cache lock").get(&hash)
            && at.elapsed() < self.ttl
        {
            return Ok(grant.clone());
        }
        // In a transaction, as every statement behind a transaction-mode pooler must be; a cache miss is rare.
        let mut tx = self.pool.begin().await?;
        let grant = api_keys::authenticate(&mut *tx, &hash).await?;
        tx.commit().await?;
        let mut cache = self.cache.lock().expect("auth cache lock");
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(hash, (Instant::now(), grant.clone()));
        Ok(grant)
    }
}

/// `00-<32 hex>-<16 hex>-<2 hex>`, as the outbox column requires.
fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() == 4
        && [2, 32, 16, 2].iter().zip(&parts).all(|(len, part)| {
            part.len() == *len && part.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lower_case_w3c_traceparents_are_kept() {
        assert!(is_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert!(!is_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
        assert!(!is_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"));
    }
}
