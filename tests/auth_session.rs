//! Signing up, in and out over real HTTP: join codes, the one message for
//! wrong credentials, rate limits, cookie attributes, CSRF, bearer tokens,
//! server-side logout and session expiry.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{ServerOptions, TestServer, client, signed_in_instructor};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn no_cookies() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn new_classroom(server: &TestServer, instructor: &reqwest::Client) -> (i64, String) {
    let res = instructor
        .post(server.url("/api/instructor/classrooms"))
        .json(&json!({"name": "Morning class"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let room: Value = res.json().await.unwrap();
    (
        room["id"].as_i64().unwrap(),
        room["join_code"].as_str().unwrap().to_string(),
    )
}

async fn signup(server: &TestServer, user: &str, password: &str, code: &str) -> reqwest::Response {
    no_cookies()
        .post(server.url("/api/signup"))
        .json(&json!({"username": user, "password": password, "join_code": code}))
        .send()
        .await
        .unwrap()
}

async fn login(
    server: &TestServer,
    http: &reqwest::Client,
    user: &str,
    password: &str,
) -> reqwest::Response {
    http.post(server.url("/api/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
}

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn cookie_value(cookies: &[String], name: &str) -> String {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no {name} in {cookies:?}"))
        .to_string()
}

async fn error_of(res: reqwest::Response) -> String {
    let body: Value = res.json().await.unwrap();
    body["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn signup_needs_a_valid_open_code_and_a_free_name() {
    let server = TestServer::start();
    let prof = signed_in_instructor(&server, "prof").await;
    let (id, code) = new_classroom(&server, &prof).await;

    let ok = signup(&server, "ada", "ada-password", &code.to_lowercase()).await;
    assert_eq!(
        ok.status(),
        StatusCode::CREATED,
        "codes are case-insensitive"
    );
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["username"], "ada");
    assert!(body["id"].as_i64().is_some());

    let wrong = signup(&server, "bob", "bob-password", "NOSUCHCODE").await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(error_of(wrong).await.contains("join code is not valid"));
    let none = signup(&server, "bob", "bob-password", "").await;
    assert_eq!(none.status(), StatusCode::BAD_REQUEST);

    let taken = signup(&server, "ADA", "other-password", &code).await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert!(error_of(taken).await.contains("taken"));
    let bad_name = signup(&server, "a b", "bob-password", &code).await;
    assert_eq!(bad_name.status(), StatusCode::BAD_REQUEST);
    let short = signup(&server, "bob", "short", &code).await;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    assert!(error_of(short).await.contains("at least 8"));

    let close = prof
        .post(server.url(&format!("/api/instructor/classrooms/{id}/close")))
        .send()
        .await
        .unwrap();
    assert_eq!(close.status(), 200);
    let closed = signup(&server, "bob", "bob-password", &code).await;
    assert_eq!(closed.status(), StatusCode::FORBIDDEN);
    assert!(error_of(closed).await.contains("closed"));

    // The learner who signed up is a member and can sign in.
    let members: Value = prof
        .get(server.url(&format!("/api/instructor/classrooms/{id}/members")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(members[0]["username"], "ada");
    assert_eq!(
        login(&server, &client(), "ada", "ada-password")
            .await
            .status(),
        200
    );

    // The sign-up page works as a plain form too.
    let browser = client();
    let page = browser
        .get(server.url(&format!("/signup?code={code}")))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains(&code), "code prefilled");
    let reopen = prof
        .post(server.url(&format!("/api/instructor/classrooms/{id}/open")))
        .send()
        .await
        .unwrap();
    assert_eq!(reopen.status(), 200);
    let csrf = html.split("name=\"csrf_token\" value=\"").nth(1).unwrap()[..64].to_string();
    let done = browser
        .post(server.url("/signup"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("join_code", code.as_str()),
            ("username", "cy"),
            ("password", "cy-password"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let me: Value = browser
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "cy");
    assert_eq!(me["role"], "learner");
}

#[tokio::test]
async fn wrong_credentials_say_the_same_and_failures_are_rate_limited() {
    let server = TestServer::start_with(ServerOptions {
        extra_args: vec!["--login-failures-per-address".into(), "8".into()],
        ..Default::default()
    });
    let prof = signed_in_instructor(&server, "prof").await;
    let (_, code) = new_classroom(&server, &prof).await;
    for name in ["alice", "bob", "carol"] {
        assert_eq!(
            signup(&server, name, &format!("{name}-password"), &code)
                .await
                .status(),
            201
        );
    }
    let http = no_cookies();
    assert_eq!(
        login(&server, &http, "alice", "alice-password")
            .await
            .status(),
        200
    );

    let unknown = login(&server, &http, "nobody", "whatever-pw").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown = error_of(unknown).await;
    assert_eq!(unknown, "wrong username or password");
    // Per account: 5 failures, then even the right password waits.
    for _ in 0..4 {
        let wrong = login(&server, &http, "alice", "not-her-password").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            error_of(wrong).await,
            unknown,
            "same message for unknown user and wrong password"
        );
    }
    assert_eq!(
        login(&server, &http, "alice", "nope-nope").await.status(),
        401
    );
    let limited = login(&server, &http, "alice", "alice-password").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        error_of(limited)
            .await
            .contains("too many failed sign-ins; wait 5 minutes")
    );
    // The sign-in page says so too.
    let page = client();
    let html = page
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = html.split("name=\"csrf_token\" value=\"").nth(1).unwrap()[..64].to_string();
    let form = page
        .post(server.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        form.text()
            .await
            .unwrap()
            .contains("too many failed sign-ins")
    );

    // Other accounts still work from this address until its own limit (8).
    assert_eq!(
        login(&server, &http, "bob", "bob-password").await.status(),
        200
    );
    assert_eq!(
        login(&server, &http, "bob", "bob-wrong-1").await.status(),
        401
    );
    assert_eq!(
        login(&server, &http, "bob", "bob-wrong-2").await.status(),
        401
    );
    // 1 + 5 + 2 = 8 failures from this address: everyone here waits now,
    // and an untrusted X-Forwarded-For does not get around it.
    let res = http
        .post(server.url("/api/login"))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({"username": "carol", "password": "carol-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn cookies_are_httponly_lax_and_secure_behind_https() {
    let server = TestServer::start();
    signed_in_instructor(&server, "prof").await;
    let res = login(&server, &no_cookies(), "prof", "prof-password").await;
    assert_eq!(res.status(), 200);
    let cookies = set_cookies(&res);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("pglab_session="))
        .unwrap();
    let csrf = cookies
        .iter()
        .find(|c| c.starts_with("pglab_csrf="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{session} has {attr}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    assert!(
        csrf.contains("SameSite=Lax") && csrf.contains("Path=/"),
        "{csrf}"
    );
    assert!(
        !csrf.contains("HttpOnly"),
        "scripts read the CSRF cookie: {csrf}"
    );

    let proxied = no_cookies()
        .post(server.url("/api/login"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": "prof", "password": "prof-password"}))
        .send()
        .await
        .unwrap();
    for c in set_cookies(&proxied) {
        assert!(c.contains("; Secure"), "{c}");
    }
    // A form page sets the CSRF cookie before anyone signs in.
    let page = no_cookies().get(server.url("/login")).send().await.unwrap();
    assert!(
        set_cookies(&page)
            .iter()
            .any(|c| c.starts_with("pglab_csrf="))
    );

    // An https public URL makes every cookie Secure.
    let public = TestServer::start_with(ServerOptions {
        extra_args: vec!["--public-url".into(), "https://pglab.example.org".into()],
        ..Default::default()
    });
    let page = no_cookies().get(public.url("/login")).send().await.unwrap();
    let cookies = set_cookies(&page);
    assert!(
        cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn csrf_is_required_with_cookies_but_not_with_a_bearer_token() {
    let server = TestServer::start();
    signed_in_instructor(&server, "prof").await;
    let res = login(&server, &no_cookies(), "prof", "prof-password").await;
    let cookies = set_cookies(&res);
    let session = cookie_value(&cookies, "pglab_session");
    let csrf = cookie_value(&cookies, "pglab_csrf");
    let body: Value = res.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(body["csrf_token"], csrf.as_str());
    let http = no_cookies();
    let create = |headers: Vec<(&'static str, String)>| {
        let mut req = http
            .post(server.url("/api/instructor/classrooms"))
            .json(&json!({"name": "CSRF class"}));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let cookie = format!("pglab_session={session}; pglab_csrf={csrf}");

    let without = create(vec![("cookie", cookie.clone())]).await.unwrap();
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    assert!(error_of(without).await.contains("CSRF"));
    let wrong = create(vec![
        ("cookie", cookie.clone()),
        ("x-csrf-token", "0".repeat(64)),
    ])
    .await
    .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // A token planted in the cookie by someone else does not help either: the
    // header must match the session's own value.
    let planted = create(vec![
        (
            "cookie",
            format!("pglab_session={session}; pglab_csrf={}", "1".repeat(64)),
        ),
        ("x-csrf-token", "1".repeat(64)),
    ])
    .await
    .unwrap();
    assert_eq!(planted.status(), StatusCode::FORBIDDEN);
    let right = create(vec![
        ("cookie", cookie.clone()),
        ("x-csrf-token", csrf.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(right.status(), StatusCode::CREATED);

    // Forms carry it in a field: sign-out without it is refused.
    let logout = http
        .post(server.url("/logout"))
        .header("cookie", cookie.clone())
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::FORBIDDEN);
    // And the sign-in form itself, without a token, is refused.
    let login_form = no_cookies()
        .post(server.url("/login"))
        .form(&[("username", "prof"), ("password", "prof-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(login_form.status(), StatusCode::FORBIDDEN);

    // The bearer token works without any CSRF token, and a bad one is refused.
    let bearer = create(vec![("authorization", format!("Bearer {token}"))])
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::CREATED);
    let me: Value = http
        .get(server.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "prof");
    let bad = create(vec![(
        "authorization",
        format!("Bearer {}", "f".repeat(64)),
    )])
    .await
    .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    // A session cookie is not a bearer token.
    let swapped = create(vec![("authorization", format!("Bearer {session}"))])
        .await
        .unwrap();
    assert_eq!(swapped.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let server = TestServer::start();
    signed_in_instructor(&server, "prof").await;
    let res = login(&server, &no_cookies(), "prof", "prof-password").await;
    let cookies = set_cookies(&res);
    let cookie = format!(
        "pglab_session={}; pglab_csrf={}",
        cookie_value(&cookies, "pglab_session"),
        cookie_value(&cookies, "pglab_csrf")
    );
    let csrf = cookie_value(&cookies, "pglab_csrf");
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let http = no_cookies();
    let me = |c: String| http.get(server.url("/api/me")).header("cookie", c).send();
    assert_eq!(me(cookie.clone()).await.unwrap().status(), 200);

    let out = http
        .post(server.url("/api/logout"))
        .header("cookie", cookie.clone())
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert!(
        set_cookies(&out)
            .iter()
            .any(|c| c.starts_with("pglab_session=;") && c.contains("Max-Age=0"))
    );
    // The old cookie, replayed, no longer signs anyone in.
    let replay = me(cookie.clone()).await.unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(replay).await, "sign in first");
    let page = http
        .get(server.url("/instructor"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);

    // The bearer token is its own session: it ends with its own logout.
    let with_token = |t: &str| {
        http.get(server.url("/api/me"))
            .bearer_auth(t.to_string())
            .send()
    };
    assert_eq!(with_token(&token).await.unwrap().status(), 200);
    let out = http
        .post(server.url("/api/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert_eq!(with_token(&token).await.unwrap().status(), 401);

    // The sign-out button of the pages (a form with the CSRF field) works too.
    let browser = client();
    assert_eq!(
        login(&server, &browser, "prof", "prof-password")
            .await
            .status(),
        200
    );
    let html = browser
        .get(server.url("/login?next=/"))
        .send()
        .await
        .unwrap();
    assert_eq!(html.url().path(), "/", "signed in: /login goes on to next");
    let csrf_page = browser
        .get(server.url("/instructor"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()[..64]
        .to_string();
    let out = browser
        .post(server.url("/logout"))
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert_eq!(
        browser
            .get(server.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn sessions_expire_when_idle_and_slide_while_used() {
    let server = TestServer::start_with(ServerOptions {
        extra_args: vec!["--session-ttl-secs".into(), "3".into()],
        ..Default::default()
    });
    signed_in_instructor(&server, "prof").await;
    let browser = client();
    assert_eq!(
        login(&server, &browser, "prof", "prof-password")
            .await
            .status(),
        200
    );
    // Used every second for 5 s (beyond the 3 s lifetime): still valid.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let status = browser
            .get(server.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "an active session slides");
    }
    // Idle for longer than the lifetime: gone.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(
        browser
            .get(server.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let page = no_cookies()
        .get(server.url("/instructor"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_rate_limited() {
    let server = TestServer::start_with(ServerOptions {
        extra_args: vec![
            "--trust-proxy".into(),
            "--login-failures-per-address".into(),
            "2".into(),
        ],
        ..Default::default()
    });
    let http = no_cookies();
    let attempt = |from: &'static str, user: &'static str| {
        http.post(server.url("/api/login"))
            .header("x-forwarded-for", format!("198.51.100.7, {from}"))
            .json(&json!({"username": user, "password": "wrong-password"}))
            .send()
    };
    assert_eq!(attempt("192.0.2.1", "u1").await.unwrap().status(), 401);
    assert_eq!(attempt("192.0.2.1", "u2").await.unwrap().status(), 401);
    assert_eq!(attempt("192.0.2.1", "u3").await.unwrap().status(), 429);
    // Another client behind the same proxy is not locked out; the address the
    // client itself wrote (leftmost) does not count.
    assert_eq!(attempt("192.0.2.2", "u3").await.unwrap().status(), 401);
}

/// A class signing up and in at once leaves the server's memory bounded:
/// argon2 (19 MiB a hash) runs in the hashing threads' kept memory. Before,
/// each hash allocated afresh and glibc kept the freed memory in per-thread
/// arenas: 60 sign-ins at once left 297 MiB behind for good.
#[tokio::test]
async fn a_class_signing_in_at_once_leaves_memory_bounded() {
    let server = std::sync::Arc::new(TestServer::start());
    let instructor = signed_in_instructor(&server, "busy-teacher").await;
    let (_, code) = new_classroom(&server, &instructor).await;
    let class: Vec<_> = (0..48)
        .map(|i| {
            let (server, code) = (server.clone(), code.clone());
            tokio::spawn(async move {
                let (user, password) = (format!("crowd{i:02}"), format!("crowd{i:02}-password"));
                let up = signup(&server, &user, &password, &code).await.status();
                let ok = login(&server, &no_cookies(), &user, &password).await;
                (up, ok.status())
            })
        })
        .collect();
    for learner in class {
        assert_eq!(
            learner.await.unwrap(),
            (StatusCode::CREATED, StatusCode::OK)
        );
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let kib = |key: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let (peak, now) = (kib("VmHWM:"), kib("VmRSS:"));
    assert!(
        peak < 128 * 1024,
        "96 hashes (2 at a time) took the server to {} MiB (now {} MiB)",
        peak / 1024,
        now / 1024
    );
}

/// `Cookie` header value of a login answer (session and CSRF cookies).
fn cookie_header(cookies: &[String]) -> String {
    format!(
        "pglab_session={}; pglab_csrf={}",
        cookie_value(cookies, "pglab_session"),
        cookie_value(cookies, "pglab_csrf")
    )
}

/// Signs `user` in (password `user-password`): its cookie header and bearer token.
async fn sign_in_raw(server: &TestServer, user: &str) -> (String, String) {
    let res = login(server, &no_cookies(), user, &format!("{user}-password")).await;
    let cookie = cookie_header(&set_cookies(&res));
    let body: Value = res.json().await.unwrap();
    (cookie, body["token"].as_str().unwrap().to_string())
}

async fn me_status(server: &TestServer, cookie: Option<&str>, token: Option<&str>) -> u16 {
    let mut req = no_cookies().get(server.url("/api/me"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn signing_in_ends_the_session_the_request_came_with() {
    let server = TestServer::start();
    signed_in_instructor(&server, "prof").await;
    // A session cookie someone planted (their own sign-in), then the victim
    // signs in with it in the jar: the planted session ends, a new one starts.
    let planted = login(&server, &no_cookies(), "prof", "prof-password").await;
    let planted = cookie_header(&set_cookies(&planted));
    assert_eq!(me_status(&server, Some(&planted), None).await, 200);
    let csrf = planted.split("pglab_csrf=").nth(1).unwrap().to_string();
    let again = no_cookies()
        .post(server.url("/api/login"))
        .header("cookie", &planted)
        .header("x-csrf-token", csrf)
        .json(&json!({"username": "prof", "password": "prof-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let fresh = cookie_header(&set_cookies(&again));
    assert_ne!(fresh, planted, "a new session id at sign-in");
    assert_eq!(me_status(&server, Some(&planted), None).await, 401);
    assert_eq!(me_status(&server, Some(&fresh), None).await, 200);
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_and_token_of_the_user() {
    let server = TestServer::start();
    let prof = signed_in_instructor(&server, "prof").await;
    let (_, code) = new_classroom(&server, &prof).await;
    assert_eq!(
        signup(&server, "ada", "ada-password", &code).await.status(),
        201
    );
    assert_eq!(
        signup(&server, "bob", "bob-password", &code).await.status(),
        201
    );
    let (laptop, script) = sign_in_raw(&server, "ada").await;
    let (phone, _) = sign_in_raw(&server, "ada").await;
    let (bob, _) = sign_in_raw(&server, "bob").await;
    let res = no_cookies()
        .post(server.url("/api/logout/everywhere"))
        .bearer_auth(&script)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["signed_out"], true);
    assert!(body["sessions_ended"].as_u64().unwrap() >= 4, "{body}");
    assert_eq!(me_status(&server, Some(&laptop), None).await, 401);
    assert_eq!(me_status(&server, Some(&phone), None).await, 401);
    assert_eq!(me_status(&server, None, Some(&script)).await, 401);
    assert_eq!(
        me_status(&server, Some(&bob), None).await,
        200,
        "only ada's"
    );

    // An instructor signs bob out everywhere: recorded in the audit log.
    let me: Value = no_cookies()
        .get(server.url("/api/me"))
        .header("cookie", &bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = prof
        .post(server.url(&format!("/api/instructor/users/{}/signout", me["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(me_status(&server, Some(&bob), None).await, 401);
    let audit: Value = prof
        .get(server.url("/api/instructor/audit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["action"], "signed_out_everywhere", "{audit}");
    assert_eq!(audit[0]["actor"], "prof", "{audit}");
    assert_eq!(audit[0]["target"], "bob", "{audit}");
}

#[tokio::test]
async fn sessions_end_at_their_absolute_lifetime_however_much_they_are_used() {
    let server = TestServer::start_with(ServerOptions {
        extra_args: vec!["--session-max-age-secs".into(), "3".into()],
        ..Default::default()
    });
    signed_in_instructor(&server, "prof").await;
    let res = login(&server, &no_cookies(), "prof", "prof-password").await;
    let cookie = cookie_header(&set_cookies(&res));
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let began = std::time::Instant::now();
    // Used every half second: valid until 3 s after sign-in, then gone.
    let mut ended = None;
    while began.elapsed() < Duration::from_secs(8) {
        let (c, t) = (
            me_status(&server, Some(&cookie), None).await,
            me_status(&server, None, Some(&token)).await,
        );
        if c == 401 && t == 401 {
            ended = Some(began.elapsed());
            break;
        }
        assert!(
            began.elapsed() < Duration::from_millis(4500),
            "still valid after {:?} ({c}, {t})",
            began.elapsed()
        );
        assert_eq!((c, t), (200, 200), "at {:?}", began.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ended = ended.expect("the session never ended");
    assert!(
        ended >= Duration::from_millis(1900),
        "ended early: {ended:?}"
    );
}
