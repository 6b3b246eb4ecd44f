//! Page tokens (AIP-158): opaque to clients, signed so they cannot be forged or edited, and bound to the
//! organization and query that produced them, so a token from another query or organization is rejected.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Where the next page starts: after the row with this sort value and id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The last row's sort value (RFC 3339 time, or absent for id-ordered lists).
    #[serde(rename = "s", skip_serializing_if = "Option::is_none", default)]
    pub sort: Option<String>,
    /// The last row's id.
    #[serde(rename = "i")]
    pub id: Uuid,
    /// Rows at the last row's sort value that a page returned out of id order (full text's first page): the
    /// next page skips them.
    #[serde(rename = "k", skip_serializing_if = "Vec::is_empty", default)]
    pub skip: Vec<Uuid>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Body<T> {
    /// Fingerprint of the organization and query.
    q: String,
    /// What the token carries.
    v: T,
}

/// Why a page token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageTokenError {
    /// Not a token this service made, or altered.
    #[error("page_token is malformed or was altered")]
    Invalid,
    /// A genuine token, but for another query or organization.
    #[error("page_token belongs to a different query; repeat the original filters or start without a token")]
    OtherQuery,
}

/// Signs and checks page tokens with a server-side key.
#[derive(Clone)]
pub struct PageTokens {
    key: [u8; 32],
}

impl PageTokens {
    /// Tokens keyed by `secret` (share it between replicas so any replica accepts any token).
    pub fn new(secret: &[u8]) -> Self {
        Self { key: Sha256::digest(secret).into() }
    }

    /// Tokens keyed by a random secret: valid only within this process.
    pub fn random() -> Self {
        Self { key: rand::random() }
    }

    /// A token carrying `value` (a page cursor, a change-feed cursor) for the query described by `query`
    /// (organization, method, filters).
    pub fn encode<T: serde::Serialize>(&self, query: &str, value: T) -> String {
        let body = serde_json::to_vec(&Body { q: fingerprint(query), v: value }).unwrap_or_default();
        let tag = self.tag(&body);
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&body), URL_SAFE_NO_PAD.encode(tag))
    }

    /// The value in `token`, if this service signed it for the same `query`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self, query: &str, token: &str) -> Result<T, PageTokenError> {
        let (body, tag) = token.split_once('.').ok_or(PageTokenError::Invalid)?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| PageTokenError::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| PageTokenError::Invalid)?;
        let mut mac = self.mac();
        mac.update(&body);
        mac.verify_truncated_left(&tag).map_err(|_| PageTokenError::Invalid)?;
        if tag.len() != 16 {
            return Err(PageTokenError::Invalid);
        }
        let body: Body<T> = serde_json::from_slice(&body).map_err(|_| PageTokenError::Invalid)?;
        if body.q != fingerprint(query) {
            return Err(PageTokenError::OtherQuery);
        }
        Ok(body.v)
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    fn tag(&self, body: &[u8]) -> [u8; 16] {
        let mut mac = self.mac();
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }
}

fn fingerprint(query: &str) -> String {
    hex::encode(&Sha256::digest(query.as_bytes())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_foreign_or_altered_tokens() {
        let tokens = PageTokens::new(b"secret");
        let cursor = Cursor { sort: Some("2025-01-01T00:00:00Z".into()), id: Uuid::now_v7(), skip: Vec::new() };
        let token = tokens.encode("org-a|ListEvents|status=live", cursor.clone());
        assert_eq!(tokens.decode("org-a|ListEvents|status=live", &token), Ok(cursor));
        assert_eq!(tokens.decode::<Cursor>("org-b|ListEvents|status=live", &token), Err(PageTokenError::OtherQuery));
        assert_eq!(
            PageTokens::new(b"other").decode::<Cursor>("org-a|ListEvents|status=live", &token),
            Err(PageTokenError::Invalid)
        );
        let mut altered = token.clone().into_bytes();
        altered[3] ^= 1;
        let altered = String::from_utf8_lossy(&altered).into_owned();
        assert!(tokens.decode::<Cursor>("org-a|ListEvents|status=live", &altered).is_err());
        for junk in ["", ".", "abc", "a.b", &"x".repeat(10_000)] {
            assert_eq!(tokens.decode::<Cursor>("q", junk), Err(PageTokenError::Invalid), "{junk:?}");
        }
    }
}
