//! Admission tokens: JWT issue and strict verification, key rotation by `kid`, JWKS.
//!
//! The first key signs; every key verifies (rotation: add the new key first, keep the old
//! one until its tokens have expired). Verification pins the configured algorithm, checks
//! the signature, `exp`/`nbf` with a small leeway, `iss`, `aud`, and that the token's
//! `room` is the room of the path. Any parse error means "no valid token".
//!
//! - [`enqueue`] the shop's enqueue tokens: one account, one place in a presale room

pub mod enqueue;

use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Why a header jsonwebtoken cannot parse is refused: an algorithm it does not know
/// (`none`, say) is an algorithm problem, anything else is malformed.
fn unparsed_header_rejection(token: &str) -> Rejection {
    let header = token.split('.').next().and_then(|h| URL_SAFE_NO_PAD.decode(h).ok());
    let alg = header
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
    if alg.is_some() && token.split('.').count() == 3 {
        Rejection::Algorithm
    } else {
        Rejection::Malformed
    }
}

/// A secret for another purpose, derived from a configured key: HMAC-SHA256 keyed with
/// the key material over `label`.
fn derive_secret(key: &KeySpec, label: &[u8]) -> [u8; 32] {
    let material = match &key.material {
        KeyMaterial::Secret(bytes) | KeyMaterial::PrivateKeyPem(bytes) => bytes,
    };
    let tag = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, material), label);
    let mut out = [0; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The signing algorithms anteroom accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum TokenAlgorithm {
    /// Shared secret: fastest; the origin cannot verify without the secret.
    #[default]
    #[serde(rename = "HS256", alias = "hs256")]
    Hs256,
    /// Ed25519: the origin can verify from `/_anteroom/jwks.json`.
    #[serde(rename = "EdDSA", alias = "eddsa")]
    EdDsa,
    /// ECDSA P-256: as EdDSA, for verifiers without Ed25519.
    #[serde(rename = "ES256", alias = "es256")]
    Es256,
}

impl TokenAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            TokenAlgorithm::Hs256 => Algorithm::HS256,
            TokenAlgorithm::EdDsa => Algorithm::EdDSA,
            TokenAlgorithm::Es256 => Algorithm::ES256,
        }
    }
}

/// One configured key: a shared secret (HS256) or a PKCS#8 private key in PEM.
#[derive(Debug)]
pub struct KeySpec {
    pub kid: String,
    pub material: KeyMaterial,
}

#[derive(Debug)]
pub enum KeyMaterial {
    Secret(Vec<u8>),
    PrivateKeyPem(Vec<u8>),
}

/// The claims of an admission token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The visitor id.
    pub sub: String,
    pub room: String,
    /// The session id (capacity accounting).
    pub sid: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
}

/// Why a token was not accepted; `reason()` is the metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    Algorithm,
    UnknownKey,
    Signature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    OtherRoom,
    /// Offered in the query string: tokens are only ever read from cookies.
    InUrl,
    /// Its session was ended (by the origin's `revoke`, or the visitor's leave).
    Revoked,
}

impl Rejection {
    /// Every reason, in the order of the metrics' series.
    pub const ALL: [Rejection; 11] = [
        Rejection::Malformed,
        Rejection::Algorithm,
        Rejection::UnknownKey,
        Rejection::Signature,
        Rejection::Expired,
        Rejection::NotYetValid,
        Rejection::Issuer,
        Rejection::Audience,
        Rejection::OtherRoom,
        Rejection::InUrl,
        Rejection::Revoked,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Algorithm => "algorithm",
            Rejection::UnknownKey => "unknown_key",
            Rejection::Signature => "signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::Issuer => "issuer",
            Rejection::Audience => "audience",
            Rejection::OtherRoom => "other_room",
            Rejection::InUrl => "in_url",
            Rejection::Revoked => "revoked",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("tokens.keys: at least one key is required")]
    NoKeys,
    #[error("tokens.keys[{kid}]: {problem}")]
    Bad { kid: String, problem: String },
}

pub struct TokenKeys {
    algorithm: TokenAlgorithm,
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    /// Public keys as JWKs (asymmetric algorithms only).
    jwks: Vec<serde_json::Value>,
    /// One secret per key, derived from it, for signing queue cookies: the first signs,
    /// all verify, so a key rotation does not cost waiting visitors their place.
    cookie_secrets: Vec<[u8; 32]>,
    leeway_secs: u64,
}

/// Names the keys, never their material.
impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("algorithm", &self.algorithm)
            .field("signing_kid", &self.signing_kid)
            .field("verifying", &self.verifying.keys().collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn new(
        algorithm: TokenAlgorithm,
        keys: &[KeySpec],
        issuer: &str,
        audience: &str,
        leeway_secs: u64,
    ) -> Result<Self, KeyError> {
        let first = keys.first().ok_or(KeyError::NoKeys)?;
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        let mut signing = None;
        let mut cookie_secrets = Vec::new();
        for key in keys {
            cookie_secrets.push(derive_secret(key, b"anteroom queue cookie v1"));
            let bad = |problem: String| KeyError::Bad { kid: key.kid.clone(), problem };
            let (encoding, decoding, jwk) = load_key(algorithm, key).map_err(bad)?;
            if verifying.insert(key.kid.clone(), decoding).is_some() {
                return Err(KeyError::Bad { kid: key.kid.clone(), problem: "duplicate kid".into() });
            }
            if let Some(jwk) = jwk {
                jwks.push(jwk);
            }
            if signing.is_none() {
                signing = Some(encoding);
            }
        }
        let mut validation = Validation::new(algorithm.jwt());
        validation.leeway = leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Ok(Self {
            algorithm,
            signing_kid: first.kid.clone(),
            signing: signing.ok_or(KeyError::NoKeys)?,
            verifying,
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            jwks,
            cookie_secrets,
            leeway_secs,
        })
    }

    /// Secrets for signing queue cookies (first signs, all verify).
    pub fn cookie_secrets(&self) -> &[[u8; 32]] {
        &self.cookie_secrets
    }

    pub fn leeway_secs(&self) -> u64 {
        self.leeway_secs
    }

    /// A token for `visitor` in `room`, valid from `now` (Unix seconds) for `ttl_secs`.
    pub fn issue(&self, visitor: &str, room: &str, session: &str, now: u64, ttl_secs: u64) -> String {
        self.issue_with_claims(visitor, room, session, now, ttl_secs).0
    }

    /// As [`issue`](Self::issue), with the claims signed: the issuer knows them without
    /// verifying its own token.
    pub fn issue_with_claims(
        &self,
        visitor: &str,
        room: &str,
        session: &str,
        now: u64,
        ttl_secs: u64,
    ) -> (String, Claims) {
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: visitor.to_owned(),
            room: room.to_owned(),
            sid: session.to_owned(),
            iat: now,
            nbf: now,
            exp: now + ttl_secs,
        };
        let mut header = Header::new(self.algorithm.jwt());
        header.kid = Some(self.signing_kid.clone());
        // Signing with a key that loaded and an algorithm it was loaded for cannot fail;
        // an empty token is simply never valid.
        let token = jsonwebtoken::encode(&header, &claims, &self.signing).unwrap_or_default();
        (token, claims)
    }

    /// The claims of `token` if it is valid for `room`.
    pub fn verify(&self, token: &str, room: &str) -> Result<Claims, Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| unparsed_header_rejection(token))?;
        if header.alg != self.algorithm.jwt() {
            return Err(Rejection::Algorithm);
        }
        let key = header.kid.as_deref().and_then(|kid| self.verifying.get(kid)).ok_or(Rejection::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => Rejection::Signature,
            ErrorKind::ExpiredSignature => Rejection::Expired,
            ErrorKind::ImmatureSignature => Rejection::NotYetValid,
            ErrorKind::InvalidIssuer => Rejection::Issuer,
            ErrorKind::InvalidAudience => Rejection::Audience,
            ErrorKind::InvalidAlgorithm => Rejection::Algorithm,
            _ => Rejection::Malformed,
        })?;
        if data.claims.room != room {
            return Err(Rejection::OtherRoom);
        }
        Ok(data.claims)
    }

    /// `{"keys": [...]}` for `/_anteroom/jwks.json` (empty for HS256: a secret is not
    /// published).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.jwks })
    }
}

type LoadedKey = (EncodingKey, DecodingKey, Option<serde_json::Value>);

fn load_key(algorithm: TokenAlgorithm, key: &KeySpec) -> Result<LoadedKey, String> {
    match (algorithm, &key.material) {
        (TokenAlgorithm::Hs256, KeyMaterial::Secret(secret)) => {
            if secret.len() < 32 {
                return Err("an HS256 secret must be at least 32 bytes".into());
            }
            Ok((EncodingKey::from_secret(secret), DecodingKey::from_secret(secret), None))
        }
        (TokenAlgorithm::Hs256, KeyMaterial::PrivateKeyPem(_)) => Err("HS256 takes a secret, not a private key".into()),
        (_, KeyMaterial::Secret(_)) => Err("EdDSA and ES256 take private_key_file, not a secret".into()),
        (asymmetric, KeyMaterial::PrivateKeyPem(pem)) => {
            let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("not a PEM private key: {e}"))?;
            let pkcs8 = der.secret_der();
            let public = match asymmetric {
                TokenAlgorithm::EdDsa => Ed25519KeyPair::from_pkcs8(pkcs8)
                    .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?
                    .public_key()
                    .as_ref()
                    .to_vec(),
                _ => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|e| format!("not a P-256 PKCS#8 key: {e}"))?
                    .public_key()
                    .as_ref()
                    .to_vec(),
            };
            let (encoding, decoding, jwk) = if asymmetric == TokenAlgorithm::EdDsa {
                let x = URL_SAFE_NO_PAD.encode(&public);
                let decoding = DecodingKey::from_ed_components(&x).map_err(|e| e.to_string())?;
                let jwk = serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x });
                (EncodingKey::from_ed_der(pkcs8), decoding, jwk)
            } else {
                // An uncompressed P-256 point: 0x04, then 32 bytes of x and 32 of y.
                let (x, y) = match public.as_slice() {
                    [0x04, rest @ ..] if rest.len() == 64 => {
                        (URL_SAFE_NO_PAD.encode(&rest[..32]), URL_SAFE_NO_PAD.encode(&rest[32..]))
                    }
                    _ => return Err("unexpected P-256 public key format".into()),
                };
                let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
                let jwk = serde_json::json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y });
                (EncodingKey::from_ec_der(pkcs8), decoding, jwk)
            };
            let mut jwk = jwk;
            jwk["kid"] = key.kid.clone().into();
            jwk["alg"] = if asymmetric == TokenAlgorithm::EdDsa { "EdDSA" } else { "ES256" }.into();
            jwk["use"] = "sig".into();
            Ok((encoding, decoding, Some(jwk)))
        }
    }
}

/// A new key for `anteroom keygen`: a base64 secret for HS256, a PKCS#8 PEM otherwise.
pub fn generate_key(algorithm: TokenAlgorithm) -> Result<String, String> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = match algorithm {
        TokenAlgorithm::Hs256 => {
            let mut secret = [0u8; 32];
            aws_lc_rs::rand::fill(&mut secret).map_err(|_| "no randomness available".to_owned())?;
            return Ok(format!("{}\n", STANDARD.encode(secret)));
        }
        TokenAlgorithm::EdDsa => {
            Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "key generation failed".to_owned())?
        }
        TokenAlgorithm::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| "key generation failed".to_owned())?,
    };
    let body = STANDARD.encode(pkcs8.as_ref());
    let lines: Vec<&str> = body.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    Ok(format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n")))
}

#[cfg(test)]
mod tests;
