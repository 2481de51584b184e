//! Answering bytes prepared once (`course::prepared::Prepared`): lesson pages
//! (`web::lessons`) and static files (`web::static_files`) share it, so both
//! send the same validators and encodings.
//!
//! `If-None-Match` naming the version → 304 with no body; else the gzip
//! bytes when the client takes gzip (and they are smaller), or the bytes as
//! they are. Every answer carries the ETag, `Vary: Accept-Encoding` and the
//! caller's `Cache-Control`. A body already encoded is left alone by the
//! router's compression layer, so nothing is compressed per request.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::course::prepared::Prepared;

/// The answer to a GET (or HEAD) of `prepared`, sent as `content_type` with
/// `cache_control`, for a request with `headers`.
pub fn respond(
    prepared: &Prepared,
    headers: &HeaderMap,
    content_type: HeaderValue,
    cache_control: HeaderValue,
) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| prepared.matches(v));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let gzip = prepared.gzip.as_ref().filter(|_| accepts_gzip(headers));
        let mut res = Response::new(Body::from(gzip.unwrap_or(&prepared.body).clone()));
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, content_type);
        if gzip.is_some() {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        res
    };
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, cache_control);
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(etag) = HeaderValue::from_str(&prepared.etag) {
        h.insert(header::ETAG, etag);
    }
    res
}

/// Whether `Accept-Encoding` takes gzip (and does not refuse it with q=0).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut bits = part.split(';').map(str::trim);
            let coding = bits.next().unwrap_or("");
            let refused = bits.any(|b| {
                b.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        let accept = |v: &str| accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, v)]));
        assert!(accept("gzip"));
        assert!(accept("br, GZIP;q=0.5"));
        assert!(accept("*"));
        assert!(!accept("gzip;q=0"));
        assert!(!accept("br, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn answers_304_gzip_or_plain() {
        let p = Prepared::new("body { color: red }\n".repeat(50));
        let css = || HeaderValue::from_static("text/css");
        let cache = || HeaderValue::from_static("public, max-age=3600");
        let plain = respond(&p, &HeaderMap::new(), css(), cache());
        assert_eq!(plain.status(), 200);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(plain.headers()[header::ETAG], p.etag.as_str());
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
        assert_eq!(plain.headers()[header::CONTENT_TYPE], "text/css");
        let gz = respond(
            &p,
            &headers(&[(header::ACCEPT_ENCODING, "gzip")]),
            css(),
            cache(),
        );
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gz.headers()[header::CACHE_CONTROL], "public, max-age=3600");
        let again = respond(
            &p,
            &headers(&[
                (header::IF_NONE_MATCH, &p.etag),
                (header::ACCEPT_ENCODING, "gzip"),
            ]),
            css(),
            cache(),
        );
        assert_eq!(again.status(), 304);
        assert_eq!(again.headers()[header::ETAG], p.etag.as_str());
        // A file gzip does not shrink goes as it is, whatever is accepted.
        let tiny = Prepared::new("x");
        let res = respond(
            &tiny,
            &headers(&[(header::ACCEPT_ENCODING, "gzip")]),
            css(),
            cache(),
        );
        assert!(res.headers().get(header::CONTENT_ENCODING).is_none());
    }
}
