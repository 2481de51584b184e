//! Static files over real HTTP (issue #17): prepared bytes with a strong
//! ETag, 304 on `If-None-Match`, gzip when accepted, types and
//! `Cache-Control` as before, an edited file served anew, and 404 (never
//! 500) for paths outside the folder, traversal and unknown files.

mod common;

use std::io::Read;

use common::{ServerOptions, TestServer, client};

#[tokio::test]
async fn prepared_static_files_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("static");
    std::fs::create_dir_all(root.join("css")).unwrap();
    let css = "body { color: #123456 }\n".repeat(100);
    std::fs::write(root.join("css/site.css"), &css).unwrap();
    std::fs::write(dir.path().join("outside.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("out.txt")).unwrap();
    let server = TestServer::start_with(ServerOptions {
        env: vec![("PGLAB_STATIC_DIR".into(), root.display().to_string())],
        ..Default::default()
    });
    // reqwest here sends no Accept-Encoding unless told to.
    let http = client();
    let url = server.url("/static/css/site.css");

    let plain = http.get(&url).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    let h = plain.headers().clone();
    assert_eq!(h["content-type"], "text/css");
    assert_eq!(h["cache-control"], "public, max-age=3600");
    assert_eq!(h["vary"], "accept-encoding");
    assert!(h.get("content-encoding").is_none());
    let etag = h["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    assert_eq!(plain.text().await.unwrap(), css);

    let gz = http
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["etag"].to_str().unwrap(), etag);
    let bytes = gz.bytes().await.unwrap();
    assert!(bytes.len() < css.len() / 4);
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, css);

    let fresh = http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 304);
    assert!(fresh.bytes().await.unwrap().is_empty());

    // An edit is served at once, under a new ETag.
    let edited = "p { margin: 0 }\n".repeat(90);
    std::fs::write(root.join("css/site.css"), &edited).unwrap();
    let res = http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_ne!(res.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(res.text().await.unwrap(), edited);

    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let post = http.post(&url).send().await.unwrap();
    assert_eq!(post.status(), 405);

    for path in [
        "/static/out.txt",
        "/static/css",
        "/static/css/",
        "/static/",
        "/static/nothing.js",
        "/static/../Cargo.toml",
        "/static/%2e%2e/outside.txt",
        "/static/css/%2e%2e/%2e%2e/outside.txt",
        "/static/.hidden",
    ] {
        let res = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    let long = format!("/static/{}", "a".repeat(4000));
    assert_eq!(
        http.get(server.url(&long)).send().await.unwrap().status(),
        404
    );
}
