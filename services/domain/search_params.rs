//! The parameters of the search calls: their defaults and bounds (docs/search.md), whatever the transport. Each
//! takes the value as the request carries it (0 or absent meaning "the default") and returns the value to use or
//! why it is refused; the caller names the field.

/// `k` of a similarity or hybrid search when the caller sets none.
pub const DEFAULT_TOP_K: i64 = 10;
/// The largest `k`.
pub const MAX_TOP_K: i64 = 100;
/// `hnsw.ef_search` when the caller sets none: recall >= 0.95 on clustered data well past 20k rows.
pub const DEFAULT_EF_SEARCH: u32 = 100;
/// The most a caller may raise `ef_search` to.
pub const MAX_EF_SEARCH: u32 = 1000;
/// Longest text query.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Full-text hits per page when the caller asks for no size.
pub const DEFAULT_TEXT_PAGE: i64 = 20;
/// The most full-text hits a page holds (larger sizes are lowered to it, AIP-158).
pub const MAX_TEXT_PAGE: i64 = 100;
/// Name candidates when the caller asks for no limit.
pub const DEFAULT_LOOKUP_LIMIT: i64 = 5;
/// The most name candidates.
pub const MAX_LOOKUP_LIMIT: i64 = 50;
/// The trigram similarity a name candidate needs when the caller sets none (pg_trgm's own default).
pub const DEFAULT_MIN_SIMILARITY: f64 = 0.3;
/// The largest reciprocal-rank-fusion constant.
pub const MAX_RRF_K: u32 = 10_000;
/// The weight of each hybrid list when the caller sets none.
pub const DEFAULT_FUSION_WEIGHT: f64 = 1.0;
/// The largest weight of a hybrid list.
pub const MAX_FUSION_WEIGHT: f64 = 100.0;

/// How many results a similarity or hybrid search returns: 1 to [`MAX_TOP_K`], 0 for [`DEFAULT_TOP_K`].
pub fn top_k(requested: i32) -> Result<i64, String> {
    match i64::from(requested) {
        0 => Ok(DEFAULT_TOP_K),
        k @ 1..=MAX_TOP_K => Ok(k),
        _ => Err(format!("must be 1 to {MAX_TOP_K}")),
    }
}

/// The HNSW search breadth: up to [`MAX_EF_SEARCH`], 0 for [`DEFAULT_EF_SEARCH`].
pub fn ef_search(requested: i32) -> Result<u32, String> {
    match u32::try_from(requested) {
        Ok(0) => Ok(DEFAULT_EF_SEARCH),
        Ok(n) if n <= MAX_EF_SEARCH => Ok(n),
        _ => Err(format!("must be 0 (default) to {MAX_EF_SEARCH}")),
    }
}

/// A text query: 1 to [`MAX_QUERY_CHARS`] characters, no NUL, not only white space.
pub fn text_query(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("is required".into());
    }
    if raw.chars().count() > MAX_QUERY_CHARS {
        return Err(format!("must be at most {MAX_QUERY_CHARS} characters"));
    }
    if raw.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    Ok(raw.to_owned())
}

/// Full-text hits per page: 0 for [`DEFAULT_TEXT_PAGE`], larger than [`MAX_TEXT_PAGE`] lowered to it, never
/// negative.
pub fn text_page_size(requested: i32) -> Result<i64, String> {
    match i64::from(requested) {
        0 => Ok(DEFAULT_TEXT_PAGE),
        n if n < 0 => Err("must not be negative".into()),
        n => Ok(n.min(MAX_TEXT_PAGE)),
    }
}

/// How many name candidates a lookup returns: 1 to [`MAX_LOOKUP_LIMIT`], 0 for [`DEFAULT_LOOKUP_LIMIT`].
pub fn lookup_limit(requested: i32) -> Result<i64, String> {
    match i64::from(requested) {
        0 => Ok(DEFAULT_LOOKUP_LIMIT),
        n @ 1..=MAX_LOOKUP_LIMIT => Ok(n),
        _ => Err(format!("must be 1 to {MAX_LOOKUP_LIMIT}")),
    }
}

/// The trigram similarity a name candidate needs: 0 to 1, absent for [`DEFAULT_MIN_SIMILARITY`].
pub fn min_similarity(requested: Option<f64>) -> Result<f64, String> {
    match requested.unwrap_or(DEFAULT_MIN_SIMILARITY) {
        s if (0.0..=1.0).contains(&s) => Ok(s),
        _ => Err("must be from 0 to 1".into()),
    }
}

/// The reciprocal-rank-fusion constant: up to [`MAX_RRF_K`], 0 for the default (`fusion::DEFAULT_K`).
pub fn rrf_k(requested: i32) -> Result<u32, String> {
    match u32::try_from(requested) {
        Ok(0) => Ok(super::fusion::DEFAULT_K),
        Ok(n) if n <= MAX_RRF_K => Ok(n),
        _ => Err(format!("must be 0 (default {}) to {MAX_RRF_K}", super::fusion::DEFAULT_K)),
    }
}

/// The weight of a hybrid list: a finite number from 0 to [`MAX_FUSION_WEIGHT`], absent for
/// [`DEFAULT_FUSION_WEIGHT`].
pub fn fusion_weight(requested: Option<f64>) -> Result<f64, String> {
    match requested.unwrap_or(DEFAULT_FUSION_WEIGHT) {
        w if w.is_finite() && (0.0..=MAX_FUSION_WEIGHT).contains(&w) => Ok(w),
        _ => Err(format!("must be a number from 0 to {MAX_FUSION_WEIGHT}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_or_absent_means_the_default() {
        assert_eq!(top_k(0), Ok(DEFAULT_TOP_K));
        assert_eq!(ef_search(0), Ok(DEFAULT_EF_SEARCH));
        assert_eq!(text_page_size(0), Ok(DEFAULT_TEXT_PAGE));
        assert_eq!(lookup_limit(0), Ok(DEFAULT_LOOKUP_LIMIT));
        assert_eq!(min_similarity(None), Ok(DEFAULT_MIN_SIMILARITY));
        assert_eq!(rrf_k(0), Ok(super::super::fusion::DEFAULT_K));
        assert_eq!(fusion_weight(None), Ok(DEFAULT_FUSION_WEIGHT));
    }

    #[test]
    fn values_inside_the_bounds_pass_as_given() {
        assert_eq!((top_k(1), top_k(100)), (Ok(1), Ok(100)));
        assert_eq!(ef_search(1000), Ok(1000));
        assert_eq!(lookup_limit(50), Ok(50));
        assert_eq!(min_similarity(Some(0.0)), Ok(0.0));
        assert_eq!(rrf_k(10_000), Ok(10_000));
        assert_eq!(fusion_weight(Some(0.0)), Ok(0.0));
        assert_eq!(text_query(" rust "), Ok(" rust ".to_owned()));
    }

    #[test]
    fn values_outside_the_bounds_are_refused_with_the_bounds() {
        assert_eq!(top_k(101), Err("must be 1 to 100".to_owned()));
        assert!(top_k(-1).is_err());
        assert!(ef_search(1001).is_err() && ef_search(-5).is_err());
        assert!(lookup_limit(51).is_err() && lookup_limit(-1).is_err());
        assert!(min_similarity(Some(1.01)).is_err() && min_similarity(Some(f64::NAN)).is_err());
        assert!(rrf_k(10_001).is_err() && rrf_k(-1).is_err());
        assert!(fusion_weight(Some(f64::INFINITY)).is_err() && fusion_weight(Some(-0.5)).is_err());
        assert!(text_page_size(-1).is_err());
    }

    #[test]
    fn a_large_page_is_lowered_not_refused() {
        assert_eq!(text_page_size(1000), Ok(MAX_TEXT_PAGE));
    }

    #[test]
    fn a_text_query_needs_words_and_no_nul() {
        assert!(text_query("   ").is_err());
        assert!(text_query("a\0b").is_err());
        assert!(text_query(&"x".repeat(MAX_QUERY_CHARS + 1)).is_err());
        assert!(text_query(&"é".repeat(MAX_QUERY_CHARS)).is_ok(), "characters, not bytes");
    }
}
