//! The body type every response uses, and builders for anteroom's own answers.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One body type for origin streams and local answers alike.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// An answer produced by anteroom itself: never cached.
fn own(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A short plain-text answer.
pub(crate) fn text(status: StatusCode, message: &str) -> Response<Body> {
    own(status, format!("{message}\n"), "text/plain; charset=utf-8")
}

/// A page.
pub(crate) fn html(status: StatusCode, page: String) -> Response<Body> {
    own(status, page, "text/html; charset=utf-8")
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: String) -> Response<Body> {
    own(status, body, "application/json")
}

/// `{"error": message}` with `status`.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, serde_json::json!({ "error": message }).to_string())
}

/// Keeps `guard` alive until the body is finished or dropped (e.g. an in-flight slot that
/// must cover the whole response, not just its headers).
pub(crate) fn hold<G: Send + 'static>(body: Body, guard: G) -> Body {
    Guarded { inner: body, _guard: guard }.boxed_unsync()
}

pin_project_lite::pin_project! {
    struct Guarded<G> {
        #[pin]
        inner: Body,
        _guard: G,
    }
}

impl<G> http_body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
