//! Authentication of gRPC calls: `authorization: Bearer <api key>`, looked up by the SHA-256 of the key through
//! `authenticate_api_key`, cached briefly. Scopes gate methods: `read` for Get/List/Search, `write` for mutations.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tonic::Request;

use crate::app::{AppError, Caller};
use crate::domain::api_key::{Scope, Scopes, hash_secret};
use crate::store::api_keys::{self, KeyGrant};

/// Most cached lookups; the cache is emptied when full (so unknown keys cannot grow it without bound).
const CACHE_CAPACITY: usize = 10_000;

/// Cached lookups by key hash: when looked up, and what was found (None: unknown or revoked).
type GrantCache = HashMap<[u8; 32], (Instant, Option<KeyGrant>)>;

/// Turns request credentials into a [`Caller`].
pub struct Authenticator {
    pool: PgPool,
    ttl: Duration,
    cache: Mutex<GrantCache>,
}

impl Authenticator {
    /// Looks keys up on `pool`, trusting a lookup (positive or negative) for `ttl`: a revoked key stops working at
    /// most `ttl` after revocation.
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self { pool, ttl, cache: Mutex::new(HashMap::new()) }
    }

    /// The caller of `request`, if its key is valid and has `scope`.
    pub async fn caller<T>(&self, request: &Request<T>, scope: Scope) -> Result<Caller, AppError> {
        let metadata = request.metadata();
        let header = metadata
            .get("authorization")
            .ok_or(AppError::Unauthenticated("missing authorization: Bearer <api key>"))?
            .to_str()
            .map_err(|_| AppError::Unauthenticated("malformed authorization header"))?;
        let secret = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(AppError::Unauthenticated("authorization must be `Bearer <api key>`"))?;
        let grant =
            self.lookup(hash_secret(secret)).await?.ok_or(AppError::Unauthenticated("unknown or revoked API key"))?;
        let scopes = Scopes::from_names(&grant.scopes).map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        if !scopes.grants(scope) {
            return Err(AppError::PermissionDenied(format!("this API key lacks the `{scope}` scope")));
        }
        let span = tracing::Span::current();
        span.record("enduser.id", grant.key_id.to_string());
        span.record("eventdata.org_id", grant.org_id.to_string());
        // The request's trace context as recorded with its changes: the server span's own when OpenTelemetry
        // records it (so the relay's publish span joins this trace), else whatever the caller sent.
        let (traceparent, tracestate) = match crate::telemetry::current_trace_headers() {
            (Some(traceparent), tracestate) => (Some(traceparent), tracestate),
            (None, _) => {
                let header = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                (header("traceparent"), header("tracestate"))
            }
        };
        let deadline = metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|timeout| Instant::now() + timeout);
        Ok(Caller {
            org_id: grant.org_id,
            key_id: grant.key_id,
            scopes,
            traceparent: traceparent.filter(|t| is_traceparent(t)),
            tracestate: tracestate.filter(|t| t.len() <= 512),
            deadline,
        })
    }

    async fn lookup(&self, hash: [u8; 32]) -> Result<Option<KeyGrant>, AppError> {
        if let Some((at, grant)) = self.cache.lock().expect("auth cache lock").get(&hash)
            && at.elapsed() < self.ttl
        {
            return Ok(grant.clone());
        }
        let grant = api_keys::authenticate(&self.pool, &hash).await?;
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

/// A `grpc-timeout` header value: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("1000m"), Some(Duration::from_secs(1)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("5u"), Some(Duration::from_micros(5)));
        for bad in ["", "m", "123456789S", "10x", "-1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
        assert!(is_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert!(!is_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
    }
}
