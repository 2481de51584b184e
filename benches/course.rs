//! Course benchmarks (prints figures; `harness = false`):
//! 1. rendering section 14 from markdown (model + HTML): median and p99,
//!    budget 5 ms;
//! 2. serving the cached lesson page against `GET /healthz` (the server's
//!    floor) in the same run: the release server under 64 keep-alive
//!    connections from the benchmark's own load generator (one thread,
//!    prepared requests), interleaved rounds of `PGLAB_BENCH_SECS` (4 s)
//!    each; budget ≥ 20,000 requests/s, ≥ 80 % of `/healthz`'s rate and
//!    p99 ≤ 10 ms (issue #17);
//! 3. static files under the same load: the editor bundle
//!    `static/js/codemirror.js` (when `npm run build` made it) and
//!    `static/css/pglab.css`, with and without `Accept-Encoding: gzip`:
//!    rate, latency and bytes on the wire.
//!
//! Run with `scripts/bench.sh course` (or `cargo bench --bench course`).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pglab::course::{model, render};

fn main() {
    let content = Path::new(env!("CARGO_MANIFEST_DIR")).join("content");
    bench_render(&content);
    bench_serve(&content);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn bench_render(content: &Path) {
    let text = std::fs::read_to_string(content.join("14-postgresql-production-labs.md")).unwrap();
    for _ in 0..20 {
        std::hint::black_box(render::render(&text, ""));
    }
    let mut times = Vec::with_capacity(300);
    for _ in 0..300 {
        let start = Instant::now();
        let section = model::parse(&text);
        let out = render::render(&text, "");
        std::hint::black_box((section, out));
        times.push(start.elapsed());
    }
    times.sort();
    let median = percentile(&times, 0.5);
    let p99 = percentile(&times, 0.99);
    println!(
        "course/render section 14 ({} KiB markdown): median {:.3} ms, p99 {:.3} ms  (budget 5 ms: {})",
        text.len() / 1024,
        median.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        if median <= Duration::from_millis(5) {
            "ok"
        } else {
            "OVER"
        }
    );
}

fn bench_serve(content: &Path) {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pglab"))
        .args(["serve", "--bind", "127.0.0.1:0", "--sandbox", "local"])
        .arg("--content-dir")
        .arg(content)
        .arg("--data-dir")
        .arg(data.path())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("server output").unwrap();
        if let Some(url) = line.strip_prefix("pglab listening on ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let lesson = "/sections/14-postgresql-production-labs";
    let secs: f64 = std::env::var("PGLAB_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    let conns = 64;
    // Warm the page cache and the connections' paths.
    load(addr, lesson, 4, 0.5, true);
    load(addr, "/healthz", 4, 0.5, true);
    // Interleaved rounds, so that both see the same machine load.
    let (mut health, mut page) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        health.push(load(addr, "/healthz", conns, secs, true));
        page.push(load(addr, lesson, conns, secs, true));
    }
    // Static files: one round each, gzip and identity.
    let bundle = "/static/js/codemirror.js";
    let has_bundle = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("static/js/codemirror.js")
        .is_file();
    let mut statics = Vec::new();
    for path in [bundle, "/static/css/pglab.css"] {
        if path == bundle && !has_bundle {
            println!("course/static {bundle} is missing (npm run build): not measured");
            continue;
        }
        for gzip in [true, false] {
            load(addr, path, 4, 0.5, gzip);
            statics.push((path, gzip, load(addr, path, conns, secs, gzip)));
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let merge = |runs: Vec<Load>| {
        let mut all = Load {
            requests: 0,
            secs: 0.0,
            sorted_us: Vec::new(),
            bytes: 0,
        };
        for r in runs {
            all.requests += r.requests;
            all.secs += r.secs;
            all.sorted_us.extend(r.sorted_us);
            all.bytes = r.bytes;
        }
        all.sorted_us.sort_unstable();
        all
    };
    let (health, page) = (merge(health), merge(page));
    let ratio = page.rate() / health.rate();
    println!(
        "course/serve load average {} ({conns} keep-alive connections, one client thread, 2 x {secs} s each, interleaved)",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
    );
    for (name, l) in [
        ("GET /healthz", &health),
        ("cached lesson page (gzip)", &page),
    ] {
        println!(
            "course/serve {name:<28} {:>8.0} requests/s  p50 {:.2} ms  p99 {:.2} ms  ({} B body)",
            l.rate(),
            l.p(0.5),
            l.p(0.99),
            l.bytes
        );
    }
    for (path, gzip, l) in &statics {
        let coding = if *gzip { "gzip" } else { "identity" };
        println!(
            "course/static {:<38} {:>8.0} requests/s  p50 {:.2} ms  p99 {:.2} ms  ({} B body, {:.1} MB/s)",
            format!("{path} ({coding})"),
            l.rate(),
            l.p(0.5),
            l.p(0.99),
            l.bytes,
            l.rate() * l.bytes as f64 / 1e6
        );
    }
    let ok = page.rate() >= 20_000.0 && ratio >= 0.8 && page.p(0.99) <= 10.0;
    println!(
        "course/serve lesson page / healthz rate, same run: {ratio:.2}  (budget >= 20,000 req/s, >= 0.80 of /healthz, p99 <= 10 ms: {})",
        if ok { "ok" } else { "OVER" }
    );
}

/// Requests/s and latencies of `GET path` from `conns` keep-alive
/// connections for `secs`.
struct Load {
    requests: usize,
    secs: f64,
    sorted_us: Vec<u32>,
    bytes: usize,
}

impl Load {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.secs
    }

    fn p(&self, q: f64) -> f64 {
        if self.sorted_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.sorted_us.len() as f64 - 1.0) * q).round() as usize;
        self.sorted_us[i] as f64 / 1000.0
    }
}

/// The load generator: each connection sends one prepared HTTP/1.1 request,
/// reads the answer's head and its body (`Content-Length` bytes, or chunks
/// up to the last one, as a response compressed on the fly comes), and
/// sends the next (no pipelining). It runs on one thread so that the server
/// keeps the other core; a non-200 answer stops the benchmark. `gzip`:
/// send `Accept-Encoding: gzip`.
fn load(addr: std::net::SocketAddr, path: &str, conns: usize, secs: f64, gzip: bool) -> Load {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let accept = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}User-Agent: pglab-bench\r\n\r\n")
            .into_bytes();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let request = std::sync::Arc::new(request);
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let request = request.clone();
            tasks.push(tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut buf = vec![0u8; 1 << 20];
                let mut lat = Vec::new();
                let mut bytes = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    stream.write_all(&request).await.unwrap();
                    let mut have = 0;
                    let (head, length) = loop {
                        let n = stream.read(&mut buf[have..]).await.unwrap();
                        assert!(n > 0, "the server closed the connection");
                        have += n;
                        if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = std::str::from_utf8(&buf[..end]).unwrap();
                            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                            let length: Option<usize> = head.lines().find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            });
                            break (end + 4, length);
                        }
                    };
                    let body = match length {
                        Some(length) => {
                            while have < head + length {
                                let n = stream.read(&mut buf[have..]).await.unwrap();
                                assert!(n > 0, "the server closed the connection");
                                have += n;
                            }
                            length
                        }
                        // Chunked: the body ends with the empty last chunk.
                        None => loop {
                            if let Some(size) = chunked_len(&buf[head..have]) {
                                break size;
                            }
                            let n = stream.read(&mut buf[have..]).await.unwrap();
                            assert!(n > 0, "the server closed the connection");
                            have += n;
                        },
                    };
                    lat.push(t.elapsed().as_micros() as u32);
                    bytes = body;
                }
                (lat, bytes)
            }));
        }
        let mut all = Vec::new();
        let mut bytes = 0;
        for t in tasks {
            let (lat, b) = t.await.unwrap();
            all.extend(lat);
            bytes = b;
        }
        let secs = started.elapsed().as_secs_f64();
        all.sort_unstable();
        Load {
            requests: all.len(),
            secs,
            sorted_us: all,
            bytes,
        }
    })
}

/// The data bytes of a whole chunked body in `data`, once its last chunk
/// (and the empty trailer) arrived; `None` while more is to come.
fn chunked_len(mut data: &[u8]) -> Option<usize> {
    let mut total = 0;
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        let rest = &data[eol + 2..];
        if size == 0 {
            return rest.starts_with(b"\r\n").then_some(total);
        }
        if rest.len() < size + 2 {
            return None;
        }
        total += size;
        data = &rest[size + 2..];
    }
}
