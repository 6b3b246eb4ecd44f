//! What a database error means for the caller, decided by SQLSTATE and constraint name, never by message text.

/// The classes of database failure the service reacts to differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbFailure {
    /// 23505: a uniqueness constraint, by name.
    UniqueViolation(String),
    /// 23503: a foreign key, by name.
    ForeignKeyViolation(String),
    /// 23514: a CHECK constraint, by name.
    CheckViolation(String),
    /// 23502, 22xxx: a value the schema cannot take (validation should have caught it).
    InvalidValue,
    /// 40001 serialization failure, 40P01 deadlock: safe to retry the whole transaction.
    Retryable,
    /// 57014: the statement timed out or was cancelled.
    Cancelled,
    /// The database cannot be reached or is shutting down: connection errors, pool timeouts, 08xxx, 57P0x, 53300.
    Unavailable,
    /// Anything else: a bug or an operational problem, logged and reported as INTERNAL.
    Other,
}

/// Classifies `err`.
pub fn classify(err: &sqlx::Error) -> DbFailure {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            DbFailure::Unavailable
        }
        sqlx::Error::Protocol(_) => DbFailure::Unavailable,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            let constraint = db.constraint().unwrap_or_default().to_owned();
            match code.as_ref() {
                "23505" => DbFailure::UniqueViolation(constraint),
                "23503" => DbFailure::ForeignKeyViolation(constraint),
                "23514" => DbFailure::CheckViolation(constraint),
                "23502" => DbFailure::InvalidValue,
                "40001" | "40P01" => DbFailure::Retryable,
                "57014" => DbFailure::Cancelled,
                "53300" | "57P01" | "57P02" | "57P03" => DbFailure::Unavailable,
                c if c.starts_with("08") => DbFailure::Unavailable,
                c if c.starts_with("22") => DbFailure::InvalidValue,
                _ => DbFailure::Other,
            }
        }
        _ => DbFailure::Other,
    }
}
