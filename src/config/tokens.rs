//! The `[tokens]` section: algorithm, keys (first signs, all verify), issuer, audience.

use super::{ConfigErrors, HumanDuration, Secret};
use crate::token::{KeyMaterial, KeySpec, TokenAlgorithm, TokenKeys};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tokens {
    pub algorithm: TokenAlgorithm,
    /// Empty: a random HS256 key per process (fine for one instance and the demo; tokens
    /// then do not survive a restart and are not shared between instances).
    pub keys: Vec<TokenKey>,
    pub issuer: String,
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: HumanDuration,
    /// Mark anteroom's cookies `Secure` even on plain HTTP (TLS ends at a proxy in front).
    /// They always are when served over anteroom's own TLS listener.
    pub secure_cookies: bool,
    /// Allow empty `keys` with the Redis store (one instance only: several would each sign
    /// with their own random key, and a buyer let in by one is queued again by the next).
    pub allow_random_keys: bool,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            algorithm: TokenAlgorithm::Hs256,
            keys: Vec::new(),
            issuer: "anteroom".into(),
            audience: "anteroom".into(),
            leeway: HumanDuration::secs(5),
            secure_cookies: false,
            allow_random_keys: false,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenKey {
    pub kid: String,
    /// HS256 shared secret (at least 32 bytes; `anteroom keygen --alg hs256`).
    #[serde(default)]
    pub secret: Option<Secret>,
    /// EdDSA/ES256 PKCS#8 private key in PEM (`anteroom keygen --alg eddsa > key.pem`).
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
}

impl Tokens {
    /// Loads the keys (reading key files) and builds the signer/verifier; without keys,
    /// signs with a new random one.
    pub fn load(&self) -> Result<TokenKeys, ConfigErrors> {
        self.load_with(&Self::random_secret()?)
    }

    /// A random key for a config without keys. A process keeps its one across reloads,
    /// or every cookie and token it signed would stop counting at the reload.
    pub(crate) fn random_secret() -> Result<Secret, ConfigErrors> {
        crate::token::generate_key(TokenAlgorithm::Hs256)
            .map(|key| Secret::new(key.trim()))
            .map_err(|e| ConfigErrors(vec![format!("tokens.keys: {e}")]))
    }

    /// As `load`, signing with `random` when no keys are configured.
    pub(crate) fn load_with(&self, random: &Secret) -> Result<TokenKeys, ConfigErrors> {
        let mut problems = Vec::new();
        let mut specs = Vec::new();
        if self.keys.is_empty() {
            specs.push(KeySpec {
                kid: "ephemeral".into(),
                material: KeyMaterial::Secret(random.expose().as_bytes().to_vec()),
            });
        }
        for key in &self.keys {
            let material = match (&key.secret, &key.private_key_file) {
                (Some(secret), None) => KeyMaterial::Secret(secret.expose().as_bytes().to_vec()),
                (None, Some(path)) => match std::fs::read(path) {
                    Ok(pem) => KeyMaterial::PrivateKeyPem(pem),
                    Err(e) => {
                        problems.push(format!(
                            "tokens.keys[{}].private_key_file: cannot read {}: {e}",
                            key.kid,
                            path.display()
                        ));
                        continue;
                    }
                },
                _ => {
                    problems.push(format!("tokens.keys[{}]: set exactly one of secret or private_key_file", key.kid));
                    continue;
                }
            };
            specs.push(KeySpec { kid: key.kid.clone(), material });
        }
        if !problems.is_empty() {
            return Err(ConfigErrors(problems));
        }
        let algorithm = if self.keys.is_empty() { TokenAlgorithm::Hs256 } else { self.algorithm };
        TokenKeys::new(algorithm, &specs, &self.issuer, &self.audience, self.leeway.0.as_secs())
            .map_err(|e| ConfigErrors(vec![e.to_string()]))
    }
}
