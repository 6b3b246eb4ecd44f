//! Page sizes and tokens (AIP-158).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{App, AppError, Caller};
use crate::domain::page_token::Cursor;

/// Page size when the caller asks for none.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: i64 = 1000;

/// A requested page: how many rows and where to start.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Rows on the page.
    pub size: i64,
    /// Where it starts, from the token.
    pub after: Option<Cursor>,
    query: String,
}

/// The page size to use for a requested `page_size`.
pub fn page_size(requested: i32) -> Result<i64, AppError> {
    match requested {
        n if n < 0 => Err(AppError::invalid("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

impl App {
    /// Reads `page_size` and `page_token` for the query described by `query` (method and filters; the caller's
    /// organization is added here, so a token never crosses organizations).
    pub fn page_request(
        &self,
        caller: &Caller,
        query: &str,
        page_size: i32,
        token: &str,
    ) -> Result<PageRequest, AppError> {
        let size = self::page_size(page_size)?;
        let query = format!("{}|{query}", caller.org_id);
        let after = match token {
            "" => None,
            token => {
                Some(self.tokens.decode(&query, token).map_err(|e| AppError::invalid("page_token", e.to_string()))?)
            }
        };
        Ok(PageRequest { size, after, query })
    }

    /// The token of the page after `last`, when the page was full and more rows exist (`has_more`).
    pub fn next_page_token(&self, page: &PageRequest, has_more: bool, last: Option<(Option<String>, Uuid)>) -> String {
        match (has_more, last) {
            (true, Some((sort, id))) => self.tokens.encode(&page.query, Cursor { sort, id, skip: Vec::new() }),
            _ => String::new(),
        }
    }
}

impl PageRequest {
    /// The cursor as a (time, id) keyset; a token whose cursor lacks the time is rejected.
    pub fn after_time(&self) -> Result<Option<(DateTime<Utc>, Uuid)>, AppError> {
        match &self.after {
            None => Ok(None),
            Some(Cursor { sort: Some(sort), id, .. }) => DateTime::parse_from_rfc3339(sort)
                .map(|t| Some((t.with_timezone(&Utc), *id)))
                .map_err(|_| AppError::invalid("page_token", "page_token is malformed")),
            Some(_) => Err(AppError::invalid("page_token", "page_token is malformed")),
        }
    }

    /// The cursor as a (quality score, id) keyset.
    pub fn after_quality(&self) -> Result<Option<(f64, Uuid)>, AppError> {
        match &self.after {
            None => Ok(None),
            Some(Cursor { sort: Some(sort), id, .. }) => sort
                .parse::<f64>()
                .map(|score| Some((score, *id)))
                .map_err(|_| AppError::invalid("page_token", "page_token is malformed")),
            Some(_) => Err(AppError::invalid("page_token", "page_token is malformed")),
        }
    }

    /// The cursor as an id keyset.
    pub fn after_id(&self) -> Option<Uuid> {
        self.after.as_ref().map(|c| c.id)
    }
}
