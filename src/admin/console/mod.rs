//! `/admin/console`: the live page ops watch on the day. The numbers are the admin API's
//! (global, from the store) beside this instance's own (origin traffic, time in line), and
//! the last 15 minutes as charts; the controls call the admin API itself, authorized by the
//! console's session cookie instead of the bearer token.
//!
//! - [`session`] the login: the admin token once, then a signed session cookie
//! - [`history`] a sample every 2 s, for the charts and the rates
//!
//! Against forged requests from other sites: the session cookie is `SameSite=Strict`,
//! every control needs the `X-Anteroom-Console` header (a form cannot send one, and a
//! cross-site script cannot without a CORS preflight nobody answers), and an `Origin`
//! that is not the console's own is refused. The page may not be framed.

pub(crate) mod history;
pub(crate) mod session;

use super::Admin;
use crate::response::{self, full, json_error as error, Body};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;
use session::Sessions;

/// The header every control call from the console carries.
pub(crate) const CONTROL_HEADER: &str = "x-anteroom-console";

const PAGE: &str = include_str!("console.html");
const LOGIN: &str = include_str!("login.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// A wrong token waits this long before its answer: guessing stays slow.
const WRONG_TOKEN_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

impl Admin {
    pub(super) async fn console(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().trim_end_matches('/').to_owned();
        match (req.method().clone(), path.as_str()) {
            (Method::GET, "/admin/console/console.js") => asset(SCRIPT, "text/javascript; charset=utf-8"),
            (Method::GET, "/admin/console/console.css") => asset(STYLE, "text/css; charset=utf-8"),
            (Method::GET, "/admin/console") => match self.console_session(req.headers()) {
                Ok(()) => page(StatusCode::OK, PAGE.to_owned()),
                Err(problem) => login_page(StatusCode::OK, problem),
            },
            (Method::POST, "/admin/console/login") => self.login(req).await,
            (Method::POST, "/admin/console/logout") => {
                let mut answer = see_other();
                let cookie = format!("{}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0", session::COOKIE);
                answer.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ascii"));
                answer
            }
            (Method::GET, "/admin/console/state") => match self.console_session(req.headers()) {
                Ok(()) => self.console_state().await,
                Err(problem) => error(StatusCode::UNAUTHORIZED, problem.unwrap_or("log in again")),
            },
            (_, "/admin/console" | "/admin/console/state" | "/admin/console/login" | "/admin/console/logout") => {
                error(StatusCode::METHOD_NOT_ALLOWED, "not with this method")
            }
            _ => error(StatusCode::NOT_FOUND, "unknown console path"),
        }
    }

    /// `Ok` when the request carries a valid console session; else what the login page
    /// should say (`None`: nothing, just log in).
    pub(super) fn console_session(&self, headers: &HeaderMap) -> Result<(), Option<&'static str>> {
        let current = self.current.load();
        let Some(token) = &current.token else {
            return Err(Some("The admin API is off: set admin.token (or ANTEROOM_ADMIN_TOKEN) and reload."));
        };
        match session::from_request(headers) {
            Some(cookie) if Sessions::new(token.expose()).valid(cookie, crate::time::unix_ms() / 1000) => Ok(()),
            Some(_) => Err(Some("Your session has ended: log in again.")),
            None => Err(None),
        }
    }

    async fn login(&self, req: Request<Incoming>) -> Response<Body> {
        if !same_origin(req.headers()) {
            return error(StatusCode::FORBIDDEN, "a login from another site is refused");
        }
        let token = self.current.load().token.clone();
        let Some(token) = token else {
            return login_page(StatusCode::FORBIDDEN, Some("The admin API is off: set admin.token and reload."));
        };
        let body = match Limited::new(req.into_body(), 4096).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
        };
        let form = String::from_utf8_lossy(&body);
        let offered = crate::room::status::query_param(Some(form.as_ref()), "token").unwrap_or_default();
        if aws_lc_rs::constant_time::verify_slices_are_equal(offered.as_bytes(), token.expose().as_bytes()).is_err() {
            tracing::warn!(target: "anteroom::admin", "console login with a wrong token");
            tokio::time::sleep(WRONG_TOKEN_DELAY).await;
            return login_page(StatusCode::UNAUTHORIZED, Some("That is not the admin token."));
        }
        let value = Sessions::new(token.expose()).issue(crate::time::unix_ms() / 1000);
        let cookie = format!(
            "{}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}",
            session::COOKIE,
            session::LIFETIME_SECS
        );
        tracing::info!(target: "anteroom::admin", "console login");
        let mut answer = see_other();
        answer.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ascii"));
        answer
    }

    /// What the console draws: each room's numbers (the store's, global) with this
    /// instance's, and the charts' points.
    async fn console_state(&self) -> Response<Body> {
        let waiting = self.waiting();
        let (points, now) = self.history.view(&self.metrics, &waiting);
        let mut rooms = Vec::new();
        for room in &waiting.rooms {
            let mut stats = match self.stats(room).await {
                Ok(stats) => stats,
                Err(answer) => return answer,
            };
            let wait = now.wait.iter().find(|(name, _, _)| *name == room.name);
            stats["instance"] = json!({
                "admitted_total": room.metrics().admitted.load(std::sync::atomic::Ordering::Relaxed),
                "wait_p50_s": wait.and_then(|w| w.1),
                "wait_p90_s": wait.and_then(|w| w.2),
            });
            rooms.push(stats);
        }
        let body = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "store": { "backend": waiting.store.backend(), "up": self.metrics.is_store_up() },
            "origin": now,
            "rooms": rooms,
            "history": points,
        });
        let mut answer = response::json(StatusCode::OK, body.to_string());
        answer.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        answer
    }
}

/// A control call the console's session authorizes: it must come from the console's own
/// page (the header a form cannot set, an `Origin` that is its own).
pub(crate) fn console_call_allowed(headers: &HeaderMap) -> bool {
    headers.get(CONTROL_HEADER).is_some_and(|v| v == "1") && same_origin(headers)
}

/// No `Origin` (a same-origin GET, a non-browser client), or one naming this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
}

fn see_other() -> Response<Body> {
    let mut answer = Response::new(response::empty());
    *answer.status_mut() = StatusCode::SEE_OTHER;
    answer.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/admin/console"));
    answer
}

fn page(status: StatusCode, html: String) -> Response<Body> {
    let mut answer = response::html(status, html);
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

fn login_page(status: StatusCode, problem: Option<&str>) -> Response<Body> {
    let problem = problem.map(|p| format!("<p class=\"problem\" role=\"alert\">{p}</p>")).unwrap_or_default();
    page(status, LOGIN.replace("{problem}", &problem))
}

fn asset(body: &'static str, kind: &'static str) -> Response<Body> {
    let mut answer = Response::new(full(body));
    answer.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    answer.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    answer
}
