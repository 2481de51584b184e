//! Browser security headers on every response: the Content-Security-Policy,
//! framing, MIME sniffing, referrer, permissions, opener isolation and (with
//! an https `--public-url`) HSTS, plus the endpoint browsers send CSP
//! violation reports to.
//!
//! The policy allows scripts, styles, images, fonts and connections from
//! pglab's own origin only: no inline script, no `eval`, no inline `style`
//! attribute. One exception, on the pages that can open the sandbox terminal
//! or the editor (lessons, `/terminal`, an instructor's watch page,
//! `/console`, `/sandbox/compose`): xterm.js and CodeMirror render with
//! `<style>` elements they create themselves, so there `style-src-elem` also
//! allows inline style elements (still no inline script and no style
//! attributes). `docs/security.md` states the policy.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::app::AppState;

/// Where browsers send violation reports (`report-uri`).
pub const REPORT_PATH: &str = "/api/csp-report";

/// The headers every response gets, computed once at start-up.
#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    /// The policy of every page.
    csp: HeaderValue,
    /// The policy of pages that can open the terminal (see the module doc).
    csp_terminal: HeaderValue,
    /// The rest, the same for every response.
    fixed: Vec<(HeaderName, HeaderValue)>,
}

/// What the framing settings allow: `'none'` (the default) or a list of
/// origins an LMS embeds pglab from.
fn frame_ancestors(setting: &str) -> String {
    let setting = setting.trim();
    if setting.is_empty() {
        "'none'".into()
    } else {
        setting.to_string()
    }
}

/// Parses `--frame-ancestors`: CSP sources separated by spaces (`'none'`,
/// `'self'`, `https://lms.example.org`), nothing that could end the directive.
pub fn parse_frame_ancestors(value: &str) -> Result<String, String> {
    let ancestors = frame_ancestors(value);
    if ancestors
        .chars()
        .any(|c| c == ';' || c == ',' || c.is_control() || !c.is_ascii())
    {
        return Err(format!(
            "{ancestors:?}: give CSP sources separated by spaces (e.g. 'self' https://lms.example.org)"
        ));
    }
    Ok(ancestors)
}

impl SecurityHeaders {
    /// Builds the headers from `--frame-ancestors` and whether the public URL
    /// is https. Fails on a framing setting that cannot be a header value.
    pub fn new(frame_ancestors_setting: &str, https: bool) -> Result<Self, String> {
        let ancestors = parse_frame_ancestors(frame_ancestors_setting)?;
        let base = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors {ancestors}; report-uri {REPORT_PATH}"
        );
        let terminal = format!("{base}; style-src-elem 'self' 'unsafe-inline'");
        let value = |s: &str| HeaderValue::from_str(s).map_err(|e| format!("{s:?}: {e}"));
        let mut fixed = vec![
            (header::X_CONTENT_TYPE_OPTIONS, value("nosniff")?),
            (header::REFERRER_POLICY, value("same-origin")?),
            (
                HeaderName::from_static("permissions-policy"),
                value(
                    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), \
                     gyroscope=(), hid=(), magnetometer=(), microphone=(), midi=(), payment=(), \
                     serial=(), usb=(), browsing-topics=()",
                )?,
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                value("same-origin")?,
            ),
            (
                HeaderName::from_static("cross-origin-resource-policy"),
                value("same-origin")?,
            ),
        ];
        // X-Frame-Options can only say "nowhere" or "same origin": it is sent
        // when framing is off, and left to frame-ancestors otherwise.
        if ancestors == "'none'" {
            fixed.push((header::X_FRAME_OPTIONS, value("DENY")?));
        }
        if https {
            fixed.push((
                header::STRICT_TRANSPORT_SECURITY,
                value("max-age=31536000; includeSubDomains")?,
            ));
        }
        Ok(Self {
            csp: value(&base)?,
            csp_terminal: value(&terminal)?,
            fixed,
        })
    }

    /// The headers with framing off and no HSTS.
    pub fn strict() -> Self {
        // `'none'` is a valid setting: `new` cannot refuse it.
        Self::new("'none'", false).unwrap_or_else(|_| unreachable!())
    }

    /// The policy for a request path.
    fn csp_for(&self, path: &str) -> &HeaderValue {
        if opens_terminal(path) || opens_editor(path) {
            &self.csp_terminal
        } else {
            &self.csp
        }
    }
}

/// Whether the page at `path` has pglab's CodeMirror editor (lessons have it
/// too, through their docked console).
fn opens_editor(path: &str) -> bool {
    path == "/console" || path == "/sandbox/compose"
}

/// Whether the page at `path` can open the sandbox terminal (xterm.js).
fn opens_terminal(path: &str) -> bool {
    path.starts_with("/sections/")
        || path == "/terminal"
        || (path.starts_with("/instructor/learners/") && path.ends_with("/terminal"))
}

/// The layer: adds the headers to every response that does not set its own.
pub async fn apply(
    State(headers): State<Arc<SecurityHeaders>>,
    req: Request,
    next: Next,
) -> Response {
    let csp = headers.csp_for(req.uri().path()).clone();
    let mut res = next.run(req).await;
    let out = res.headers_mut();
    out.entry(header::CONTENT_SECURITY_POLICY).or_insert(csp);
    for (name, value) in &headers.fixed {
        out.entry(name.clone()).or_insert_with(|| value.clone());
    }
    res
}

/// How many reports a minute are logged; all are counted.
const LOGGED_PER_MINUTE: u32 = 20;

/// Whether this report may be logged: anyone can send reports, and a flood
/// must not flood the log.
fn may_log() -> bool {
    static WINDOW: Mutex<Option<(Instant, u32)>> = Mutex::new(None);
    let Ok(mut window) = WINDOW.lock() else {
        return false;
    };
    let now = Instant::now();
    let (start, count) = window.get_or_insert((now, 0));
    if now.duration_since(*start) >= Duration::from_secs(60) {
        (*start, *count) = (now, 0);
    }
    *count += 1;
    *count <= LOGGED_PER_MINUTE
}

/// `POST /api/csp-report`: a browser's report of a blocked resource. Counted
/// in `pglab_csp_violations_total` and logged (a few hundred bytes, at most
/// [`LOGGED_PER_MINUTE`] a minute), so an operator sees a page the policy
/// breaks; answers 204 whatever the body is.
async fn report(body: Bytes) -> Response {
    crate::metrics::csp_violation();
    if may_log() {
        let text = String::from_utf8_lossy(&body[..body.len().min(2048)]);
        let summary: String = text.chars().filter(|c| !c.is_control()).take(600).collect();
        tracing::warn!(report = %summary, "a browser reported a Content-Security-Policy violation");
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The report route; its body is capped at 16 KiB.
pub fn router() -> Router<AppState> {
    Router::new().route(
        REPORT_PATH,
        post(report).layer(axum::extract::DefaultBodyLimit::max(16 * 1024)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_by_default_and_relaxed_only_for_terminal_styles() {
        let h = SecurityHeaders::new("", false).unwrap();
        let csp = h.csp_for("/").to_str().unwrap();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        let editor = h.csp_for("/console").to_str().unwrap();
        assert!(
            editor.ends_with("style-src-elem 'self' 'unsafe-inline'"),
            "{editor}"
        );
        assert!(!editor.contains("script-src 'self' 'unsafe"), "{editor}");
        assert!(!h.csp_for("/api/sql").to_str().unwrap().contains("unsafe"));
        assert_eq!(h.csp_for("/sandbox/compose"), h.csp_for("/console"));
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        let term = h.csp_for("/sections/14-x").to_str().unwrap();
        assert!(
            term.ends_with("style-src-elem 'self' 'unsafe-inline'"),
            "{term}"
        );
        assert!(!term.contains("script-src 'self' 'unsafe"), "{term}");
        assert!(h.fixed.iter().any(|(n, _)| n == header::X_FRAME_OPTIONS));
        assert!(
            !h.fixed
                .iter()
                .any(|(n, _)| n == header::STRICT_TRANSPORT_SECURITY)
        );
    }

    #[test]
    fn lms_framing_and_https() {
        let h = SecurityHeaders::new("https://lms.example.org", true).unwrap();
        let csp = h.csp_for("/").to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors https://lms.example.org;"),
            "{csp}"
        );
        assert!(!h.fixed.iter().any(|(n, _)| n == header::X_FRAME_OPTIONS));
        assert!(
            h.fixed
                .iter()
                .any(|(n, _)| n == header::STRICT_TRANSPORT_SECURITY)
        );
        assert!(SecurityHeaders::new("x; script-src *", false).is_err());
    }

    #[test]
    fn terminal_pages() {
        assert!(opens_terminal("/terminal"));
        assert!(opens_terminal("/instructor/learners/7/terminal"));
        assert!(!opens_terminal("/terminals"));
        assert!(!opens_terminal("/instructor/learners/7"));
    }
}
