//! A request the room lets through carries a ticket: it prepares the upstream request
//! (anteroom's own cookies and headers out, the session in) and finishes the origin's
//! answer (the origin's commands obeyed, the room's cookies set).

use super::cookies::{self, Jar};
use super::WaitingRoom;
use crate::adaptive::{InFlight, OriginSignals, Outcome};
use crate::response::Body;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Response;

/// Every header anteroom itself speaks starts with this; clients may not send them on.
const ANTEROOM_PREFIX: &str = "x-anteroom-";

/// The origin's instructions to anteroom (`revoke`), never passed to the client. A
/// `HeaderName` made once: every forwarded response is looked up for it.
const X_ANTEROOM_COMMAND: HeaderName = HeaderName::from_static("x-anteroom-command");

/// An admitted visitor's session, as the origin and the revoke command see it.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub room: usize,
    pub id: String,
    /// When its token expires (unix s): a revocation is kept until then.
    pub expires_at: u64,
}

/// What the room adds to one forwarded exchange.
#[derive(Debug)]
pub struct Ticket<'a> {
    waiting: &'a WaitingRoom,
    /// The admitted visitor's session; `None` outside rooms, for bypassed requests, and
    /// for visitors let through while the store is away (`on_failure = "open"`).
    session: Option<Session>,
    jar: Jar,
    admitted_now: bool,
    /// Where the room's origin traffic is counted for closed-loop admission; `None`
    /// outside rooms and for bypassed requests (static files would flatter the shop).
    signals: Option<&'a OriginSignals>,
}

impl<'a> Ticket<'a> {
    pub(super) fn new(
        waiting: &'a WaitingRoom,
        session: Option<Session>,
        jar: Jar,
        admitted_now: bool,
        signals: Option<&'a OriginSignals>,
    ) -> Self {
        Self { waiting, session, jar, admitted_now, signals }
    }

    /// The room's request waited for an origin slot.
    pub(crate) fn note_delayed(&self) {
        if let Some(signals) = self.signals {
            signals.delayed();
        }
    }

    /// The room's request was refused by origin protection.
    pub(crate) fn note_shed(&self) {
        if let Some(signals) = self.signals {
            signals.shed();
        }
    }

    /// The room's request is going to the origin: counted in flight until dropped.
    pub(crate) fn in_flight(&self) -> Option<InFlight<'a>> {
        self.signals.map(OriginSignals::sending)
    }

    /// What the origin made of the room's request.
    pub(crate) fn note_origin(&self, outcome: Outcome) {
        if let Some(signals) = self.signals {
            signals.forwarded(outcome);
        }
    }

    /// Admitted by this very request (its token was issued now).
    pub fn admitted_now(&self) -> bool {
        self.admitted_now
    }

    /// Readies the upstream request's headers, after the client's hop-by-hop headers are
    /// gone: anteroom's cookies and any `X-Anteroom-*` a client sent are removed (only
    /// anteroom may tell the origin who was admitted), then the session is named.
    pub fn prepare(&self, headers: &mut HeaderMap) {
        strip_anteroom_headers(headers);
        cookies::strip(headers);
        if let Some(session) = &self.session {
            let room = self.waiting.rooms.get(session.room).map_or("", |room| room.name.as_str());
            if let (Ok(room), Ok(id)) = (HeaderValue::from_str(room), HeaderValue::from_str(&session.id)) {
                headers.insert("x-anteroom-room", room);
                headers.insert("x-anteroom-session", id);
            }
        }
    }

    /// Finishes the origin's answer: `X-Anteroom-Command` is obeyed and removed, and the
    /// room's cookies (a new or renewed token) are set.
    pub async fn finish(mut self, response: &mut Response<Body>) {
        // Looked up before it is removed: the lookup is cheaper, and almost no answer has it.
        if response.headers().contains_key(&X_ANTEROOM_COMMAND) {
            if let Some(command) = response.headers_mut().remove(&X_ANTEROOM_COMMAND) {
                // Boxed: a revoke talks to the store, whose call state is large and would
                // otherwise be part of every request's future.
                Box::pin(self.obey(&command)).await;
            }
        }
        if !self.jar.is_empty() {
            self.jar.apply(response.headers_mut());
        }
    }

    /// `revoke` ends the session everywhere; other words are ignored.
    async fn obey(&mut self, command: &HeaderValue) {
        let revoke = command.to_str().is_ok_and(|c| c.split(',').any(|c| c.trim().eq_ignore_ascii_case("revoke")));
        let Some(session) = self.session.as_ref().filter(|_| revoke) else { return };
        // A renewed token in the same response would undo the revoke.
        self.jar.forget();
        self.waiting.revoke(session, &mut self.jar).await;
    }
}

/// Removes every `X-Anteroom-*` header: only anteroom itself may set them.
fn strip_anteroom_headers(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| name.as_str().starts_with(ANTEROOM_PREFIX)) {
        return;
    }
    let ours: Vec<HeaderName> =
        headers.keys().filter(|name| name.as_str().starts_with(ANTEROOM_PREFIX)).cloned().collect();
    for name in ours {
        headers.remove(name);
    }
}

impl WaitingRoom {
    /// The origin answered `X-Anteroom-Command: revoke`: end the session everywhere, and
    /// clear the visitor's token cookie.
    async fn revoke(&self, session: &Session, jar: &mut Jar) {
        let Some(room) = self.rooms.get(session.room) else { return };
        self.cache.revoke(&session.id, session.expires_at + self.tokens.leeway_secs());
        if let Err(e) = self.store.end_session(&room.name, &session.id).await {
            self.store_failed(&e);
        }
        tracing::info!(target: "anteroom::admission", room = %room.name, session = %session.id, "session revoked by the origin");
        jar.clear(&room.token_cookie);
    }
}
