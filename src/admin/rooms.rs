//! `/admin/rooms…`: live stats of each room, pause and resume, and live changes of the
//! admission rate and capacity. Changes live in the store, so every instance follows them
//! (at its next tick). All of it requires `Authorization: Bearer <admin.token>`.

use super::Admin;
use crate::response::{self, json_error as error, Body};
use crate::room::Room;
use crate::store::{LimitOverrides, MAX_MESSAGE_CHARS};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

/// The largest PATCH body read.
const MAX_BODY: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    admit_per_minute: Option<RateValue>,
    max_active_users: Option<u32>,
    /// Drop the live rate and capacity: the configured ones apply again.
    #[serde(default)]
    reset: bool,
}

/// A rate pins the room's admission rate; `"auto"` hands it back to the controller.
#[derive(Deserialize)]
#[serde(untagged)]
enum RateValue {
    Pin(u32),
    Word(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    message: String,
}

const PATCH_SHAPE: &str =
    "expected {\"admit_per_minute\": N or \"auto\", \"max_active_users\": N} or {\"reset\": true}";

impl Admin {
    pub(super) async fn rooms(&self, req: Request<Incoming>) -> Response<Body> {
        let current = self.current.load_full();
        let Some(token) = &current.token else {
            return error(StatusCode::FORBIDDEN, "the admin API is off: set admin.token (or ANTEROOM_ADMIN_TOKEN)");
        };
        let bearer = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match bearer.map(|v| v.strip_prefix("Bearer ").unwrap_or("")) {
            Some(offered) => {
                if aws_lc_rs::constant_time::verify_slices_are_equal(offered.as_bytes(), token.expose().as_bytes())
                    .is_err()
                {
                    return unauthorized();
                }
            }
            // The console's own calls: its session, and proof they come from its page.
            None if self.console_session(req.headers()).is_ok() => {
                if req.method() != Method::GET && !super::console::console_call_allowed(req.headers()) {
                    return error(StatusCode::FORBIDDEN, "a console control must come from the console's page");
                }
            }
            None => return unauthorized(),
        }
        let path = req.uri().path().trim_end_matches('/').to_owned();
        let segments: Vec<&str> = path.split('/').skip(2).collect();
        let method = req.method().clone();
        let room = match segments.get(1) {
            Some(name) => match current.waiting.room_by_name(name) {
                Some(room) => Some(room),
                None => return error(StatusCode::NOT_FOUND, "no such room"),
            },
            None => None,
        };
        match (&method, segments.as_slice(), room) {
            (&Method::GET, ["rooms"], _) => {
                let mut all = Vec::new();
                for room in &current.waiting.rooms {
                    match self.stats(room).await {
                        Ok(stats) => all.push(stats),
                        Err(answer) => return answer,
                    }
                }
                ok(json!({ "rooms": all }))
            }
            (&Method::GET, [_, _], Some(room)) => self.stats(room).await.map_or_else(|e| e, ok),
            (&Method::POST, [_, _, action @ ("pause" | "resume" | "close" | "open")], Some(room)) => {
                self.switch(room, action).await
            }
            (&Method::PATCH, [_, _], Some(room)) => self.patch(room, req).await,
            (&Method::PUT, [_, _, "message"], Some(room)) => self.message(room, Some(req)).await,
            (&Method::DELETE, [_, _, "message"], Some(room)) => self.message(room, None).await,
            (&Method::GET, [_, _, "visitors", id], Some(room)) => self.visitor(room, id).await,
            (
                _,
                ["rooms"] | [_, _] | [_, _, "pause" | "resume" | "close" | "open" | "message"] | [_, _, "visitors", _],
                _,
            ) => error(StatusCode::METHOD_NOT_ALLOWED, "see docs/API.md for the admin API"),
            _ => error(StatusCode::NOT_FOUND, "unknown admin path"),
        }
    }

    /// `pause`/`resume` and `close`/`open`: a flag in the store, which every instance reads
    /// at its next tick; this one notes it at once.
    async fn switch(&self, room: &Room, action: &str) -> Response<Body> {
        let store = self.store();
        let on = matches!(action, "pause" | "close");
        let changed = match action {
            "pause" | "resume" => store.set_paused(&room.name, on).await.map(|()| room.note_paused(on)),
            _ => store.set_closed(&room.name, on).await.map(|()| room.note_closed(on)),
        };
        if let Err(e) = changed {
            return error(StatusCode::SERVICE_UNAVAILABLE, &format!("store: {e}"));
        }
        tracing::info!(target: "anteroom::admin", room = %room.name, action, "room switched");
        self.stats(room).await.map_or_else(|e| e, ok)
    }

    async fn patch(&self, room: &Room, req: Request<Incoming>) -> Response<Body> {
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
        };
        let patch: Patch = match serde_json::from_slice(&body) {
            Ok(patch) => patch,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("{PATCH_SHAPE}: {e}")),
        };
        let (pin, auto) = match &patch.admit_per_minute {
            None => (None, false),
            Some(RateValue::Pin(n)) => (Some(*n), false),
            Some(RateValue::Word(word)) if word == "auto" => (None, true),
            Some(RateValue::Word(other)) => {
                return error(StatusCode::BAD_REQUEST, &format!("{PATCH_SHAPE}: admit_per_minute `{other}`"))
            }
        };
        if pin == Some(0) || patch.max_active_users == Some(0) {
            return error(
                StatusCode::BAD_REQUEST,
                "admit_per_minute and max_active_users must be at least 1 (pause instead)",
            );
        }
        let values = patch.admit_per_minute.is_some() || patch.max_active_users.is_some();
        if patch.reset && values {
            return error(StatusCode::BAD_REQUEST, "reset drops the live values: give it alone");
        }
        if !patch.reset && !values {
            return error(
                StatusCode::BAD_REQUEST,
                "nothing to change: give admit_per_minute and/or max_active_users, or reset",
            );
        }
        if auto && !room.control.adaptive {
            return error(
                StatusCode::CONFLICT,
                &format!(
                    "room `{}` admits at a fixed rate: \"auto\" hands a pinned rate back to closed-loop admission \
                     (admission = \"adaptive\"); set a rate instead",
                    room.name
                ),
            );
        }
        let limits =
            LimitOverrides { admit_per_minute: pin, max_active_users: patch.max_active_users, reset: patch.reset };
        let store = self.store();
        let changed = match auto {
            true => store.unpin_rate(&room.name).await,
            false => Ok(()),
        };
        let changed = match (changed, limits == LimitOverrides::default()) {
            (Ok(()), false) => store.set_limits(&room.name, limits).await,
            (other, _) => other,
        };
        if let Err(e) = changed {
            return error(StatusCode::SERVICE_UNAVAILABLE, &format!("store: {e}"));
        }
        tracing::info!(
            target: "anteroom::admin",
            room = %room.name,
            admit_per_minute = ?pin,
            auto,
            reset = patch.reset,
            max_active_users = ?patch.max_active_users,
            "room limits changed"
        );
        self.stats(room).await.map_or_else(|e| e, ok)
    }

    /// `PUT …/message` with `{"message": "…"}` sets the message every waiting buyer sees on
    /// the queue page (within one poll); `DELETE` (or an empty message) clears it.
    async fn message(&self, room: &Room, req: Option<Request<Incoming>>) -> Response<Body> {
        let message = match req {
            None => String::new(),
            Some(req) => {
                let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                    Ok(body) => body.to_bytes(),
                    Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
                };
                match serde_json::from_slice::<MessageBody>(&body) {
                    Ok(MessageBody { message }) => message.trim().to_owned(),
                    Err(e) => return error(StatusCode::BAD_REQUEST, &format!("expected {{\"message\": \"…\"}}: {e}")),
                }
            }
        };
        if message.chars().count() > MAX_MESSAGE_CHARS {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the message is longer than {MAX_MESSAGE_CHARS} characters"),
            );
        }
        if message.chars().any(char::is_control) {
            return error(
                StatusCode::BAD_REQUEST,
                "the message is one line of text: no line breaks or control characters",
            );
        }
        if let Err(e) = self.store().set_message(&room.name, &message).await {
            return error(StatusCode::SERVICE_UNAVAILABLE, &format!("store: {e}"));
        }
        tracing::info!(target: "anteroom::admin", room = %room.name, message = %message, "message to the line set");
        self.stats(room).await.map_or_else(|e| e, ok)
    }

    pub(super) async fn stats(&self, room: &Room) -> Result<serde_json::Value, Response<Body>> {
        let stats = self
            .store()
            .stats(&room.name, &room.policy)
            .await
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, &format!("store: {e}")))?;
        Ok(json!({
            "room": room.name,
            "title": room.config.display_title(),
            "paths": room.config.paths,
            "paused": stats.paused,
            "closed": stats.closed,
            "queue_length": stats.queue_length,
            "active_sessions": stats.active_sessions,
            "admitted_unclaimed": stats.admitted_unclaimed,
            "admitted_total": stats.admitted_total,
            "admit_per_minute": stats.admit_per_minute,
            "max_active_users": stats.max_active_users,
            "admission": room.config.admission.as_str(),
            "effective_admit_per_minute": stats.admit_per_minute,
            "configured_admit_per_minute": room.config.admit_per_minute,
            "min_admit_per_minute": room.control.adaptive.then_some(room.control.floor),
            "target_origin_latency": room.config.target_origin_latency,
            "rate_pinned": stats.rate_pinned,
            "controller_reason": (room.control.adaptive || stats.rate_pinned).then(|| stats.control_reason.as_str()),
            "origin_health": stats.origin_health.as_str(),
            "measured_admissions_per_minute": room.admission_rate().map(|r| (r * 60.0).round()),
            "opens_at": room.config.opens_at,
            "recounting": stats.recounting,
            "message": (!stats.message.is_empty()).then_some(stats.message.as_str()),
        }))
    }
}

fn unauthorized() -> Response<Body> {
    let mut answer = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    answer.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    answer
}

fn ok(body: serde_json::Value) -> Response<Body> {
    respond(StatusCode::OK, body)
}

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    response::json(status, format!("{body}\n"))
}
