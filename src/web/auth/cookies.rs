//! The two cookies of sign-in, and what a request tells about its client.
//!
//! - `pglab_session`: the session token; HttpOnly (scripts never see it),
//!   SameSite=Lax (not sent on cross-site POSTs), Path=/, Secure over HTTPS.
//!   No Max-Age: the store enforces the sliding expiry.
//! - `pglab_csrf`: the double-submit CSRF value, readable by `static/js/api.js`
//!   which echoes it in `X-CSRF-Token`.
//! - `pglab_oidc` and `pglab_oidc_join`, only under `/auth/oidc/` and for a
//!   few minutes: the key binding a sign-in through the OpenID provider to
//!   this browser, and the key of a new identity waiting for its join code.
//!   HttpOnly and SameSite=Lax (the provider's redirect back is a top-level
//!   GET, which Lax cookies accompany).

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, header};

use crate::auth::AuthConfig;

/// Name of the session cookie.
pub const SESSION: &str = "pglab_session";
/// Name of the CSRF cookie.
pub const CSRF: &str = "pglab_csrf";
/// Name of the cookie binding an OpenID Connect sign-in to its browser.
pub const OIDC: &str = "pglab_oidc";
/// Name of the cookie of an OpenID Connect sign-in waiting for a join code.
pub const OIDC_JOIN: &str = "pglab_oidc_join";
/// Path of the OpenID Connect cookies.
const OIDC_PATH: &str = "/auth/oidc";

/// The value of cookie `name` in the request, if any.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

/// Whether the client reached us over HTTPS: a configured https public URL,
/// or a proxy saying so in `X-Forwarded-Proto` (adding Secure is always safe,
/// so this header is believed even without `--trust-proxy`).
pub fn is_https(headers: &HeaderMap, config: &AuthConfig) -> bool {
    config.public_https()
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn build(
    name: &str,
    value: &str,
    http_only: bool,
    secure: bool,
    max_age: Option<i64>,
) -> HeaderValue {
    build_at(name, value, "/", http_only, secure, max_age)
}

fn build_at(
    name: &str,
    value: &str,
    path: &str,
    http_only: bool,
    secure: bool,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; SameSite=Lax");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    // Values are our own hex tokens: always a valid header value.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("pglab_invalid=1"))
}

/// `Set-Cookie` for a new session token.
pub fn session(token: &str, secure: bool) -> HeaderValue {
    build(SESSION, token, true, secure, None)
}

/// `Set-Cookie` for the CSRF value.
pub fn csrf(value: &str, secure: bool) -> HeaderValue {
    build(CSRF, value, false, secure, None)
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session(secure: bool) -> HeaderValue {
    build(SESSION, "", true, secure, Some(0))
}

/// `Set-Cookie` for an OpenID Connect cookie (`OIDC` or `OIDC_JOIN`) living
/// `max_age` seconds; 0 removes it.
pub fn oidc(name: &str, value: &str, secure: bool, max_age: i64) -> HeaderValue {
    build_at(name, value, OIDC_PATH, true, secure, Some(max_age))
}

/// The client's address: the socket peer, or with `--trust-proxy` the
/// address our proxy appended last to `X-Forwarded-For` (one proxy hop;
/// entries further left are whatever the client claimed).
pub fn client_addr(
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    config: &AuthConfig,
) -> String {
    if config.trust_proxy
        && let Some(forwarded) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    {
        return forwarded.to_string();
    }
    peer.map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cookies() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; pglab_csrf=abc"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("pglab_session=tok"),
        );
        assert_eq!(get(&h, CSRF).as_deref(), Some("abc"));
        assert_eq!(get(&h, SESSION).as_deref(), Some("tok"));
        assert_eq!(get(&h, "nope"), None);
    }

    #[test]
    fn cookie_attributes() {
        let s = session("t", true);
        assert_eq!(
            s.to_str().unwrap(),
            "pglab_session=t; Path=/; SameSite=Lax; HttpOnly; Secure"
        );
        let c = csrf("v", false);
        assert_eq!(c.to_str().unwrap(), "pglab_csrf=v; Path=/; SameSite=Lax");
    }
}
