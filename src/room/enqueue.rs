//! A room with `enqueue = "token"`: a place only with an enqueue token the shop signed for
//! an account. The account, not the browser, is the visitor: its id is derived from the
//! room and the token's `sub` (HMAC with a secret of the gateway's), so a second browser
//! of the same account finds the same place instead of taking another.

use super::cookies::QueueTicket;
use super::{Room, WaitingRoom};
use crate::metrics::PlaceRefusal;
use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The header an app may send the token in (the page's URL and the join call use
/// `enqueue_token=`).
pub(super) const HEADER: &str = "x-anteroom-enqueue";
pub(super) const PARAM: &str = "enqueue_token";

/// The token an app sent in the header.
pub(super) fn offered(headers: &http::HeaderMap) -> Option<&str> {
    headers.get(HEADER).and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty())
}

/// What a request's enqueue token makes of its visitor.
pub(super) type Enqueued = Result<QueueTicket, PlaceRefusal>;

/// Derives the visitor ids of accounts: the first cookie secret, under a label of its own.
#[derive(Debug)]
pub(super) struct Accounts {
    key: hmac::Key,
}

impl Accounts {
    pub(super) fn new(secrets: &[[u8; 32]]) -> Self {
        let secret = secrets.first().copied().unwrap_or_default();
        let derive = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&derive, b"anteroom enqueue account").as_ref()) }
    }

    /// The visitor id of `sub` in `room`: 128 bits, URL-safe, like a random one.
    fn visitor(&self, room: &str, sub: &str) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(room.as_bytes());
        context.update(b"|");
        context.update(sub.as_bytes());
        URL_SAFE_NO_PAD.encode(&context.sign().as_ref()[..16])
    }
}

impl WaitingRoom {
    /// In a room that takes enqueue tokens: the visitor the offered token speaks for (the
    /// queue cookie's own ticket if it is that account's already), or why there is none.
    /// `None`: the room takes anyone.
    pub(super) fn enqueued(
        &self,
        room: &Room,
        offered: Option<&str>,
        ticket: Option<&QueueTicket>,
    ) -> Option<Enqueued> {
        let verifier = room.enqueue.as_ref()?;
        let Some(token) = offered else { return Some(Err(PlaceRefusal::EnqueueTokenMissing)) };
        let sub = match verifier.verify(token, &room.name) {
            Ok(sub) => sub,
            Err(rejection) => {
                tracing::debug!(target: "anteroom::abuse", room = %room.name, ?rejection, "enqueue token refused");
                return Some(Err(PlaceRefusal::EnqueueTokenInvalid));
            }
        };
        let visitor = self.accounts.visitor(&room.name, &sub);
        Some(Ok(match ticket {
            Some(ticket) if ticket.visitor == visitor => ticket.clone(),
            _ => QueueTicket { visitor, ..QueueTicket::default() },
        }))
    }
}

/// `path_and_query` without the enqueue token: the page to return to must not carry it
/// (into the shop, its logs, or the queue cookie).
pub(super) fn without_token(path_and_query: &str) -> std::borrow::Cow<'_, str> {
    let Some((path, query)) = path_and_query.split_once('?') else { return path_and_query.into() };
    if !query.split('&').any(|pair| pair.split('=').next() == Some(PARAM)) {
        return path_and_query.into();
    }
    let kept: Vec<&str> = query.split('&').filter(|pair| pair.split('=').next() != Some(PARAM)).collect();
    if kept.is_empty() {
        path.to_owned().into()
    } else {
        format!("{path}?{}", kept.join("&")).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_one_visitor_per_room() {
        let accounts = Accounts::new(&[[7; 32]]);
        let fan = accounts.visitor("presale", "fan-42");
        assert_eq!(fan.len(), 22);
        assert_eq!(fan, accounts.visitor("presale", "fan-42"), "a second browser: the same visitor");
        assert_ne!(fan, accounts.visitor("presale", "fan-43"));
        assert_ne!(fan, accounts.visitor("sale", "fan-42"));
        assert_ne!(fan, Accounts::new(&[[8; 32]]).visitor("presale", "fan-42"), "unguessable without the secret");
    }

    #[test]
    fn the_page_to_return_to_loses_the_token() {
        assert_eq!(without_token("/tickets/1?enqueue_token=abc"), "/tickets/1");
        assert_eq!(without_token("/tickets/1?seat=A&enqueue_token=abc&x=1"), "/tickets/1?seat=A&x=1");
        assert_eq!(without_token("/tickets/1?seat=A"), "/tickets/1?seat=A");
        assert_eq!(without_token("/tickets/1"), "/tickets/1");
    }
}
