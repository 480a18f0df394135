//! The room's one answer to a request on the public listeners: where it belongs (host,
//! path, room), whether it skips the line, and where its visitor stands — turned into
//! "on to the origin, with this ticket" or "answered here".

use super::cookies::{self, Jar};
use super::decide::{Caller, Intent, QueueCookie, Verdict};
use super::page::PageInput;
use super::status::{self, StatusBody};
use super::ticket::Ticket;
use super::{enqueue, routing, Room, Routing, WaitingRoom};
use crate::response::{self, full, Body};
use crate::token::Rejection;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use std::net::IpAddr;

/// What the room decided for a request outside `/_anteroom/`.
#[derive(Debug)]
pub enum Admission<'a> {
    /// On to the origin (within origin protection), with what the room adds.
    Forward(Ticket<'a>),
    /// Answered by the room.
    Answer(Response<Body>, Answered),
}

/// Why the room answered itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    /// The queue page or status object.
    Queued,
    /// A request the room cannot place: no or conflicting `Host`, an ambiguous path.
    Rejected,
}

impl WaitingRoom {
    /// The room's decision for one request. `client`: its address (after trusted
    /// proxies), for the bypass rules; `tls`: whether it came over TLS (cookies get
    /// `Secure`).
    pub async fn admission<B>(&self, req: &Request<B>, client: IpAddr, tls: bool) -> Admission<'_> {
        let jar = Jar::new(self.secure(tls));
        let host = match routing::request_host(req.uri(), req.headers()) {
            Ok(host) => host,
            Err(problem) => {
                return Admission::Answer(
                    response::text(StatusCode::BAD_REQUEST, &problem.to_string()),
                    Answered::Rejected,
                )
            }
        };
        let routed = match self.route(req.uri().path(), &host) {
            Routing::Outside => return Admission::Forward(Ticket::new(self, None, jar, false, None)),
            Routing::Room(routed) => routed,
            Routing::Ambiguous => {
                let answer = response::text(
                    StatusCode::BAD_REQUEST,
                    "ambiguous path: its encoded or dot segments would send it to another part of the shop",
                );
                return Admission::Answer(answer, Answered::Rejected);
            }
        };
        if self.bypassed(&routed, req.method(), client, req.headers()) {
            return Admission::Forward(Ticket::new(self, None, jar, false, None));
        }
        // Boxed: the store call's state would otherwise enlarge every request's future,
        // also the many that never need it.
        Box::pin(self.enter(routed.room, req.uri(), req.headers(), client, jar)).await
    }

    /// A request to a protected page: the visitor's verdict as a ticket, the queue page or
    /// the status object.
    async fn enter<'a>(
        &'a self,
        room: &'a Room,
        uri: &Uri,
        headers: &HeaderMap,
        client: IpAddr,
        mut jar: Jar,
    ) -> Admission<'a> {
        if uri.query().is_some_and(|q| q.contains(cookies::PREFIX)) {
            // Tokens are only ever read from cookies; one offered in a URL is noted, not used.
            room.metrics().token_rejected(Rejection::InUrl);
        }
        let queue_cookie = QueueCookie::Unchecked(cookies::find(headers, &room.queue_cookie));
        let mut caller = Caller::from_cookies(room, headers, queue_cookie, client);
        if room.enqueue.is_some() {
            // A presale link carries the token in its URL (or an app, in the header).
            caller.enqueue = enqueue::offered(headers)
                .map(str::to_owned)
                .or_else(|| status::query_param(uri.query(), enqueue::PARAM));
        }
        let page = |_: Option<&cookies::QueueTicket>| {
            let asked = uri.path_and_query().map(|pq| enqueue::without_token(pq.as_str()));
            status::sanitize_return_to(asked.as_deref())
        };
        match self.verdict(room, caller, Intent::Enter, page, &mut jar).await {
            Verdict::Inside { session, standing } => {
                let signals = room.signals.counting(Some(&session.id));
                Admission::Forward(Ticket::new(self, Some(session), jar, standing.is_some(), signals))
            }
            Verdict::Outside { status, first } => {
                let answer = self.queued(room, status, Negotiated::new(uri, headers, first), jar);
                Admission::Answer(answer, Answered::Queued)
            }
            Verdict::Unguarded => Admission::Forward(Ticket::new(self, None, jar, false, Some(&room.signals))),
        }
    }

    /// The queued answer: the room's `queueing_status`, never cached, `X-Anteroom-State`.
    fn queued(&self, room: &Room, body: StatusBody, answer: Negotiated<'_>, jar: Jar) -> Response<Body> {
        let (content, content_type) = if answer.json {
            (serde_json::to_string(&body).unwrap_or_default(), "application/json")
        } else {
            let lang = self.pages.catalog().choose(answer.lang_query.as_deref(), answer.accept_language);
            let input = PageInput {
                title: room.config.display_title(),
                lang,
                first_position: answer.first_position,
                opens_at: room.config.opens_at.as_ref().map(|at| (at.unix_ms(), at.display())),
                zone: room.zone.as_ref(),
            };
            (self.pages.render(room.index, &body, &input), "text/html; charset=utf-8")
        };
        let mut response = Response::new(full(content));
        *response.status_mut() = room.queueing_status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert("x-anteroom-state", HeaderValue::from_static(body.state.as_str()));
        if matches!(room.config.queueing_status, 429 | 503) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(body.poll_after_ms.div_ceil(1000).max(1)));
        }
        jar.apply(headers);
        response
    }
}

/// How to answer a queued request: JSON or the page, and in which language.
struct Negotiated<'a> {
    json: bool,
    lang_query: Option<String>,
    accept_language: Option<&'a str>,
    first_position: Option<u64>,
}

impl<'a> Negotiated<'a> {
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
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"))
}
