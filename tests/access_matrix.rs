//! The access matrix: every route the router serves (read from the router
//! itself, `pglab::web::route_table`), called by every kind of caller, each
//! answer compared with the status written once for that route in [`TABLE`].
//! A route the table does not name fails the test, so a new route cannot be
//! added without saying who may call it.
//!
//! Callers (the columns of [`TABLE`]): nobody signed in; learner A, who owns
//! the plans, runs, sessions and dumps named in the paths; learner B, in the
//! same classroom; an instructor of another classroom; and the classroom's
//! instructor. Two more callers are checked against the anonymous column
//! instead of having one of their own: a bearer token and a cookie of a
//! session that signed out (they must get exactly what nobody gets).
//!
//! Beyond the statuses:
//! - **Nothing leaks**: where a caller is refused a resource that belongs to
//!   someone else (403 or 404), the answer is the same, byte for byte once
//!   the id is blanked, as for an id that does not exist.
//! - **CSRF**: every state-changing request with a session cookie but
//!   without the `X-CSRF-Token` header is refused (403) before it does
//!   anything, whoever sends it.
//! - Lists (classrooms, audit log, progress) of the other instructor do not
//!   name classroom 1, its learners or what was done to them.
//!
//! It runs on the local sandbox backend (PostgreSQL binaries of this machine)
//! and needs no Docker: the routes that only the Docker backend serves are
//! still called, and must refuse with the same status every time.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{TestServer, pglab};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION};
use serde_json::{Value, json};

/// The five callers with a column in [`TABLE`], in column order.
const COLUMNS: [&str; 5] = [
    "anonymous",
    "learner A",
    "learner B",
    "other instructor",
    "classroom's instructor",
];

/// One route's expectation. `path` is the concrete path called, with these
/// placeholders: `{classroom}` (classroom 1, A's and B's), `{learner}`
/// (learner A's user id), `{carol}` (another learner of classroom 1, whom the
/// instructor routes that change an account act on), `{plan}`, `{run}`,
/// `{session}` and `{dump}` (learner A's). Each placeholder stands for
/// someone's resource: the leak check also calls the path with an id that
/// does not exist in its place.
struct Row {
    method: &'static str,
    /// The template as the router names it (`/api/plans/{id}`).
    route: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    /// The status for each of [`COLUMNS`].
    expect: [u16; 5],
}

const fn row(
    method: &'static str,
    route: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    expect: [u16; 5],
) -> Row {
    Row {
        method,
        route,
        path,
        body,
        expect,
    }
}

/// Shorthand for the rows whose path is the route itself.
const fn same(method: &'static str, route: &'static str, expect: [u16; 5]) -> Row {
    row(method, route, route, None, expect)
}

// Column order: anonymous, learner A, learner B, other instructor, classroom's
// instructor. Pages send nobody to the sign-in page (303); APIs answer 401.
// Learners on instructor routes: 403. An instructor on a classroom or learner
// they do not manage, or a learner on another learner's plan, run, session or
// dump: 404, as for an id that does not exist.
//
// The rows run in this order, so those that change or end something come
// after those that read it.
const TABLE: &[Row] = &[
    // Anyone: probes, the home page, sign-in, course pages and files.
    same("GET", "/healthz", [200, 200, 200, 200, 200]),
    same("GET", "/readyz", [200, 200, 200, 200, 200]),
    // No scrape secret configured: the metrics are nobody's (404).
    same("GET", "/metrics", [404, 404, 404, 404, 404]),
    same("GET", "/", [200, 200, 200, 200, 200]),
    // Signed in already: sent on to the course.
    same("GET", "/login", [200, 303, 303, 303, 303]),
    same("GET", "/signup", [200, 200, 200, 200, 200]),
    row(
        "GET",
        "/setup/{token}",
        "/setup/not-the-setup-token",
        None,
        // Instructors exist: no setup link is valid any more.
        [410, 410, 410, 410, 410],
    ),
    row(
        "GET",
        "/sections/{slug}",
        "/sections/14-postgresql-production-labs",
        None,
        [200, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/files/{*path}",
        "/files/practice/curriculum/14-postgresql-production-labs/scripts/queries.sql",
        None,
        [200, 200, 200, 200, 200],
    ),
    row(
        "*",
        "/static/{*path}",
        "/static/css/pglab.css",
        None,
        [200, 200, 200, 200, 200],
    ),
    // The static folder itself has no index.
    same("*", "/static", [404, 404, 404, 404, 404]),
    same("*", "/static/", [404, 404, 404, 404, 404]),
    // The HTML forms, posted without their fields.
    same("POST", "/login", [415, 415, 415, 415, 415]),
    same("POST", "/signup", [415, 415, 415, 415, 415]),
    row(
        "POST",
        "/setup/{token}",
        "/setup/not-the-setup-token",
        None,
        [415, 415, 415, 415, 415],
    ),
    row(
        "GET",
        "/static/vendor/{file}",
        "/static/vendor/not-a-vendored-file.js",
        None,
        [404, 404, 404, 404, 404],
    ),
    row(
        "POST",
        "/api/csp-report",
        "/api/csp-report",
        Some(r#"{"csp-report":{"violated-directive":"script-src","blocked-uri":"inline"}}"#),
        [204, 204, 204, 204, 204],
    ),
    row(
        "POST",
        "/api/signup",
        "/api/signup",
        Some(r#"{"username":"newcomer","password":"newcomer-password","join_code":"NOTACODE"}"#),
        [400, 400, 400, 400, 400],
    ),
    // Signing in works for anyone (and ends the caller's old session: the
    // test signs the callers in again after each row that ended one).
    row(
        "POST",
        "/api/login",
        "/api/login",
        Some(r#"{"username":"erin","password":"erin-password"}"#),
        [200, 200, 200, 200, 200],
    ),
    // Everyone signed in: their own account, console, sandbox and progress.
    same("GET", "/api/me", [401, 200, 200, 200, 200]),
    // The console page is a shell for anyone; all it does needs sign-in.
    same("GET", "/console", [200, 200, 200, 200, 200]),
    same("GET", "/terminal", [303, 200, 200, 200, 200]),
    same("GET", "/progress", [303, 200, 200, 200, 200]),
    same("GET", "/plans", [303, 200, 200, 200, 200]),
    same("GET", "/sandbox/compose", [303, 200, 200, 200, 200]),
    same("GET", "/api/progress", [401, 200, 200, 200, 200]),
    same("GET", "/api/plans", [401, 200, 200, 200, 200]),
    same("GET", "/api/sessions", [401, 200, 200, 200, 200]),
    same("GET", "/api/history", [401, 200, 200, 200, 200]),
    same("GET", "/api/sandbox", [401, 200, 200, 200, 200]),
    same("GET", "/api/sandbox/events", [401, 200, 200, 200, 200]),
    same("GET", "/api/sandbox/log", [401, 200, 200, 200, 200]),
    same("GET", "/api/sandbox/log/events", [401, 200, 200, 200, 200]),
    // Only A's sandbox runs yet: the others have nothing to inspect (409).
    same("GET", "/api/sandbox/inspect", [401, 200, 409, 409, 409]),
    row(
        "POST",
        "/api/sandbox/inspect/jq",
        "/api/sandbox/inspect/jq",
        Some(r#"{"filter":".[0].State.Status"}"#),
        [401, 200, 409, 409, 409],
    ),
    same("GET", "/api/sandbox/dumps", [401, 200, 200, 200, 200]),
    // The editor's completion data: an empty schema while no sandbox runs.
    same("GET", "/api/sandbox/schema", [401, 200, 200, 200, 200]),
    row(
        "POST",
        "/api/sql/statement",
        "/api/sql/statement",
        Some(r#"{"sql":"select 1; select 2","cursor":3}"#),
        [401, 200, 200, 200, 200],
    ),
    // OpenID Connect is off here: its routes answer 404 to everyone.
    same("GET", "/auth/oidc/start", [404, 404, 404, 404, 404]),
    same("GET", "/auth/oidc/callback", [404, 404, 404, 404, 404]),
    same("GET", "/auth/oidc/join", [404, 404, 404, 404, 404]),
    row(
        "POST",
        "/auth/oidc/join",
        "/auth/oidc/join",
        Some("join_code=NOTACODE"),
        [404, 404, 404, 404, 404],
    ),
    same("GET", "/api/sandbox/compose", [401, 200, 200, 200, 200]),
    row(
        "PUT",
        "/api/sandbox/compose",
        "/api/sandbox/compose",
        Some(r#"{"yaml":"services:\n  postgres:\n    image: postgres:15\n"}"#),
        [401, 200, 200, 200, 200],
    ),
    same("GET", "/api/labs/stats", [401, 200, 409, 409, 409]),
    same("GET", "/api/labs/traffic", [401, 200, 200, 200, 200]),
    same("GET", "/api/labs/connections", [401, 200, 200, 200, 200]),
    same("GET", "/api/labs/volume-demo", [401, 200, 200, 200, 200]),
    row(
        "POST",
        "/api/sql",
        "/api/sql",
        Some(r#"{"session":"T1","sql":"select 1"}"#),
        [401, 200, 200, 200, 200],
    ),
    row(
        "POST",
        "/api/exercises/{id}/check",
        "/api/exercises/14.B.1/check",
        Some("{}"),
        [401, 200, 200, 200, 200],
    ),
    row(
        "GET",
        "/api/sandbox/terminal",
        "/api/sandbox/terminal?cols=80&rows=24",
        None,
        [401, 101, 101, 101, 101],
    ),
    // Learner A's own resources: B and the instructors get 404, as for an
    // id that does not exist.
    row(
        "GET",
        "/api/plans/{id}",
        "/api/plans/{plan}",
        None,
        [401, 200, 404, 404, 404],
    ),
    row(
        "GET",
        "/api/plans/compare",
        "/api/plans/compare?a={plan}&b={plan}",
        None,
        [401, 200, 404, 404, 404],
    ),
    row(
        "GET",
        "/api/runs/{run_id}",
        "/api/runs/{run}?wait_ms=0",
        None,
        [401, 200, 404, 404, 404],
    ),
    // The run still runs, so nothing of it is kept whole yet: 404 for its
    // owner too (console_http pages a kept one); nobody else learns more.
    row(
        "GET",
        "/api/runs/{run_id}/statements/{index}/rows",
        "/api/runs/{run}/statements/0/rows",
        None,
        [401, 404, 404, 404, 404],
    ),
    row(
        "GET",
        "/api/sessions/{name}/notifications",
        "/api/sessions/{session}/notifications",
        None,
        [401, 200, 404, 404, 404],
    ),
    row(
        "POST",
        "/api/sessions/{name}/cancel",
        "/api/sessions/{session}/cancel",
        None,
        [401, 200, 404, 404, 404],
    ),
    row(
        "GET",
        "/api/sandbox/dumps/{id}",
        "/api/sandbox/dumps/{dump}",
        None,
        [401, 200, 404, 404, 404],
    ),
    row(
        "POST",
        "/api/sandbox/dumps/{id}/restore",
        "/api/sandbox/dumps/{dump}/restore",
        Some(r#"{"database":"restored","replace":true}"#),
        [401, 200, 404, 404, 404],
    ),
    row(
        "DELETE",
        "/api/sandbox/dumps/{id}",
        "/api/sandbox/dumps/{dump}",
        None,
        [401, 204, 404, 404, 404],
    ),
    row(
        "POST",
        "/api/sessions/{name}/close",
        "/api/sessions/{session}/close",
        None,
        [401, 200, 200, 200, 200],
    ),
    // Instructors only; the lists are their own classrooms'.
    same("GET", "/instructor", [303, 403, 403, 200, 200]),
    same("GET", "/instructor/audit", [303, 403, 403, 200, 200]),
    same("GET", "/api/instructor/audit", [401, 403, 403, 200, 200]),
    same(
        "GET",
        "/api/instructor/audit.csv",
        [401, 403, 403, 200, 200],
    ),
    same(
        "GET",
        "/api/instructor/classrooms",
        [401, 403, 403, 200, 200],
    ),
    row(
        "POST",
        "/api/instructor/classrooms",
        "/api/instructor/classrooms",
        Some(r#"{"name":"made by the matrix"}"#),
        [401, 403, 403, 201, 201],
    ),
    // Classroom 1: its instructor only.
    row(
        "GET",
        "/instructor/classrooms/{id}",
        "/instructor/classrooms/{classroom}",
        None,
        [303, 403, 403, 404, 200],
    ),
    row(
        "GET",
        "/instructor/classrooms/{id}/progress",
        "/instructor/classrooms/{classroom}/progress",
        None,
        [303, 403, 403, 404, 200],
    ),
    row(
        "GET",
        "/api/instructor/classrooms/{id}",
        "/api/instructor/classrooms/{classroom}",
        None,
        [401, 403, 403, 404, 200],
    ),
    row(
        "GET",
        "/api/instructor/classrooms/{id}/members",
        "/api/instructor/classrooms/{classroom}/members",
        None,
        [401, 403, 403, 404, 200],
    ),
    row(
        "GET",
        "/api/instructor/classrooms/{id}/progress",
        "/api/instructor/classrooms/{classroom}/progress",
        None,
        [401, 403, 403, 404, 200],
    ),
    row(
        "GET",
        "/api/instructor/classrooms/{id}/progress.csv",
        "/api/instructor/classrooms/{classroom}/progress.csv",
        None,
        [401, 403, 403, 404, 200],
    ),
    row(
        "GET",
        "/api/instructor/classrooms/{id}/events",
        "/api/instructor/classrooms/{classroom}/events",
        None,
        [401, 403, 403, 404, 200],
    ),
    row(
        "POST",
        "/api/instructor/classrooms/{id}/rotate",
        "/api/instructor/classrooms/{classroom}/rotate",
        None,
        [401, 403, 403, 404, 200],
    ),
    row(
        "POST",
        "/api/instructor/classrooms/{id}/close",
        "/api/instructor/classrooms/{classroom}/close",
        None,
        [401, 403, 403, 404, 200],
    ),
    row(
        "POST",
        "/api/instructor/classrooms/{id}/open",
        "/api/instructor/classrooms/{classroom}/open",
        None,
        [401, 403, 403, 404, 200],
    ),
    row(
        "POST",
        "/api/instructor/classrooms/{id}/import",
        "/api/instructor/classrooms/{classroom}/import",
        Some(r#"{"csv":"username\nimported1\n"}"#),
        [401, 403, 403, 404, 201],
    ),
    row(
        "POST",
        "/api/instructor/classrooms/{id}/instructors",
        "/api/instructor/classrooms/{classroom}/instructors",
        Some(r#"{"username":"helper"}"#),
        [401, 403, 403, 404, 200],
    ),
    // Learners of classroom 1: its instructor only.
    row(
        "GET",
        "/instructor/learners/{id}",
        "/instructor/learners/{learner}",
        None,
        [303, 403, 403, 404, 200],
    ),
    row(
        "GET",
        "/api/instructor/learners/{id}",
        "/api/instructor/learners/{learner}",
        None,
        [401, 403, 403, 404, 200],
    ),
    row(
        "GET",
        "/instructor/learners/{id}/terminal",
        "/instructor/learners/{learner}/terminal",
        None,
        [303, 403, 403, 404, 200],
    ),
    row(
        "GET",
        "/api/instructor/learners/{id}/terminal",
        "/api/instructor/learners/{learner}/terminal",
        None,
        [401, 403, 403, 404, 101],
    ),
    row(
        "POST",
        "/api/instructor/learners/{id}/sandbox/{action}",
        "/api/instructor/learners/{carol}/sandbox/stop",
        None,
        [401, 403, 403, 404, 200],
    ),
    row(
        "POST",
        "/api/instructor/users/{id}/password",
        "/api/instructor/users/{carol}/password",
        None,
        [401, 403, 403, 404, 200],
    ),
    row(
        "POST",
        "/api/instructor/users/{id}/signout",
        "/api/instructor/users/{carol}/signout",
        None,
        [401, 403, 403, 404, 200],
    ),
    // The caller's own sandbox and labs, changed.
    row(
        "POST",
        "/api/labs/traffic/start",
        "/api/labs/traffic/start",
        Some("{}"),
        [401, 200, 200, 200, 200],
    ),
    same("POST", "/api/labs/traffic/stop", [401, 200, 200, 200, 200]),
    same(
        "POST",
        "/api/labs/connections/leak",
        [401, 200, 200, 200, 200],
    ),
    same(
        "POST",
        "/api/labs/connections/release",
        [401, 200, 200, 200, 200],
    ),
    row(
        "POST",
        "/api/labs/volume-demo/write",
        "/api/labs/volume-demo/write",
        Some("{}"),
        [401, 200, 200, 200, 200],
    ),
    same(
        "POST",
        "/api/labs/volume-demo/recreate",
        [401, 200, 200, 200, 200],
    ),
    same(
        "POST",
        "/api/labs/volume-demo/remove",
        [401, 200, 200, 200, 200],
    ),
    same("POST", "/api/sandbox/dumps", [401, 201, 201, 201, 201]),
    // The local backend runs no compose file (503, saying so).
    same("POST", "/api/sandbox/compose/up", [401, 503, 503, 503, 503]),
    row(
        "POST",
        "/api/sandbox/compose/down",
        "/api/sandbox/compose/down",
        Some("{}"),
        [401, 503, 503, 503, 503],
    ),
    same(
        "POST",
        "/api/sandbox/compose/reset",
        [401, 200, 200, 200, 200],
    ),
    same("POST", "/api/sandbox/start", [401, 200, 200, 200, 200]),
    same("POST", "/api/sandbox/restart", [401, 200, 200, 200, 200]),
    same("POST", "/api/sandbox/reset", [401, 200, 200, 200, 200]),
    same("POST", "/api/sandbox/stop", [401, 200, 200, 200, 200]),
    // Signing out (each caller is signed in again afterwards).
    same("POST", "/logout", [303, 303, 303, 303, 303]),
    same("POST", "/api/logout", [200, 200, 200, 200, 200]),
    same("POST", "/api/logout/everywhere", [401, 200, 200, 200, 200]),
];

/// How a caller proves who they are.
#[derive(Clone, Debug)]
enum Auth {
    None,
    Cookie { cookie: String, csrf: String },
    Bearer(String),
}

#[derive(Clone, Debug)]
struct Caller {
    name: &'static str,
    /// The account, to sign in again after a row ended the session.
    account: Option<&'static str>,
    auth: Auth,
}

/// One answer, as compared.
#[derive(Clone, Debug, PartialEq)]
struct Answer {
    status: u16,
    location: String,
    body: String,
}

/// The server, the callers and the ids in [`Row::path`] placeholders.
struct World {
    server: TestServer,
    http: reqwest::Client,
    callers: Vec<Caller>,
    /// The signed-out bearer token and cookie callers.
    dead: Vec<Caller>,
    /// Placeholder → learner A's (or classroom 1's) value.
    ids: Vec<(&'static str, String)>,
    /// Placeholder → a value of the same shape that names nothing.
    missing: Vec<(&'static str, String)>,
}

/// Signs `name` in (password `name-password`): the cookie caller.
async fn sign_in(server: &TestServer, name: &'static str) -> (Auth, String) {
    let res = no_redirects()
        .post(server.url("/api/login"))
        .json(&json!({"username": name, "password": format!("{name}-password")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login of {name}");
    let pairs: Vec<String> = res
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    let body: Value = res.json().await.unwrap();
    (
        Auth::Cookie {
            cookie: pairs.join("; "),
            csrf: body["csrf_token"].as_str().unwrap().to_string(),
        },
        body["token"].as_str().unwrap().to_string(),
    )
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

fn user_add(server: &TestServer, name: &str, instructor: bool) {
    let password = format!("{name}-password");
    let mut cmd = pglab();
    cmd.args(["user", "add", name, "--password", &password]);
    if instructor {
        cmd.arg("--instructor");
    }
    let out = cmd
        .arg("--data-dir")
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl World {
    async fn new() -> Self {
        let server = TestServer::start();
        let http = no_redirects();
        for name in ["teacher", "other", "helper"] {
            user_add(&server, name, true);
        }
        let (teacher, _) = sign_in(&server, "teacher").await;
        let (other, _) = sign_in(&server, "other").await;
        let mut world = World {
            server,
            http,
            callers: Vec::new(),
            dead: Vec::new(),
            ids: Vec::new(),
            missing: Vec::new(),
        };
        let t = Caller {
            name: COLUMNS[4],
            account: Some("teacher"),
            auth: teacher,
        };
        let o = Caller {
            name: COLUMNS[3],
            account: Some("other"),
            auth: other,
        };
        let room = world
            .ok(
                &t,
                "POST",
                "/api/instructor/classrooms",
                Some(r#"{"name":"classroom 1"}"#),
            )
            .await;
        let classroom = room["id"].as_i64().unwrap();
        let code = room["join_code"].as_str().unwrap().to_string();
        // The other instructor's own classroom, with a learner of its own.
        let theirs = world
            .ok(
                &o,
                "POST",
                "/api/instructor/classrooms",
                Some(r#"{"name":"classroom 2"}"#),
            )
            .await;
        let their_code = theirs["join_code"].as_str().unwrap().to_string();
        for (name, code) in [
            ("ada", &code),
            ("bob", &code),
            ("carol", &code),
            ("dora", &code),
            ("erin", &their_code),
        ] {
            let res = world
                .http
                .post(world.server.url("/api/signup"))
                .json(&json!({"username": name, "password": format!("{name}-password"), "join_code": code}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201, "sign-up of {name}");
        }
        let (a, _) = sign_in(&world.server, "ada").await;
        let (b, _) = sign_in(&world.server, "bob").await;
        let a = Caller {
            name: COLUMNS[1],
            account: Some("ada"),
            auth: a,
        };
        let b = Caller {
            name: COLUMNS[2],
            account: Some("bob"),
            auth: b,
        };
        let me = world.ok(&a, "GET", "/api/me", None).await;
        let learner = me["id"].as_i64().unwrap();
        let carol = world
            .ok(
                &t,
                "GET",
                &format!("/api/instructor/classrooms/{classroom}/members"),
                None,
            )
            .await;
        let carol = carol
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["username"] == "carol")
            .unwrap()["id"]
            .as_i64()
            .unwrap();

        // A's resources: a plan, a run still running in a session, a dump.
        let store = pglab::store::Store::open(&world.server.data_dir.join("pglab.db"))
            .await
            .unwrap();
        let plan = pglab::explain::store::save_plan(
            store.pool(),
            learner,
            "explain (analyze) select 1",
            include_str!("fixtures/plans/lab_seq_scan_analyze.json"),
        )
        .await
        .unwrap();
        let started = world.ok(&a, "POST", "/api/sandbox/start", None).await;
        assert!(started.is_object(), "{started}");
        let dump = world.ok(&a, "POST", "/api/sandbox/dumps", None).await;
        let dump = dump["id"].as_str().unwrap().to_string();
        let run = world
            .ok(
                &a,
                "POST",
                "/api/sql",
                Some(r#"{"session":"Aslow","sql":"select pg_sleep(300)"}"#),
            )
            .await;
        assert_eq!(run["status"], "running", "{run}");
        let run = run["run_id"].as_str().unwrap().to_string();

        // A session that signed out: its bearer token and its cookie.
        let (dora_cookie, dora_token) = sign_in(&world.server, "dora").await;
        let dead_bearer = Caller {
            name: "signed-out bearer token",
            account: None,
            auth: Auth::Bearer(dora_token),
        };
        let dead_cookie = Caller {
            name: "signed-out cookie",
            account: None,
            auth: dora_cookie,
        };
        let out = world
            .call(&dead_bearer, "POST", "/api/logout/everywhere", None, true)
            .await;
        assert_eq!(out.status, 200, "{out:?}");
        for dead in [&dead_bearer, &dead_cookie] {
            let me = world.call(dead, "GET", "/api/me", None, true).await;
            assert_eq!(me.status, 401, "{}: {me:?}", dead.name);
        }

        let shape = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_ascii_alphanumeric() { '0' } else { c })
                .collect()
        };
        world.ids = vec![
            ("{classroom}", classroom.to_string()),
            ("{learner}", learner.to_string()),
            ("{carol}", carol.to_string()),
            ("{plan}", plan.to_string()),
            ("{run}", run.clone()),
            ("{session}", "Aslow".into()),
            ("{dump}", dump.clone()),
        ];
        world.missing = vec![
            ("{classroom}", "987654".into()),
            ("{learner}", "987654".into()),
            ("{carol}", "987654".into()),
            ("{plan}", "987654".into()),
            ("{run}", shape(&run)),
            ("{session}", "Zmissing".into()),
            ("{dump}", shape(&dump)),
        ];
        let anonymous = Caller {
            name: COLUMNS[0],
            account: None,
            auth: Auth::None,
        };
        world.callers = vec![anonymous, a, b, o, t];
        world.dead = vec![dead_bearer, dead_cookie];
        world
    }

    /// `path` with the placeholders filled from `values`.
    fn fill(path: &str, values: &[(&'static str, String)]) -> String {
        values
            .iter()
            .fold(path.to_string(), |p, (k, v)| p.replace(k, v))
    }

    /// Calls and expects a 2xx with JSON.
    async fn ok(&self, caller: &Caller, method: &str, path: &str, body: Option<&str>) -> Value {
        let answer = self.call(caller, method, path, body, true).await;
        assert!(
            (200..300).contains(&answer.status),
            "{} {method} {path}: {answer:?}",
            caller.name
        );
        serde_json::from_str(&answer.body).unwrap_or(Value::Null)
    }

    /// One request; `csrf`: whether a cookie caller sends its CSRF token.
    async fn call(
        &self,
        caller: &Caller,
        method: &str,
        path: &str,
        body: Option<&str>,
        csrf: bool,
    ) -> Answer {
        if is_websocket(path) {
            return self.handshake(caller, path).await;
        }
        let method = if method == "*" { "GET" } else { method };
        let mut req = self
            .http
            .request(method.parse().unwrap(), self.server.url(path));
        match &caller.auth {
            Auth::None => {}
            Auth::Bearer(token) => req = req.bearer_auth(token),
            Auth::Cookie {
                cookie,
                csrf: token,
            } => {
                req = req.header(COOKIE, cookie);
                if csrf {
                    req = req.header("x-csrf-token", token);
                }
            }
        }
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let streaming = res
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
        // An event stream never ends: its status and type are the answer.
        let body = if streaming {
            "<event stream>".to_string()
        } else {
            res.text().await.unwrap()
        };
        Answer {
            status,
            location,
            body,
        }
    }

    /// A WebSocket handshake (with this server's own Origin, as its pages
    /// send it): 101 when accepted, then closed at once.
    async fn handshake(&self, caller: &Caller, path: &str) -> Answer {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}{path}", self.server.base.replacen("http://", "ws://", 1));
        let mut req = url.into_client_request().unwrap();
        let headers = req.headers_mut();
        headers.insert("origin", self.server.base.parse().unwrap());
        match &caller.auth {
            Auth::None => {}
            Auth::Bearer(token) => {
                headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
            }
            Auth::Cookie { cookie, .. } => {
                headers.insert("cookie", cookie.parse().unwrap());
            }
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((mut ws, res)) => {
                let _ = ws.close(None).await;
                Answer {
                    status: res.status().as_u16(),
                    location: String::new(),
                    body: String::new(),
                }
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Answer {
                status: res.status().as_u16(),
                location: String::new(),
                body: String::from_utf8_lossy(res.body().as_deref().unwrap_or_default())
                    .into_owned(),
            },
            Err(e) => panic!("{} GET {path}: handshake failed: {e}", caller.name),
        }
    }

    /// Signs in again every caller whose session a row ended.
    async fn refresh(&mut self) {
        for i in 0..self.callers.len() {
            let Some(account) = self.callers[i].account else {
                continue;
            };
            let me = self
                .call(&self.callers[i], "GET", "/api/me", None, true)
                .await;
            if me.status == 401 {
                self.callers[i].auth = sign_in(&self.server, account).await.0;
            }
        }
    }
}

fn is_websocket(path: &str) -> bool {
    path.starts_with("/api/sandbox/terminal")
        || path.ends_with("/terminal") && path.starts_with("/api/")
}

fn is_write(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS" | "*")
}

/// What a missing id's answer would be for the real id: the missing values
/// the server echoed put back as the real ones (a refusal that tells nothing
/// then equals the real id's refusal byte for byte).
fn as_if_real(
    answer: &Answer,
    missing: &[(&'static str, String)],
    ids: &[(&'static str, String)],
) -> Answer {
    let swap = |s: &str| {
        missing.iter().fold(s.to_string(), |s, (k, v)| {
            let real = &ids.iter().find(|(k2, _)| k2 == k).unwrap().1;
            s.replace(v.as_str(), real)
        })
    };
    Answer {
        status: answer.status,
        location: swap(&answer.location),
        body: swap(&answer.body),
    }
}

/// An answer short enough for a failure message.
fn short(answer: &Answer) -> String {
    let body: String = answer.body.chars().take(200).collect();
    format!("{} {:?} {body:?}", answer.status, answer.location)
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_table_says() {
    // The table names every route the router serves, and only those.
    let served: BTreeSet<(String, String)> = pglab::web::route_table()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let listed: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|r| (r.method.to_string(), r.route.to_string()))
        .collect();
    let unlisted: Vec<_> = served.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "routes without an expectation in tests/access_matrix.rs TABLE (say who may call them): {unlisted:#?}"
    );
    let stale: Vec<_> = listed.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "TABLE rows for routes the router does not serve: {stale:#?}"
    );
    assert_eq!(
        listed.len(),
        TABLE.len(),
        "a route is listed twice in TABLE"
    );

    let mut world = World::new().await;
    let mut wrong = Vec::new();
    for row in TABLE {
        let path = World::fill(row.path, &world.ids);
        let mut got = [0u16; 5];
        // Refused callers first: they must change nothing for those after.
        let order = [0usize, 2, 3, 1, 4];
        let anonymous = world
            .call(&world.callers[0], row.method, &path, row.body, true)
            .await;
        for dead in &world.dead {
            let answer = world.call(dead, row.method, &path, row.body, true).await;
            if (answer.status, &answer.location) != (anonymous.status, &anonymous.location)
                // A refusal word for word (a sign-in's fresh tokens differ).
                || (path.starts_with("/api/") && answer.status >= 300 && answer.body != anonymous.body)
            {
                wrong.push(format!(
                    "{} {path}: {} got {}, anonymous {}",
                    row.method,
                    dead.name,
                    short(&answer),
                    short(&anonymous)
                ));
            }
        }
        for &i in &order {
            let caller = world.callers[i].clone();
            let answer = if i == 0 {
                anonymous.clone()
            } else {
                world.call(&caller, row.method, &path, row.body, true).await
            };
            got[i] = answer.status;
            if answer.status == 303 && i == 0 && row.method == "GET" {
                assert!(
                    answer.location.starts_with("/login?next="),
                    "{} {path}: anonymous sent to {:?}",
                    row.method,
                    answer.location
                );
            }
            // A 5xx only where the table says so (the local backend has no
            // containers for compose: 503).
            if answer.status >= 500 && answer.status != row.expect[i] {
                wrong.push(format!(
                    "{} {path}: {} got {}",
                    row.method,
                    caller.name,
                    short(&answer)
                ));
            }
            // Refused someone else's resource: exactly what a missing id gets.
            let owned = world.ids.iter().any(|(k, _)| row.path.contains(k));
            if owned && matches!(answer.status, 403 | 404) {
                let missing = World::fill(row.path, &world.missing);
                let other = world
                    .call(&caller, row.method, &missing, row.body, true)
                    .await;
                if answer != as_if_real(&other, &world.missing, &world.ids) {
                    wrong.push(format!(
                        "{} {path}: {} is told more than for a missing id: {} vs {}",
                        row.method,
                        caller.name,
                        short(&answer),
                        short(&other)
                    ));
                }
            }
        }
        if got != row.expect {
            wrong.push(format!(
                "{} {}: expected {:?}, got {got:?}",
                row.method, row.route, row.expect
            ));
        }
        world.refresh().await;
    }
    assert!(
        wrong.is_empty(),
        "columns: {COLUMNS:?}\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn state_changing_requests_with_a_cookie_need_the_csrf_token() {
    let world = World::new().await;
    let mut wrong = Vec::new();
    for row in TABLE.iter().filter(|r| is_write(r.method)) {
        // Outside the session layer: takes no cookie, changes no account.
        if row.route == pglab::web::headers::REPORT_PATH {
            continue;
        }
        let path = World::fill(row.path, &world.ids);
        for caller in world.callers.iter().skip(1) {
            let answer = world.call(caller, row.method, &path, row.body, false).await;
            let says_csrf = answer.body.contains("CSRF");
            if answer.status != 403 || !says_csrf {
                wrong.push(format!(
                    "{} {path}: {} without the CSRF token got {answer:?}",
                    row.method, caller.name
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Nothing was done: the session of each caller still works.
    for caller in world.callers.iter().skip(1) {
        let me = world.call(caller, "GET", "/api/me", None, true).await;
        assert_eq!(me.status, 200, "{}: {me:?}", caller.name);
    }
}

#[tokio::test]
async fn an_instructors_lists_name_only_their_own_classrooms() {
    let world = World::new().await;
    let (teacher, other) = (&world.callers[4], &world.callers[3]);
    let classroom = World::fill("{classroom}", &world.ids);
    // Something in classroom 1's audit log and progress.
    world
        .ok(
            teacher,
            "POST",
            &format!("/api/instructor/classrooms/{classroom}/rotate"),
            None,
        )
        .await;
    let mine = world
        .ok(teacher, "GET", "/api/instructor/classrooms", None)
        .await;
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"].as_i64() == classroom.parse::<i64>().ok()),
        "{mine}"
    );
    let audit = world
        .ok(teacher, "GET", "/api/instructor/audit", None)
        .await;
    assert!(audit.to_string().contains("join_code_rotated"), "{audit}");

    for path in [
        "/api/instructor/classrooms",
        "/api/instructor/audit",
        "/api/instructor/audit.csv",
        "/instructor",
        "/instructor/audit",
    ] {
        let answer = world.call(other, "GET", path, None, true).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        for secret in ["classroom 1", "ada", "bob", "carol", "join_code_rotated"] {
            assert!(
                !answer.body.contains(secret),
                "{path} names {secret:?} to the other instructor: {}",
                answer.body
            );
        }
        if path.starts_with("/api/instructor/classrooms") {
            let list: Value = serde_json::from_str(&answer.body).unwrap();
            assert!(
                list.as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c["id"].as_i64() != classroom.parse::<i64>().ok()),
                "{list}"
            );
        }
    }
    // And the learner's own pages name nobody else.
    let (a, b) = (&world.callers[1], &world.callers[2]);
    for path in [
        "/api/plans",
        "/api/sessions",
        "/api/sandbox/dumps",
        "/api/history",
    ] {
        let theirs = world.call(b, "GET", path, None, true).await;
        assert_eq!(theirs.status, 200, "{path}: {theirs:?}");
        for secret in [
            World::fill("{dump}", &world.ids),
            "Aslow".to_string(),
            "pg_sleep".to_string(),
        ] {
            assert!(
                !theirs.body.contains(&secret),
                "{path} shows B {secret:?}: {}",
                theirs.body
            );
        }
        let own = world.call(a, "GET", path, None, true).await;
        assert_eq!(own.status, 200, "{path}: {own:?}");
    }
}
