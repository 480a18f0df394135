//! anteroom's own error answers a buyer can meet (the shop busy, unreachable or slow; a
//! request too large), each with a machine-readable code. The room renders them as a
//! small page in the queue page's style and the buyer's language, as JSON for JSON
//! clients, or as one line of text for everything else.

use http::{header, HeaderMap, HeaderValue, StatusCode};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// 503: the origin's request rate is used up (shed).
    ShopBusy,
    /// 503: the origin has as many requests in flight as it may (shed).
    ShopAtCapacity,
    /// 502: no connection to the origin, or it broke the exchange.
    ShopUnreachable,
    /// 504: the origin did not answer within `response_timeout`.
    ShopTimeout,
    /// 431: the request's headers are over `max_header_bytes`.
    HeadersTooLarge,
    /// 413: the request's body is over `max_body_bytes`.
    BodyTooLarge,
}

impl Problem {
    #[cfg(test)]
    pub(crate) const ALL: [Problem; 6] = [
        Problem::ShopBusy,
        Problem::ShopAtCapacity,
        Problem::ShopUnreachable,
        Problem::ShopTimeout,
        Problem::HeadersTooLarge,
        Problem::BodyTooLarge,
    ];

    pub(crate) fn status(self) -> StatusCode {
        match self {
            Problem::ShopBusy | Problem::ShopAtCapacity => StatusCode::SERVICE_UNAVAILABLE,
            Problem::ShopUnreachable => StatusCode::BAD_GATEWAY,
            Problem::ShopTimeout => StatusCode::GATEWAY_TIMEOUT,
            Problem::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Problem::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The `error` of the JSON answer (docs/API.md): stable, for programs.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Problem::ShopBusy => "shop_busy",
            Problem::ShopAtCapacity => "shop_at_capacity",
            Problem::ShopUnreachable => "shop_unreachable",
            Problem::ShopTimeout => "shop_timeout",
            Problem::HeadersTooLarge => "headers_too_large",
            Problem::BodyTooLarge => "body_too_large",
        }
    }

    /// One line in English: the text answer and the JSON `message`.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Problem::ShopBusy => "the shop is busy; please retry shortly",
            Problem::ShopAtCapacity => "the shop is at capacity; please retry shortly",
            Problem::ShopUnreachable => "the shop could not be reached; please retry shortly",
            Problem::ShopTimeout => "the shop took too long to answer; please retry shortly",
            Problem::HeadersTooLarge => "request headers too large",
            Problem::BodyTooLarge => "request body too large",
        }
    }

    /// The page texts' key stem: `error_{stem}_title`, `error_{stem}_body`.
    pub(crate) fn texts(self) -> &'static str {
        match self {
            Problem::ShopBusy | Problem::ShopAtCapacity => "busy",
            Problem::ShopUnreachable => "unreachable",
            Problem::ShopTimeout => "timeout",
            Problem::HeadersTooLarge => "headers",
            Problem::BodyTooLarge => "body",
        }
    }
}

/// What a request asked for, kept (two header values) until anteroom may have to answer
/// it with a problem after the request itself has gone to the shop.
#[derive(Clone, Debug, Default)]
pub(crate) struct Asked {
    pub accept: Option<HeaderValue>,
    pub accept_language: Option<HeaderValue>,
    /// GET or HEAD: repeating it is harmless, so a page may retry by itself.
    pub repeatable: bool,
}

impl Asked {
    pub(crate) fn of(method: &http::Method, headers: &HeaderMap) -> Self {
        Self {
            accept: headers.get(header::ACCEPT).cloned(),
            accept_language: headers.get(header::ACCEPT_LANGUAGE).cloned(),
            repeatable: method == http::Method::GET || method == http::Method::HEAD,
        }
    }

    fn accept(&self) -> &str {
        self.accept.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// JSON: asked for, and not for a page (as the queued answer decides).
    pub(crate) fn json(&self) -> bool {
        let accept = self.accept();
        accept.contains("application/json") && !accept.contains("text/html")
    }

    /// A browser's navigation asks for `text/html`.
    pub(crate) fn html(&self) -> bool {
        self.accept().contains("text/html")
    }

    pub(crate) fn language(&self) -> Option<&str> {
        self.accept_language.as_ref().and_then(|v| v.to_str().ok())
    }
}
