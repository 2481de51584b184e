//! Browser security headers on every kind of response the real server
//! sends (pages, API answers, static files, 404s, CSRF refusals), the
//! framing and HSTS settings, and the CSP report endpoint.

#![allow(clippy::unwrap_used)]

mod common;

use common::{ServerOptions, TestServer, client, metric, pglab, signed_in_learner};

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{} has no {name} header", res.url()))
        .to_str()
        .unwrap()
}

/// The headers every response must carry, whatever produced it.
fn assert_strict(res: &reqwest::Response) {
    let csp = header(res, "content-security-policy");
    for part in [
        "default-src 'self'",
        "script-src 'self';",
        "style-src 'self';",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{}: {csp} lacks {part}", res.url());
    }
    assert!(
        !csp.contains("unsafe-eval") && !csp.contains("script-src 'self' 'unsafe"),
        "{}: {csp}",
        res.url()
    );
    assert_eq!(header(res, "x-content-type-options"), "nosniff");
    assert_eq!(header(res, "x-frame-options"), "DENY");
    assert_eq!(header(res, "referrer-policy"), "same-origin");
    assert_eq!(header(res, "cross-origin-opener-policy"), "same-origin");
    let perms = header(res, "permissions-policy");
    assert!(
        perms.contains("camera=()") && perms.contains("microphone=()"),
        "{perms}"
    );
    assert!(res.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn every_kind_of_response_carries_the_headers() {
    let server = TestServer::start_with(ServerOptions {
        extra_args: vec!["--metrics-secret".into(), "csp-secret".into()],
        ..ServerOptions::default()
    });
    let http = client();
    for path in [
        "/",
        "/healthz",
        "/login",
        "/static/js/api.js",
        "/no/such/page",
        "/api/me",
        "/sections/14-postgresql-production-labs",
    ] {
        let res = http.get(server.url(path)).send().await.unwrap();
        assert_strict(&res);
    }
    // The lesson page may open the terminal, whose emulator makes its own
    // <style> elements: only style elements are relaxed there, not scripts.
    let lesson = http
        .get(server.url("/sections/14-postgresql-production-labs"))
        .send()
        .await
        .unwrap();
    assert!(
        header(&lesson, "content-security-policy")
            .ends_with("style-src-elem 'self' 'unsafe-inline'")
    );
    // The console's CodeMirror editor injects <style> elements: the same
    // relaxation as the terminal, styles only.
    let console = http.get(server.url("/console")).send().await.unwrap();
    let console_csp = header(&console, "content-security-policy");
    assert!(console_csp.ends_with("style-src-elem 'self' 'unsafe-inline'"));
    assert!(console_csp.contains("script-src 'self';"));
    let home = http.get(server.url("/login")).send().await.unwrap();
    assert!(!header(&home, "content-security-policy").contains("unsafe"));

    // A refused state-changing request (no CSRF token) still has them.
    let learner = signed_in_learner(&server, "hdr-learner").await;
    let refused = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
        .post(server.url("/api/logout"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(refused.status().is_client_error());
    assert_strict(&refused);
    let me = learner.get(server.url("/api/me")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_strict(&me);

    // The report endpoint takes a browser's report without a CSRF token,
    // counts it, and refuses a body over its cap.
    let before: u64 = metric(&server, "csp-secret", "pglab_csp_violations_total")
        .await
        .parse()
        .unwrap();
    let report = http
        .post(server.url("/api/csp-report"))
        .header("content-type", "application/csp-report")
        .body(
            r#"{"csp-report":{"document-uri":"http://x/","violated-directive":"script-src-elem"}}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 204);
    let after: u64 = metric(&server, "csp-secret", "pglab_csp_violations_total")
        .await
        .parse()
        .unwrap();
    assert_eq!(after, before + 1);
    let huge = http
        .post(server.url("/api/csp-report"))
        .header("content-type", "application/csp-report")
        .body(vec![b'x'; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
}

#[tokio::test]
async fn framing_setting_and_https_public_url() {
    let server = TestServer::start_with(ServerOptions {
        extra_args: vec![
            "--frame-ancestors".into(),
            "'self' https://lms.example.org".into(),
            "--public-url".into(),
            "https://pglab.example.org".into(),
        ],
        ..ServerOptions::default()
    });
    let res = client().get(server.url("/")).send().await.unwrap();
    let csp = header(&res, "content-security-policy");
    assert!(
        csp.contains("frame-ancestors 'self' https://lms.example.org;"),
        "{csp}"
    );
    assert!(res.headers().get("x-frame-options").is_none());
    assert!(header(&res, "strict-transport-security").starts_with("max-age="));
}

#[test]
fn a_framing_setting_that_would_break_the_policy_is_refused() {
    let out = pglab()
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--frame-ancestors",
            "'self'; script-src *",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("frame-ancestors"), "{err}");
}
