//! A request to a protected path: with a valid token it goes on to the origin (renewing
//! the token at half its life); without one, the visitor visits the store and is either
//! admitted now or gets the queue page (HTML) or the status object (JSON).

use super::cache::Verified;
use super::cookies::{self, QueueTicket};
use super::page::PageInput;
use super::status::{self, StatusBody};
use super::{jitter, random_u64, unix_secs, Room, WaitingRoom};
use crate::config::OnFailure;
use crate::response::{full, Body};
use crate::store::{seen_refresh_ms, QueueState, Renewal, Restore, Standing, Visit};
use crate::token::Claims;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, Uri};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// An admitted visitor's session, as the origin and the revoke command see it.
#[derive(Clone, Debug)]
pub struct Session {
    pub room: usize,
    pub id: String,
    /// The token that carried it (to refuse it after a revoke).
    pub token: String,
    pub expires_at: u64,
}

pub enum Gate {
    /// On to the origin; `set_cookies` go onto its response (a new or renewed token).
    Forward { session: Option<Session>, set_cookies: Vec<HeaderValue>, admitted_now: bool },
    /// Answered here: the queue page or status object.
    Queued(Response<Body>),
}

/// How to answer a queued request: JSON or the page, and in which language.
pub(super) struct Answer<'a> {
    json: bool,
    lang_query: Option<String>,
    accept_language: Option<&'a str>,
    first_position: Option<u64>,
}

impl<'a> Answer<'a> {
    fn new(uri: &Uri, headers: &'a HeaderMap, first_position: Option<u64>) -> Self {
        Self {
            json: wants_json(headers),
            lang_query: status::query_param(uri.query(), "lang"),
            accept_language: headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
            first_position,
        }
    }
}

/// How the caller wants the status: the page, or JSON (apps, the page's own polling).
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"))
}

impl WaitingRoom {
    pub async fn gate(&self, room: &Room, uri: &Uri, headers: &HeaderMap, tls: bool) -> Gate {
        let secure = self.secure(tls);
        let mut set_cookies = Vec::new();
        if uri.query().is_some_and(|q| q.contains(cookies::PREFIX)) {
            // Tokens are only ever read from cookies; one offered in a URL is noted, not used.
            self.room_metrics(room).token_rejected("in_url");
        }
        if let Some(token) = cookies::find(headers, &room.token_cookie) {
            match self.session_from_token(room, token, secure, &mut set_cookies).await {
                Some(session) => return Gate::Forward { session: Some(session), set_cookies, admitted_now: false },
                None => set_cookies.push(cookies::clear(&room.token_cookie, secure)),
            }
        }

        let return_to = status::sanitize_return_to(uri.path_and_query().map(|pq| pq.as_str()));
        let ticket = cookies::find(headers, &room.queue_cookie).and_then(|v| self.signer.decode(&room.name, v));
        match self.visit(room, ticket, true, Some(&return_to), secure, &mut set_cookies).await {
            Ok((ticket, standing)) if standing.state == QueueState::Admitted => {
                let session = self.admit(room, &ticket.visitor, secure, &mut set_cookies);
                Gate::Forward { session: Some(session), set_cookies, admitted_now: true }
            }
            Ok((ticket, standing)) => {
                let body = self.status_body(room, Some(&standing), None, return_to);
                let first = (ticket.first > 0).then_some(ticket.first);
                Gate::Queued(self.queued(room, body, Answer::new(uri, headers, first), set_cookies))
            }
            Err(()) if self.on_failure == OnFailure::Open => {
                Gate::Forward { session: None, set_cookies, admitted_now: false }
            }
            Err(()) => {
                let body = self.status_body(room, None, Some("paused"), return_to);
                Gate::Queued(self.queued(room, body, Answer::new(uri, headers, None), set_cookies))
            }
        }
    }

    /// A valid token's session, renewed when past half its life. `None`: treat as no token.
    ///
    /// A token is refused when its session was revoked: this instance learns revocations
    /// from the store at every tick, and asks the store about a token it has not seen
    /// before (issued by another instance, or before a restart). The same call counts the
    /// session again if the store lost it, so capacity is not over-admitted after a wipe.
    pub(super) async fn session_from_token(
        &self,
        room: &Room,
        token: &str,
        secure: bool,
        set_cookies: &mut Vec<HeaderValue>,
    ) -> Option<Session> {
        let now = unix_secs();
        let verified = self.verified(room, token, now)?;
        let claims = &verified.claims;
        if self.cache.is_revoked(&claims.sid, now) {
            self.room_metrics(room).token_rejected("revoked");
            return None;
        }
        let mut session =
            Session { room: room.index, id: claims.sid.clone(), token: token.to_owned(), expires_at: claims.exp };
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
        let renewal =
            Renewal { session: &claims.sid, expires_at_ms: expires_at * 1000, issued_at_ms: claims.iat * 1000 };
        match self.store.renew(&room.name, &renewal, &room.policy()).await {
            Ok(true) if renew => {
                let (renewed, renewed_claims) =
                    self.tokens.issue_with_claims(&claims.sub, &room.name, &claims.sid, now, ttl);
                set_cookies.push(cookies::set(&room.token_cookie, &renewed, secure));
                self.remember_issued(&renewed, renewed_claims, epoch);
                session.token = renewed;
                session.expires_at = expires_at;
            }
            Ok(true) => verified.mark_counted(epoch),
            Ok(false) => {
                self.cache.revoke(&claims.sid, claims.exp + self.tokens.leeway_secs());
                self.room_metrics(room).token_rejected("revoked");
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
                    self.room_metrics(room).token_rejected(rejection.reason());
                    return None;
                }
            },
        };
        if verified.claims.room != room.name {
            self.room_metrics(room).token_rejected("other_room");
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
        join: bool,
        asked_for: Option<&str>,
        secure: bool,
        set_cookies: &mut Vec<HeaderValue>,
    ) -> Result<(QueueTicket, Standing), ()> {
        let had_cookie = ticket.is_some();
        let mut ticket = ticket.unwrap_or_else(QueueTicket::new_visitor);
        let remembered_page = asked_for.is_some_and(|page| ticket.asked_for(page));
        let restore =
            (ticket.seq > 0).then_some(Restore { epoch: ticket.epoch, seq: ticket.seq, seen_ms: ticket.seen });
        let visit =
            Visit { visitor: &ticket.visitor, restore, prequeue_score: random_u64() >> 24, join: join && had_cookie };
        let mut standing = match self.store.visit(&room.name, &visit, &room.policy()).await {
            Ok(standing) => standing,
            Err(e) => {
                self.store_failed(&e);
                if !had_cookie || remembered_page {
                    set_cookies.push(cookies::set(
                        &room.queue_cookie,
                        &self.signer.encode(&room.name, &ticket),
                        secure,
                    ));
                }
                return Err(());
            }
        };
        room.note_epoch(standing.epoch);
        let same_place = standing.seq > 0 && standing.seq == ticket.seq;
        let placed = standing.seq > 0 && (standing.seq, standing.epoch) != (ticket.seq, ticket.epoch);
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
        if placed {
            self.room_metrics(room).joins.fetch_add(1, Relaxed);
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
        if used_up {
            ticket = ticket.without_place();
        }
        if standing.immediate {
            self.room_metrics(room).admitted.fetch_add(1, Relaxed);
        }
        if placed || !had_cookie || shown_changed || seen_changed || used_up || remembered_page {
            set_cookies.push(cookies::set(&room.queue_cookie, &self.signer.encode(&room.name, &ticket), secure));
        }
        Ok((ticket, standing))
    }

    /// The visitor's turn: a token for their session (the store has opened it).
    pub(super) fn admit(
        &self,
        room: &Room,
        visitor: &str,
        secure: bool,
        set_cookies: &mut Vec<HeaderValue>,
    ) -> Session {
        let now = unix_secs();
        let ttl = room.token_ttl_secs();
        // One session id per admission, so that revoking it never refuses a later one.
        let session = format!("{visitor}.{:x}", crate::store::unix_ms());
        let (token, claims) = self.tokens.issue_with_claims(visitor, &room.name, &session, now, ttl);
        set_cookies.push(cookies::set(&room.token_cookie, &token, secure));
        self.remember_issued(&token, claims, room.epoch());
        tracing::info!(target: "anteroom::admission", room = %room.name, visitor, "admitted: token issued");
        Session { room: room.index, id: session, token, expires_at: now + ttl }
    }

    pub(super) fn store_failed(&self, error: &crate::store::StoreError) {
        self.metrics.store_error();
        if self.metrics.set_store_up(false) {
            tracing::warn!(%error, "store unreachable: new visitors get the on_failure answer; token holders go on");
        }
    }

    /// The status object for a standing (or, without one, a bare `state`).
    pub(super) fn status_body(
        &self,
        room: &Room,
        standing: Option<&Standing>,
        state: Option<&'static str>,
        return_to: String,
    ) -> StatusBody {
        let state = state.unwrap_or(match standing.map(|s| s.state) {
            Some(QueueState::Admitted) => "admitted",
            Some(QueueState::Paused) => "paused",
            Some(QueueState::Scheduled) => "scheduled",
            Some(QueueState::Closed) => "closed",
            _ => "waiting",
        });
        let position = standing.and_then(|s| s.position);
        let queue_length =
            standing.map_or_else(|| self.room_metrics(room).queue_length.load(Relaxed), |s| s.queue_length);
        let eta = if state == "waiting" { status::eta_seconds(position, room.admission_rate()) } else { None };
        StatusBody {
            room: room.name.clone(),
            state,
            position,
            queue_length,
            eta_seconds: eta,
            poll_after_ms: status::poll_after_ms(position, eta, room.policy.abandon_ms, jitter()),
            opens_at: room.config.opens_at.as_ref().map(|at| at.as_str().to_owned()),
            return_to,
        }
    }

    /// The queued answer: the room's `queueing_status`, never cached, `X-Anteroom-State`.
    pub(super) fn queued(
        &self,
        room: &Room,
        body: StatusBody,
        answer: Answer<'_>,
        set_cookies: Vec<HeaderValue>,
    ) -> Response<Body> {
        let (content, content_type) = if answer.json {
            (serde_json::to_string(&body).unwrap_or_default(), "application/json")
        } else {
            let lang = self.pages.catalog().choose(answer.lang_query.as_deref(), answer.accept_language);
            let input = PageInput {
                title: room.config.display_title(),
                lang,
                first_position: answer.first_position,
                opens_at: room.config.opens_at.as_ref().map(|at| at.display()),
            };
            (self.pages.render(room.index, &body, &input), "text/html; charset=utf-8")
        };
        let mut response = Response::new(full(content));
        *response.status_mut() = StatusCode::from_u16(room.config.queueing_status).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert("x-anteroom-state", HeaderValue::from_static(body.state));
        if matches!(room.config.queueing_status, 429 | 503) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(body.poll_after_ms.div_ceil(1000).max(1)));
        }
        for cookie in set_cookies {
            headers.append(header::SET_COOKIE, cookie);
        }
        response
    }

    /// The origin answered `X-Anteroom-Command: revoke`: end the session everywhere.
    pub async fn revoke(&self, session: &Session) -> Option<HeaderValue> {
        let room = self.rooms.get(session.room)?;
        self.cache.revoke(&session.id, session.expires_at + self.tokens.leeway_secs());
        if let Err(e) = self.store.end_session(&room.name, &session.id).await {
            self.store_failed(&e);
        }
        tracing::info!(target: "anteroom::admission", room = %room.name, session = %session.id, "session revoked by the origin");
        Some(cookies::clear(&room.token_cookie, self.secure_cookies))
    }
}
