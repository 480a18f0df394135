//! Enqueue tokens: a JWT the shop signs for one account (`sub`) and one room, without
//! which a room with `enqueue = "token"` gives no place. HS256 with a shared secret, or
//! EdDSA / ES256 with the shop's public key (the algorithm follows the key). Verification
//! is as strict as for admission tokens: the key's algorithm only, the signature, `exp`
//! (and `nbf` when present) with the configured leeway, the room, and the `kid` when the
//! token names one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::SubjectPublicKeyInfoDer;
use serde::Deserialize;

/// DER prefixes of the two public keys accepted (SubjectPublicKeyInfo): what follows is
/// the raw key (32 bytes of Ed25519; an uncompressed P-256 point).
const ED25519_SPKI: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
const P256_SPKI: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The shop's key for a room's enqueue tokens.
#[allow(missing_debug_implementations)] // key material: never printed
pub enum EnqueueKeyMaterial<'a> {
    /// HS256: at least 32 bytes.
    Secret(&'a [u8]),
    /// EdDSA or ES256: a `PUBLIC KEY` PEM.
    PublicKeyPem(&'a [u8]),
}

/// Why an enqueue token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnqueueRejection {
    /// Not a JWT, another algorithm, a bad signature, a missing claim.
    Invalid,
    Expired,
    /// Signed for another room.
    OtherRoom,
    /// Names a key (`kid`) other than the room's.
    OtherKey,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    room: String,
}

/// Checks a room's enqueue tokens.
pub struct EnqueueVerifier {
    kid: String,
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for EnqueueVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnqueueVerifier").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl EnqueueVerifier {
    pub fn new(kid: &str, material: EnqueueKeyMaterial<'_>, leeway_secs: u64) -> Result<Self, String> {
        let (algorithm, key) = match material {
            EnqueueKeyMaterial::Secret(secret) if secret.len() < 32 => {
                return Err("an HS256 secret must be at least 32 bytes".into())
            }
            EnqueueKeyMaterial::Secret(secret) => (Algorithm::HS256, DecodingKey::from_secret(secret)),
            EnqueueKeyMaterial::PublicKeyPem(pem) => {
                let der = SubjectPublicKeyInfoDer::from_pem_slice(pem)
                    .map_err(|e| format!("not a PEM public key (\"BEGIN PUBLIC KEY\"): {e}"))?;
                let der = der.as_ref();
                if let Some(raw) = der.strip_prefix(&ED25519_SPKI[..]).filter(|raw| raw.len() == 32) {
                    let key =
                        DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(raw)).map_err(|e| e.to_string())?;
                    (Algorithm::EdDSA, key)
                } else if let Some(point) = der.strip_prefix(&P256_SPKI[..]).filter(|p| p.len() == 65 && p[0] == 4) {
                    let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..]));
                    (Algorithm::ES256, DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?)
                } else {
                    return Err("the public key is neither Ed25519 (EdDSA) nor P-256 (ES256)".into());
                }
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = leeway_secs;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self { kid: kid.to_owned(), key, validation })
    }

    /// The account (`sub`) an enqueue token for `room` speaks for.
    pub fn verify(&self, token: &str, room: &str) -> Result<String, EnqueueRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| EnqueueRejection::Invalid)?;
        if header.kid.as_deref().is_some_and(|kid| kid != self.kid) {
            return Err(EnqueueRejection::OtherKey);
        }
        let claims =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => EnqueueRejection::Expired,
                _ => EnqueueRejection::Invalid,
            })?;
        if claims.claims.room != room {
            return Err(EnqueueRejection::OtherRoom);
        }
        if claims.claims.sub.is_empty() {
            return Err(EnqueueRejection::Invalid);
        }
        Ok(claims.claims.sub)
    }
}

#[cfg(test)]
mod tests;
