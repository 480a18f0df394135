//! anteroom's own error answers, as the client asked for them: a page in the queue
//! page's style and the buyer's language, JSON with a machine-readable `error` code, or
//! one line of text (curl, scripts). Each carries `X-Anteroom-Error: <code>`, so that
//! a client, a CDN or a rehearsal can tell anteroom's own answer from the shop's.

use super::WaitingRoom;
use crate::problem::{Asked, Problem};
use crate::response::{self, Body};
use http::{header, HeaderValue, Response};
use std::time::Duration;

impl WaitingRoom {
    pub(crate) fn problem(&self, problem: Problem, asked: &Asked, retry_after: Option<Duration>) -> Response<Body> {
        let retry_secs = retry_after.map(|d| d.as_secs_f64().ceil().max(1.0) as u64);
        let mut answer = if asked.json() {
            let body = serde_json::json!({
                "error": problem.code(),
                "message": problem.message(),
                "retry_after": retry_secs,
            });
            response::json(problem.status(), body.to_string())
        } else if asked.html() {
            let lang = self.pages.catalog().choose(None, asked.language());
            // A crowd shed together does not come back together: the page's own retry
            // comes between Retry-After and half as long again.
            let refresh =
                retry_secs.filter(|_| asked.repeatable).map(|s| s + (super::jitter() * s as f64 / 2.0) as u64);
            response::html(problem.status(), self.pages.problem(problem, lang, retry_secs, refresh))
        } else {
            response::text(problem.status(), problem.message())
        };
        if let Some(secs) = retry_secs {
            answer.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        answer.headers_mut().insert("x-anteroom-error", HeaderValue::from_static(problem.code()));
        answer
    }
}
