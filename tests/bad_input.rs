//! Bad input over HTTP against the real server: oversized headers and
//! bodies, malformed cookies and bearer tokens, path traversal and odd bytes
//! in every path parameter, non-UTF-8 query strings. Every answer must be a
//! 4xx with a message (JSON or HTML) — never a 5xx, never a hang — and the
//! server must still answer `/healthz` afterwards.
//!
//! Requests go out over a raw TCP socket so that what is sent is exactly
//! what an attacker sends: an HTTP client library would resolve `..` and
//! `%2e%2e` segments and refuse non-UTF-8 bytes before they leave.
//!
//! The routes with path parameters come from the router's own route table
//! (`pglab::web::route_table`), so a new route is covered without editing
//! this file.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{TestServer, pglab};

/// One parsed answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` (the whole HTTP/1.1 request, bytes as given) and reads
/// the answer; panics if none comes within 20 s.
fn send(server: &TestServer, request: &[u8]) -> Answer {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server may answer (and close) before it has read an oversized
    // request; what it answers is what counts.
    let _ = stream.write_all(request);
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) => panic!(
                "no complete answer to {:?}: {e} (got {:?})",
                String::from_utf8_lossy(&request[..request.len().min(300)]),
                String::from_utf8_lossy(&raw)
            ),
        }
    }
    parse(&raw).unwrap_or_else(|| {
        panic!(
            "not an HTTP answer to {:?}: {:?}",
            String::from_utf8_lossy(&request[..request.len().min(300)]),
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Some(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = std::str::from_utf8(&data[..eol]).unwrap_or("0");
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 || data.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[(eol + 2 + size + 2).min(data.len())..];
    }
    out
}

/// Who sends a request: extra header lines (each ending in `\r\n`).
#[derive(Clone)]
struct Caller {
    name: &'static str,
    headers: Vec<u8>,
}

/// A request with `method`, raw `target` (path and query, bytes as given),
/// the caller's headers, and `body` as JSON when not empty.
fn request(method: &str, target: &[u8], caller: &Caller, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(method.as_bytes());
    r.push(b' ');
    r.extend_from_slice(target);
    r.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAccept: */*\r\n");
    r.extend_from_slice(&caller.headers);
    r.extend_from_slice(extra.as_bytes());
    if method != "GET" {
        r.extend_from_slice(
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
    }
    r.extend_from_slice(b"\r\n");
    if method != "GET" {
        r.extend_from_slice(body);
    }
    r
}

/// A refusal: 4xx (or, for a page, a redirect to the sign-in page) with a
/// message a person can read, JSON or HTML; never 5xx.
fn assert_refused(what: &str, answer: &Answer) {
    let location = answer.header("location").unwrap_or("");
    if (300..400).contains(&answer.status) {
        assert!(
            location.starts_with("/login"),
            "{what}: {} to {location:?}",
            answer.status
        );
        return;
    }
    assert!(
        (400..500).contains(&answer.status),
        "{what}: {} {}",
        answer.status,
        answer.text()
    );
    let kind = answer.header("content-type").unwrap_or("");
    let text = answer.text();
    let json_message = kind.starts_with("application/json")
        && serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(|m| !m.trim().is_empty()))
            .unwrap_or(false);
    let html_message = kind.starts_with("text/html") && text.contains("<");
    assert!(
        json_message || html_message,
        "{what}: {} without a JSON or HTML message: {kind:?} {text:?}",
        answer.status
    );
}

fn assert_healthy(server: &TestServer) {
    let anon = Caller {
        name: "anonymous",
        headers: Vec::new(),
    };
    let answer = send(server, &request("GET", b"/healthz", &anon, "", b""));
    assert_eq!((answer.status, answer.text().as_str()), (200, "ok"));
}

/// Every route template with a path parameter, and its methods, from the
/// router's own route table (`pglab::web::route_table`); a nested service
/// (`*`) is called with GET and POST.
fn routes_with_parameters() -> Vec<(String, Vec<&'static str>)> {
    let mut routes: Vec<(String, Vec<&'static str>)> = Vec::new();
    for route in pglab::web::route_table() {
        if !route.path.contains('{') {
            continue;
        }
        let methods: Vec<&'static str> = match route.method.as_str() {
            "GET" => vec!["GET"],
            "POST" => vec!["POST"],
            "PUT" => vec!["PUT"],
            "DELETE" => vec!["DELETE"],
            "PATCH" => vec!["PATCH"],
            "*" => vec!["GET", "POST"],
            other => panic!("no request for method {other} of {}", route.path),
        };
        match routes.iter_mut().find(|(p, _)| *p == route.path) {
            Some((_, m)) => m.extend(methods),
            None => routes.push((route.path, methods)),
        }
    }
    routes.sort();
    routes
}

/// Values for one path parameter: traversal, NULs (raw and encoded),
/// overlong and invalid UTF-8, CR/LF, huge numbers and a long value.
fn hostile_segments() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "..%2f..%2f..%2fetc%2fpasswd",
        "..%2F..%2FCargo.toml",
        "%2e%2e%2f%2e%2e%2fCargo.toml",
        "..%5c..%5cCargo.toml",
        "%00",
        "a%00b",
        "1%00",
        "%c0%ae%c0%ae%c0%af",
        "%c0%80",
        "%e0%80%ae",
        "%ff%fe",
        "%ed%a0%80",
        "%0d%0aSet-Cookie:%20x=1",
        "-1",
        "0",
        "99999999999999999999999999",
        "1e3",
        "%20",
        "%25",
        "%",
        "%zz",
        "'%20or%201=1--",
        "<script>",
        "%3Cscript%3E",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(vec![b'a'; 4000]);
    v.push(b"..".to_vec());
    v.push(b"\xff\xfe".to_vec());
    v
}

/// Extra values for a `{*path}` parameter (several segments).
fn hostile_paths() -> Vec<Vec<u8>> {
    [
        "../../../../etc/passwd",
        "..%2f..%2f..%2fCargo.toml",
        "%2e%2e/%2e%2e/Cargo.toml",
        "practice/../../Cargo.toml",
        "/etc/passwd",
        "practice%00.sql",
        "README.md%00.sql",
        "README.md/x",
        "README.md/..",
        "practice",
        "practice/",
        ".git/config",
        "practice/%c0%ae%c0%ae/%c0%ae%c0%ae/Cargo.toml",
        "..\\..\\Cargo.toml",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([
        format!("{}/x.md", "a".repeat(300)).into_bytes(),
        "a/".repeat(3000).into_bytes(),
    ])
    .collect()
}

/// Whether every byte may appear in an HTTP/1.1 request target as sent
/// (visible ASCII other than `<>"{}|\^` and backquote).
fn is_valid_target(target: &[u8]) -> bool {
    target
        .iter()
        .all(|b| (0x21..0x7f).contains(b) && !b"<>\"{}|\\^`".contains(b))
}

fn fill(template: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        out.extend_from_slice(value);
        rest = &rest[close + 1..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// Signs in with `POST /api/login` and returns the bearer token and the
/// `Cookie` header value (session and CSRF cookies) and CSRF token.
fn login(server: &TestServer, name: &str, password: &str) -> (String, String, String) {
    let anon = Caller {
        name: "anonymous",
        headers: Vec::new(),
    };
    let body = serde_json::json!({"username": name, "password": password}).to_string();
    let answer = send(
        server,
        &request("POST", b"/api/login", &anon, "", body.as_bytes()),
    );
    assert_eq!(answer.status, 200, "login {name}: {}", answer.text());
    let v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let cookies: Vec<String> = answer
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap().to_string())
        .collect();
    (
        v["token"].as_str().unwrap().to_string(),
        cookies.join("; "),
        v["csrf_token"].as_str().unwrap().to_string(),
    )
}

/// The server, an instructor with a classroom, a learner in it, and the callers.
fn setup() -> (TestServer, Vec<Caller>) {
    let server = TestServer::start();
    let out = pglab()
        .args([
            "user",
            "add",
            "teacher",
            "--instructor",
            "--password",
            "teacher-password",
            "--data-dir",
        ])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (teacher_token, teacher_cookies, teacher_csrf) =
        login(&server, "teacher", "teacher-password");
    let teacher = Caller {
        name: "instructor (bearer)",
        headers: format!("Authorization: Bearer {teacher_token}\r\n").into_bytes(),
    };
    let body = serde_json::json!({"name": "bad input"}).to_string();
    let room = send(
        &server,
        &request(
            "POST",
            b"/api/instructor/classrooms",
            &teacher,
            "",
            body.as_bytes(),
        ),
    );
    assert_eq!(room.status, 201, "{}", room.text());
    let room: serde_json::Value = serde_json::from_slice(&room.body).unwrap();
    let body = serde_json::json!({
        "username": "learner", "password": "learner-password", "join_code": room["join_code"]
    })
    .to_string();
    let anon = Caller {
        name: "anonymous",
        headers: Vec::new(),
    };
    let signup = send(
        &server,
        &request("POST", b"/api/signup", &anon, "", body.as_bytes()),
    );
    assert_eq!(signup.status, 201, "{}", signup.text());
    let (learner_token, _, _) = login(&server, "learner", "learner-password");
    let callers = vec![
        anon,
        Caller {
            name: "learner (bearer)",
            headers: format!("Authorization: Bearer {learner_token}\r\n").into_bytes(),
        },
        teacher,
        Caller {
            name: "instructor (cookie)",
            headers: format!("Cookie: {teacher_cookies}\r\nX-CSRF-Token: {teacher_csrf}\r\n")
                .into_bytes(),
        },
    ];
    (server, callers)
}

#[test]
fn hostile_path_parameters_are_refused_with_a_message() {
    let (server, callers) = setup();
    let routes = routes_with_parameters();
    assert!(routes.len() >= 20, "found only {routes:?}");
    let mut sent = 0;
    for (template, methods) in &routes {
        let mut values = hostile_segments();
        if template.contains("{*") {
            values.extend(hostile_paths());
        }
        for value in &values {
            let target = fill(template, value);
            for method in methods {
                for caller in &callers {
                    let answer = send(&server, &request(method, &target, caller, "", b"{}"));
                    let what = format!(
                        "{method} {} as {}",
                        String::from_utf8_lossy(&target[..target.len().min(200)]),
                        caller.name
                    );
                    if is_valid_target(&target) || answer.status != 400 {
                        // hyper lets some bytes HTTP does not allow through
                        // (`\`): pglab's own refusal then, with its message.
                        assert_refused(&what, &answer);
                    } else {
                        // Bytes HTTP does not allow in a request target
                        // (`<`, raw non-ASCII): hyper answers 400 before
                        // any of pglab's code runs, with no body.
                        assert_eq!(answer.status, 400, "{what}: {}", answer.text());
                    }
                    let text = answer.text();
                    assert!(
                        !text.contains("[package]") && !text.contains("root:x:0:0"),
                        "{what}: a file outside the course: {text}"
                    );
                    sent += 1;
                }
            }
        }
    }
    eprintln!("{sent} requests over {} routes", routes.len());
    assert_healthy(&server);
}

#[test]
fn non_utf8_and_malformed_query_strings_are_refused_or_ignored() {
    let (server, callers) = setup();
    // Routes that read a query string, with values that cannot be read.
    let targets: &[&[u8]] = &[
        b"/api/history?q=%ff%fe&limit=x",
        b"/api/history?limit=%ff",
        b"/api/history?limit=-1",
        b"/api/history?limit=99999999999999999999",
        b"/api/runs/x?after=%ff",
        b"/api/sandbox/log?since=%ff%fe",
        b"/api/sandbox/log?since=abc",
        b"/api/labs/traffic?since=%c0%ae",
        b"/api/plans/compare?a=%ff&b=%00",
        b"/api/plans/compare?a=..%2f..%2fx&b=",
        b"/files/README.md?raw=%ff",
        b"/login?next=%ff%fe",
        b"/login?next=%00",
        b"/signup?code=%ff",
        b"/api/instructor/learners/1/terminal?cols=%ff&rows=-1",
        b"/console?\xff\xfe=\xc0\xae",
        b"/healthz?%ff",
    ];
    for target in targets {
        for caller in &callers {
            let answer = send(&server, &request("GET", target, caller, "", b""));
            let what = format!("GET {} as {}", String::from_utf8_lossy(target), caller.name);
            assert!(
                answer.status < 500,
                "{what}: {} {}",
                answer.status,
                answer.text()
            );
            if answer.status >= 400 && is_valid_target(target) {
                assert_refused(&what, &answer);
            }
        }
    }
    assert_healthy(&server);
}

#[test]
fn oversized_and_malformed_requests_are_refused() {
    let (server, callers) = setup();
    let anon = &callers[0];
    let learner = &callers[1];
    let teacher_cookie = &callers[3];

    // A header larger than the server reads: refused before any handler.
    let big = format!("X-Big: {}\r\n", "a".repeat(1 << 20));
    let answer = send(&server, &request("GET", b"/api/me", anon, &big, b""));
    assert!(
        (400..500).contains(&answer.status),
        "oversized header: {} {}",
        answer.status,
        answer.text()
    );
    let many: String = (0..2000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let answer = send(&server, &request("GET", b"/api/me", anon, &many, b""));
    assert!(
        (400..500).contains(&answer.status),
        "2000 headers: {}",
        answer.status
    );

    // Bodies over the limits of the JSON routes.
    let huge = vec![b'a'; 9 << 20];
    let body = [b"{\"sql\": \"".as_slice(), &huge, b"\"}"].concat();
    for path in [
        b"/api/sql".as_slice(),
        b"/api/login",
        b"/api/signup",
        b"/api/csp-report",
    ] {
        let answer = send(&server, &request("POST", path, learner, "", &body));
        assert_refused(
            &format!("9 MiB body to {}", String::from_utf8_lossy(path)),
            &answer,
        );
    }
    // A declared length far beyond what is sent: refused, not awaited.
    let lying = b"POST /api/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{}";
    let answer = send(&server, lying);
    assert_refused("Content-Length 99999999999", &answer);

    // Malformed JSON and wrong types.
    for body in [
        &b"{"[..],
        b"\xff\xfe",
        b"[]",
        b"{\"username\": 1}",
        b"null",
        b"",
    ] {
        let answer = send(&server, &request("POST", b"/api/login", anon, "", body));
        assert_refused(
            &format!("login body {:?}", String::from_utf8_lossy(body)),
            &answer,
        );
    }

    // Malformed cookies and bearer tokens: treated as signed out, with a message.
    let odd_auth: Vec<Vec<u8>> = [
        &b"Cookie: pglab_session=\r\n"[..],
        b"Cookie: pglab_session=%ff%fe; pglab_session=x\r\n",
        b"Cookie: pglab_session=\xff\xfe\r\n",
        b"Cookie: ;;;===;\r\n",
        b"Cookie: pglab_session=\"unterminated\r\n",
        b"Cookie: pglab_csrf=x; pglab_session=\x00\r\n",
        b"Authorization: Bearer\r\n",
        b"Authorization: Bearer \r\n",
        b"Authorization: Bearer \xff\xfe\r\n",
        b"Authorization: Bearer a b c\r\n",
        b"Authorization: Basic dGVhY2hlcjp0ZWFjaGVyLXBhc3N3b3Jk\r\n",
        b"Authorization: bearer%00x\r\n",
        b"Authorization: Bearer x\r\nAuthorization: Bearer y\r\n",
    ]
    .iter()
    .map(|h| h.to_vec())
    .chain([format!("Authorization: Bearer {}\r\n", "z".repeat(60_000)).into_bytes()])
    .collect();
    for h in odd_auth {
        let shown = String::from_utf8_lossy(&h[..h.len().min(80)]).into_owned();
        let caller = Caller {
            name: "odd",
            headers: h,
        };
        for (method, path) in [
            ("GET", b"/api/me".as_slice()),
            ("GET", b"/api/progress"),
            ("POST", b"/api/sql"),
            ("GET", b"/console"),
        ] {
            let body = b"{\"sql\": \"select 1\"}";
            let answer = send(&server, &request(method, path, &caller, "", body));
            let signed_out = send(&server, &request(method, path, anon, "", body));
            let what = format!("{method} {} with {shown:?}", String::from_utf8_lossy(path));
            // Answered as a signed-out caller would be: the same page, or
            // a refusal (a cookie without its CSRF token is refused as such).
            // A control byte in a header is refused by hyper (400, no body).
            if caller
                .headers
                .iter()
                .any(|b| *b < 0x20 && !b"\r\n\t".contains(b))
            {
                assert_eq!(answer.status, 400, "{what}: {}", answer.text());
            } else if signed_out.status < 400 {
                assert_eq!(
                    answer.status,
                    signed_out.status,
                    "{what}: {}",
                    answer.text()
                );
            } else {
                assert_refused(&what, &answer);
            }
        }
    }
    // A cookie caller with a wrong CSRF token is refused.
    let wrong_csrf = Caller {
        name: "wrong csrf",
        headers: String::from_utf8(teacher_cookie.headers.clone())
            .unwrap()
            .replace("X-CSRF-Token: ", "X-CSRF-Token: x")
            .into_bytes(),
    };
    let answer = send(
        &server,
        &request(
            "POST",
            b"/api/instructor/classrooms",
            &wrong_csrf,
            "",
            b"{\"name\": \"x\"}",
        ),
    );
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert_refused("wrong CSRF token", &answer);

    // Garbage request lines: an HTTP answer, not a hang or a dropped connection.
    for raw in [
        &b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET http://evil/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"BREW / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX: \x01\x02\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    ] {
        let answer = send(&server, raw);
        let what = format!("{:?}", String::from_utf8_lossy(raw));
        assert!(answer.status < 500, "{what}: {}", answer.status);
        assert!(
            !answer.text().contains("root:x:0:0"),
            "{what}: {}",
            answer.text()
        );
    }
    assert_healthy(&server);
}
