//! The use cases' error: every way a request can fail, each mapped to one gRPC status in `grpc::status`.

use uuid::Uuid;

use crate::domain::catalogue::RelationKind;
use crate::domain::fields::Violations;
use crate::store::errors::{DbFailure, classify};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed: every violation found.
    #[error("invalid request")]
    InvalidArgument(Violations),
    /// The resource does not exist in the caller's organization.
    #[error("{kind} {id} not found")]
    NotFound {
        /// Resource kind.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The relation between the event and the other resource does not exist in the caller's organization.
    #[error("{} {other_id} is not related to event {event_id}", kind.target().name())]
    RelationNotFound {
        /// The relation kind.
        kind: RelationKind,
        /// The event.
        event_id: Uuid,
        /// The speaker, company or topic.
        other_id: Uuid,
    },
    /// A uniqueness rule or an idempotency record forbids it.
    #[error("{field} {message}")]
    AlreadyExists {
        /// The field at fault.
        field: Culprit,
        /// UPPER_SNAKE_CASE reason.
        reason: &'static str,
        /// For humans: what is wrong with the field, said after its path (`is already taken ...`).
        message: String,
    },
    /// The etag is stale: the resource changed since the caller read it.
    #[error("{message}")]
    Aborted {
        /// For humans.
        message: String,
    },
    /// The request refers to something that does not exist (documented per method).
    #[error("{field} {message}")]
    FailedPrecondition {
        /// The field at fault.
        field: Culprit,
        /// UPPER_SNAKE_CASE reason.
        reason: &'static str,
        /// For humans: what is wrong with the field, said after its path.
        message: String,
    },
    /// No valid credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Valid credentials without the needed scope.
    #[error("{0}")]
    PermissionDenied(String),
    /// A concurrent transaction conflicted (serialization failure, deadlock) even after retries.
    #[error("the request conflicted with a concurrent one; retry it")]
    Conflict,
    /// The database cannot be reached now; retry later.
    #[error("the database is unavailable")]
    Unavailable,
    /// Too many searches are waiting for a turn on the database (`app::search_turns`); retry later.
    #[error("too many searches are waiting")]
    Busy,
    /// The work did not finish within the deadline.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// A bug or an unexpected database condition; logged, never shown to the caller.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The field a conflict or a failed precondition lies in, as a use case sees the request: a field of what it works
/// on (the resource or relation it writes, the query it runs), in one item of a batch when `item` is set; or a field
/// of the request itself. The transport turns the former into the request's path (`grpc::handlers::Place`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Culprit {
    /// A field of the resource, relation or query (`slug`, `speaker_id`, `like_id`).
    Resource {
        /// The batch item, when a batch is at fault.
        item: Option<usize>,
        /// The field's path in the resource.
        field: String,
    },
    /// A field of the request, by its path there (`request_id`).
    Request(String),
}

impl Culprit {
    /// A field of the resource, outside any batch.
    pub fn resource(field: impl Into<String>) -> Self {
        Culprit::Resource { item: None, field: field.into() }
    }

    /// A field of the resource in batch item `item`.
    pub fn item(item: usize, field: impl Into<String>) -> Self {
        Culprit::Resource { item: Some(item), field: field.into() }
    }
}

impl std::fmt::Display for Culprit {
    /// The path as far as it is known here (a resource field is relative until the transport locates it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Culprit::Resource { field, .. } | Culprit::Request(field) => f.write_str(field),
        }
    }
}

impl AppError {
    /// One violation of a request field (by its request path) as an INVALID_ARGUMENT.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut violations = Violations::default();
        violations.add_in_request(field, description);
        AppError::InvalidArgument(violations)
    }

    /// One violation of a field of the resource being written (empty: the whole resource), to be put under the
    /// resource's request path by the transport.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut violations = Violations::default();
        violations.add(field, description);
        AppError::InvalidArgument(violations)
    }

    /// Whether the whole transaction may be run again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AppError::Conflict)
    }

    /// Maps a database error; constraint names decide which field of the resource is at fault.
    pub fn from_db(err: sqlx::Error) -> Self {
        match classify(&err) {
            DbFailure::UniqueViolation(constraint) => match unique_field(&constraint) {
                Some((field, reason @ "RELATION_EXISTS")) => AppError::AlreadyExists {
                    field: Culprit::resource(field),
                    reason,
                    message: "is already related to the event".into(),
                },
                Some((field, reason)) => AppError::AlreadyExists {
                    field: Culprit::resource(field),
                    reason,
                    message: "is already taken in this organization".into(),
                },
                None => AppError::Internal(err.into()),
            },
            DbFailure::ForeignKeyViolation(constraint) => match reference_field(&constraint) {
                Some(field) => AppError::FailedPrecondition {
                    field: Culprit::resource(field),
                    reason: "REFERENCED_RESOURCE_NOT_FOUND",
                    message: "refers to nothing in this organization".into(),
                },
                None => AppError::Internal(err.into()),
            },
            // Valid alone, refused by the rest of the tree: a precondition of the catalogue's state.
            DbFailure::CheckViolation(constraint) if constraint == "topics_parent_not_descendant" => {
                AppError::FailedPrecondition {
                    field: Culprit::resource("parent_id"),
                    reason: "TOPIC_CYCLE",
                    message: "would make the topic its own ancestor; topics form a tree".into(),
                }
            }
            DbFailure::CheckViolation(constraint) => match check_field(&constraint) {
                Some((field, description)) => AppError::invalid_field(field, description),
                // Validation mirrors every single-field CHECK: one failing here is a bug, not bad input.
                None => AppError::Internal(err.into()),
            },
            // The whole resource: which value PostgreSQL refused, it does not say in a form worth parsing.
            DbFailure::InvalidValue => AppError::invalid_field("", "has a value the catalogue cannot store"),
            DbFailure::Unavailable => AppError::Unavailable,
            DbFailure::Cancelled => AppError::DeadlineExceeded,
            DbFailure::Retryable => AppError::Conflict,
            DbFailure::Other => AppError::Internal(err.into()),
        }
    }
}

/// A use case handed a resource of another kind than its caller asked for: a defect of ours.
impl From<crate::domain::resources::WrongKind> for AppError {
    fn from(err: crate::domain::resources::WrongKind) -> Self {
        AppError::Internal(err.into())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        AppError::from_db(err)
    }
}

/// The field a uniqueness constraint protects, and the reason reported.
fn unique_field(constraint: &str) -> Option<(&'static str, &'static str)> {
    Some(match constraint {
        "events_org_slug_key" => ("slug", "SLUG_TAKEN"),
        "speakers_org_normalized_name_key" | "companies_org_normalized_name_key" | "topics_org_normalized_name_key" => {
            ("name", "NAME_TAKEN")
        }
        "companies_org_domain_key" => ("domain", "DOMAIN_TAKEN"),
        "event_speakers_pkey" => ("speaker_id", "RELATION_EXISTS"),
        "event_companies_pkey" => ("company_id", "RELATION_EXISTS"),
        "event_topics_pkey" => ("topic_id", "RELATION_EXISTS"),
        _ => return None,
    })
}

/// The request field holding the reference a foreign key checks.
fn reference_field(constraint: &str) -> Option<&'static str> {
    Some(match constraint {
        "speakers_company_fkey" => "company_id",
        "topics_parent_fkey" => "parent_id",
        "media_event_fkey" | "event_speakers_event_fkey" | "event_companies_event_fkey" | "event_topics_event_fkey" => {
            "event_id"
        }
        "event_speakers_speaker_fkey" => "speaker_id",
        "event_companies_company_fkey" => "company_id",
        "event_topics_topic_fkey" => "topic_id",
        _ => return None,
    })
}

/// The field a CHECK constraint guards, for rules that span fields or that validation cannot see.
fn check_field(constraint: &str) -> Option<(&'static str, &'static str)> {
    match constraint {
        "events_ends_after_start" => Some(("end_time", "must not be before start_time")),
        "events_end_needs_start" => Some(("end_time", "needs a start_time")),
        "topics_not_own_parent" => Some(("parent_id", "a topic cannot be its own parent")),
        _ => None,
    }
}
