//! anteroom's cookies: finding them, signing the queue cookie, writing and clearing them,
//! and removing them before a request reaches the origin.
//!
//! - `anteroom_q_{ROOM}`: the visitor id with the store epoch, join sequence, when the
//!   place was last confirmed and the page first asked for, signed (HMAC-SHA256,
//!   truncated to 128 bits), so a place can be restored after data loss but never
//!   invented, and a place given up long ago cannot be brought back.
//! - `anteroom_t_{ROOM}`: the admission token (a JWT).
//! - `anteroom_c_{ROOM}`: the proof-of-work challenge being solved (signed by its own MAC).

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::header::{HeaderMap, HeaderValue, COOKIE};

/// Every anteroom cookie starts with this; all of them are removed before forwarding.
pub(crate) const PREFIX: &str = "anteroom_";

pub(crate) fn queue_cookie_name(room: &str) -> String {
    format!("{PREFIX}q_{room}")
}

pub(crate) fn token_cookie_name(room: &str) -> String {
    format!("{PREFIX}t_{room}")
}

pub(crate) fn challenge_cookie_name(room: &str) -> String {
    format!("{PREFIX}c_{room}")
}

/// The value of cookie `name` from any `Cookie` header.
pub(crate) fn find<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// Removes anteroom's cookies from the `Cookie` headers (the origin never sees them).
pub(crate) fn strip(headers: &mut HeaderMap) {
    let lines: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    if !lines.iter().any(|v| v.as_bytes().windows(PREFIX.len()).any(|w| w == PREFIX.as_bytes())) {
        return;
    }
    headers.remove(COOKIE);
    for line in lines {
        let Ok(text) = line.to_str() else {
            headers.append(COOKIE, line);
            continue;
        };
        let kept: Vec<&str> =
            text.split(';').map(str::trim).filter(|pair| !pair.is_empty() && !pair.starts_with(PREFIX)).collect();
        if !kept.is_empty() {
            if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
                headers.append(COOKIE, value);
            }
        }
    }
}

/// `Set-Cookie` for one of anteroom's cookies: whole site, HttpOnly, SameSite=Lax, Secure
/// over TLS. No Max-Age: it lives as long as the browser session (the token inside has
/// its own expiry).
pub(crate) fn set(name: &str, value: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}"))
        .unwrap_or(HeaderValue::from_static("anteroom_invalid=; Max-Age=0"))
}

/// `Set-Cookie` that deletes the cookie.
pub(crate) fn clear(name: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"))
        .unwrap_or(HeaderValue::from_static("anteroom_invalid=; Max-Age=0"))
}

/// The cookies one answer sets. Whether they get `Secure` is decided once per request
/// (over TLS, or when TLS ends before anteroom), not by each writer.
#[derive(Debug)]
pub(crate) struct Jar {
    secure: bool,
    /// By name: a cookie set twice in one answer is set once, to the last value.
    cookies: Vec<(String, HeaderValue)>,
}

impl Jar {
    pub(crate) fn new(secure: bool) -> Self {
        Self { secure, cookies: Vec::new() }
    }

    pub(crate) fn set(&mut self, name: &str, value: &str) {
        let cookie = set(name, value, self.secure);
        self.put(name, cookie);
    }

    pub(crate) fn clear(&mut self, name: &str) {
        let cookie = clear(name, self.secure);
        self.put(name, cookie);
    }

    fn put(&mut self, name: &str, cookie: HeaderValue) {
        self.cookies.retain(|(set, _)| set != name);
        self.cookies.push((name.to_owned(), cookie));
    }

    /// Drops what was to be set (a revoke must not be undone by a renewed token).
    pub(crate) fn forget(&mut self) {
        self.cookies.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Adds the `Set-Cookie` lines to an answer.
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        for (_, cookie) in self.cookies {
            headers.append(http::header::SET_COOKIE, cookie);
        }
    }
}

/// A fresh visitor id: 128 random bits, URL-safe.
pub(crate) fn new_visitor_id() -> String {
    let mut bytes = [0u8; 16];
    // The system RNG failing leaves nothing sensible to do; zero ids would collide, so the
    // time is mixed in as a last resort.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&crate::time::unix_us().to_le_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The longest `return_to` kept in the cookie (browsers refuse cookies past 4 KB).
const MAX_RETURN_TO: usize = 1024;

/// What the queue cookie carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueTicket {
    pub visitor: String,
    /// Store epoch and join sequence of the visitor's place (0 until they hold one).
    pub epoch: u64,
    pub seq: u64,
    /// The last position shown for this place (0: none yet), so that it never goes up.
    pub shown: u64,
    /// The first position shown for this place (0: none yet): the progress bar's start.
    pub first: u64,
    /// Unix ms when the store last confirmed the place (0: never).
    pub seen: u64,
    /// Unix ms when the place was taken (0: unknown, a cookie from before it was kept), for
    /// the time in line: the sequence is no clock.
    pub joined: u64,
    /// The page the visitor first asked for (already sanitized), to return them to.
    pub return_to: Option<String>,
}

impl QueueTicket {
    pub(crate) fn new_visitor() -> Self {
        Self { visitor: new_visitor_id(), ..Self::default() }
    }

    /// Remembers the page first asked for (only the first, and only a short one).
    pub(crate) fn asked_for(&mut self, return_to: &str) -> bool {
        let keep = self.return_to.is_none() && return_to != "/" && return_to.len() <= MAX_RETURN_TO;
        if keep {
            self.return_to = Some(return_to.to_owned());
        }
        keep
    }

    /// The place is gone (admitted): nothing left to restore, the page is remembered.
    pub(crate) fn without_place(&self) -> Self {
        Self { visitor: self.visitor.clone(), return_to: self.return_to.clone(), ..Self::default() }
    }
}

/// Signs and checks queue cookies with secrets derived from the token keys.
#[derive(Debug)]
pub(crate) struct QueueCookieSigner {
    keys: Vec<hmac::Key>,
}

impl QueueCookieSigner {
    pub(crate) fn new(secrets: &[[u8; 32]]) -> Self {
        Self { keys: secrets.iter().map(|s| hmac::Key::new(hmac::HMAC_SHA256, s)).collect() }
    }

    fn mac(key: &hmac::Key, room: &str, body: &str) -> String {
        let mut context = hmac::Context::with_key(key);
        context.update(room.as_bytes());
        context.update(b"|");
        context.update(body.as_bytes());
        URL_SAFE_NO_PAD.encode(&context.sign().as_ref()[..16])
    }

    /// `v3.{visitor}.{epoch}.{seq}.{shown}.{first}.{seen}.{return_to, base64url}.{joined}.{mac}`;
    /// the room is inside the MAC, so a cookie of one room is worthless in another.
    pub(crate) fn encode(&self, room: &str, ticket: &QueueTicket) -> String {
        let t = ticket;
        let return_to = t.return_to.as_deref().map(|r| URL_SAFE_NO_PAD.encode(r)).unwrap_or_default();
        let body = format!(
            "v3.{}.{}.{}.{}.{}.{}.{return_to}.{}",
            t.visitor, t.epoch, t.seq, t.shown, t.first, t.seen, t.joined
        );
        let mac = self.keys.first().map(|k| Self::mac(k, room, &body)).unwrap_or_default();
        format!("{body}.{mac}")
    }

    pub(crate) fn decode(&self, room: &str, value: &str) -> Option<QueueTicket> {
        let (body, mac) = value.rsplit_once('.')?;
        let genuine = self.keys.iter().any(|key| {
            let expected = Self::mac(key, room, body);
            // Constant time: the MAC must not be guessable byte by byte.
            aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), mac.as_bytes()).is_ok()
        });
        if !genuine {
            return None;
        }
        let mut parts = body.split('.');
        // v1 (before `seen` and `return_to`) still holds a place, but restores none; v2
        // (before `joined`) is read as joined at an unknown time. From v3 on, a later
        // version only adds fields at the end, so a cookie of a newer instance (a rolling
        // update) is read for what this one knows.
        let version: u32 = parts.next()?.strip_prefix('v')?.parse().ok()?;
        if version == 0 {
            return None;
        }
        let visitor = parts.next()?;
        let epoch = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let shown = parts.next()?.parse().ok()?;
        let first = parts.next()?.parse().ok()?;
        let (seen, return_to) = if version == 1 {
            (0, None)
        } else {
            let seen = parts.next()?.parse().ok()?;
            let return_to = match parts.next()? {
                "" => None,
                encoded => Some(String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?),
            };
            (seen, return_to)
        };
        let joined = if version >= 3 { parts.next()?.parse().ok()? } else { 0 };
        let known_to_end = version > 3 || parts.next().is_none();
        let well_formed =
            visitor.len() == 22 && visitor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (well_formed && known_to_end).then(|| QueueTicket {
            visitor: visitor.to_owned(),
            epoch,
            seq,
            shown,
            first,
            seen,
            joined,
            return_to,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append(COOKIE, HeaderValue::from_str(line).unwrap());
        }
        h
    }

    #[test]
    fn cookies_are_found_in_any_cookie_header() {
        let h = headers(&["a=1; anteroom_t_sale=tok", "anteroom_q_sale=q"]);
        assert_eq!(find(&h, "anteroom_t_sale"), Some("tok"));
        assert_eq!(find(&h, "anteroom_q_sale"), Some("q"));
        assert_eq!(find(&h, "anteroom_t_sal"), None);
    }

    #[test]
    fn anteroom_cookies_never_reach_the_origin() {
        let mut h = headers(&["a=1; anteroom_t_sale=tok; b=2", "anteroom_q_sale=q"]);
        strip(&mut h);
        let lines: Vec<_> = h.get_all(COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert_eq!(lines, ["a=1; b=2"]);
    }

    #[test]
    fn a_queue_cookie_round_trips_and_resists_tampering() {
        let signer = QueueCookieSigner::new(&[[7; 32]]);
        let ticket = QueueTicket {
            visitor: new_visitor_id(),
            epoch: 5,
            seq: 1234,
            shown: 17,
            first: 40,
            seen: 1_800_000_000_000,
            joined: 1_799_999_000_000,
            return_to: Some("/tickets/42?seat=A.12".into()),
        };
        let value = signer.encode("sale", &ticket);
        assert_eq!(signer.decode("sale", &value), Some(ticket.clone()));
        assert_eq!(signer.decode("vip", &value), None, "bound to its room");
        let earlier = value.replacen(".1234.", ".1.", 1);
        assert_eq!(signer.decode("sale", &earlier), None, "a better place cannot be forged");
        assert_eq!(QueueCookieSigner::new(&[[8; 32]]).decode("sale", &value), None);
        let rotated = QueueCookieSigner::new(&[[8; 32], [7; 32]]);
        assert_eq!(rotated.decode("sale", &value), Some(ticket), "old key still verifies");
        assert_eq!(signer.decode("sale", "garbage"), None);
        let later = value.replacen(".1800000000000.", ".1900000000000.", 1);
        assert_eq!(signer.decode("sale", &later), None, "a place cannot be kept fresh by hand");
        let sooner = value.replacen(".1799999000000.", ".1700000000000.", 1);
        assert_eq!(signer.decode("sale", &sooner), None, "nor its time in line stretched");
    }

    #[test]
    fn a_cookie_of_a_later_version_is_read_for_what_this_one_knows() {
        let signer = QueueCookieSigner::new(&[[7; 32]]);
        let visitor = new_visitor_id();
        let sign = |body: &str| format!("{body}.{}", QueueCookieSigner::mac(&signer.keys[0], "sale", body));
        let later =
            signer.decode("sale", &sign(&format!("v4.{visitor}.5.1234.17.40.1800000000000..1799999000000.x.y")));
        let later = later.expect("v4 decodes");
        assert_eq!((later.seq, later.seen, later.joined), (1234, 1_800_000_000_000, 1_799_999_000_000));
        let padded = sign(&format!("v3.{visitor}.5.1234.17.40.1800000000000..1799999000000.x"));
        assert_eq!(signer.decode("sale", &padded), None, "a v3 cookie has nothing after `joined`");
        assert_eq!(signer.decode("sale", &sign(&format!("v0.{visitor}.5.1234.17.40"))), None);
        assert_eq!(signer.decode("sale", &sign(&format!("v3.{visitor}.5.1234.17.40.1800000000000.."))), None);
    }

    #[test]
    fn a_cookie_from_before_joined_still_holds_and_restores_its_place() {
        let signer = QueueCookieSigner::new(&[[7; 32]]);
        let visitor = new_visitor_id();
        let body = format!("v2.{visitor}.5.1234.17.40.1800000000000.{}", URL_SAFE_NO_PAD.encode("/x"));
        let mac = QueueCookieSigner::mac(&signer.keys[0], "sale", &body);
        let ticket = signer.decode("sale", &format!("{body}.{mac}")).expect("v2 decodes");
        assert_eq!((ticket.seq, ticket.seen, ticket.joined), (1234, 1_800_000_000_000, 0));
        assert_eq!(ticket.return_to.as_deref(), Some("/x"));
    }

    #[test]
    fn a_cookie_from_before_seen_and_return_to_still_holds_its_place() {
        let signer = QueueCookieSigner::new(&[[7; 32]]);
        let visitor = new_visitor_id();
        let body = format!("v1.{visitor}.5.1234.17.40");
        let mac = QueueCookieSigner::mac(&signer.keys[0], "sale", &body);
        let ticket = signer.decode("sale", &format!("{body}.{mac}")).expect("v1 decodes");
        assert_eq!((ticket.seq, ticket.seen, ticket.return_to), (1234, 0, None));
    }
}
