//! Roles on the server: a learner gets 403 on every instructor page and API,
//! nobody signed in gets 401 (API) or a redirect to sign in (pages); the
//! instructor's classroom tools work (rotate, open/close, reset a password,
//! CSV import) and the shared test helpers sign people in.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestServer, signed_in_instructor, signed_in_instructor_of, signed_in_learner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every instructor route, with a body where one is expected.
fn instructor_routes(classroom: i64, user: i64) -> Vec<(Method, String, Option<Value>)> {
    let c = format!("/api/instructor/classrooms/{classroom}");
    vec![
        (Method::GET, "/api/instructor/classrooms".into(), None),
        (
            Method::POST,
            "/api/instructor/classrooms".into(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, c.clone(), None),
        (Method::POST, format!("{c}/rotate"), None),
        (Method::POST, format!("{c}/open"), None),
        (Method::POST, format!("{c}/close"), None),
        (Method::GET, format!("{c}/members"), None),
        (
            Method::POST,
            format!("{c}/import"),
            Some(json!({"csv": "mallory"})),
        ),
        (
            Method::POST,
            format!("/api/instructor/users/{user}/password"),
            None,
        ),
        (Method::GET, "/instructor".into(), None),
        (
            Method::GET,
            format!("/instructor/classrooms/{classroom}"),
            None,
        ),
    ]
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn send(
    http: &reqwest::Client,
    server: &TestServer,
    m: &Method,
    path: &str,
    body: &Option<Value>,
) -> reqwest::Response {
    let mut req = http.request(m.clone(), server.url(path));
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn learners_get_403_and_nobody_gets_401_or_a_redirect_on_instructor_routes() {
    let server = TestServer::start();
    let learner = signed_in_learner(&server, "lea").await;
    let me: Value = learner
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "learner");
    // lea's classroom's instructor (other instructors do not see it).
    let prof = signed_in_instructor_of(&server, "prof", "lea").await;
    let rooms: Value = prof
        .get(server.url("/api/instructor/classrooms"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room = rooms[0]["id"].as_i64().unwrap();
    let code = rooms[0]["join_code"].as_str().unwrap().to_string();
    let lea_id = me["id"].as_i64().unwrap();

    for (m, path, body) in instructor_routes(room, lea_id) {
        let res = send(&learner, &server, &m, &path, &body).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "learner {m} {path}");
        let text = res.text().await.unwrap();
        if path.starts_with("/api/") {
            assert_eq!(
                text, r#"{"error":"this needs an instructor account"}"#,
                "{path}"
            );
        } else {
            assert!(text.contains("Instructors only"), "{path}: {text}");
        }
        assert!(!text.contains(&code), "no data leaks to a learner: {path}");

        let anon = send(&no_redirects(), &server, &m, &path, &body).await;
        if path.starts_with("/api/") {
            assert_eq!(anon.status(), StatusCode::UNAUTHORIZED, "nobody {m} {path}");
            assert_eq!(anon.text().await.unwrap(), r#"{"error":"sign in first"}"#);
        } else {
            assert_eq!(anon.status(), StatusCode::SEE_OTHER, "nobody {m} {path}");
            let to = anon.headers()["location"].to_str().unwrap().to_string();
            assert_eq!(to, format!("/login?next={}", path.replace('/', "%2F")));
        }
    }
    // Nothing changed on the learner's or nobody's behalf.
    let after: Value = prof
        .get(server.url("/api/instructor/classrooms"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after.as_array().unwrap().len(), 1);
    assert_eq!(after[0]["join_code"], code.as_str());
    assert_eq!(after[0]["open"], true);
    assert_eq!(after[0]["members"], 1);
    // And the learner's own password still works.
    let res = reqwest::Client::new()
        .post(server.url("/api/login"))
        .json(&json!({"username": "lea", "password": "lea-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn instructors_manage_classrooms_codes_passwords_and_csv_imports() {
    let server = TestServer::start();
    let prof = signed_in_instructor(&server, "prof").await;
    let created = prof
        .post(server.url("/api/instructor/classrooms"))
        .json(&json!({"name": "Databases 101"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let room: Value = created.json().await.unwrap();
    let id = room["id"].as_i64().unwrap();
    let code = room["join_code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 8);
    let empty_name = prof
        .post(server.url("/api/instructor/classrooms"))
        .json(&json!({"name": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty_name.status(), 400);

    // Rotating the code: the old one stops working, the new one works.
    let rotated: Value = prof
        .post(server.url(&format!("/api/instructor/classrooms/{id}/rotate")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_code = rotated["join_code"].as_str().unwrap().to_string();
    assert_ne!(new_code, code);
    let http = reqwest::Client::new();
    let signup = |code: String, user: &'static str| {
        http.post(server.url("/api/signup"))
            .json(&json!({"username": user, "password": "learner-password", "join_code": code}))
            .send()
    };
    assert_eq!(signup(code.clone(), "kim").await.unwrap().status(), 400);
    assert_eq!(signup(new_code.clone(), "kim").await.unwrap().status(), 201);

    // CSV import: generated passwords are returned once and sign in.
    let imported = prof
        .post(server.url(&format!("/api/instructor/classrooms/{id}/import")))
        .json(&json!({"csv": "username,password\nlou\nmo,mo-own-password\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 201);
    let imported: Value = imported.json().await.unwrap();
    let lou = &imported["created"][0];
    assert_eq!(lou["username"], "lou");
    let lou_pw = lou["password"].as_str().unwrap().to_string();
    assert!(imported["created"][1]["password"].is_null());
    let bad = prof
        .post(server.url(&format!("/api/instructor/classrooms/{id}/import")))
        .json(&json!({"csv": "ok-name\nbad name\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("line 2"));
    let dup = prof
        .post(server.url(&format!("/api/instructor/classrooms/{id}/import")))
        .json(&json!({"csv": "newbie\nKIM\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);

    let login = |user: &'static str, pw: String| {
        reqwest::Client::new()
            .post(server.url("/api/login"))
            .json(&json!({"username": user, "password": pw}))
            .send()
    };
    let lou_login = login("lou", lou_pw.clone()).await.unwrap();
    assert_eq!(lou_login.status(), 200);
    let lou_token = lou_login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    // lou's token works (and the server now holds it in its session cache),
    // then a password reset must end it at once all the same.
    let before_reset = reqwest::Client::new()
        .get(server.url("/api/me"))
        .bearer_auth(&lou_token)
        .send()
        .await
        .unwrap();
    assert_eq!(before_reset.status(), 200);

    // Members, then a password reset that ends lou's sessions.
    let detail: Value = prof
        .get(server.url(&format!("/api/instructor/classrooms/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kim", "lou", "mo"]);
    let lou_id = detail["members"][1]["id"].as_i64().unwrap();
    let reset: Value = prof
        .post(server.url(&format!("/api/instructor/users/{lou_id}/password")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_pw = reset["password"].as_str().unwrap().to_string();
    assert_ne!(new_pw, lou_pw);
    assert_eq!(login("lou", lou_pw).await.unwrap().status(), 401);
    assert_eq!(login("lou", new_pw).await.unwrap().status(), 200);
    let old_token = reqwest::Client::new()
        .get(server.url("/api/me"))
        .bearer_auth(&lou_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old_token.status(),
        401,
        "a reset ends the learner's sessions"
    );
    // An instructor's password is not reset through this route.
    let me: Value = prof
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let own = prof
        .post(server.url(&format!("/api/instructor/users/{}/password", me["id"])))
        .send()
        .await
        .unwrap();
    // Not a learner this instructor manages: the same 404 as a missing id.
    assert_eq!(own.status(), 404);

    // The pages show the classroom, its code big, members and the matrix slot.
    let list = prof
        .get(server.url("/instructor"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("Databases 101") && list.contains(&new_code));
    let page = prof
        .get(server.url(&format!("/instructor/classrooms/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("data-testid=\"join-code\">{new_code}<")),
        "{page}"
    );
    assert!(
        page.contains(&format!("href=\"/instructor/classrooms/{id}/progress\"")),
        "the classroom page links its progress matrix"
    );
    assert!(page.contains("data-reset-password"));
    let missing = prof
        .get(server.url("/api/instructor/classrooms/999"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn helpers_sign_in_a_learner_and_an_instructor_like_a_browser() {
    let server = TestServer::start();
    let a = signed_in_learner(&server, "amy").await;
    let b = signed_in_learner(&server, "ben").await;
    let me_a: Value = a
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me_b: Value = b
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me_a["username"], "amy");
    assert_eq!(me_b["username"], "ben");
    assert_ne!(me_a["id"], me_b["id"]);
    // Writes go through CSRF: sign-out works and then the client is nobody.
    let out = a.post(server.url("/api/logout")).send().await.unwrap();
    assert_eq!(out.status(), 200);
    assert_eq!(
        a.get(server.url("/api/me")).send().await.unwrap().status(),
        401
    );
    // The home page renders for anyone, and has the user menu slot.
    let home = reqwest::get(server.url("/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("data-user-menu"));
}
