//! A room's defences against bots: the proof-of-work challenge before a place, the cap
//! on places per client, and enqueue tokens (one account, one place).

use super::{HumanDuration, Secret};
use crate::token::enqueue::{EnqueueKeyMaterial, EnqueueVerifier};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Who may take a place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnqueueMode {
    /// Anyone (with the queue cookie, and a proof of work where the room asks one).
    #[default]
    Open,
    /// Only with an enqueue token the shop signed for an account (`enqueue_key`); one
    /// account holds one place.
    Token,
}

/// The shop's key for a room's enqueue tokens, shaped like a `tokens.keys` entry: a
/// shared secret (HS256), or the shop's public key (EdDSA or ES256, from the key).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnqueueKey {
    pub kid: String,
    #[serde(default)]
    pub secret: Option<Secret>,
    /// A `PUBLIC KEY` PEM (Ed25519 or P-256).
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
}

impl super::RoomConfig {
    /// The room's enqueue token verifier (`None`: anyone may take a place). Reads the key
    /// file; `Err` is a `key: problem` line.
    pub fn enqueue_verifier(&self, leeway: HumanDuration) -> Result<Option<EnqueueVerifier>, String> {
        let at = format!("rooms[{}]", self.name);
        if self.enqueue == EnqueueMode::Open {
            return Ok(None);
        }
        let Some(key) = &self.enqueue_key else {
            return Err(format!(
                "{at}.enqueue_key: required with enqueue = \"token\" ({{ kid, secret }} or {{ kid, public_key_file }})"
            ));
        };
        let leeway = leeway.0.as_secs();
        let verifier = match (&key.secret, &key.public_key_file) {
            (Some(secret), None) => {
                EnqueueVerifier::new(&key.kid, EnqueueKeyMaterial::Secret(secret.expose().as_bytes()), leeway)
            }
            (None, Some(path)) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("{at}.enqueue_key.public_key_file: cannot read {}: {e}", path.display()))?;
                EnqueueVerifier::new(&key.kid, EnqueueKeyMaterial::PublicKeyPem(&pem), leeway)
            }
            _ => return Err(format!("{at}.enqueue_key: set exactly one of secret or public_key_file")),
        };
        verifier.map(Some).map_err(|problem| format!("{at}.enqueue_key: {problem}"))
    }
}

/// Difficulties (leading zero bits) a room may set; `auto` stays within them too.
pub const MIN_DIFFICULTY: u8 = 1;
pub const MAX_DIFFICULTY: u8 = 28;

/// What a visitor must show before the room gives them a place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChallengeMode {
    /// Nothing: a visitor with a queue cookie takes a place.
    #[default]
    None,
    /// A SHA-256 proof of work, solved by the queue page's script (or the app).
    ProofOfWork,
}

/// `challenge_difficulty`: leading zero bits, or `"auto"` (rising with the room's join rate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Difficulty {
    #[default]
    Auto,
    Bits(u8),
}

impl Serialize for Difficulty {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Difficulty::Auto => s.serialize_str("auto"),
            Difficulty::Bits(bits) => s.serialize_u8(*bits),
        }
    }
}

impl<'de> Deserialize<'de> for Difficulty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Bits(i64),
            Word(String),
        }
        let expected = || format!("\"auto\" or a number of bits from {MIN_DIFFICULTY} to {MAX_DIFFICULTY}");
        match Written::deserialize(d).map_err(|_| serde::de::Error::custom(expected()))? {
            Written::Word(word) if word == "auto" => Ok(Difficulty::Auto),
            Written::Bits(bits) => u8::try_from(bits)
                .ok()
                .filter(|bits| (MIN_DIFFICULTY..=MAX_DIFFICULTY).contains(bits))
                .map(Difficulty::Bits)
                .ok_or_else(|| serde::de::Error::custom(format!("{bits} is not {}", expected()))),
            Written::Word(word) => Err(serde::de::Error::custom(format!("`{word}` is not {}", expected()))),
        }
    }
}

/// The room's bot-defence keys, as `rooms[NAME].key: problem` lines.
pub(super) fn validate(room: &super::RoomConfig, at: &str, leeway: HumanDuration, problems: &mut Vec<String>) {
    if let Err(problem) = room.enqueue_verifier(leeway) {
        problems.push(problem);
    }
    if room.max_places_per_client == Some(0) {
        problems.push(format!(
            "{at}.max_places_per_client: must be at least 1 (leave it out for no cap; pause the room to stop joins)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Room {
        challenge_difficulty: Difficulty,
    }

    fn parse(value: &str) -> Result<Difficulty, String> {
        toml::from_str::<Room>(&format!("challenge_difficulty = {value}"))
            .map(|room| room.challenge_difficulty)
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn a_cap_of_zero_places_per_client_is_refused_with_its_key() {
        let built = crate::Config::builder("http://shop:1")
            .room("sale", &["/tickets"], |room| room.max_places_per_client = Some(0))
            .build();
        let problems = built.expect_err("a cap of 0").to_string();
        assert!(problems.contains("rooms[sale].max_places_per_client: must be at least 1"), "{problems}");
    }

    #[test]
    fn a_difficulty_is_auto_or_a_number_of_bits_in_range() {
        assert_eq!(parse("\"auto\""), Ok(Difficulty::Auto));
        assert_eq!(parse("16"), Ok(Difficulty::Bits(16)));
        assert_eq!(parse("28"), Ok(Difficulty::Bits(28)));
        for bad in ["0", "29", "-3", "300", "\"hard\"", "1.5", "true"] {
            let problem = parse(bad).expect_err(bad);
            assert!(problem.contains("\"auto\" or a number of bits from 1 to 28"), "{bad}: {problem}");
        }
    }
}
