//! The one mapping from use-case errors to gRPC statuses. Every status carries google.rpc.ErrorInfo (domain
//! `eventdata`); INVALID_ARGUMENT also carries google.rpc.BadRequest with every field violation. Internal causes are
//! logged with their chain and never sent.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{BadRequest, ErrorDetail, ErrorInfo, FieldViolation, StatusExt};

use crate::app::AppError;

/// The ErrorInfo domain of every eventdata error.
pub const ERROR_DOMAIN: &str = "eventdata";
/// Most field violations reported in one status.
const MAX_VIOLATIONS: usize = 50;
/// Longest status message summary.
const MAX_SUMMARY_BYTES: usize = 2048;

fn info(reason: &str, metadata: &[(&str, &str)]) -> ErrorDetail {
    let metadata: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ErrorInfo::new(reason, ERROR_DOMAIN, metadata).into()
}

/// A request message that does not decode (bad bytes, or nesting deeper than the decoder allows): the caller's
/// fault, so INVALID_ARGUMENT naming the whole message. Logged at INFO without the bytes.
pub fn malformed_message(err: &prost::DecodeError) -> Status {
    tracing::info!(error = %err, "request message does not decode");
    Status::with_error_details_vec(
        Code::InvalidArgument,
        "invalid request: the message is not a valid protobuf encoding of the request type (or nests too deeply)",
        [BadRequest::with_violation("", format!("does not decode: {err}")).into(), info("MALFORMED_MESSAGE", &[])],
    )
}

impl From<AppError> for Status {
    fn from(err: AppError) -> Self {
        match err {
            AppError::InvalidArgument(violations) => {
                // Statuses travel in HTTP/2 headers: report at most MAX_VIOLATIONS and a bounded summary.
                let total = violations.0.len();
                let mut summary = violations
                    .0
                    .iter()
                    .take(MAX_VIOLATIONS)
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect::<Vec<_>>()
                    .join("; ");
                if total > MAX_VIOLATIONS {
                    summary.push_str(&format!("; and {} more", total - MAX_VIOLATIONS));
                }
                if summary.len() > MAX_SUMMARY_BYTES {
                    let cut = (0..=MAX_SUMMARY_BYTES).rev().find(|i| summary.is_char_boundary(*i)).unwrap_or(0);
                    summary.truncate(cut);
                    summary.push('…');
                }
                let field_violations: Vec<FieldViolation> = violations
                    .0
                    .into_iter()
                    .take(MAX_VIOLATIONS)
                    .map(|v| FieldViolation::new(v.field, v.description))
                    .collect();
                Status::with_error_details_vec(
                    Code::InvalidArgument,
                    format!("invalid request: {summary}"),
                    [BadRequest::new(field_violations).into(), info("INVALID_ARGUMENT", &[])],
                )
            }
            AppError::NotFound { kind, id } => Status::with_error_details_vec(
                Code::NotFound,
                format!("{kind} {id} not found"),
                [info("NOT_FOUND", &[("resource_type", kind), ("id", &id)])],
            ),
            AppError::RelationNotFound { kind, event_id, other_id } => {
                let (event_id, other_id) = (event_id.to_string(), other_id.to_string());
                let other = kind.target().name();
                Status::with_error_details_vec(
                    Code::NotFound,
                    format!("{other} {other_id} is not related to event {event_id}"),
                    [info(
                        "NOT_FOUND",
                        &[
                            ("resource_type", &format!("event_{other}")),
                            ("event_id", &event_id),
                            (&format!("{other}_id"), &other_id),
                        ],
                    )],
                )
            }
            AppError::AlreadyExists { field, reason, message } => {
                let field = field.to_string();
                let message = format!("{field} {message}");
                Status::with_error_details_vec(Code::AlreadyExists, message, [info(reason, &[("field", &field)])])
            }
            AppError::Aborted { message } => {
                Status::with_error_details_vec(Code::Aborted, message, [info("ETAG_MISMATCH", &[])])
            }
            AppError::Conflict => Status::with_error_details_vec(
                Code::Aborted,
                "the request conflicted with a concurrent one; retry it",
                [info("CONCURRENT_CONFLICT", &[])],
            ),
            AppError::FailedPrecondition { field, reason, message } => {
                let field = field.to_string();
                let message = format!("{field} {message}");
                Status::with_error_details_vec(Code::FailedPrecondition, message, [info(reason, &[("field", &field)])])
            }
            AppError::Unauthenticated(message) => {
                Status::with_error_details_vec(Code::Unauthenticated, message, [info("UNAUTHENTICATED", &[])])
            }
            AppError::PermissionDenied(message) => {
                Status::with_error_details_vec(Code::PermissionDenied, message, [info("MISSING_SCOPE", &[])])
            }
            AppError::Unavailable => Status::with_error_details_vec(
                Code::Unavailable,
                "the catalogue is temporarily unavailable; retry with backoff",
                [info("DATABASE_UNAVAILABLE", &[])],
            ),
            AppError::Busy => Status::with_error_details_vec(
                Code::Unavailable,
                "too many searches are waiting for the database; retry with backoff",
                [info("SEARCHES_BUSY", &[])],
            ),
            AppError::DeadlineExceeded => Status::with_error_details_vec(
                Code::DeadlineExceeded,
                "the request did not finish in time",
                [info("DEADLINE_EXCEEDED", &[])],
            ),
            AppError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                Status::with_error_details_vec(Code::Internal, "internal error", [info("INTERNAL", &[])])
            }
        }
    }
}
