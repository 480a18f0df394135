//! `GET /admin/rooms/ROOM/visitors/QUEUE_ID`: where the buyer who reads out a queue id
//! stands — for support on the day ("I was in line and now I'm not").

use super::Admin;
use crate::response::{self, json_error as error, Body};
use crate::room::queue_id::QueueId;
use crate::room::Room;
use crate::store::Whereabouts;
use http::{Response, StatusCode};
use serde_json::json;

impl Admin {
    pub(super) async fn visitor(&self, room: &Room, typed: &str) -> Response<Body> {
        let Some(id) = QueueId::parse(typed) else {
            return error(StatusCode::BAD_REQUEST, "a queue id is 8 letters and digits, like K7QF-3M2P");
        };
        let found = match self.store().find_visitors(&room.name, &id.visitor_prefix()).await {
            Ok(found) => found,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &format!("store: {e}")),
        };
        let policy = &room.policy;
        let time = |ms: u64| crate::time::rfc3339(ms / 1000);
        let visitors: Vec<serde_json::Value> = found
            .iter()
            .filter(|f| id.names(&f.visitor))
            .map(|f| match f.whereabouts {
                Whereabouts::Waiting { position, seen_ms } => json!({
                    "state": "waiting",
                    "position": position,
                    "last_seen": time(seen_ms),
                    "dropped_after": time(seen_ms + policy.abandon_ms),
                }),
                Whereabouts::Admitted { at_ms } => json!({
                    "state": "admitted",
                    "admitted_at": time(at_ms),
                    "claim_until": time(at_ms + policy.claim_ms),
                }),
                Whereabouts::Shopping { until_ms } => json!({ "state": "shopping", "session_until": time(until_ms) }),
                Whereabouts::Dropped { at_ms } => json!({
                    "state": "dropped",
                    "dropped_at": time(at_ms),
                    "rejoin_until": time(at_ms + policy.rejoin_ms),
                }),
            })
            .collect();
        if visitors.is_empty() {
            let problem = format!(
                "no visitor with queue id {} in room `{}`: not in line, admitted, shopping, or dropped within the \
                 rejoin grace",
                id.canonical(),
                room.name
            );
            return error(StatusCode::NOT_FOUND, &problem);
        }
        let body = json!({ "room": room.name, "queue_id": id.canonical(), "visitors": visitors });
        response::json(StatusCode::OK, format!("{body}\n"))
    }
}
