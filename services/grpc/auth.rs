//! The credentials and call context of a gRPC request: `authorization: Bearer <api key>`, the W3C trace headers
//! and `grpc-timeout`, handed to the authentication use case (`app::auth`).

use std::time::{Duration, Instant};

use tonic::Request;

use crate::app::auth::{Authenticator, CallContext};
use crate::app::{AppError, Caller};
use crate::domain::api_key::Scope;
use crate::domain::lsn::Lsn;

/// The metadata key of the consistency token: in the response of a write, and sent back with reads that must see
/// it (docs/scaling.md, "Read replicas").
pub const CONSISTENCY_TOKEN: &str = "x-eventdata-consistency-token";

/// The caller of `request`, if its key is valid and has `scope`.
pub async fn caller<T>(auth: &Authenticator, request: &Request<T>, scope: Scope) -> Result<Caller, AppError> {
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
    // The request's trace context as recorded with its changes: the server span's own when OpenTelemetry records
    // it (so the relay's publish span joins this trace), else whatever the caller sent.
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
    let consistency = match metadata.get(CONSISTENCY_TOKEN) {
        None => None,
        Some(value) => Some(value.to_str().ok().and_then(Lsn::parse).ok_or_else(|| {
            AppError::invalid(CONSISTENCY_TOKEN, "must be a consistency token from a write's response metadata")
        })?),
    };
    auth.caller(secret, scope, CallContext { traceparent, tracestate, deadline, consistency }).await
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
    }
}
