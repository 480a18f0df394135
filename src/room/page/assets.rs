//! The page's CSS and script, embedded in the binary and served from
//! `/_anteroom/assets/NAME`. Pages link them as `NAME?v=HASH`, so they can be cached for a
//! year: a new build changes the hash.

use crate::response::{empty, full, Body};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use std::sync::OnceLock;

pub(crate) const PREFIX: &str = "/_anteroom/assets/";

const FILES: [(&str, &str, &str); 3] = [
    ("queue.css", "text/css; charset=utf-8", include_str!("assets/queue.css")),
    ("queue.js", "text/javascript; charset=utf-8", include_str!("assets/queue.js")),
    ("pow.js", "text/javascript; charset=utf-8", include_str!("assets/pow.js")),
];

/// FNV-1a, enough to tell builds apart.
fn hash(content: &str) -> String {
    let h = content.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{h:016x}")
}

fn hashes() -> &'static Vec<String> {
    static HASHES: OnceLock<Vec<String>> = OnceLock::new();
    HASHES.get_or_init(|| FILES.iter().map(|(_, _, content)| hash(content)).collect())
}

/// The versioned URL of an asset.
pub(crate) fn url(name: &str) -> String {
    let version = FILES.iter().position(|(n, _, _)| *n == name).map_or("", |i| hashes()[i].as_str());
    format!("{PREFIX}{name}?v={version}")
}

/// The total size of the page's assets, in bytes (the page-weight test).
#[cfg(test)]
pub(crate) fn total_bytes() -> usize {
    FILES.iter().map(|(_, _, content)| content.len()).sum()
}

/// Serves `path` (under [`PREFIX`]) if it names an asset.
pub(crate) fn serve(path: &str, request: &HeaderMap) -> Option<Response<Body>> {
    let name = path.strip_prefix(PREFIX)?;
    let i = FILES.iter().position(|(n, _, _)| *n == name)?;
    let (_, content_type, content) = FILES[i];
    let etag = format!("\"{}\"", hashes()[i]);
    let fresh = request.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut answer = if fresh {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(full(content))
    };
    let headers = answer.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    Some(answer)
}
