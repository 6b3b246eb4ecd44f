//! Authentication as a use case: an API key's secret → the [`Caller`] it may act as. Keys are looked up by the
//! SHA-256 of the secret through `authenticate_api_key` and the answer (found or not) is trusted for a short TTL, so
//! a revoked key stops working at most that long after revocation. Scopes gate methods: `read` for reads, `write`
//! for mutations, `admin` both.
//!
//! Calls that miss the cache for the same key at the same moment share one lookup: when the cache is cold (a
//! start, the TTL just ended) every in-flight call of a busy client misses at once, and each taking a connection
//! for the same answer made the pool's queue long enough for calls to fail as UNAVAILABLE (200 clients on 20
//! connections, `tests/integration/security.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::OnceCell;

use super::{AppError, Caller};
use crate::domain::api_key::{Scope, Scopes, hash_secret};
use crate::store::api_keys::{self, KeyGrant};

/// Most cached lookups; the cache is emptied when full (so unknown keys cannot grow it without bound).
const CACHE_CAPACITY: usize = 10_000;

/// Cached lookups by key hash: when looked up, and what was found (None: unknown or revoked).
type GrantCache = HashMap<[u8; 32], (Instant, Option<KeyGrant>)>;

/// One lookup under way, shared by the calls waiting for its answer.
type Lookup = Arc<OnceCell<Result<Option<KeyGrant>, LookupFailed>>>;

/// Why a shared lookup found no answer, for each call that waited for it.
#[derive(Debug, Clone, Copy)]
enum LookupFailed {
    /// The database could not be reached (or gave no connection in time).
    Unavailable,
    /// Anything else; logged once, by the call that ran the lookup.
    Internal,
}

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
    /// Lookups under way by key hash.
    lookups: Mutex<HashMap<[u8; 32], Lookup>>,
    /// Lookups made in the database so far.
    database_lookups: AtomicU64,
}

impl Authenticator {
    /// Looks keys up on `pool`, trusting a lookup (positive or negative) for `ttl`.
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            cache: Mutex::new(HashMap::new()),
            lookups: Mutex::new(HashMap::new()),
            database_lookups: AtomicU64::new(0),
        }
    }

    /// How many lookups went to the database (cache misses, each shared by the calls that missed together).
    pub fn database_lookups(&self) -> u64 {
        self.database_lookups.load(Ordering::Relaxed)
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
        if let Some(grant) = self.cached(&hash) {
            return Ok(grant);
        }
        // Join the lookup under way for this key, or start one. tokio's OnceCell runs one initialisation at a time:
        // a caller that leaves mid-lookup hands it to the next waiter.
        let lookup = {
            let mut lookups = self.lookups.lock().expect("auth lookups lock");
            // Entries go when their lookup ends; one whose every caller left mid-lookup would stay: bound them.
            if lookups.len() >= CACHE_CAPACITY {
                lookups.clear();
            }
            Arc::clone(lookups.entry(hash).or_default())
        };
        let found = lookup
            .get_or_init(|| async {
                // A lookup that ended just before this one began has filled the cache.
                if let Some(grant) = self.cached(&hash) {
                    return Ok(grant);
                }
                let found = self.look_up_in_database(&hash).await;
                if let Ok(grant) = &found {
                    let mut cache = self.cache.lock().expect("auth cache lock");
                    if cache.len() >= CACHE_CAPACITY {
                        cache.clear();
                    }
                    cache.insert(hash, (Instant::now(), grant.clone()));
                }
                found
            })
            .await
            .clone();
        // Done: the next miss (after the TTL, or after a failure) starts a lookup of its own.
        let mut lookups = self.lookups.lock().expect("auth lookups lock");
        if lookups.get(&hash).is_some_and(|current| Arc::ptr_eq(current, &lookup)) {
            lookups.remove(&hash);
        }
        found.map_err(|failed| match failed {
            LookupFailed::Unavailable => AppError::Unavailable,
            LookupFailed::Internal => AppError::Internal(anyhow::anyhow!("the API key lookup failed")),
        })
    }

    /// The cached answer for `hash`, while it is fresh.
    fn cached(&self, hash: &[u8; 32]) -> Option<Option<KeyGrant>> {
        let cache = self.cache.lock().expect("auth cache lock");
        cache.get(hash).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, grant)| grant.clone())
    }

    async fn look_up_in_database(&self, hash: &[u8; 32]) -> Result<Option<KeyGrant>, LookupFailed> {
        self.database_lookups.fetch_add(1, Ordering::Relaxed);
        // In a transaction, as every statement behind a transaction-mode pooler must be.
        let found = async {
            let mut tx = self.pool.begin().await?;
            let grant = api_keys::authenticate(&mut *tx, hash).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(grant)
        }
        .await;
        found.map_err(|err| match AppError::from_db(err) {
            AppError::Unavailable => LookupFailed::Unavailable,
            other => {
                tracing::error!(error = ?other, "API key lookup failed");
                LookupFailed::Internal
            }
        })
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
