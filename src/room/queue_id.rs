//! The short queue id a buyer reads out to support ("K7QF-3M2P"): the first 40 bits of
//! the visitor id in Crockford's base32 (no I, L, O or U; read back case-blind, with I
//! and L taken as 1 and O as 0). It names the visitor to an operator without being the
//! visitor id, which only the signed queue cookie carries.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use data_encoding::{Encoding, Specification};
use std::sync::OnceLock;

/// Bits of the visitor id shown: one id in a trillion shares a given one.
const BYTES: usize = 5;

fn crockford() -> &'static Encoding {
    static ENCODING: OnceLock<Encoding> = OnceLock::new();
    ENCODING.get_or_init(|| {
        let mut spec = Specification::new();
        spec.symbols.push_str("0123456789ABCDEFGHJKMNPQRSTVWXYZ");
        spec.translate.from.push_str("abcdefghjkmnpqrstvwxyzIiLlOo");
        spec.translate.to.push_str("ABCDEFGHJKMNPQRSTVWXYZ111100");
        // The specification is a constant: it cannot fail.
        spec.encoding().unwrap_or_else(|e| unreachable!("Crockford base32: {e}"))
    })
}

/// Crockford's base32 digits.
const DIGITS: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The queue id of a visitor id (`None` for an id that is not one of anteroom's). Every
/// status answer carries one, so this reads the first 7 characters (42 bits) by hand
/// rather than through the decoders (1,200 → ~200 instructions per poll; see
/// docs/BENCHMARKS.md); a test checks it against them.
pub(crate) fn of(visitor: &str) -> Option<String> {
    let mut bits: u64 = 0;
    for &c in visitor.as_bytes().get(..7)? {
        bits = bits << 6 | u64::from(sextet(c)?);
    }
    let bits = bits >> 2; // the first 40
    let mut shown = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            shown.push('-');
        }
        shown.push(char::from(DIGITS[(bits >> (35 - 5 * i) & 31) as usize]));
    }
    Some(shown)
}

/// The value of a base64url character.
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// `K7QF-3M2P`.
fn show(bytes: &[u8]) -> String {
    let mut text = [0u8; 8];
    crockford().encode_mut(bytes, &mut text);
    let mut shown = String::with_capacity(9);
    for (i, c) in text.iter().enumerate() {
        if i == 4 {
            shown.push('-');
        }
        shown.push(char::from(*c));
    }
    shown
}

/// A queue id as a person typed it: spaces and dashes ignored, case-blind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QueueId {
    bytes: [u8; BYTES],
}

impl QueueId {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let compact: String = text.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
        let decoded = crockford().decode(compact.as_bytes()).ok()?;
        Some(Self { bytes: decoded.try_into().ok()? })
    }

    /// How it is shown.
    pub(crate) fn canonical(&self) -> String {
        show(&self.bytes)
    }

    /// The first characters every visitor id with this queue id starts with (36 of its 40
    /// bits): the store finds candidates by it, [`QueueId::names`] decides.
    pub(crate) fn visitor_prefix(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes)[..6].to_owned()
    }

    pub(crate) fn names(&self, visitor: &str) -> bool {
        of(visitor).is_some_and(|id| id == self.canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_id_is_read_back_as_people_type_it() {
        let visitor = crate::room::cookies::new_visitor_id();
        let id = of(&visitor).unwrap();
        assert_eq!(id.len(), 9);
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_uppercase()), "{id}");
        let typed = QueueId::parse(&id.to_lowercase().replace('-', " ")).unwrap();
        assert_eq!(typed.canonical(), id);
        assert!(typed.names(&visitor));
        assert!(visitor.starts_with(&typed.visitor_prefix()));
        assert!(!typed.names(&crate::room::cookies::new_visitor_id()));
    }

    #[test]
    fn the_quick_reading_agrees_with_the_decoders() {
        for _ in 0..2_000 {
            let visitor = crate::room::cookies::new_visitor_id();
            let bytes = URL_SAFE_NO_PAD.decode(&visitor).unwrap();
            let expected = QueueId { bytes: bytes[..BYTES].try_into().unwrap() }.canonical();
            assert_eq!(of(&visitor).unwrap(), expected, "{visitor}");
        }
    }

    #[test]
    fn look_alike_letters_are_read_as_digits() {
        let id = QueueId::parse("0000-0001").unwrap();
        assert_eq!(QueueId::parse("oOoo-OOoI").unwrap(), id);
        assert_eq!(QueueId::parse("OOOO-000l").unwrap(), id);
    }

    #[test]
    fn junk_is_no_queue_id() {
        for junk in ["", "ABCD", "ABCD-EFGH-J", "ABCU-EFGH", "ÄBCD-EFGH", "../../x", "ABCD-EFG*"] {
            assert_eq!(QueueId::parse(junk), None, "{junk}");
        }
        assert_eq!(of("not base64!"), None);
        assert_eq!(of("AAA"), None);
    }
}
