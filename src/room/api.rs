//! `/_anteroom/status`, `/_anteroom/join` and `/_anteroom/leave`: the visitor-facing API
//! the queue page polls and apps call (docs/API.md).

use super::cookies;
use super::status::{self, query_param};
use super::{unix_secs, WaitingRoom};
use crate::config::OnFailure;
use crate::response::{self, json_error as error, Body};
use crate::store::QueueState;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri};
use std::sync::atomic::Ordering::Relaxed;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Status,
    Join,
    Leave,
}

impl WaitingRoom {
    /// Answers an API path, or `None` when `path` is not one of them.
    pub async fn api(
        &self,
        method: &Method,
        path: &str,
        uri: &Uri,
        headers: &HeaderMap,
        tls: bool,
    ) -> Option<Response<Body>> {
        let call = match path {
            "/_anteroom/status" => Call::Status,
            "/_anteroom/join" => Call::Join,
            "/_anteroom/leave" => Call::Leave,
            _ => return None,
        };
        let allowed = match call {
            Call::Status => method == Method::GET || method == Method::HEAD,
            Call::Join | Call::Leave => method == Method::POST,
        };
        if !allowed {
            let hint = if call == Call::Status { "use GET" } else { "use POST" };
            return Some(error(StatusCode::METHOD_NOT_ALLOWED, hint));
        }
        let Some(name) = query_param(uri.query(), "room") else {
            return Some(error(StatusCode::BAD_REQUEST, "name the room: ?room=NAME"));
        };
        let Some(room) = self.room_by_name(&name) else {
            return Some(error(StatusCode::NOT_FOUND, "no such room"));
        };
        let secure = self.secure(tls);
        let ticket = cookies::find(headers, &room.queue_cookie).and_then(|v| self.signer.decode(&room.name, v));
        // The page the caller names, else the one the visitor first asked for.
        let return_to =
            query_param(uri.query(), "return_to").or_else(|| ticket.as_ref().and_then(|t| t.return_to.clone()));
        let return_to = status::sanitize_return_to(return_to.as_deref());
        let mut set_cookies = Vec::new();

        if call == Call::Leave {
            let claims =
                cookies::find(headers, &room.token_cookie).and_then(|t| self.tokens.verify(t, &room.name).ok());
            let visitor = ticket.map(|t| t.visitor).or_else(|| claims.as_ref().map(|c| c.sub.clone()));
            let session = claims.as_ref().map(|c| c.sid.as_str());
            if let Some(visitor) = visitor {
                if let Err(e) = self.store.leave(&room.name, &visitor, session).await {
                    self.store_failed(&e);
                    return Some(error(StatusCode::SERVICE_UNAVAILABLE, "the queue is unavailable; please retry"));
                }
            }
            if let Some(claims) = &claims {
                self.cache.revoke(&claims.sid, unix_secs() + room.token_ttl_secs() + self.tokens.leeway_secs());
            }
            set_cookies.push(cookies::clear(&room.queue_cookie, secure));
            set_cookies.push(cookies::clear(&room.token_cookie, secure));
            let body = serde_json::json!({ "room": room.name, "left": true });
            return Some(json(StatusCode::OK, body.to_string(), set_cookies));
        }

        // A valid token: already admitted, nothing to ask the store.
        if let Some(token) = cookies::find(headers, &room.token_cookie) {
            if self.session_from_token(room, token, secure, &mut set_cookies).await.is_some() {
                let body = self.status_body(room, None, Some("admitted"), return_to);
                return Some(self.answer(body, set_cookies));
            }
            set_cookies.push(cookies::clear(&room.token_cookie, secure));
        }

        // A status call without a queue cookie only looks: it hands out the cookie (the
        // place is taken on the next call that brings it back) and writes nothing.
        if call == Call::Status && ticket.is_none() {
            let ticket = cookies::QueueTicket::new_visitor();
            set_cookies.push(cookies::set(&room.queue_cookie, &self.signer.encode(&room.name, &ticket), secure));
            let quiet = room.admission_rate().is_some()
                && !room.is_recounting()
                && self.room_metrics(room).queue_length.load(Relaxed) == 0;
            let state = if room.is_closed() {
                "closed"
            } else if room.admission_rate().is_none() {
                "paused"
            } else if quiet {
                "open"
            } else {
                "waiting"
            };
            let body = self.status_body(room, None, Some(state), return_to);
            return Some(self.answer(body, set_cookies));
        }

        match self.visit(room, ticket, true, None, secure, &mut set_cookies).await {
            Ok((ticket, standing)) if standing.state == QueueState::Admitted => {
                self.admit(room, &ticket.visitor, secure, &mut set_cookies);
                let body = self.status_body(room, Some(&standing), None, return_to);
                Some(self.answer(body, set_cookies))
            }
            Ok((_, standing)) => {
                let body = self.status_body(room, Some(&standing), None, return_to);
                Some(self.answer(body, set_cookies))
            }
            Err(()) => {
                let state = if self.on_failure == OnFailure::Open { "open" } else { "paused" };
                let body = self.status_body(room, None, Some(state), return_to);
                Some(self.answer(body, set_cookies))
            }
        }
    }

    fn answer(&self, body: status::StatusBody, set_cookies: Vec<HeaderValue>) -> Response<Body> {
        let state = body.state;
        let mut response = json(StatusCode::OK, serde_json::to_string(&body).unwrap_or_default(), set_cookies);
        response.headers_mut().insert("x-anteroom-state", HeaderValue::from_static(state));
        response
    }
}

/// A JSON answer with anteroom's cookies.
fn json(status: StatusCode, body: String, set_cookies: Vec<HeaderValue>) -> Response<Body> {
    let mut response = response::json(status, body);
    for cookie in set_cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
