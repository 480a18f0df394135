use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn hs256(keys: &[(&str, &[u8])]) -> TokenKeys {
    let specs: Vec<KeySpec> =
        keys.iter().map(|(kid, s)| KeySpec { kid: (*kid).into(), material: KeyMaterial::Secret(s.to_vec()) }).collect();
    TokenKeys::new(TokenAlgorithm::Hs256, &specs, "anteroom", "shop", 5).expect("keys")
}

fn asymmetric(alg: TokenAlgorithm) -> (TokenKeys, String) {
    let pem = generate_key(alg).expect("keygen");
    let spec = KeySpec { kid: "k1".into(), material: KeyMaterial::PrivateKeyPem(pem.clone().into_bytes()) };
    (TokenKeys::new(alg, &[spec], "anteroom", "shop", 5).expect("keys"), pem)
}

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

#[test]
fn every_algorithm_round_trips_with_its_claims() {
    for keys in [hs256(&[("k1", SECRET)]), asymmetric(TokenAlgorithm::EdDsa).0, asymmetric(TokenAlgorithm::Es256).0] {
        let (token, signed) = keys.issue_with_claims("visitor-1", "sale", "session-1", now(), 600);
        let claims = keys.verify(&token, "sale").expect("valid");
        assert_eq!(claims, signed, "the issuer's claims are the token's");
        assert_eq!(
            (claims.sub.as_str(), claims.room.as_str(), claims.sid.as_str()),
            ("visitor-1", "sale", "session-1")
        );
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), ("anteroom", "shop"));
        assert_eq!(claims.exp, claims.iat + 600);
    }
}

#[test]
fn the_first_key_signs_and_every_key_verifies() {
    let old = hs256(&[("old", SECRET)]);
    let old_token = old.issue("v", "sale", "s", now(), 600);
    let rotated = hs256(&[("new", b"another-secret-that-is-long-enough-32b"), ("old", SECRET)]);
    assert!(rotated.verify(&old_token, "sale").is_ok(), "tokens of the old key stay valid");
    let new_token = rotated.issue("v", "sale", "s", now(), 600);
    assert_eq!(jsonwebtoken::decode_header(&new_token).unwrap().kid.as_deref(), Some("new"));
    assert_eq!(old.verify(&new_token, "sale"), Err(Rejection::UnknownKey));
}

#[test]
fn alg_none_is_rejected() {
    let keys = hs256(&[("k1", SECRET)]);
    let claims = format!(
        r#"{{"iss":"anteroom","aud":"shop","sub":"v","room":"sale","sid":"s","iat":{n},"nbf":{n},"exp":{e}}}"#,
        n = now(),
        e = now() + 600
    );
    let token = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#), b64(claims.as_bytes()));
    assert_eq!(keys.verify(&token, "sale"), Err(Rejection::Algorithm));
}

#[test]
fn hs256_signed_with_the_public_key_of_an_asymmetric_config_is_rejected() {
    for alg in [TokenAlgorithm::EdDsa, TokenAlgorithm::Es256] {
        let (keys, _) = asymmetric(alg);
        let public_x = keys.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let forger = hs256(&[("k1", format!("{public_x}{public_x}").as_bytes())]);
        let token = forger.issue("v", "sale", "s", now(), 600);
        assert_eq!(keys.verify(&token, "sale"), Err(Rejection::Algorithm), "{alg:?}");
    }
}

#[test]
fn a_token_signed_with_another_key_is_rejected() {
    let keys = hs256(&[("k1", SECRET)]);
    let forger = hs256(&[("k1", b"a-different-secret-of-enough-length!!")]);
    assert_eq!(keys.verify(&forger.issue("v", "sale", "s", now(), 600), "sale"), Err(Rejection::Signature));
    let (ed, _) = asymmetric(TokenAlgorithm::EdDsa);
    let (other_ed, _) = asymmetric(TokenAlgorithm::EdDsa);
    assert_eq!(ed.verify(&other_ed.issue("v", "sale", "s", now(), 600), "sale"), Err(Rejection::Signature));
}

#[test]
fn a_token_for_another_room_is_rejected() {
    let keys = hs256(&[("k1", SECRET)]);
    let token = keys.issue("v", "presale", "s", now(), 600);
    assert_eq!(keys.verify(&token, "sale"), Err(Rejection::OtherRoom));
}

#[test]
fn expiry_is_checked_with_a_small_leeway() {
    let keys = hs256(&[("k1", SECRET)]);
    // Expired 3 s ago: inside the 5 s leeway.
    let just = keys.issue("v", "sale", "s", now() - 603, 600);
    assert!(keys.verify(&just, "sale").is_ok());
    let long_ago = keys.issue("v", "sale", "s", now() - 700, 600);
    assert_eq!(keys.verify(&long_ago, "sale"), Err(Rejection::Expired));
    let future = keys.issue("v", "sale", "s", now() + 120, 600);
    assert_eq!(keys.verify(&future, "sale"), Err(Rejection::NotYetValid));
}

#[test]
fn a_tampered_payload_is_rejected() {
    let keys = hs256(&[("k1", SECRET)]);
    let token = keys.issue("v", "sale", "s", now(), 600);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    parts[1] = b64(payload.replace("\"sub\":\"v\"", "\"sub\":\"w\"").as_bytes());
    assert_eq!(keys.verify(&parts.join("."), "sale"), Err(Rejection::Signature));
}

#[test]
fn truncated_and_garbage_tokens_are_rejected() {
    let keys = hs256(&[("k1", SECRET)]);
    let token = keys.issue("v", "sale", "s", now(), 600);
    assert!(keys.verify(&token[..token.len() - 5], "sale").is_err());
    let head_only: String = token.split('.').next().unwrap().to_owned();
    assert_eq!(keys.verify(&head_only, "sale"), Err(Rejection::Malformed));
    for garbage in ["", "garbage", "a.b.c", "....", "\u{0}\u{1}"] {
        assert_eq!(keys.verify(garbage, "sale"), Err(Rejection::Malformed), "{garbage:?}");
    }
}

#[test]
fn issuer_and_audience_must_match() {
    let keys = hs256(&[("k1", SECRET)]);
    let specs = [KeySpec { kid: "k1".into(), material: KeyMaterial::Secret(SECRET.to_vec()) }];
    let other_iss = TokenKeys::new(TokenAlgorithm::Hs256, &specs, "someone-else", "shop", 5).unwrap();
    assert_eq!(keys.verify(&other_iss.issue("v", "sale", "s", now(), 600), "sale"), Err(Rejection::Issuer));
    let other_aud = TokenKeys::new(TokenAlgorithm::Hs256, &specs, "anteroom", "other-shop", 5).unwrap();
    assert_eq!(keys.verify(&other_aud.issue("v", "sale", "s", now(), 600), "sale"), Err(Rejection::Audience));
}

#[test]
fn jwks_publishes_public_keys_only() {
    assert_eq!(hs256(&[("k1", SECRET)]).jwks(), serde_json::json!({ "keys": [] }));
    let (ed, pem) = asymmetric(TokenAlgorithm::EdDsa);
    let jwk = &ed.jwks()["keys"][0];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["kid"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("k1"))
    );
    assert_eq!(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap().len(), 32);
    assert!(!ed.jwks().to_string().contains(pem.lines().nth(1).unwrap()), "no private material");
    let (es, _) = asymmetric(TokenAlgorithm::Es256);
    let jwk = &es.jwks()["keys"][0];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["alg"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(jwk["y"].is_string());
}

#[test]
fn unusable_keys_are_refused_with_the_kid_named() {
    let short = [KeySpec { kid: "tiny".into(), material: KeyMaterial::Secret(b"short".to_vec()) }];
    let e = TokenKeys::new(TokenAlgorithm::Hs256, &short, "i", "a", 5).err().unwrap().to_string();
    assert!(e.starts_with("tokens.keys[tiny]: an HS256 secret must be at least 32 bytes"), "{e}");
    let es_pem = generate_key(TokenAlgorithm::Es256).unwrap();
    let wrong_curve = [KeySpec { kid: "k".into(), material: KeyMaterial::PrivateKeyPem(es_pem.into_bytes()) }];
    let e = TokenKeys::new(TokenAlgorithm::EdDsa, &wrong_curve, "i", "a", 5).err().unwrap().to_string();
    assert!(e.contains("not an Ed25519 PKCS#8 key"), "{e}");
    assert!(matches!(TokenKeys::new(TokenAlgorithm::Hs256, &[], "i", "a", 5), Err(KeyError::NoKeys)));
    let twice = [
        KeySpec { kid: "k".into(), material: KeyMaterial::Secret(SECRET.to_vec()) },
        KeySpec { kid: "k".into(), material: KeyMaterial::Secret(SECRET.to_vec()) },
    ];
    assert!(TokenKeys::new(TokenAlgorithm::Hs256, &twice, "i", "a", 5)
        .err()
        .unwrap()
        .to_string()
        .contains("duplicate kid"));
}
