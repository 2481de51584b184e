//! Section 14's shell commands as printed, in the real sandbox terminal
//! (real server, WebSocket over loopback, real containers of the sandbox
//! image, and a real local cluster): `docker compose exec postgres psql`,
//! `... -T ... < scripts/schema.sql` and `... pg_dump ... > backup.sql` from
//! the section's folder, whose lab files are there read-only; every other
//! `docker` form is refused as outside the sandbox. And the Part E step 1
//! check: it passes only once the learner's own compose file, with a named
//! volume, a health check and limits, is up. And a compose up while the
//! terminal and the console are open ends both cleanly; both work again.
//!
//! Docker tests run one at a time (a static lock); a guard removes what
//! they create.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;
#[path = "common/term.rs"]
mod term;

use serde_json::{Value, json};

static DOCKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SECTION: &str = "practice/curriculum/14-postgresql-production-labs";
const TABLES: &str = "select count(*) from pg_tables where schemaname = 'public' \
     and tablename in ('users', 'projects', 'tasks', 'audit_logs', 'accounts')";

/// The three commands of the section, as printed, from its folder; the lab
/// files there are read-only and the dump lands beside them. `prompt` is
/// how the shell's prompt ends.
async fn printed_commands(t: &mut term::Term, prompt: &str) {
    t.expect(0, prompt, 120).await;
    let out = t.run(&format!("cd ~/{SECTION} && ls scripts"), 20).await;
    assert!(
        out.contains("schema.sql") && out.contains("ex14_1_setup.sql"),
        "{out}"
    );
    // The lab files cannot be changed or removed.
    let out = t
        .run(
            "(echo '-- mine' >> scripts/schema.sql) 2>/dev/null; echo append=$?; \
             rm -f scripts/schema.sql 2>/dev/null; echo rm=$?; touch scripts/new.sql 2>/dev/null; echo touch=$?",
            10,
        )
        .await;
    for refused in ["append=1", "rm=1", "touch=1"] {
        assert!(out.contains(refused), "{refused}: {out}");
    }
    let same = std::fs::read_to_string(
        common::repo_content_dir()
            .join(SECTION)
            .join("scripts/schema.sql"),
    )
    .unwrap();
    let out = t.run("cat scripts/schema.sql | wc -c", 10).await;
    assert!(out.contains(&same.len().to_string()), "{out}");

    // 1. psql, interactive.
    let from = t.screen.len();
    t.line("docker compose exec postgres psql -U labuser -d labdb")
        .await;
    t.expect(from, "labdb=#", 30).await;
    let from = t.screen.len();
    t.line("select 40 + 2 as answer;").await;
    let seen = t.expect(from, "(1 row)", 20).await;
    assert!(seen.contains("42"), "{seen}");
    t.line("\\q").await;
    t.run("true", 20).await;

    // 2. A script fed on stdin.
    let out = t
        .run(
            "docker compose exec -T postgres psql -U labuser -d labdb < scripts/schema.sql > /tmp/schema.out 2>&1; echo fed=$?; tail -n 3 /tmp/schema.out",
            60,
        )
        .await;
    assert!(out.contains("fed=0"), "{out}");
    let out = t
        .run(
            &format!("docker compose exec -T postgres psql -U labuser -d labdb -Atc \"{TABLES}\""),
            20,
        )
        .await;
    assert!(out.lines().any(|l| l.trim() == "5"), "{out}");

    // 3. A dump into the section's folder: plain SQL with the five tables,
    // no carriage returns (no TTY in the way).
    let out = t
        .run(
            "docker compose exec postgres pg_dump -U labuser labdb > backup.sql; echo dumped=$?; \
             grep -c 'CREATE TABLE public' backup.sql; grep -c $'\\r' backup.sql; ls -l backup.sql",
            60,
        )
        .await;
    assert!(out.contains("dumped=0"), "{out}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| *l == "dumped=0").unwrap();
    assert_eq!(lines.get(at + 1), Some(&"5"), "CREATE TABLE count: {out}");
    assert_eq!(lines.get(at + 2), Some(&"0"), "carriage returns: {out}");
}

/// Every form the sandbox has no engine for is refused, non-zero, saying so.
async fn other_forms_are_refused(t: &mut term::Term, own_container: &str) {
    for cmd in [
        "docker run -d --name pg postgres:15",
        "docker ps -a",
        "docker exec -it pglab-someone-else-7 psql",
        "docker compose up -d",
        "docker compose exec web psql",
        "docker inspect pg",
    ] {
        let out = t.run(&format!("{cmd} 2>&1; echo rc=$?"), 20).await;
        assert!(out.contains("rc=1"), "{cmd}: {out}");
        assert!(out.contains("outside your sandbox"), "{cmd}: {out}");
    }
    // Their own container, by the name `docker compose ps` gives it, works.
    let out = t.run("docker compose ps", 10).await;
    assert!(
        out.contains(own_container) && out.contains("postgres"),
        "{out}"
    );
    let out = t
        .run(
            &format!("docker exec -i {own_container} psql -Atc 'select 6 * 7'"),
            20,
        )
        .await;
    assert!(out.lines().any(|l| l.trim() == "42"), "{out}");
}

#[tokio::test]
async fn docker_the_printed_commands_work_from_the_section_folder() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = support::data_dir();
    let (_cleanup, server) = term::docker_server(data, &[]).await;
    common::signed_in_learner(&server, "ada").await;
    let (cookie, _) = term::cookies(&server, "ada").await;
    let mut t = term::open(&server, Some(&cookie), None, 160, 40)
        .await
        .unwrap();
    printed_commands(&mut t, ":~$ ").await;
    let out = t.run("command -v docker", 10).await;
    eprintln!("docker in the sandbox image: {out}");
    t.close().await;
}

#[tokio::test]
async fn docker_forms_outside_the_sandbox_are_refused() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = support::data_dir();
    let (_cleanup, server) = term::docker_server(data, &[]).await;
    common::signed_in_learner(&server, "bob").await;
    let (cookie, _) = term::cookies(&server, "bob").await;
    let mut t = term::open(&server, Some(&cookie), None, 160, 40)
        .await
        .unwrap();
    t.expect(0, ":~$ ", 120).await;
    let name = t.run("echo name=$PGLAB_CONTAINER", 10).await;
    let name = name
        .lines()
        .find_map(|l| l.trim().strip_prefix("name="))
        .unwrap()
        .to_string();
    assert!(name.starts_with("pglab-"), "{name}");
    other_forms_are_refused(&mut t, &name).await;
    t.close().await;
}

#[tokio::test]
async fn local_the_printed_commands_and_refusals_run_this_machines_psql() {
    let (_temp, data) = support::data_dir();
    let server = common::TestServer::start_with(common::ServerOptions {
        data_dir: Some(data.clone()),
        ..Default::default()
    });
    let _clusters = support::LocalClusters(data.clone());
    common::signed_in_learner(&server, "fay").await;
    let (cookie, _) = term::cookies(&server, "fay").await;
    let mut t = term::open(&server, Some(&cookie), Some(&server.base), 160, 40)
        .await
        .unwrap();
    printed_commands(&mut t, "@pglab-local:~$ ").await;
    let banner = t.control.iter().find(|c| c["type"] == "banner").unwrap();
    assert!(
        banner["message"].as_str().unwrap().contains("no container"),
        "{banner}"
    );
    // `docker compose exec` runs the bindir's own psql.
    let out = t.run("command -v psql", 10).await;
    assert!(out.contains("/bin/psql"), "{out}");
    let name = t.run("echo name=$PGLAB_CONTAINER", 10).await;
    let name = name
        .lines()
        .find_map(|l| l.trim().strip_prefix("name="))
        .unwrap()
        .to_string();
    other_forms_are_refused(&mut t, &name).await;
    // The server log is readable here.
    let out = t.run("docker compose logs --tail 5 postgres", 10).await;
    assert!(out.contains("LOG:"), "{out}");
    t.line("exit").await;
    assert_eq!(t.closed_reason(15).await, "exit");
}

/// Part E step 1's check (its name and message) from the sidecar, and its
/// reference compose file.
fn part_e_step_1() -> (String, String, String) {
    let path = common::repo_content_dir().join("14-postgresql-production-labs.checks.toml");
    let file = pglab::course::checks::ChecksFile::load(&path)
        .unwrap()
        .unwrap();
    let ex = file.exercise("14.E").unwrap();
    let check = ex
        .checks
        .iter()
        .find(|c| c.kind == Some(pglab::course::checks::CheckKind::Sandbox))
        .unwrap();
    let yaml = ex.solution.iter().find_map(|s| s.compose.clone()).unwrap();
    (check.name.clone(), check.message.clone(), yaml)
}

/// The Part E check's verdict on the sandbox check, and what its message
/// says is missing (after the check's own message).
async fn sandbox_check(
    server: &common::TestServer,
    http: &reqwest::Client,
    (name, message): (&str, &str),
) -> (bool, String) {
    let answer: Value = http
        .post(server.url("/api/exercises/14.E/check"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let detail = answer["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no {name:?} in {answer}"))
        .clone();
    let said = detail["message"].as_str().unwrap_or("");
    let own = format!("{}: ", message.trim_end().trim_end_matches(['.', ':']));
    (
        detail["passed"] == true,
        said.strip_prefix(&own).unwrap_or(said).to_string(),
    )
}

async fn compose_up(server: &common::TestServer, http: &reqwest::Client, yaml: &str) {
    let res = http
        .put(server.url("/api/sandbox/compose"))
        .json(&json!({ "yaml": yaml }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = http
        .post(server.url("/api/sandbox/compose/up"))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains("✔"), "up failed:\n{text}");
}

#[tokio::test]
async fn docker_part_e_step_1_passes_with_a_volume_a_health_check_and_limits_only() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = support::data_dir();
    let (_cleanup, server) = term::docker_server(data, &[]).await;
    let http = common::signed_in_learner(&server, "eve").await;
    let (name, message, reference) = part_e_step_1();
    let check = (name.as_str(), message.as_str());

    // pglab's own settings: a named volume and limits, but not the learner's.
    let (passed, message) = sandbox_check(&server, &http, check).await;
    assert!(!passed);
    assert!(message.contains("pglab's own settings"), "{message}");

    // Their file without a volume and a health check.
    let bare =
        "services:\n  postgres:\n    image: postgres:15\n    mem_limit: 200m\n    cpus: \"0.4\"\n";
    compose_up(&server, &http, bare).await;
    let (passed, message) = sandbox_check(&server, &http, check).await;
    assert!(!passed);
    assert!(
        message.contains("anonymous volume") && message.contains("no health check"),
        "{message}"
    );
    assert!(!message.contains("memory limit"), "{message}");

    // A volume and a health check, but no limits of theirs.
    let no_limits = reference
        .lines()
        .filter(|l| !l.contains("mem_limit") && !l.contains("cpus"))
        .collect::<Vec<_>>()
        .join("\n");
    compose_up(&server, &http, &no_limits).await;
    let (passed, message) = sandbox_check(&server, &http, check).await;
    assert!(!passed);
    assert!(
        message.contains("no memory limit") && message.contains("no CPU limit"),
        "{message}"
    );
    assert!(!message.contains("volume"), "{message}");

    // The lesson's file: everything.
    compose_up(&server, &http, &reference).await;
    let (passed, message) = sandbox_check(&server, &http, check).await;
    assert!(passed, "{message}");
}

/// A compose up while the learner's terminal and console session are open
/// (issue #14's "ends them cleanly and they reconnect"): the terminal gets
/// its closing message and closes, the console's next run answers from the
/// re-created server without a lost connection, and a new terminal works.
#[tokio::test]
async fn docker_compose_up_ends_the_open_terminal_and_console_which_reconnect() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = support::data_dir();
    let (_cleanup, server) = term::docker_server(data, &[]).await;
    let http = common::signed_in_learner(&server, "kim").await;
    let (cookie, _) = term::cookies(&server, "kim").await;

    let sql = |script: &'static str| {
        let http = http.clone();
        let url = server.url("/api/sql");
        async move {
            let res = http
                .post(&url)
                .json(&json!({"session": "T1", "sql": script, "timeout_s": 60}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{script}");
            let mut answer: Value = res.json().await.unwrap();
            // The first run starts the sandbox: poll it to its end.
            while answer["status"] == "running" {
                let id = answer["run_id"].as_str().unwrap().to_string();
                answer = http
                    .get(url.replace("/api/sql", &format!("/api/runs/{id}?wait_ms=5000")))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
            }
            assert_eq!(answer["status"], "done", "{answer}");
            answer
        }
    };
    let before = sql("select pg_postmaster_start_time()::text as started").await;
    assert_ne!(before["connection_lost"], true, "{before}");
    let started = before["statements"][0]["rows"][0][0].clone();
    assert!(started.is_string(), "{before}");

    let mut t = term::open(&server, Some(&cookie), None, 160, 40)
        .await
        .unwrap();
    t.expect(0, ":~$ ", 120).await;
    t.run("echo before-up", 10).await;

    let bare =
        "services:\n  postgres:\n    image: postgres:15\n    mem_limit: 200m\n    cpus: \"0.4\"\n";
    compose_up(&server, &http, bare).await;

    // The terminal on the old container ends with its closing message.
    let closed = t.wait_control(30, |c| c["type"] == "closed").await;
    let message = closed["message"].as_str().unwrap_or("");
    assert!(message.contains("terminal closed"), "{closed}");
    eprintln!("terminal after compose up: {closed}");
    t.close().await;

    // The console answers from the new server on its first run.
    let after = sql("select pg_postmaster_start_time()::text as started").await;
    assert_ne!(after["connection_lost"], true, "{after}");
    assert!(after["statements"][0]["error"].is_null(), "{after}");
    assert_ne!(after["statements"][0]["rows"][0][0], started, "{after}");

    // And a new terminal reaches the new container.
    let mut t = term::open(&server, Some(&cookie), None, 160, 40)
        .await
        .unwrap();
    t.expect(0, ":~$ ", 120).await;
    let out = t
        .run(
            "docker compose exec -T postgres psql -U labuser -d labdb -Atc 'select 41+1'",
            30,
        )
        .await;
    assert!(out.contains("\n42"), "{out}");
    t.close().await;
}
