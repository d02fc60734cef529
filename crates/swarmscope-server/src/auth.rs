//! API keys and what each caller may see.
//!
//! Keys are random 256-bit tokens shown once at creation; the config keeps
//! only their SHA-256 (a slow password hash buys nothing for keys with this
//! much entropy). A presented key is hashed and compared against every
//! configured hash in constant time. Keys are never logged.

use axum::http::{header, HeaderMap};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{ConfigError, KeyConfig, Role};
use crate::error::ApiError;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No keys are configured: the collector is open (loopback only).
    Open,
    /// An admin key: every tenant, every right.
    Admin,
    /// A key that may only scrape `/metrics`.
    Metrics,
    /// A key bound to one tenant.
    Tenant {
        /// The tenant.
        tenant: String,
        /// May send spans and logs.
        ingest: bool,
        /// May read.
        read: bool,
    },
}

impl Principal {
    /// The tenant ingest is restricted to (`None`: any tenant named in the
    /// body), or 403 when the key may not ingest.
    pub fn ingest_tenant(&self) -> Result<Option<&str>, ApiError> {
        match self {
            Principal::Open | Principal::Admin => Ok(None),
            Principal::Tenant {
                tenant,
                ingest: true,
                ..
            } => Ok(Some(tenant)),
            Principal::Tenant { .. } | Principal::Metrics => {
                Err(ApiError::forbidden("this API key may not ingest"))
            }
        }
    }

    /// The tenant a read is restricted to, given the one the caller asked
    /// for: a tenant key reads only its own tenant (asking for another is
    /// 403); an admin reads what it asks for, or everything.
    pub fn read_scope(&self, requested: Option<&str>) -> Result<Option<String>, ApiError> {
        match self {
            Principal::Open | Principal::Admin => Ok(requested.map(str::to_owned)),
            Principal::Tenant {
                tenant, read: true, ..
            } => match requested {
                Some(other) if other != tenant => Err(ApiError::forbidden(
                    "this API key may only read its own tenant",
                )
                .field("tenant_id")),
                _ => Ok(Some(tenant.clone())),
            },
            Principal::Tenant { .. } | Principal::Metrics => {
                Err(ApiError::forbidden("this API key may not read"))
            }
        }
    }

    /// Whether the caller may scrape `/metrics` (admins and metrics keys).
    pub fn may_scrape(&self) -> bool {
        matches!(
            self,
            Principal::Open | Principal::Admin | Principal::Metrics
        )
    }

    /// Whether the caller sees every tenant.
    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::Open | Principal::Admin)
    }
}

struct KeyEntry {
    hash: [u8; 32],
    principal: Principal,
}

/// The configured keys.
pub struct Auth {
    keys: Vec<KeyEntry>,
}

/// A new random API key (`ssk_` and 64 hex digits).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("ssk_{}", hex::encode(bytes))
}

/// The config form of a key's hash: `sha256:` and hex.
pub fn hash_key(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

impl Auth {
    /// Builds the key table from config entries (already validated).
    pub fn from_config(keys: &[KeyConfig]) -> Result<Auth, ConfigError> {
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(k.hash.strip_prefix("sha256:").unwrap_or(""), &mut hash)
                    .map_err(|_| {
                        ConfigError::Invalid(format!("keys[{i}].hash is not a sha256 hash"))
                    })?;
                let principal = if k.roles.contains(&Role::Admin) {
                    Principal::Admin
                } else if k.roles.contains(&Role::Metrics) {
                    Principal::Metrics
                } else {
                    Principal::Tenant {
                        tenant: k.tenant.clone().ok_or_else(|| {
                            ConfigError::Invalid(format!("keys[{i}] must name its tenant"))
                        })?,
                        ingest: k.roles.contains(&Role::Ingest),
                        read: k.roles.contains(&Role::Read),
                    }
                };
                Ok(KeyEntry { hash, principal })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Auth { keys })
    }

    /// True when no key is configured and every caller is let in.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// Identifies the caller from `Authorization: Bearer KEY`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        if self.is_open() {
            return Ok(Principal::Open);
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, key) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            })
            .ok_or_else(ApiError::unauthorized)?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare against every key without stopping early.
        let mut found = None;
        for entry in &self.keys {
            if bool::from(entry.hash.ct_eq(&digest)) {
                found = Some(&entry.principal);
            }
        }
        found.cloned().ok_or_else(ApiError::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth_with(key: &str, tenant: Option<&str>, roles: &[Role]) -> Auth {
        Auth::from_config(&[KeyConfig {
            hash: hash_key(key),
            tenant: tenant.map(str::to_owned),
            roles: roles.to_vec(),
            name: None,
        }])
        .expect("valid")
    }

    fn bearer(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).expect("header"),
        );
        h
    }

    #[test]
    fn keys_identify_their_tenant_and_rights() {
        let key = generate_key();
        assert!(key.starts_with("ssk_") && key.len() == 68);
        let auth = auth_with(&key, Some("acme"), &[Role::Ingest]);
        let p = auth.authenticate(&bearer(&key)).expect("known key");
        assert_eq!(p.ingest_tenant().expect("may ingest"), Some("acme"));
        assert!(p.read_scope(None).is_err(), "ingest-only key may not read");
        assert!(auth.authenticate(&bearer("ssk_wrong")).is_err());
        assert!(auth.authenticate(&HeaderMap::new()).is_err());
    }

    #[test]
    fn tenant_readers_are_scoped() {
        let key = generate_key();
        let auth = auth_with(&key, Some("acme"), &[Role::Read]);
        let p = auth.authenticate(&bearer(&key)).expect("known");
        assert_eq!(p.read_scope(None).expect("own"), Some("acme".into()));
        assert_eq!(
            p.read_scope(Some("acme")).expect("own"),
            Some("acme".into())
        );
        assert!(p.read_scope(Some("globex")).is_err());
        assert!(p.ingest_tenant().is_err());
    }

    #[test]
    fn no_keys_means_open() {
        let auth = Auth::from_config(&[]).expect("empty");
        assert_eq!(auth.authenticate(&HeaderMap::new()), Ok(Principal::Open));
    }
}
