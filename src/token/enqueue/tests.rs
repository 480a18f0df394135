use super::*;
use crate::token::{generate_key, TokenAlgorithm};
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use jsonwebtoken::{EncodingKey, Header};
use rustls::pki_types::PrivateKeyDer;

const SECRET: &[u8] = b"a shop secret of at least 32 bytes!!";

fn now() -> u64 {
    crate::time::unix_secs()
}

fn sign(key: &EncodingKey, algorithm: Algorithm, kid: Option<&str>, claims: serde_json::Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn claims(sub: &str, room: &str, exp: u64) -> serde_json::Value {
    serde_json::json!({ "sub": sub, "room": room, "exp": exp, "iat": now() })
}

/// A private key (for the shop's signing) and its public key as a PEM (for anteroom).
fn key_pair(algorithm: TokenAlgorithm) -> (EncodingKey, String) {
    let pem = generate_key(algorithm).unwrap();
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
    let pkcs8 = der.secret_der();
    let (encoding, spki) = match algorithm {
        TokenAlgorithm::EdDsa => {
            let public = Ed25519KeyPair::from_pkcs8(pkcs8).unwrap().public_key().as_ref().to_vec();
            (EncodingKey::from_ed_der(pkcs8), [&ED25519_SPKI[..], &public].concat())
        }
        _ => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).unwrap();
            (EncodingKey::from_ec_der(pkcs8), [&P256_SPKI[..], pair.public_key().as_ref()].concat())
        }
    };
    let body = base64::engine::general_purpose::STANDARD.encode(spki);
    (encoding, format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"))
}

#[test]
fn an_hs256_token_names_its_account_for_its_room_only() {
    let verifier = EnqueueVerifier::new("shop-1", EnqueueKeyMaterial::Secret(SECRET), 5).unwrap();
    let key = EncodingKey::from_secret(SECRET);
    let token = sign(&key, Algorithm::HS256, Some("shop-1"), claims("fan-42", "presale", now() + 600));
    assert_eq!(verifier.verify(&token, "presale"), Ok("fan-42".to_owned()));
    assert_eq!(verifier.verify(&token, "sale"), Err(EnqueueRejection::OtherRoom));
    let unnamed = sign(&key, Algorithm::HS256, None, claims("fan-42", "presale", now() + 600));
    assert_eq!(verifier.verify(&unnamed, "presale"), Ok("fan-42".to_owned()), "a kid is optional");
    let other_kid = sign(&key, Algorithm::HS256, Some("shop-2"), claims("fan-42", "presale", now() + 600));
    assert_eq!(verifier.verify(&other_kid, "presale"), Err(EnqueueRejection::OtherKey));
}

#[test]
fn forged_expired_early_and_malformed_tokens_are_refused() {
    let verifier = EnqueueVerifier::new("shop-1", EnqueueKeyMaterial::Secret(SECRET), 5).unwrap();
    let key = EncodingKey::from_secret(SECRET);
    let forged = sign(
        &EncodingKey::from_secret(b"another secret of at least 32 bytes!"),
        Algorithm::HS256,
        None,
        claims("fan", "presale", now() + 600),
    );
    assert_eq!(verifier.verify(&forged, "presale"), Err(EnqueueRejection::Invalid));
    let expired = sign(&key, Algorithm::HS256, None, claims("fan", "presale", now() - 60));
    assert_eq!(verifier.verify(&expired, "presale"), Err(EnqueueRejection::Expired));
    let early = sign(
        &key,
        Algorithm::HS256,
        None,
        serde_json::json!({ "sub": "fan", "room": "presale", "exp": now() + 600, "nbf": now() + 300 }),
    );
    assert_eq!(verifier.verify(&early, "presale"), Err(EnqueueRejection::Invalid), "not before its nbf");
    let no_sub = sign(&key, Algorithm::HS256, None, serde_json::json!({ "room": "presale", "exp": now() + 600 }));
    assert_eq!(verifier.verify(&no_sub, "presale"), Err(EnqueueRejection::Invalid));
    let empty_sub = sign(&key, Algorithm::HS256, None, claims("", "presale", now() + 600));
    assert_eq!(verifier.verify(&empty_sub, "presale"), Err(EnqueueRejection::Invalid));
    for junk in ["", "x", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJmYW4ifQ."] {
        assert_eq!(verifier.verify(junk, "presale"), Err(EnqueueRejection::Invalid), "{junk:?}");
    }
    let (ed, _) = key_pair(TokenAlgorithm::EdDsa);
    let wrong_alg = sign(&ed, Algorithm::EdDSA, None, claims("fan", "presale", now() + 600));
    assert_eq!(verifier.verify(&wrong_alg, "presale"), Err(EnqueueRejection::Invalid), "the key's algorithm only");
}

#[test]
fn eddsa_and_es256_tokens_verify_with_the_shops_public_key() {
    for (algorithm, jwt) in [(TokenAlgorithm::EdDsa, Algorithm::EdDSA), (TokenAlgorithm::Es256, Algorithm::ES256)] {
        let (private, public_pem) = key_pair(algorithm);
        let verifier =
            EnqueueVerifier::new("shop", EnqueueKeyMaterial::PublicKeyPem(public_pem.as_bytes()), 5).unwrap();
        let token = sign(&private, jwt, Some("shop"), claims("fan-7", "presale", now() + 600));
        assert_eq!(verifier.verify(&token, "presale"), Ok("fan-7".to_owned()), "{algorithm:?}");
        let hs = sign(
            &EncodingKey::from_secret(public_pem.as_bytes()),
            Algorithm::HS256,
            None,
            claims("fan-7", "presale", now() + 600),
        );
        assert_eq!(verifier.verify(&hs, "presale"), Err(EnqueueRejection::Invalid), "HS256 signed with the public key");
    }
}

#[test]
fn unusable_keys_are_refused_with_a_reason() {
    let short = EnqueueVerifier::new("k", EnqueueKeyMaterial::Secret(b"short"), 5).unwrap_err();
    assert!(short.contains("at least 32 bytes"), "{short}");
    let not_pem = EnqueueVerifier::new("k", EnqueueKeyMaterial::PublicKeyPem(b"hello"), 5).unwrap_err();
    assert!(not_pem.contains("not a PEM public key"), "{not_pem}");
    let private = generate_key(TokenAlgorithm::EdDsa).unwrap();
    let wrong_kind = EnqueueVerifier::new("k", EnqueueKeyMaterial::PublicKeyPem(private.as_bytes()), 5).unwrap_err();
    assert!(wrong_kind.contains("not a PEM public key"), "{wrong_kind}");
}
