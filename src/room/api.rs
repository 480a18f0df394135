//! Everything under `/_anteroom/`, in one router: the page's assets, the visitor API the
//! queue page polls and apps call (`status`, `join`, `leave`; docs/API.md) and the JWKS.

use super::cookies::{self, Jar};
use super::decide::{Caller, Intent, QueueCookie, Verdict};
use super::enqueue;
use super::params::{JoinParams, MAX_BODY};
use super::proof::Solution;
use super::status::{self, query_param, VisitorState};
use super::{page, WaitingRoom};
use crate::metrics::PlaceRefusal;
use crate::response::{self, json_error as error, Body};
use crate::store::Departure;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use std::net::IpAddr;

/// Paths under this prefix are anteroom's own and never reach the origin.
pub(crate) const RESERVED_PREFIX: &str = "/_anteroom/";

/// The visitor calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Status,
    Join,
    Leave,
}

impl WaitingRoom {
    /// Answers a request to a path under [`RESERVED_PREFIX`]. `client`: its address
    /// (after trusted proxies), for per-client caps.
    pub async fn reserved<B>(&self, req: Request<B>, tls: bool, client: IpAddr) -> Response<Body>
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path();
        if let Some(asset) = page::assets::serve(path, req.headers()) {
            return asset;
        }
        let call = match path {
            "/_anteroom/status" => Call::Status,
            "/_anteroom/join" => Call::Join,
            "/_anteroom/leave" => Call::Leave,
            "/_anteroom/jwks.json" => return self.jwks(),
            _ => return response::text(StatusCode::NOT_FOUND, "no such anteroom endpoint"),
        };
        self.call(call, req, tls, client).await
    }

    async fn call<B>(&self, call: Call, req: Request<B>, tls: bool, client: IpAddr) -> Response<Body>
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
        let allowed = match call {
            Call::Status => method == Method::GET || method == Method::HEAD,
            Call::Join | Call::Leave => method == Method::POST,
        };
        if !allowed {
            let hint = if call == Call::Status { "use GET" } else { "use POST" };
            return error(StatusCode::METHOD_NOT_ALLOWED, hint);
        }
        let Some(name) = query_param(uri.query(), "room") else {
            return error(StatusCode::BAD_REQUEST, "name the room: ?room=NAME");
        };
        let Some(room) = self.room_by_name(&name) else {
            return error(StatusCode::NOT_FOUND, "no such room");
        };
        let mut jar = Jar::new(self.secure(tls));
        let ticket = cookies::find(headers, &room.queue_cookie).and_then(|v| self.signer.decode(&room.name, v));
        let token = cookies::find(headers, &room.token_cookie);

        if call == Call::Leave {
            let claims = token.and_then(|t| self.tokens.verify(t, &room.name).ok());
            let seq = ticket.as_ref().map_or(0, |t| t.seq);
            let visitor = ticket.map(|t| t.visitor).or_else(|| claims.as_ref().map(|c| c.sub.clone()));
            let session = claims.as_ref().map(|c| c.sid.as_str());
            if let Some(visitor) = visitor {
                let departure = Departure { visitor: &visitor, seq, session };
                if let Err(e) = self.store.leave(&room.name, &departure).await {
                    self.store_failed(&e);
                    return error(StatusCode::SERVICE_UNAVAILABLE, "the queue is unavailable; please retry");
                }
            }
            if let Some(claims) = &claims {
                self.cache.revoke(&claims.sid, self.now_secs() + room.token_ttl_secs() + self.tokens.leeway_secs());
            }
            jar.clear(&room.queue_cookie);
            jar.clear(&room.token_cookie);
            if browser_form(headers) {
                let accept_language = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
                let lang = self.pages.catalog().choose(None, accept_language);
                let mut page = response::html(StatusCode::OK, self.pages.left(lang));
                jar.apply(page.headers_mut());
                return page;
            }
            let body = serde_json::json!({ "room": room.name, "left": true });
            return json(StatusCode::OK, body.to_string(), jar);
        }

        // The page the caller names, else the one the visitor first asked for.
        let return_to =
            query_param(uri.query(), "return_to").or_else(|| ticket.as_ref().and_then(|t| t.return_to.clone()));
        let return_to = status::sanitize_return_to(return_to.as_deref());
        let intent = if call == Call::Status { Intent::Look } else { Intent::Join };
        let mut caller = Caller::from_cookies(room, headers, QueueCookie::Checked(ticket), client);
        let mut params = JoinParams::read(uri.query(), None, &[]);
        if call == Call::Join && (room.asks_proof() || room.enqueue.is_some()) {
            // A solution or an enqueue token in the query, or in a small form or JSON body.
            let Ok(body) = Limited::new(body, MAX_BODY).collect().await.map(|b| b.to_bytes()) else {
                return error(StatusCode::BAD_REQUEST, "the join body is unreadable or too large");
            };
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            params = JoinParams::read(uri.query(), content_type, &body);
            if room.asks_proof() {
                caller.solution = Solution::of(&params);
            }
        }
        if room.enqueue.is_some() {
            caller.enqueue = enqueue::offered(headers).map(str::to_owned).or_else(|| params.get(enqueue::PARAM));
        }
        let body = match self.verdict(room, caller, intent, |_| return_to.clone(), &mut jar).await {
            Verdict::Inside { standing: None, .. } => {
                self.status_body(room, None, Some(VisitorState::Admitted), return_to)
            }
            Verdict::Inside { standing: Some(standing), .. } => {
                self.status_body(room, Some(&standing), None, return_to)
            }
            Verdict::Outside { status, .. } => status,
            Verdict::Unguarded => self.status_body(room, None, Some(VisitorState::Open), return_to),
        };
        let state = body.state;
        // A solution that could never have held is the caller's mistake; an expired or
        // already spent one is not (the answer carries a new challenge either way).
        let status = if body.challenge_refused.is_some_and(|r| r.is_client_error()) {
            StatusCode::BAD_REQUEST
        } else if body.refused_reason == Some(PlaceRefusal::EnqueueTokenInvalid) {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::OK
        };
        let mut response = json(status, serde_json::to_string(&body).unwrap_or_default(), jar);
        response.headers_mut().insert("x-anteroom-state", HeaderValue::from_static(state.as_str()));
        response
    }

    /// The public keys that verify admission tokens, for the origin or other services.
    fn jwks(&self) -> Response<Body> {
        let mut answer = Response::new(response::full(self.tokens.jwks().to_string()));
        let headers = answer.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
        // Verifiers may cache it briefly; a rotation adds the new key before using it.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
        answer
    }
}

/// A browser posting the queue page's leave form without its script: it asks for a page.
fn browser_form(headers: &http::HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"))
}

/// A JSON answer with anteroom's cookies.
fn json(status: StatusCode, body: String, jar: Jar) -> Response<Body> {
    let mut response = response::json(status, body);
    jar.apply(response.headers_mut());
    response
}
