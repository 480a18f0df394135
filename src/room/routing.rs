//! Which room a request belongs to, and whether it skips the queue.
//!
//! The origin receives the path exactly as the client sent it, and origins read paths in
//! different ways: Tomcat cuts `;params` and resolves `..`, nginx decodes `%2e`, Express
//! and Flask route on the raw text. So a path is looked at in two forms, and it is
//! protected when *either* falls in a room:
//!
//! - the normalized form: lowercased, percent-decoded, `\` read as `/`, `;params` cut,
//!   dot segments resolved (`/Tickets`, `/x/../tickets`, `/tick%65ts`, `/tickets;jsessionid=1`
//!   all become `/tickets`);
//! - the literal form: lowercased with empty segments dropped, nothing decoded or resolved
//!   (`/tickets/%2e%2e/buy` stays under `/tickets`).
//!
//! When the two forms fall in two different rooms the request is refused (`400`): no
//! answer would be right for every origin. A bypass rule lets a request skip the queue
//! only when it matches every form that falls in the room.

use crate::config::BypassRule;
use http::{header, HeaderMap, Method, Uri};
use std::borrow::Cow;
use std::net::IpAddr;

/// Is `raw` already its own normalized and literal form? Lowercase ASCII letters, digits
/// and `-._~` in segments between single slashes, no `.` or `..` segment, no slash at the
/// end (but `/` itself): then [`normalize_path`] and [`literal_path`] would both give it
/// back unchanged, and most request paths are such — the check is one pass, no allocation.
pub(crate) fn is_canonical(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if raw == "/" {
        return true;
    }
    if bytes.first() != Some(&b'/') || bytes.last() == Some(&b'/') {
        return false;
    }
    raw[1..].split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    })
}

/// Lowercased, percent-decoded, `\` read as `/`, empty and `.` segments dropped, `..`
/// applied, `;parameters` cut from each segment. Always starts with `/`.
pub(crate) fn normalize_path(raw: &str) -> String {
    // Runs for every request while a room is configured: borrow what needs no change
    // (most paths have no `%` and no `\\`), and lowercase ASCII in place.
    let decoded = if raw.contains('%') { Cow::Owned(percent_decode(raw)) } else { Cow::Borrowed(raw) };
    let decoded = if decoded.contains('\\') { Cow::Owned(decoded.replace('\\', "/")) } else { decoded };
    let mut path = String::with_capacity(decoded.len() + 1);
    let mut kept: Vec<usize> = Vec::new();
    for segment in decoded.split('/') {
        let segment = segment.split(';').next().unwrap_or("");
        match segment {
            "" | "." => {}
            ".." => {
                if let Some(start) = kept.pop() {
                    path.truncate(start);
                }
            }
            s => {
                kept.push(path.len());
                path.push('/');
                path.push_str(s);
            }
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    if path.is_ascii() {
        path.make_ascii_lowercase();
        path
    } else {
        path.to_lowercase()
    }
}

pub(crate) fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path as an origin that decodes and resolves nothing would route it: lowercased,
/// empty segments dropped. Always starts with `/`.
pub(crate) fn literal_path(raw: &str) -> String {
    let mut path = String::with_capacity(raw.len() + 1);
    for segment in raw.split('/').filter(|s| !s.is_empty()) {
        path.push('/');
        path.push_str(segment);
    }
    if path.is_empty() {
        path.push('/');
    }
    path.make_ascii_lowercase();
    path
}

/// Does the normalized `path` lie under the normalized `prefix`, segment-wise?
pub(crate) fn covers(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || path == prefix
        || (path.len() > prefix.len() && path.starts_with(prefix) && path.as_bytes()[prefix.len()] == b'/')
}

/// The host name of a `Host` header value or URI authority: lowercased, port and trailing
/// dots removed (`Shop.Example.:443` and `shop.example` are one host). Borrowed unless it
/// had to be lowercased, and scanned byte by byte: this runs for every request.
pub(crate) fn host_name(host: &str) -> Cow<'_, str> {
    let bytes = host.as_bytes();
    let (mut start, mut end) = (0, bytes.len());
    while start < end && bytes[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && bytes[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    if bytes.get(start) == Some(&b'[') {
        // An IPv6 literal: up to its closing bracket.
        if let Some(close) = bytes[start..end].iter().position(|&b| b == b']') {
            end = start + close + 1;
        }
    } else {
        let mut port = end;
        while port > start && bytes[port - 1].is_ascii_digit() {
            port -= 1;
        }
        if port > start && bytes[port - 1] == b':' {
            end = port - 1;
        }
        while end > start && bytes[end - 1] == b'.' {
            end -= 1;
        }
    }
    let name = &host[start..end];
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Why a request's host cannot be trusted for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HostProblem {
    #[error("the request names no host (send a Host header)")]
    Missing,
    #[error("the request names two different hosts (Host and the request target disagree)")]
    Mismatch,
    #[error("the request has more than one Host header")]
    Repeated,
}

/// The host a request is for, normalized: its `Host` header, or the authority of its
/// target (HTTP/2 `:authority`, HTTP/1.1 absolute form). When both are present they must
/// name the same host; a request naming none is refused, since a host-scoped room could
/// not tell whether it covers it.
pub(crate) fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Result<Cow<'a, str>, HostProblem> {
    let mut values = headers.get_all(header::HOST).iter();
    let from_header = values.next();
    if values.next().is_some() {
        return Err(HostProblem::Repeated);
    }
    let from_header = from_header.map(|v| v.to_str().map(host_name).map_err(|_| HostProblem::Missing));
    let from_target = uri.authority().map(|a| host_name(a.as_str()));
    match (from_header, from_target) {
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(header)), Some(target)) if header != target => Err(HostProblem::Mismatch),
        (Some(Ok(host)), _) | (None, Some(host)) if !host.is_empty() => Ok(host),
        _ => Err(HostProblem::Missing),
    }
}

/// Does a bypass rule let this request skip the queue? `path` is one form of the request's
/// path; the rules' prefixes are normalized. Extension rules serve static files: they
/// apply to `GET` and `HEAD` only, so that `POST /checkout/pay.js` is never let through.
pub(crate) fn bypassed(rules: &[BypassRule], method: &Method, path: &str, client: IpAddr) -> bool {
    let static_read = method == Method::GET || method == Method::HEAD;
    let extension_is =
        |ext: &str| path.rsplit('/').next().and_then(|last| last.rsplit_once('.')).is_some_and(|(_, e)| e == ext);
    rules.iter().any(|rule| match rule {
        BypassRule::Prefix(prefix) => covers(prefix, path),
        BypassRule::Extension(ext) => static_read && extension_is(ext),
        BypassRule::ScopedExtension { prefix, extension } => {
            static_read && covers(prefix, path) && extension_is(extension)
        }
        BypassRule::Network(net) => net.contains(&client),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_path_normalize_alike() {
        for raw in [
            "/tickets/1",
            "/Tickets/1",
            "//tickets//1",
            "/x/../tickets/1",
            "/tick%65ts/1",
            "\\tickets\\1",
            "/tickets;jsessionid=9/1",
            "/./tickets/1/",
            "/A/%2E%2E/tickets/1",
            "/a/b/..;x/../tickets/1",
            "/tickets%5C1",
        ] {
            assert_eq!(normalize_path(raw), "/tickets/1", "{raw}");
        }
        assert_eq!(normalize_path("/../../"), "/");
        assert_eq!(normalize_path("/%zz"), "/%zz");
        assert_eq!(normalize_path("/a%"), "/a%");
        // Beyond ASCII, lowercased as Unicode; bytes that are not UTF-8 stay replaced.
        assert_eq!(normalize_path("/ÄRGER/Straße"), "/ärger/straße");
        assert_eq!(normalize_path("/%C3%84/%FF"), "/ä/\u{fffd}");
    }

    #[test]
    fn a_canonical_path_is_its_own_normalized_and_literal_form() {
        // Every path of up to five characters over an alphabet of the characters that
        // matter to either form: the fast path never routes differently.
        const ALPHABET: [char; 10] = ['/', '.', 'a', 'A', '%', '2', 'e', ';', '\\', '-'];
        let mut canonical = 0;
        let mut stack = vec![String::new()];
        while let Some(path) = stack.pop() {
            if is_canonical(&path) {
                canonical += 1;
                assert_eq!(normalize_path(&path), path, "normalized {path:?}");
                assert_eq!(literal_path(&path), path, "literal {path:?}");
            }
            if path.chars().count() < 5 {
                stack.extend(ALPHABET.iter().map(|c| format!("{path}{c}")));
            }
        }
        assert!(canonical > 100, "{canonical}");
        for raw in ["/tickets/1", "/", "/a.b/c-d_e~f"] {
            assert!(is_canonical(raw), "{raw}");
        }
        for raw in ["", "tickets", "/Tickets", "/tickets/", "//t", "/t/./u", "/t/..", "/t%41", "/t;x", "/ä"] {
            assert!(!is_canonical(raw), "{raw}");
        }
    }

    #[test]
    fn prefixes_cover_whole_segments() {
        assert!(covers("/tickets", "/tickets"));
        assert!(covers("/tickets", "/tickets/42"));
        assert!(!covers("/tickets", "/ticketsx"));
        assert!(covers("/", "/anything"));
    }

    #[test]
    fn bypass_by_prefix_extension_or_network() {
        let rules: Vec<BypassRule> =
            ["/static", ".css", "/assets/*.png", "10.0.0.0/8"].iter().map(|r| BypassRule::parse(r).unwrap()).collect();
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        let get = &Method::GET;
        assert!(bypassed(&rules, get, "/static/app.js", outside));
        assert!(bypassed(&rules, get, "/tickets/site.css", outside));
        assert!(bypassed(&rules, &Method::HEAD, "/tickets/site.css", outside));
        assert!(!bypassed(&rules, &Method::POST, "/tickets/site.css", outside), "extensions: GET and HEAD only");
        assert!(bypassed(&rules, get, "/assets/logo.png", outside));
        assert!(!bypassed(&rules, get, "/tickets/logo.png", outside), "a scoped extension stays in its prefix");
        assert!(!bypassed(&rules, &Method::POST, "/assets/logo.png", outside));
        assert!(!bypassed(&rules, get, "/tickets/buy", outside));
        assert!(!bypassed(&rules, get, "/staticx/buy", outside));
        assert!(!bypassed(&rules, get, &normalize_path("/tickets/buy;x.css"), outside));
        assert!(bypassed(&rules, &Method::POST, "/tickets/buy", "10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn the_literal_form_keeps_what_the_normalized_one_resolves() {
        assert_eq!(literal_path("/Tickets//%2e%2e/buy"), "/tickets/%2e%2e/buy");
        assert_eq!(literal_path("/tickets/..;x/buy"), "/tickets/..;x/buy");
        assert_eq!(literal_path(""), "/");
        assert_eq!(normalize_path("/tickets/..;x/buy"), "/buy");
        assert_eq!(normalize_path("/tickets/42%2F..%2F..%2Fbuy"), "/buy");
    }

    #[test]
    fn host_names_lose_their_port_case_and_trailing_dot() {
        assert_eq!(host_name("Shop.Example:8080"), "shop.example");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("shop.example"), "shop.example");
        assert_eq!(host_name("shop.example."), "shop.example");
        assert_eq!(host_name("SHOP.example.:443"), "shop.example");
        assert_eq!(host_name(" shop.example: "), "shop.example");
        assert_eq!(host_name("[::1]"), "[::1]");
        assert_eq!(host_name("127.0.0.1:18082"), "127.0.0.1");
        assert_eq!(host_name("shop:x"), "shop:x", "not a port");
    }

    #[test]
    fn a_request_names_exactly_one_host() {
        let headers = |hosts: &[&str]| {
            let mut h = HeaderMap::new();
            for host in hosts {
                h.append(header::HOST, host.parse().unwrap());
            }
            h
        };
        let plain: Uri = "/tickets".parse().unwrap();
        let absolute: Uri = "https://shop.example/tickets".parse().unwrap();
        let shop = Ok(Cow::Borrowed("shop.example"));
        assert_eq!(request_host(&plain, &headers(&["Shop.Example."])), shop);
        assert_eq!(request_host(&absolute, &headers(&[])), shop);
        assert_eq!(request_host(&absolute, &headers(&["shop.example:443"])), shop);
        assert_eq!(request_host(&absolute, &headers(&["other.example"])), Err(HostProblem::Mismatch));
        assert_eq!(request_host(&plain, &headers(&[])), Err(HostProblem::Missing));
        assert_eq!(request_host(&plain, &headers(&[""])), Err(HostProblem::Missing));
        assert_eq!(request_host(&plain, &headers(&["a", "b"])), Err(HostProblem::Repeated));
    }
}
