//! The console's login: the admin token, exchanged once for a session cookie
//! (`anteroom_console`: HttpOnly, SameSite=Strict, path `/admin`), so the token is never
//! kept in the browser where a script could read it.
//!
//! The cookie is `v1.{expires}.{mac}`, the MAC keyed by a key derived from the admin
//! token: nothing to store, valid on every instance with the same token, and void at once
//! when the token changes (reloaded).

use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub(crate) const COOKIE: &str = "anteroom_console";
/// A console login lasts a working day.
pub(crate) const LIFETIME_SECS: u64 = 12 * 3600;

pub(crate) struct Sessions {
    key: hmac::Key,
}

impl Sessions {
    pub(crate) fn new(admin_token: &str) -> Self {
        let derived = digest::digest(&digest::SHA256, format!("anteroom console session v1|{admin_token}").as_bytes());
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()) }
    }

    /// A new session's cookie value, valid until `now + LIFETIME_SECS`.
    pub(crate) fn issue(&self, now: u64) -> String {
        let expires = now + LIFETIME_SECS;
        let mac = hmac::sign(&self.key, format!("console|{expires}").as_bytes());
        format!("v1.{expires}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))
    }

    /// Whether `value` is a session this token issued that has not expired.
    pub(crate) fn valid(&self, value: &str, now: u64) -> bool {
        let mut parts = value.splitn(3, '.');
        let (Some("v1"), Some(expires), Some(mac)) = (parts.next(), parts.next(), parts.next()) else { return false };
        let (Ok(expires_at), Ok(mac)) = (expires.parse::<u64>(), URL_SAFE_NO_PAD.decode(mac)) else { return false };
        now < expires_at && hmac::verify(&self.key, format!("console|{expires}").as_bytes(), &mac).is_ok()
    }
}

/// The console cookie's value in a request's `Cookie` headers.
pub(crate) fn from_request(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(name, value)| (name == COOKIE).then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_holds_until_it_expires_and_only_for_its_token() {
        let sessions = Sessions::new("the-admin-token-1234");
        let cookie = sessions.issue(1_000);
        assert!(sessions.valid(&cookie, 1_000));
        assert!(sessions.valid(&cookie, 1_000 + LIFETIME_SECS - 1));
        assert!(!sessions.valid(&cookie, 1_000 + LIFETIME_SECS), "expired");
        assert!(!Sessions::new("another-admin-token-99").valid(&cookie, 1_000), "a new token voids it");
        let later = cookie.replacen(&format!("{}", 1_000 + LIFETIME_SECS), "99999999999", 1);
        assert!(!sessions.valid(&later, 1_000), "the expiry is signed");
        for forged in ["", "v1", "v1.5.", "v2.99999999999.AAAA", "v1.x.y", "v1.99999999999.!!!"] {
            assert!(!sessions.valid(forged, 1_000), "{forged:?}");
        }
    }
}
