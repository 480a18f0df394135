//! The one decision table for a visitor, shared by the room's pages, the API and the
//! gateway: a valid token → inside (renewed at half its life); else a store visit →
//! admitted now, or the status object (waiting, paused, scheduled, closed); the store away
//! → the room's `on_failure` answer.

use super::cache::Verified;
use super::cookies::{self, Jar, QueueTicket};
use super::proof::{Refused, Solution};
use super::status::{self, StatusBody, VisitorState};
use super::ticket::Session;
use super::{caps, jitter, queue_id, random_u64, Room, WaitingRoom};
use crate::config::OnFailure;
use crate::metrics::PlaceRefusal;
use crate::store::{seen_refresh_ms, Joining, QueueState, Renewal, Restore, Standing, StoreError, Visit};
use crate::token::Claims;
use crate::token::Rejection as TokenRejection;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// What a request means to do, which decides whether it may take a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Intent {
    /// A page of the room: a visitor with a queue cookie takes (or keeps) a place, and the
    /// page asked for is remembered to return to.
    Enter,
    /// `POST /_anteroom/join`: as `Enter`, without remembering a page.
    Join,
    /// `GET /_anteroom/status`: as `Join`, but without a queue cookie it only looks.
    Look,
}

/// The visitor as their request shows them.
pub(super) struct Caller<'h> {
    pub queue_cookie: QueueCookie<'h>,
    /// The admission token cookie, not yet verified.
    pub token: Option<&'h str>,
    /// The prefix of the challenge being solved (challenge cookie), not yet checked.
    pub challenge: Option<&'h str>,
    /// A proof of work sent with the join call.
    pub solution: Option<Solution>,
    /// The client's address (after trusted proxies), for per-client caps.
    pub client: IpAddr,
    /// An enqueue token offered (rooms with `enqueue = "token"`), not yet verified.
    pub enqueue: Option<String>,
}

impl<'h> Caller<'h> {
    /// A caller as the cookies of `headers` show them, with no solution.
    pub(super) fn from_cookies(
        room: &Room,
        headers: &'h http::HeaderMap,
        queue_cookie: QueueCookie<'h>,
        client: IpAddr,
    ) -> Self {
        Self {
            queue_cookie,
            token: cookies::find(headers, &room.token_cookie),
            challenge: if room.asks_proof() { cookies::find(headers, &room.challenge_cookie) } else { None },
            solution: None,
            client,
            enqueue: None,
        }
    }
}

/// The signed queue cookie: as sent (checked only if the token does not let the visitor
/// in, so token holders pay no HMAC), or already checked by the caller.
pub(super) enum QueueCookie<'h> {
    Unchecked(Option<&'h str>),
    Checked(Option<QueueTicket>),
}

/// Where the visitor stands after this request.
#[derive(Debug)]
pub(super) enum Verdict {
    /// Holds a valid token, or was admitted by this request (then with the store's
    /// standing).
    Inside { session: Session, standing: Option<Standing> },
    /// Not in: the status object, and the first position of the place (for the page's
    /// progress bar).
    Outside { status: StatusBody, first: Option<u64> },
    /// The store is away and the room fails open: on to the origin without a session.
    Unguarded,
}

/// A visit's outcome: the cookie to keep, where the store put the visitor, whether a
/// place the cookie named was lost, and whether this visit took a new place (or an
/// admission at once).
pub(super) struct Visited {
    pub ticket: QueueTicket,
    pub standing: Standing,
    pub place_lost: bool,
    pub fresh: bool,
}

impl WaitingRoom {
    /// Decides for one visitor. `return_to`: where to send them when admitted, asked only
    /// when they are not inside already (the token holders' path stays short).
    pub(super) async fn verdict(
        &self,
        room: &Room,
        caller: Caller<'_>,
        intent: Intent,
        return_to: impl FnOnce(Option<&QueueTicket>) -> String,
        jar: &mut Jar,
    ) -> Verdict {
        if let Some(token) = caller.token {
            match self.session_from_token(room, token, jar).await {
                Some(session) => return Verdict::Inside { session, standing: None },
                None => jar.clear(&room.token_cookie),
            }
        }
        let mut ticket = match caller.queue_cookie {
            QueueCookie::Unchecked(value) => value.and_then(|value| self.signer.decode(&room.name, value)),
            QueueCookie::Checked(ticket) => ticket,
        };
        // A valid enqueue token names the visitor: the account's one place, whatever the
        // browser. The cookie is written now (a second browser adopts the account's id).
        let enqueued = self.enqueued(room, caller.enqueue.as_deref(), ticket.as_ref());
        let unenqueued = match enqueued {
            Some(Ok(account)) => {
                if ticket.as_ref().is_none_or(|t| t.visitor != account.visitor) {
                    jar.set(&room.queue_cookie, &self.signer.encode(&room.name, &account));
                }
                ticket = Some(account);
                None
            }
            Some(Err(refusal)) => Some(refusal),
            None => None,
        };
        let return_to = return_to(ticket.as_ref());
        let gated = room.asks_proof();
        if ticket.is_none() && (intent == Intent::Look || gated || unenqueued.is_some()) {
            // A look without a queue cookie writes nothing: it hands out the cookie, and
            // the place is taken by the next call that brings it back. In a room with a
            // challenge or enqueue tokens nobody without a cookie holds a place, so neither
            // does anyone look.
            let ticket = QueueTicket::new_visitor();
            jar.set(&room.queue_cookie, &self.signer.encode(&room.name, &ticket));
            let state = self.look_state(room);
            if let Some(refusal) = unenqueued.filter(|_| state != VisitorState::Closed) {
                let status = self.refused_status(room, &ticket.visitor, refusal, caller.client, return_to);
                return Verdict::Outside { status, first: None };
            }
            if gated && state != VisitorState::Closed {
                let status = self.challenge_status(room, &ticket.visitor, caller.challenge, None, return_to, jar);
                return Verdict::Outside { status, first: None };
            }
            let mut status = self.status_body(room, None, Some(state), return_to);
            status.queue_id = queue_id::of(&ticket.visitor);
            return Verdict::Outside { status, first: None };
        }
        // In a room with a challenge, only a proof buys a place; a refused one is answered
        // without a store call.
        let checked = match (&ticket, &caller.solution) {
            (Some(ticket), Some(solution)) if gated => {
                Some(self.check_solution(room, &ticket.visitor, solution, caller.challenge))
            }
            _ => None,
        };
        let joining = match (&checked, gated) {
            // Without a valid enqueue token, only the place the visitor holds.
            _ if unenqueued.is_some() => Joining::Keep,
            (Some(Ok(proof)), _) => Joining::Proof { id: &proof.id, until_ms: proof.expires_ms },
            (_, true) => Joining::Keep,
            (None | Some(Err(_)), false) if ticket.is_some() => Joining::Place,
            _ => Joining::AtOnce,
        };
        let mut refused = checked.as_ref().and_then(|c| c.as_ref().err().copied());
        let asked_for = (intent == Intent::Enter).then_some(return_to.as_str());
        let client = (room.policy.max_places_per_client > 0).then(|| caps::client_key(caller.client));
        match self.visit(room, ticket, asked_for, joining, client.as_deref(), jar).await {
            Ok(Visited { ticket, standing, fresh, .. }) if standing.state == QueueState::Admitted => {
                if fresh && matches!(joining, Joining::Proof { .. }) {
                    self.solution_spent(room, jar);
                }
                let session = self.admit(room, &ticket.visitor, standing.claimed_ms, jar);
                Verdict::Inside { session, standing: Some(standing) }
            }
            Ok(Visited { ticket, standing, .. }) if standing.capped => {
                let refusal = PlaceRefusal::TooManyPlaces;
                let status = self.refused_status(room, &ticket.visitor, refusal, caller.client, return_to);
                Verdict::Outside { status, first: None }
            }
            Ok(Visited { ticket, standing, .. }) if unenqueued.is_some() && holds_no_place(&standing) => {
                let refusal = unenqueued.unwrap_or(PlaceRefusal::EnqueueTokenMissing);
                let status = self.refused_status(room, &ticket.visitor, refusal, caller.client, return_to);
                Verdict::Outside { status, first: None }
            }
            Ok(Visited { ticket, standing, .. }) if gated && holds_no_place(&standing) => {
                if standing.replayed {
                    self.solution_refused(room, Refused::Replayed);
                    refused = Some(Refused::Replayed);
                }
                let status = self.challenge_status(room, &ticket.visitor, caller.challenge, refused, return_to, jar);
                Verdict::Outside { status, first: None }
            }
            Ok(Visited { ticket, standing, place_lost, fresh }) => {
                if fresh && matches!(joining, Joining::Proof { .. }) {
                    self.solution_spent(room, jar);
                }
                let mut status = self.status_body(room, Some(&standing), None, return_to);
                status.queue_id = queue_id::of(&ticket.visitor);
                status.place_lost = place_lost;
                Verdict::Outside { status, first: (ticket.first > 0).then_some(ticket.first) }
            }
            Err(_) if self.on_failure == OnFailure::Open => Verdict::Unguarded,
            Err(_) => Verdict::Outside {
                status: self.status_body(room, None, Some(VisitorState::Paused), return_to),
                first: None,
            },
        }
    }

    /// The state shown to a visitor who only looks, from what this instance last read.
    fn look_state(&self, room: &Room) -> VisitorState {
        if room.is_closed() {
            VisitorState::Closed
        } else if room.admission_rate().is_none() {
            VisitorState::Paused
        } else if !room.is_recounting() && room.metrics().queue_length.load(Relaxed) == 0 {
            VisitorState::Open
        } else {
            VisitorState::Waiting
        }
    }

    /// A valid token's session, renewed when past half its life. `None`: treat as no token.
    ///
    /// A token is refused when its session was revoked: this instance learns revocations
    /// from the store at every tick, and asks the store about a token it has not seen
    /// before (issued by another instance, or before a restart). The same call counts the
    /// session again if the store lost it, so capacity is not over-admitted after a wipe.
    async fn session_from_token(&self, room: &Room, token: &str, jar: &mut Jar) -> Option<Session> {
        let now = self.now_secs();
        let verified = self.verified(room, token, now)?;
        let claims = &verified.claims;
        if self.cache.is_revoked(&claims.sid, now) {
            room.metrics().token_rejected(TokenRejection::Revoked);
            return None;
        }
        let mut session = Session { room: room.index, id: claims.sid.clone(), expires_at: claims.exp };
        let ttl = room.token_ttl_secs();
        let renew = now >= claims.iat + ttl / 2;
        let epoch = room.epoch();
        if !renew && verified.counted_in(epoch) {
            return Some(session);
        }
        if !self.metrics.is_store_up() {
            // The store is away: the token is still good; it is renewed and counted when
            // the store is back, and no buyer waits on a dead store meanwhile.
            return Some(session);
        }
        let expires_at = if renew { now + ttl } else { claims.exp };
        let renewal = Renewal {
            session: &claims.sid,
            ttl_ms: expires_at.saturating_sub(now) * 1000,
            age_ms: now.saturating_sub(claims.iat) * 1000,
        };
        match self.store.renew(&room.name, &renewal, &room.policy()).await {
            Ok(true) if renew => {
                let (renewed, renewed_claims) =
                    self.tokens.issue_with_claims(&claims.sub, &room.name, &claims.sid, now, ttl);
                jar.set(&room.token_cookie, &renewed);
                self.remember_issued(&renewed, renewed_claims, epoch);
                session.expires_at = expires_at;
            }
            Ok(true) => verified.mark_counted(epoch),
            Ok(false) => {
                self.cache.revoke(&claims.sid, claims.exp + self.tokens.leeway_secs());
                room.metrics().token_rejected(TokenRejection::Revoked);
                return None;
            }
            // The store is away: the token is still good, renew another time.
            Err(e) => self.store_failed(&e),
        }
        Some(session)
    }

    /// A token this instance has just issued: valid by construction (no need to verify
    /// it), and its session is counted in the store.
    fn remember_issued(&self, token: &str, claims: Claims, epoch: u64) {
        let until = claims.exp + self.tokens.leeway_secs();
        self.cache.put(token, claims, until).mark_counted(epoch);
    }

    /// A token valid for `room`, from the cache or verified now.
    fn verified(&self, room: &Room, token: &str, now: u64) -> Option<Arc<Verified>> {
        let verified = match self.cache.get(token, now) {
            Some(verified) => verified,
            None => match self.tokens.verify(token, &room.name) {
                Ok(claims) => {
                    let until = claims.exp + self.tokens.leeway_secs();
                    self.cache.put(token, claims, until)
                }
                Err(rejection) => {
                    room.metrics().token_rejected(rejection);
                    return None;
                }
            },
        };
        if verified.claims.room != room.name {
            room.metrics().token_rejected(TokenRejection::OtherRoom);
            return None;
        }
        Some(verified)
    }

    /// One store visit: with a queue cookie the visitor takes (or keeps) a place; without
    /// one they get a cookie and, unless the room lets them in at once, no place yet.
    ///
    /// `asked_for`: the page the visitor asked for, remembered in the cookie (the first one
    /// only) to send them back to when their turn comes.
    pub(super) async fn visit(
        &self,
        room: &Room,
        ticket: Option<QueueTicket>,
        asked_for: Option<&str>,
        joining: Joining<'_>,
        client: Option<&str>,
        jar: &mut Jar,
    ) -> Result<Visited, StoreError> {
        let had_cookie = ticket.is_some();
        let mut ticket = ticket.unwrap_or_else(QueueTicket::new_visitor);
        let remembered_page = asked_for.is_some_and(|page| ticket.asked_for(page));
        let restore =
            (ticket.seq > 0).then_some(Restore { epoch: ticket.epoch, seq: ticket.seq, seen_ms: ticket.seen });
        let visit = Visit { visitor: &ticket.visitor, restore, prequeue_score: random_u64() >> 24, joining, client };
        let mut standing = match self.store.visit(&room.name, &visit, &room.policy()).await {
            Ok(standing) => standing,
            Err(e) => {
                self.store_failed(&e);
                if !had_cookie || remembered_page {
                    jar.set(&room.queue_cookie, &self.signer.encode(&room.name, &ticket));
                }
                return Err(e);
            }
        };
        room.note_epoch(standing.epoch);
        let same_place = standing.seq > 0 && standing.seq == ticket.seq;
        let placed = standing.seq > 0 && (standing.seq, standing.epoch) != (ticket.seq, ticket.epoch);
        // The cookie named a place and the store gave another: the old one is gone (the
        // visitor was away too long, or the store lost it and the place was not fresh).
        let place_lost = placed && ticket.seq > 0;
        if standing.rejoined {
            room.metrics().rejoins.fetch_add(1, Relaxed);
        }
        // Positions shown never go up for one place. (They can only rise when visitors
        // ahead are restored after a store wipe; the shown one then waits for reality.)
        let mut shown_changed = false;
        if let Some(position) = standing.position {
            let shown = if same_place && ticket.shown > 0 { position.min(ticket.shown) } else { position };
            standing.position = Some(shown);
            shown_changed = shown != ticket.shown;
            ticket.shown = shown;
            // A new place starts the progress bar anew; a pending admission (no sequence)
            // keeps the place's start.
            if (standing.seq > 0 && !same_place) || ticket.first == 0 {
                ticket.first = shown;
            }
        }
        if standing.joined {
            room.metrics().joins.fetch_add(1, Relaxed);
        }
        if placed {
            // The same place brought back (after a data loss) keeps its join time.
            if standing.seq != ticket.seq || ticket.joined == 0 {
                ticket.joined = standing.now_ms;
            }
            ticket.seq = standing.seq;
            ticket.epoch = standing.epoch;
        }
        // The cookie says when the store last confirmed the place (refreshed every few
        // seconds): after a data loss only a place held until shortly before comes back.
        let confirmed = standing.seq > 0 && standing.seq == ticket.seq;
        let refresh = seen_refresh_ms(room.policy.abandon_ms);
        let seen_changed = confirmed && (placed || standing.now_ms >= ticket.seen + refresh);
        if seen_changed {
            ticket.seen = standing.now_ms;
        }
        // Admitted: the place is used up, and the cookie must not bring it back.
        let used_up = standing.state == QueueState::Admitted && ticket.seq > 0;
        let waited = match (used_up, standing.immediate) {
            (true, _) => status::waited(ticket.seq, ticket.joined, standing.now_ms, room.policy.opens_at_ms),
            (false, true) => Some(std::time::Duration::ZERO),
            (false, false) => None,
        };
        if let Some(waited) = waited {
            room.metrics().wait.observe(waited);
        }
        if used_up {
            ticket = ticket.without_place();
        }
        if standing.immediate {
            room.metrics().admitted.fetch_add(1, Relaxed);
        }
        if placed || !had_cookie || shown_changed || seen_changed || used_up || remembered_page {
            jar.set(&room.queue_cookie, &self.signer.encode(&room.name, &ticket));
        }
        let fresh = standing.joined || standing.immediate;
        Ok(Visited { ticket, standing, place_lost, fresh })
    }

    /// The visitor's turn: a token for their session (the store has opened it).
    /// `claimed_ms`: when the store says the admission was claimed.
    pub(super) fn admit(&self, room: &Room, visitor: &str, claimed_ms: u64, jar: &mut Jar) -> Session {
        let now = self.now_secs();
        let ttl = room.token_ttl_secs();
        // One session id per admission (revoking it never refuses a later one), the same
        // for the one more claim the store allows (a lost answer): the shop sees one
        // session, and a revoke ends both tokens.
        let session = format!("{visitor}.{claimed_ms:x}");
        let (token, claims) = self.tokens.issue_with_claims(visitor, &room.name, &session, now, ttl);
        jar.set(&room.token_cookie, &token);
        self.remember_issued(&token, claims, room.epoch());
        tracing::info!(target: "anteroom::admission", room = %room.name, visitor, "admitted: token issued");
        Session { room: room.index, id: session, expires_at: now + ttl }
    }

    pub(super) fn store_failed(&self, error: &StoreError) {
        self.metrics.store_error();
        if self.metrics.set_store_up(false) {
            tracing::warn!(
                room = %error.room,
                op = %error.op,
                fault = %error.fault,
                blame = %error.blame(),
                "store unreachable: new visitors get the on_failure answer; token holders go on"
            );
        }
    }

    /// The status object for a standing (or, without one, a bare `state`).
    pub(super) fn status_body(
        &self,
        room: &Room,
        standing: Option<&Standing>,
        state: Option<VisitorState>,
        return_to: String,
    ) -> StatusBody {
        let state = state.or(standing.map(|s| VisitorState::from(s.state))).unwrap_or(VisitorState::Waiting);
        let position = standing.and_then(|s| s.position);
        let queue_length = standing.map_or_else(|| room.metrics().queue_length.load(Relaxed), |s| s.queue_length);
        let eta =
            if state == VisitorState::Waiting { status::eta_seconds(position, room.admission_rate()) } else { None };
        // A claimed admission changes only when its session ends, a refused place when the
        // client's other places move: no reason to ask often.
        let rare = matches!(state, VisitorState::Claimed | VisitorState::Refused);
        let position_for_poll = if rare { Some(u64::from(u32::MAX)) } else { position };
        StatusBody {
            room: room.name.clone(),
            state,
            position,
            queue_length,
            eta_seconds: eta,
            poll_after_ms: status::poll_after_ms(position_for_poll, eta, room.policy.abandon_ms, jitter()),
            opens_at: room.config.opens_at.as_ref().map(|at| at.as_str().to_owned()),
            return_to,
            queue_id: None,
            place_lost: false,
            message: room.message(),
            challenge: None,
            challenge_refused: None,
            refused_reason: None,
        }
    }
}

/// The visitor holds no place (nor an admission, nor a session): in a room with a
/// challenge, what they need is a proof.
fn holds_no_place(standing: &Standing) -> bool {
    standing.seq == 0 && matches!(standing.state, QueueState::Waiting | QueueState::Paused | QueueState::Scheduled)
}
