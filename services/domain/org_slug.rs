//! Organization slugs: the operator-facing name of a tenant.

use std::fmt;

/// A lower-case slug of 1–63 letters, digits and single inner hyphens (the same rule as the database CHECK).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrgSlug(String);

impl OrgSlug {
    /// Parses a slug, explaining what is wrong with a bad one.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid_chars = raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let hyphens_ok = !raw.starts_with('-') && !raw.ends_with('-') && !raw.contains("--");
        if raw.is_empty() || raw.len() > 63 || !valid_chars || !hyphens_ok {
            return Err(format!(
                "invalid organization slug {raw:?}: use 1-63 lower-case letters, digits and single inner hyphens"
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::OrgSlug;

    #[test]
    fn accepts_slugs_and_rejects_the_rest() {
        for good in ["acme", "acme-events", "a1", "x"] {
            assert!(OrgSlug::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "Acme", "-acme", "acme-", "ac--me", "ac me", "ac_me", &"a".repeat(64)] {
            assert!(OrgSlug::parse(bad).is_err(), "{bad}");
        }
    }
}
