//! Sign-in through OpenID Connect against a real OpenID provider on loopback:
//! the npm package `oidc-provider` (from the lockfile) run by
//! `tests/oidc/provider.mjs`, and the real `pglab` binary. Every step goes
//! over HTTP as a browser would: redirects followed by hand with a cookie
//! jar, the provider's sign-in form posted, the callback taken by pglab.
//! The bad ID tokens (wrong audience, expired, tampered) are made by the
//! provider script itself, so pglab's own JWKS verification must refuse them.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use common::{ServerOptions, TestServer};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};

/// The provider process; killed (by its own id) when dropped.
struct TestProvider {
    child: Child,
    issuer: String,
}

impl TestProvider {
    fn start() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(
            root.join("node_modules/oidc-provider/package.json")
                .exists(),
            "node_modules/oidc-provider is missing: run `npm ci` (scripts/test.sh does)"
        );
        let mut child = Command::new("node")
            .arg("tests/oidc/provider.mjs")
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run node tests/oidc/provider.mjs");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(issuer) = line.strip_prefix("OIDC_ISSUER=") {
                    let _ = tx.send(issuer.trim().to_string());
                }
            }
        });
        let issuer = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the OpenID provider did not start");
        Self { child, issuer }
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// pglab configured for the test provider, plus `extra` flags.
fn pglab_for(provider: &TestProvider, extra: &[&str]) -> TestServer {
    let mut args: Vec<String> = [
        "--oidc-issuer",
        &provider.issuer,
        "--oidc-client-id",
        "pglab",
        "--oidc-client-secret",
        "pglab-secret",
        "--oidc-name",
        "Test University",
        "--oidc-scopes",
        "profile,groups,classroom",
        "--oidc-instructor-claim",
        "groups",
        "--oidc-instructor-value",
        "pglab-instructors",
        "--oidc-classroom-claim",
        "classroom",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    TestServer::start_with(ServerOptions {
        extra_args: args,
        ..Default::default()
    })
}

/// A browser: a cookie jar and no automatic redirects (each hop is seen).
struct Browser {
    jar: Arc<Jar>,
    http: Client,
}

/// One response on the way.
struct Hop {
    url: Url,
    status: StatusCode,
    set_cookies: Vec<String>,
    body: String,
}

impl Browser {
    fn new() -> Self {
        let jar = Arc::new(Jar::default());
        let http = Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Self { jar, http }
    }

    async fn hop(&self, response: reqwest::Response) -> Hop {
        let url = response.url().clone();
        let status = response.status();
        let set_cookies = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|l| l.to_str().unwrap().to_string());
        let body = response.text().await.unwrap();
        Hop {
            url,
            status,
            set_cookies,
            body: location.unwrap_or(body),
        }
    }

    /// GETs `url` and follows redirects until a non-redirect, or until the
    /// next URL matches `stop_before` (returned unvisited). Every hop is returned.
    async fn walk(&self, url: Url, stop_before: Option<&str>) -> (Vec<Hop>, Option<Url>) {
        let mut hops = Vec::new();
        let mut next = url;
        for _ in 0..20 {
            if stop_before.is_some_and(|s| next.as_str().contains(s)) {
                return (hops, Some(next));
            }
            let hop = self
                .hop(self.http.get(next.clone()).send().await.unwrap())
                .await;
            let redirect = hop.status.is_redirection();
            let location = hop.body.clone();
            let from = hop.url.clone();
            hops.push(hop);
            if !redirect {
                return (hops, None);
            }
            next = from.join(&location).unwrap();
        }
        panic!("more than 20 redirects");
    }

    /// This browser's cookie `name` for `url`.
    fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let header = self.jar.cookies(&url.parse().unwrap())?;
        header
            .to_str()
            .unwrap()
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    /// `GET /api/me` as this browser.
    async fn me(&self, server: &TestServer) -> (StatusCode, Value) {
        let res = self.http.get(server.url("/api/me")).send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// Clicks "Sign in with Test University" on pglab's sign-in page and signs
/// in at the provider as `login` (with extra `claims` and a token `mode`).
/// Returns every hop after the provider's form, and the callback URL pglab
/// was sent to; with `stop_at_callback`, pglab's callback is not visited.
async fn sign_in(
    browser: &Browser,
    server: &TestServer,
    login: &str,
    claims: Value,
    mode: &str,
    stop_at_callback: bool,
) -> (Vec<Hop>, Url) {
    let page = browser.http.get(server.url("/login")).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("Sign in with Test University"), "{page}");
    let start = page
        .split("href=\"")
        .find(|s| s.starts_with("/auth/oidc/start"))
        .and_then(|s| s.split('"').next())
        .expect("the sign-in button links to /auth/oidc/start")
        .replace("&amp;", "&");
    let (hops, _) = browser
        .walk(server.url(&start).parse().unwrap(), None)
        .await;
    let form = hops.last().unwrap();
    assert_eq!(
        form.status, 200,
        "the provider's sign-in form: {}",
        form.body
    );
    assert!(form.url.path().starts_with("/interaction/"), "{}", form.url);
    let action = form
        .url
        .join(&format!("{}/login", form.url.path()))
        .unwrap();
    let posted = browser
        .http
        .post(action)
        .form(&[
            ("login", login.to_string()),
            ("claims", claims.to_string()),
            ("mode", mode.to_string()),
        ])
        .send()
        .await
        .unwrap();
    let posted = browser.hop(posted).await;
    assert!(posted.status.is_redirection(), "{}", posted.body);
    let next = posted.url.join(&posted.body).unwrap();
    let stop = stop_at_callback.then_some("/auth/oidc/callback");
    let (mut hops, stopped) = browser.walk(next, stop).await;
    let callback = match stopped {
        Some(url) => url,
        None => hops
            .iter()
            .map(|h| h.url.clone())
            .find(|u| u.path() == "/auth/oidc/callback")
            .expect("the provider sent the browser back to pglab's callback"),
    };
    hops.retain(|h| h.url.origin() == callback.origin());
    (hops, callback)
}

fn session_cookie(hops: &[Hop]) -> Option<String> {
    hops.iter()
        .flat_map(|h| h.set_cookies.iter())
        .find(|c| c.starts_with("pglab_session=") && !c.starts_with("pglab_session=;"))
        .cloned()
}

/// The CSRF header of a browser with a `pglab_csrf` cookie, for its POSTs.
fn csrf(browser: &Browser, server: &TestServer) -> String {
    browser
        .cookie(&server.base, "pglab_csrf")
        .expect("pglab_csrf cookie")
}

#[tokio::test]
async fn first_sign_in_makes_an_account_joined_by_code_and_the_next_reuses_it() {
    let provider = TestProvider::start();
    let server = pglab_for(&provider, &[]);
    // A password learner "ada" exists already: the provider's "ada" must not get her account.
    let local_ada = common::signed_in_learner(&server, "ada").await;
    let local_me: Value = local_ada
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let teacher = common::signed_in_instructor(&server, "teacher").await;
    let room: Value = teacher
        .post(server.url("/api/instructor/classrooms"))
        .json(&json!({"name": "Databases 101"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = room["join_code"].as_str().unwrap().to_string();

    let browser = Browser::new();
    let (hops, _) = sign_in(&browser, &server, "ada", json!({}), "", false).await;
    let last = hops.last().unwrap();
    assert_eq!(
        last.url.path(),
        "/auth/oidc/join",
        "a new learner is asked for a join code"
    );
    assert_eq!(last.status, 200);
    assert!(
        last.body.contains(">ada<"),
        "the name it starts from: {}",
        last.body
    );
    assert!(
        session_cookie(&hops).is_none(),
        "no session before the join code"
    );
    assert_eq!(browser.me(&server).await.0, 401);

    // A wrong code: the same page with the reason, to try again.
    let token = csrf(&browser, &server);
    let wrong = browser
        .http
        .post(server.url("/auth/oidc/join"))
        .form(&[("csrf_token", token.as_str()), ("join_code", "NOPE2345")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("join code is not valid")
    );
    let joined = browser
        .http
        .post(server.url("/auth/oidc/join"))
        .form(&[("csrf_token", token.as_str()), ("join_code", code.as_str())])
        .send()
        .await
        .unwrap();
    let joined = browser.hop(joined).await;
    assert_eq!(joined.status, 303, "{}", joined.body);
    let first_session = session_cookie(std::slice::from_ref(&joined)).expect("a session cookie");
    assert!(
        first_session.contains("HttpOnly") && first_session.contains("SameSite=Lax"),
        "{first_session}"
    );
    let (status, me) = browser.me(&server).await;
    assert_eq!(status, 200);
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("ada-2"), Some("learner"))
    );
    assert_ne!(me["id"], local_me["id"], "never linked by username");
    let members: Value = teacher
        .get(server.url(&format!(
            "/api/instructor/classrooms/{}/members",
            room["id"]
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(members.to_string().contains("\"ada-2\""), "{members}");
    // The provider's account has no password: a password sign-in refuses it.
    let res = common::client()
        .post(server.url("/api/login"))
        .json(&json!({"username": "ada-2", "password": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // A second sign-in, in another browser: the same account, no join code, a new session id.
    let again = Browser::new();
    let (hops, _) = sign_in(&again, &server, "ada", json!({}), "", false).await;
    assert_eq!(hops.last().unwrap().url.path(), "/", "straight home");
    let second_session = session_cookie(&hops).expect("a session cookie");
    assert_ne!(
        first_session.split(';').next(),
        second_session.split(';').next(),
        "a new session id at every sign-in"
    );
    let (status, me_again) = again.me(&server).await;
    assert_eq!(status, 200);
    assert_eq!(me_again["id"], me["id"]);
}

#[tokio::test]
async fn instructors_and_classrooms_come_from_claims() {
    let provider = TestProvider::start();
    let server = pglab_for(&provider, &[]);
    let grace = Browser::new();
    let (hops, _) = sign_in(&grace, &server, "teacher-grace", json!({}), "", false).await;
    assert_eq!(hops.last().unwrap().url.path(), "/");
    let (status, me) = grace.me(&server).await;
    assert_eq!(status, 200);
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("teacher-grace"), Some("instructor"))
    );
    // The instructor the provider made creates a classroom...
    let room: Value = grace
        .http
        .post(server.url("/api/instructor/classrooms"))
        .header("x-csrf-token", csrf(&grace, &server))
        .json(&json!({"name": "Indexes Lab"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(room["id"].is_number(), "{room}");
    // ...and a learner whose classroom claim names it is put there at once.
    let lin = Browser::new();
    let claims = json!({"classroom": "Indexes Lab"});
    let (hops, _) = sign_in(&lin, &server, "lin", claims, "", false).await;
    assert_eq!(hops.last().unwrap().url.path(), "/", "no join code asked");
    let (status, me) = lin.me(&server).await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "learner");
    let members: Value = grace
        .http
        .get(server.url(&format!(
            "/api/instructor/classrooms/{}/members",
            room["id"]
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(members.to_string().contains("\"lin\""), "{members}");
    // A learner is not an instructor.
    let res = lin
        .http
        .get(server.url("/api/instructor/classrooms"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn wrong_audience_expired_and_tampered_id_tokens_are_refused() {
    let provider = TestProvider::start();
    let server = pglab_for(&provider, &[]);
    for (mode, says) in [
        ("wrong-aud", "wrong audience"),
        ("expired", "has expired"),
        ("tampered", "signature does not verify"),
    ] {
        let browser = Browser::new();
        // Learners: the tampered token makes itself an instructor.
        let login = format!("mallory-{mode}");
        let (hops, _) = sign_in(&browser, &server, &login, json!({}), mode, false).await;
        let last = hops.last().unwrap();
        assert_eq!(last.url.path(), "/auth/oidc/callback", "{mode}");
        assert_eq!(last.status, 401, "{mode}: {}", last.body);
        assert!(
            last.body.contains("ID token was refused") && last.body.contains(says),
            "{mode}: {}",
            last.body
        );
        assert!(session_cookie(&hops).is_none(), "{mode}: no session");
        assert_eq!(browser.me(&server).await.0, 401, "{mode}");
    }
    // The same provider's good tokens still work (the refusals were the tokens').
    let browser = Browser::new();
    let (hops, _) = sign_in(&browser, &server, "teacher-ok", json!({}), "", false).await;
    assert_eq!(hops.last().unwrap().url.path(), "/");
    assert_eq!(browser.me(&server).await.0, 200);
}

#[tokio::test]
async fn a_state_works_once_and_only_in_the_browser_that_started_it() {
    let provider = TestProvider::start();
    let server = pglab_for(&provider, &[]);
    let unknown_state = "this sign-in is unknown, has expired or was already used";

    // Completed once; the same callback again is refused.
    let browser = Browser::new();
    let (hops, callback) = sign_in(&browser, &server, "teacher-a", json!({}), "", false).await;
    assert_eq!(hops.last().unwrap().url.path(), "/");
    let replay = browser.http.get(callback.clone()).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.unwrap().contains(unknown_state));

    // A callback URL taken to another browser (login CSRF) signs nobody in,
    // and is used up: the browser that started it cannot use it either.
    let starter = Browser::new();
    let (_, callback) = sign_in(&starter, &server, "teacher-b", json!({}), "", true).await;
    let other = Browser::new();
    let res = other.http.get(callback.clone()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains(unknown_state));
    assert_eq!(other.me(&server).await.0, 401);
    let res = starter.http.get(callback).send().await.unwrap();
    assert_eq!(res.status(), 400);

    // A state pglab never issued.
    let res = browser
        .http
        .get(server.url("/auth/oidc/callback?code=x&state=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // The provider's own error (the person said no) is told as such.
    let res = browser
        .http
        .get(server.url("/auth/oidc/callback?error=access_denied&state=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("cancelled or not allowed")
    );
}

#[tokio::test]
async fn unreachable_provider_is_told_and_local_passwords_can_be_turned_off() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::start_with(ServerOptions {
        extra_args: vec![
            "--oidc-issuer".into(),
            format!("http://127.0.0.1:{port}"),
            "--oidc-client-id".into(),
            "pglab".into(),
            "--no-local-passwords".into(),
        ],
        ..Default::default()
    });
    let browser = Browser::new();
    let page = browser.http.get(server.url("/login")).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("Sign in with 127.0.0.1"), "{page}");
    assert!(
        !page.contains("name=\"password\""),
        "no password form: {page}"
    );
    let res = browser
        .http
        .get(server.url("/auth/oidc/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("could not be reached") && body.contains("did not answer"),
        "{body}"
    );

    let res = common::client()
        .post(server.url("/api/login"))
        .json(&json!({"username": "x", "password": "whatever-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("passwords are turned off")
    );
    let res = common::client()
        .post(server.url("/api/signup"))
        .json(&json!({"username": "xy", "password": "whatever-password", "join_code": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Off by default: no button, and the routes are not there.
    let plain = TestServer::start();
    let page = common::client()
        .get(plain.url("/login"))
        .send()
        .await
        .unwrap();
    assert!(!page.text().await.unwrap().contains("/auth/oidc/start"));
    let res = common::client()
        .get(plain.url("/auth/oidc/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[test]
fn settings_that_cannot_work_stop_the_start_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec![
                "--oidc-issuer",
                "http://login.example.org",
                "--oidc-client-id",
                "p",
            ],
            "plain http",
        ),
        (
            vec!["--oidc-issuer", "https://login.example.org"],
            "--oidc-client-id",
        ),
        (vec!["--no-local-passwords"], "needs --oidc-issuer"),
    ] {
        let out = common::pglab()
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .arg("--content-dir")
            .arg(common::repo_content_dir())
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
