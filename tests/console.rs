//! The console's door, over plain HTTP: the login, the session cookie, and every way to
//! forge a control without them — each refused, with nothing changed.

mod support;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use support::client::{try_send, Answer};
use support::origin::Origin;
use support::Gateway;

const TOKEN: &str = "console-door-admin-token";

async fn gateway() -> (Origin, Gateway) {
    let origin = Origin::start().await;
    let gw = Gateway::with_admin_token(&origin.url(), TOKEN).await;
    (origin, gw)
}

async fn send(gw: &Gateway, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut req = Request::builder().method(method).uri(path).header("host", gw.admin.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    try_send(gw.admin, req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap()
}

/// Logs in; returns the `Cookie` header value for the session.
async fn log_in(gw: &Gateway) -> String {
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let answer = send(gw, "POST", "/admin/console/login", &form, &format!("token={TOKEN}")).await;
    assert_eq!(answer.status, 303, "{}", answer.body_text());
    assert_eq!(answer.header("location"), Some("/admin/console"));
    let cookie = answer.header("set-cookie").expect("a session cookie").to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_owned()
}

async fn paused(gw: &Gateway) -> bool {
    let (_, stats) = gw.admin_api("GET", "/admin/rooms/sale", Some(TOKEN), "").await;
    stats["paused"].as_bool().unwrap()
}

#[tokio::test]
async fn the_login_gives_a_strict_session_cookie_and_the_page_cannot_be_framed() {
    let (_origin, gw) = gateway().await;
    let login = send(&gw, "GET", "/admin/console", &[], "").await;
    assert_eq!(login.status, 200);
    assert!(login.body_text().contains("name=\"token\""), "the login form");
    let csp = login.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(login.header("x-frame-options"), Some("DENY"));

    let cookie = log_in(&gw).await;
    let page = send(&gw, "GET", "/admin/console", &[("cookie", &cookie)], "").await;
    assert!(page.body_text().contains("/admin/console/console.js"), "{}", page.body_text());
    let state = send(&gw, "GET", "/admin/console/state", &[("cookie", &cookie)], "").await;
    assert_eq!(state.status, 200, "{}", state.body_text());
    let state: serde_json::Value = serde_json::from_slice(&state.body).unwrap();
    assert_eq!(state["rooms"][0]["room"], "sale");
    assert_eq!(state["store"]["backend"], "memory");
    for asset in ["/admin/console/console.js", "/admin/console/console.css"] {
        assert_eq!(send(&gw, "GET", asset, &[], "").await.status, 200, "{asset}");
    }
    // No external hosts anywhere in the console.
    for path in ["/admin/console", "/admin/console/console.js", "/admin/console/console.css"] {
        let text = send(&gw, "GET", path, &[("cookie", &cookie)], "").await.body_text();
        let outside =
            text.match_indices("http").filter(|(at, _)| !text[*at..].starts_with("http://www.w3.org/2000/svg"));
        assert_eq!(outside.count(), 0, "{path} names another host");
    }
}

#[tokio::test]
async fn forged_logins_and_controls_are_refused_and_change_nothing() {
    let (_origin, gw) = gateway().await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let wrong = send(&gw, "POST", "/admin/console/login", &form, "token=guess-guess-guess").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none(), "no session for a wrong token");
    let elsewhere = [("content-type", "application/x-www-form-urlencoded"), ("origin", "http://evil.example")];
    let cross_site = send(&gw, "POST", "/admin/console/login", &elsewhere, &format!("token={TOKEN}")).await;
    assert_eq!(cross_site.status, 403, "a login posted from another site");
    assert!(cross_site.header("set-cookie").is_none());
    assert_eq!(send(&gw, "GET", "/admin/console/state", &[], "").await.status, 401);

    let cookie = log_in(&gw).await;
    let own_origin = format!("http://{}", gw.admin);
    let forged_mac =
        cookie.rsplit_once('.').map(|(head, _)| format!("{head}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).unwrap();
    type Headers<'a> = Vec<(&'a str, &'a str)>;
    let attempts: [(&str, Headers<'_>, u16); 5] = [
        ("no session at all", vec![("x-anteroom-console", "1")], 401),
        ("a session with a forged signature", vec![("cookie", &forged_mac), ("x-anteroom-console", "1")], 401),
        ("a plain form post riding the cookie", vec![("cookie", &cookie)], 403),
        (
            "a script on another site",
            vec![("cookie", &cookie), ("x-anteroom-console", "1"), ("origin", "http://evil.example")],
            403,
        ),
        ("a session and a wrong bearer", vec![("cookie", &cookie), ("authorization", "Bearer wrong")], 401),
    ];
    for (what, headers, expected) in &attempts {
        let answer = send(&gw, "POST", "/admin/rooms/sale/pause", headers, "").await;
        assert_eq!(answer.status, *expected, "{what}: {}", answer.body_text());
        assert!(!paused(&gw).await, "{what} changed nothing");
    }
    // The console's own call goes through.
    let own = [("cookie", cookie.as_str()), ("x-anteroom-console", "1"), ("origin", own_origin.as_str())];
    assert_eq!(send(&gw, "POST", "/admin/rooms/sale/pause", &own, "").await.status, 200);
    assert!(paused(&gw).await);

    // Logging out ends the browser's session cookie.
    let out = send(&gw, "POST", "/admin/console/logout", &[("cookie", &cookie)], "").await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
}
