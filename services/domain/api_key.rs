//! API keys: a random secret shown once, stored only as its SHA-256, carrying an organization and scopes.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// What a key may do. `read` gates Get/List/Search/Watch, `write` mutations; `admin` grants both (a key for an
/// organization's operators and tools; no method needs more than `write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read the catalogue.
    Read,
    /// Change the catalogue.
    Write,
    /// Everything `read` and `write` grant.
    Admin,
}

impl Scope {
    /// The scope's name as stored and as written on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Parses one scope name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(format!("unknown scope {other:?}: expected read, write or admin")),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty set of scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Parses a comma-separated list such as `read,write`.
    pub fn parse_list(raw: &str) -> Result<Self, String> {
        let scopes =
            raw.split(',').filter(|s| !s.trim().is_empty()).map(Scope::parse).collect::<Result<BTreeSet<_>, _>>()?;
        if scopes.is_empty() {
            return Err("at least one scope is required (read, write, admin)".into());
        }
        Ok(Self(scopes))
    }

    /// Builds the set from stored names, ignoring none: an unknown stored name is an error.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        Self::parse_list(&names.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join(","))
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// Whether a key with these scopes may call a method that needs `scope`: `admin` grants every scope.
    pub fn grants(&self, scope: Scope) -> bool {
        self.contains(scope) || self.contains(Scope::Admin)
    }

    /// The scope names, sorted, for storage.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.as_str().to_owned()).collect()
    }
}

/// Prefix that makes eventdata keys recognisable in logs and secret scanners.
const KEY_PREFIX: &str = "edk_";

/// A freshly generated key: the secret is in memory only until it is printed once.
pub struct NewApiKey {
    /// The full secret the caller sends as `authorization: Bearer <secret>`.
    pub secret: String,
    /// Its SHA-256, the only form that is stored.
    pub secret_hash: [u8; 32],
}

impl NewApiKey {
    /// Generates 256 bits of randomness from the operating system's generator.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let secret_hash = hash_secret(&secret);
        Self { secret, secret_hash }
    }
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey").field("secret", &"<redacted>").finish()
    }
}

/// The stored form of a presented secret.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_reject_unknown_names() {
        let scopes = Scopes::parse_list("write, read").expect("valid");
        assert!(scopes.contains(Scope::Read) && scopes.contains(Scope::Write) && !scopes.contains(Scope::Admin));
        assert_eq!(scopes.names(), vec!["read", "write"]);
        assert!(Scopes::parse_list("read,root").is_err());
        assert!(Scopes::parse_list("").is_err());
    }

    #[test]
    fn admin_grants_every_scope_and_the_others_only_themselves() {
        let admin = Scopes::parse_list("admin").expect("valid");
        assert!(admin.grants(Scope::Read) && admin.grants(Scope::Write) && admin.grants(Scope::Admin));
        let read = Scopes::parse_list("read").expect("valid");
        assert!(read.grants(Scope::Read) && !read.grants(Scope::Write) && !read.grants(Scope::Admin));
        let write = Scopes::parse_list("write").expect("valid");
        assert!(!write.grants(Scope::Read) && write.grants(Scope::Write));
    }

    #[test]
    fn generated_keys_are_distinct_and_hash_to_what_is_stored() {
        let a = NewApiKey::generate();
        let b = NewApiKey::generate();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(KEY_PREFIX));
        assert_eq!(hash_secret(&a.secret), a.secret_hash);
        assert!(!format!("{a:?}").contains(&a.secret));
    }
}
