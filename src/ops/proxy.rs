//! Running behind a reverse proxy (Caddy, nginx) that terminates TLS.
//!
//! The proxy talks plain HTTP to pglab, so pglab cannot see by itself that a
//! learner used HTTPS. Two settings tell it:
//! - `--trust-proxy` (`PGLAB_TRUST_PROXY`): believe the proxy's
//!   `X-Forwarded-Proto` (or `Forwarded: proto=`) header. Off by default,
//!   because without a proxy in front anyone could send that header;
//! - `--public-url` (`PGLAB_PUBLIC_URL`): the address learners type, used for
//!   links pglab prints or sends; an `https://` public URL means every
//!   request came through TLS.
//!
//! The accounts code asks [`request_is_https`] whether to mark cookies
//! `Secure`, and [`public_base_url`] for absolute links.

use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::config::ServeConfig;

/// Whether the learner's browser reached us over HTTPS (through the proxy).
pub fn request_is_https(parts: &Parts, config: &ServeConfig) -> bool {
    headers_say_https(&parts.headers, config)
}

/// [`request_is_https`] for code that holds only the headers.
pub fn headers_say_https(headers: &HeaderMap, config: &ServeConfig) -> bool {
    if config
        .public_url()
        .is_some_and(|url| url.starts_with("https://"))
    {
        return true;
    }
    config.auth.trust_proxy
        && forwarded_proto(headers).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The scheme the first proxy saw: the first `X-Forwarded-Proto` value, else
/// the first `proto=` of `Forwarded` (RFC 7239).
fn forwarded_proto(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        return value.split(',').next().map(|p| p.trim().to_string());
    }
    let forwarded = headers.get("forwarded")?.to_str().ok()?;
    let first_hop = forwarded.split(',').next()?;
    first_hop.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("proto")
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

/// The base URL for absolute links, without a trailing slash: the configured
/// public URL, else what the request says (`Host`, and the scheme per
/// [`request_is_https`]), else the bind address.
pub fn public_base_url(parts: &Parts, config: &ServeConfig) -> String {
    if let Some(url) = config.public_url() {
        return url.to_string();
    }
    let scheme = if request_is_https(parts, config) {
        "https"
    } else {
        "http"
    };
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| config.bind.to_string());
    format!("{scheme}://{host}")
}

/// Checks a `--public-url` value: an absolute http(s) URL with a host; the
/// trailing slash is dropped so that `format!("{base}/path")` is right. Empty
/// means unset (see `ServeConfig::public_url`).
pub fn parse_public_url(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    let trimmed = value.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| format!("{value:?} must start with https:// or http://"))?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(format!(
            "{value:?} must be like https://pglab.example.org (a host, an optional path)"
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::Request;
    use clap::Parser;

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        config: ServeConfig,
    }

    fn config(args: &[&str]) -> ServeConfig {
        let mut argv = vec!["pglab"];
        argv.extend_from_slice(args);
        TestCli::try_parse_from(argv).unwrap().config
    }

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::builder().uri("/x");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn forwarded_proto_counts_only_when_the_proxy_is_trusted() {
        let https = parts(&[("x-forwarded-proto", "https")]);
        assert!(!request_is_https(&https, &config(&[])));
        assert!(request_is_https(&https, &config(&["--trust-proxy"])));
        let http = parts(&[("x-forwarded-proto", "http")]);
        assert!(!request_is_https(&http, &config(&["--trust-proxy"])));
        assert!(!request_is_https(&parts(&[]), &config(&["--trust-proxy"])));
    }

    #[test]
    fn first_hop_wins_and_forwarded_is_understood() {
        let trusted = config(&["--trust-proxy"]);
        assert!(request_is_https(
            &parts(&[("x-forwarded-proto", "https, http")]),
            &trusted
        ));
        assert!(request_is_https(
            &parts(&[("forwarded", "for=1.2.3.4;proto=https;host=a, proto=http")]),
            &trusted
        ));
        assert!(!request_is_https(
            &parts(&[("forwarded", "for=1.2.3.4;proto=http")]),
            &trusted
        ));
    }

    #[test]
    fn an_https_public_url_means_https_and_gives_links() {
        let cfg = config(&["--public-url", "https://pglab.example.org/"]);
        assert!(request_is_https(&parts(&[]), &cfg));
        assert_eq!(
            public_base_url(&parts(&[("host", "evil.example")]), &cfg),
            "https://pglab.example.org"
        );
        let behind = config(&["--trust-proxy"]);
        assert_eq!(
            public_base_url(
                &parts(&[("host", "lab.school.org"), ("x-forwarded-proto", "https")]),
                &behind
            ),
            "https://lab.school.org"
        );
    }

    #[test]
    fn public_urls_are_checked() {
        assert_eq!(
            parse_public_url("https://a.example/pglab/").unwrap(),
            "https://a.example/pglab"
        );
        assert!(parse_public_url("pglab.example.org").is_err());
        let unset = config(&["--public-url", ""]);
        assert_eq!(unset.public_url(), None);
        assert!(parse_public_url("https://").is_err());
    }

    #[test]
    fn trust_proxy_takes_an_optional_boolish_value() {
        let parsed = TestCli::try_parse_from(["pglab", "--trust-proxy=false"]).unwrap();
        assert!(!parsed.config.auth.trust_proxy);
        let parsed = TestCli::try_parse_from(["pglab", "--trust-proxy=yes"]).unwrap();
        assert!(parsed.config.auth.trust_proxy);
    }
}
