//! Lesson pages and course files through the real server: the lesson layout
//! and its placeholders, 404s, the files route (raw text for "Run this
//! file", rendered solution pages, path traversal refused) and the page
//! cache re-rendering a file after an edit.

#![allow(clippy::unwrap_used)]

mod common;

use common::{ServerOptions, TestServer, client};

const SECTION_14: &str = "/sections/14-postgresql-production-labs";

#[tokio::test]
async fn section_14_renders_as_a_lesson_page() {
    let server = TestServer::start();
    let http = client();
    let res = http.get(server.url(SECTION_14)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    for needle in [
        "<title>14 — PostgreSQL Production Labs — pglab</title>",
        "<div data-sandbox-panel></div>",
        "<div data-console data-sessions=\"T1\"></div>",
        "/static/js/lesson.js",
        "/static/js/sandbox.js",
        "/static/js/console.js",
        "/static/css/lesson.css",
        "/static/css/sandbox.css",
        "/static/css/console.css",
        "/static/css/plan.css",
        "data-exercise-status=\"14.C.1\"",
        "data-check-exercise=\"14.D.4\"",
        "data-run-sql data-exercise=\"14.B.1\"",
        "data-run-file=\"practice/curriculum/14-postgresql-production-labs/scripts/schema.sql\"",
        "href=\"/files/practice/curriculum/14-postgresql-production-labs/solutions/benchmark.md\"",
        "href=\"#exercise-14-c-2\"",
        "<pre class=\"diagram\">",
    ] {
        assert!(body.contains(needle), "missing {needle}");
    }
    // Twelve exercise cards (eleven exercises and the scenario).
    assert_eq!(body.matches("<section class=\"exercise-card\"").count(), 12);
}

#[tokio::test]
async fn unknown_sections_and_files_are_404_pages() {
    let server = TestServer::start();
    let http = client();
    for path in [
        "/sections/99-nothing",
        "/sections/not-a-section",
        "/files/practice/none.sql",
    ] {
        let res = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert!(
            res.text().await.unwrap().contains("Page not found"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn files_route_serves_raw_text_pages_and_refuses_traversal() {
    let server = TestServer::start();
    let http = client();
    let schema = "/files/practice/curriculum/14-postgresql-production-labs/scripts/schema.sql";
    let raw = http
        .get(server.url(&format!("{schema}?raw=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    assert!(
        raw.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = raw.text().await.unwrap();
    assert!(text.starts_with("-- Section 14"), "{text}");
    assert!(text.contains("CREATE TABLE tasks"));

    let page = http
        .get(server.url(schema))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(
        "data-run-file=\"practice/curriculum/14-postgresql-production-labs/scripts/schema.sql\""
    ));
    assert!(page.contains("<span class=\"tok-kw\">CREATE</span>"));

    let solution = http
        .get(server.url("/files/practice/curriculum/14-postgresql-production-labs/solutions/transactions_lab.md"))
        .send()
        .await
        .unwrap();
    assert_eq!(solution.status(), 200);
    let solution = solution.text().await.unwrap();
    assert!(solution.contains("<h1"), "rendered, not raw");
    assert!(
        solution.contains("href=\"/sections/14-postgresql-production-labs#exercise-14-c-2\""),
        "relative link back to the lesson"
    );

    // Sent over a raw socket: HTTP clients normalise `..` and `%2e%2e`
    // away before sending, an attacker's client does not.
    for evil in [
        "/files/../Cargo.toml?raw=1",
        "/files/practice/../../Cargo.toml?raw=1",
        "/files/%2e%2e/Cargo.toml",
        "/files/practice/%2e%2e/%2e%2e/Cargo.toml?raw=1",
        "/files/%2fetc%2fpasswd?raw=1",
        "/files/practice/..%2f..%2fCargo.toml?raw=1",
        "/files/.git/config?raw=1",
    ] {
        let (status, body) = raw_get(&server.base, evil).await;
        assert_eq!(status, 400, "{evil}: {body}");
        assert!(!body.contains("[package]"), "{evil} leaked a file");
    }
}

/// A GET with the path sent byte for byte; returns the status and body.
async fn raw_get(base: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn symlinks_out_of_the_content_dir_are_refused() {
    let content = tempfile::tempdir().unwrap();
    std::fs::write(content.path().join("01-intro.md"), "# SECTION 1 — Intro\n").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.sql"), "select 'secret';").unwrap();
    std::os::unix::fs::symlink(outside.path(), content.path().join("practice")).unwrap();
    let server = TestServer::start_with(ServerOptions {
        content_dir: content.path().to_path_buf(),
        ..Default::default()
    });
    let res = client()
        .get(server.url("/files/practice/secret.sql?raw=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn an_edited_section_is_rendered_again_on_reload() {
    let content = tempfile::tempdir().unwrap();
    let file = content.path().join("15-elasticsearch-practice.md");
    std::fs::write(
        &file,
        "# SECTION 15 — Elasticsearch Practice\n\nFirst version.\n",
    )
    .unwrap();
    std::fs::write(
        content.path().join("14-pg.md"),
        "# SECTION 14 — PG\n\nBefore.\n",
    )
    .unwrap();
    let server = TestServer::start_with(ServerOptions {
        content_dir: content.path().to_path_buf(),
        ..Default::default()
    });
    let http = client();
    let url = server.url("/sections/15-elasticsearch-practice");
    let first = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(first.contains("First version."));
    assert!(
        first.contains("href=\"/sections/14-pg\""),
        "previous section link"
    );
    // Served from the cache the second time: same text.
    let again = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(first, again);

    std::fs::write(
        &file,
        "# SECTION 15 — Elasticsearch Practice\n\n### Exercise 15.B.1 — Added Later\n\nSecond version, longer.\n",
    )
    .unwrap();
    let second = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        second.contains("Second version, longer."),
        "stale page served"
    );
    assert!(second.contains("data-exercise=\"15.B.1\""));
    assert!(!second.contains("First version."));
}

/// The bytes of a lesson page as a browser gets them: gzip when asked (and
/// decoded here), an ETag, and 304 for a reload of the same version.
#[tokio::test]
async fn lesson_pages_are_prepared_bytes_with_gzip_etag_and_304() {
    use std::io::Read;

    let content = tempfile::tempdir().unwrap();
    let file = content.path().join("15-elasticsearch-practice.md");
    std::fs::write(
        &file,
        "# SECTION 15 — Elasticsearch Practice\n\nFirst version.\n",
    )
    .unwrap();
    let server = TestServer::start_with(ServerOptions {
        content_dir: content.path().to_path_buf(),
        ..Default::default()
    });
    let http = client();
    let url = server.url("/sections/15-elasticsearch-practice");

    let plain = http.get(&url).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.headers()["cache-control"], "no-cache");
    let etag = plain.headers()["etag"].to_str().unwrap().to_string();
    let plain = plain.text().await.unwrap();
    assert!(plain.contains("First version."));

    let zipped = http
        .get(&url)
        .header("accept-encoding", "br;q=1, gzip;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(zipped.headers()["etag"].to_str().unwrap(), etag);
    let bytes = zipped.bytes().await.unwrap();
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain, "gzip and plain bodies differ");

    let refused = http
        .get(&url)
        .header("accept-encoding", "gzip;q=0")
        .send()
        .await
        .unwrap();
    assert!(refused.headers().get("content-encoding").is_none());

    let fresh = http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 304);
    assert_eq!(fresh.headers()["etag"].to_str().unwrap(), etag);
    assert!(fresh.bytes().await.unwrap().is_empty());

    // An edit makes a new version: the old tag no longer matches.
    std::fs::write(
        &file,
        "# SECTION 15 — Elasticsearch Practice\n\nSecond, longer version.\n",
    )
    .unwrap();
    let edited = http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    assert_ne!(edited.headers()["etag"].to_str().unwrap(), etag);
    assert!(
        edited
            .text()
            .await
            .unwrap()
            .contains("Second, longer version.")
    );
}
