//! The learner's own `docker-compose.yml` for their PostgreSQL: the safe
//! subset pglab runs, its validation within the instructor's caps, and the
//! files kept in the store (`migrations/0007_compose.sql`).
//!
//! A file has one service, `postgres`, with only these keys: `image` (from
//! the allow-list), `environment` (POSTGRES_USER, POSTGRES_PASSWORD,
//! POSTGRES_DB), `volumes` (one **named** volume at PGDATA, or none),
//! `healthcheck`, `mem_limit` / `cpus` / `pids_limit` or
//! `deploy.resources.limits`, `command` (`postgres -c name=value ...`) and
//! `restart`. Everything else is refused with its line and the reason, by
//! construction: the model below denies unknown fields at every level, so a
//! key pglab does not know can never be accepted silently.
//!
//! Parsing runs in three passes over at most [`MAX_BYTES`]: a generic YAML
//! value (syntax errors; serde_yaml bounds alias expansion, so an alias bomb
//! is an error, not gigabytes), the shape (exactly one service, named
//! `postgres`), then the strict typed model (unknown keys, with the line
//! serde_yaml reports). Values are then checked against [`Caps`]; a value
//! over a cap is refused, never lowered to it.
//!
//! The result is a [`ComposePlan`]: backend-neutral settings that the Docker
//! backend turns into a container (`docker/spec.rs`) and the swarm backend
//! into a service (`swarm/service.rs`, from that container body).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use super::{LAB_DB, LAB_USER, LearnerId, SandboxConfig, SandboxError};
use crate::store::Store;

/// The largest compose file accepted.
pub const MAX_BYTES: usize = 64 * 1024;
/// The data directory the one volume may be mounted at.
pub const PGDATA: &str = "/var/lib/postgresql/data";
/// Most `-c` settings in `command`.
const MAX_SETTINGS: usize = 40;

/// The instructor's caps: the server's sandbox limits and image allow-list.
#[derive(Clone, Debug)]
pub struct Caps {
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids: i64,
    /// (name as written in a file, image the engine runs).
    pub images: Vec<(String, String)>,
}

impl Caps {
    pub fn from_config(config: &SandboxConfig) -> Self {
        let mut images: Vec<(String, String)> = config
            .compose_images
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| match s.split_once('=') {
                Some((name, image)) => (name.trim().to_string(), image.trim().to_string()),
                None => (s.to_string(), s.to_string()),
            })
            .collect();
        if images.is_empty() {
            let own = config.sandbox_image.clone();
            images.push((own.clone(), own.clone()));
            images.push(("postgres:15".into(), own));
        }
        Self {
            memory_bytes: i64::try_from(config.sandbox_memory_mib).unwrap_or(256) * MIB,
            nano_cpus: (config.sandbox_cpus * 1e9).round() as i64,
            pids: config.sandbox_pids,
            images,
        }
    }
}

impl Caps {
    /// The caps of `pglab serve` with its default sandbox flags (and any of
    /// their `PGLAB_*` settings in the environment): what `pglab content
    /// check` validates a reference compose file against.
    pub fn serve_defaults() -> Result<Self, String> {
        use clap::Parser;
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            config: SandboxConfig,
        }
        Defaults::try_parse_from(["pglab"])
            .map(|d| Self::from_config(&d.config))
            .map_err(|e| e.to_string())
    }
}

const MIB: i64 = 1024 * 1024;

/// A learner's health check, as written (durations in nanoseconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval_ns: Option<i64>,
    pub timeout_ns: Option<i64>,
    pub retries: Option<i64>,
    pub start_period_ns: Option<i64>,
}

/// What a valid compose file asks for, within the caps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComposePlan {
    /// The image as the file names it.
    pub image_written: String,
    /// The image the engine runs (the allow-list maps one to the other).
    pub image: String,
    /// The named volume at PGDATA (its name in the file), or none.
    pub volume: Option<String>,
    /// The health check as written; `None`: the file has none, and the
    /// container gets none.
    pub healthcheck: Option<Health>,
    /// Limits the file sets (each `None` falls back to the cap).
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids: Option<i64>,
    /// `-c name=value` settings of `command`, in order.
    pub settings: Vec<(String, String)>,
    /// `no`, `always`, `unless-stopped` or `on-failure`.
    pub restart: Option<String>,
    /// The N of `on-failure:N`.
    pub restart_retries: Option<i64>,
}

/// The engine's name of the volume at PGDATA under the settings in force:
/// pglab's own `own` (`pglab-<instance>-<key>`) without a plan, else the
/// plan's named volume as `<own>-c-<name>`, or none. Both backends name
/// the volumes of compose files so (a new name in a file is a new volume).
pub fn data_volume(plan: Option<&ComposePlan>, own: &str) -> Option<String> {
    match plan {
        None => Some(own.to_string()),
        Some(p) => p.volume.as_deref().map(|name| format!("{own}-c-{name}")),
    }
}

impl ComposePlan {
    /// Which limits the learner set, for the container's
    /// `pglab.compose.limits` label (e.g. `memory,cpus`).
    pub fn limits_set(&self) -> String {
        let mut out = Vec::new();
        if self.memory_bytes.is_some() {
            out.push("memory");
        }
        if self.nano_cpus.is_some() {
            out.push("cpus");
        }
        if self.pids.is_some() {
            out.push("pids");
        }
        out.join(",")
    }
}

/// A refused file: what is wrong, and where when known.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComposeError {
    /// 1-based line of the file, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ComposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A valid file's plan and remarks for the learner (e.g. an ignored password).
#[derive(Clone, Debug, Serialize)]
pub struct Validated {
    pub plan: ComposePlan,
    pub notes: Vec<String>,
}

// ---- the strict model -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Obsolete in the compose spec, accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<serde_yaml::Value>,
    services: BTreeMap<String, Service>,
    #[serde(default)]
    volumes: Option<BTreeMap<String, Option<VolumeDecl>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeDecl {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Service {
    image: Option<String>,
    #[serde(default)]
    environment: Option<Environment>,
    #[serde(default)]
    volumes: Option<Vec<VolumeEntry>>,
    #[serde(default)]
    healthcheck: Option<HealthSpec>,
    #[serde(default)]
    mem_limit: Option<Scalar>,
    #[serde(default)]
    cpus: Option<Scalar>,
    #[serde(default)]
    pids_limit: Option<i64>,
    #[serde(default)]
    deploy: Option<Deploy>,
    #[serde(default)]
    command: Option<StringOrList>,
    #[serde(default)]
    restart: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Environment {
    Map(BTreeMap<String, Option<Scalar>>),
    List(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VolumeEntry {
    Short(String),
    Long(VolumeLong),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeLong {
    #[serde(rename = "type")]
    kind: String,
    source: Option<String>,
    target: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthSpec {
    test: Option<StringOrList>,
    interval: Option<String>,
    timeout: Option<String>,
    retries: Option<i64>,
    start_period: Option<String>,
    #[serde(default)]
    disable: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Deploy {
    resources: Option<Resources>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resources {
    limits: Option<Limits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    cpus: Option<Scalar>,
    memory: Option<Scalar>,
    pids: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

/// A YAML scalar written as a string or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Self::Int(i) => i.to_string(),
            Self::Float(f) => f.to_string(),
            Self::Text(s) => s.clone(),
        }
    }
}

/// Why a key pglab does not run is refused.
fn refusal(key: &str) -> String {
    let why = match key {
        "ports" | "expose" => {
            "sandboxes have no network; reach your PostgreSQL through pglab's console and terminal"
        }
        "network_mode" | "networks" | "links" | "dns" | "extra_hosts" => {
            "sandboxes have no network at all"
        }
        "privileged" => "a privileged container could take over the machine",
        "cap_add" | "cap_drop" | "security_opt" | "userns_mode" => {
            "the container's privileges are pglab's to set"
        }
        "devices" | "device_cgroup_rules" => "host devices are not available to sandboxes",
        "build" => "pglab builds no images; use one from the allow-list",
        "container_name" | "hostname" => "pglab names your container",
        "pid" | "ipc" | "uts" | "cgroup_parent" => "the host's namespaces are not shared",
        "user" | "working_dir" | "entrypoint" => "the image's entrypoint and user are pglab's",
        "volumes_from" | "tmpfs" | "shm_size" => "only one named volume at the data directory",
        "env_file" => "write the variables under `environment`",
        "depends_on" => "there is only one service",
        "labels" => "the container's labels are pglab's",
        "sysctls" | "ulimits" | "oom_kill_disable" | "oom_score_adj" => {
            "kernel settings are not the learner's to change"
        }
        "memswap_limit" | "mem_reservation" | "cpu_shares" | "cpuset" | "cpu_quota"
        | "cpu_period" => "set mem_limit, cpus and pids_limit (or deploy.resources.limits)",
        _ => {
            "not in the subset pglab runs (service keys: image, environment, volumes, \
             healthcheck, mem_limit, cpus, pids_limit, deploy, command, restart)"
        }
    };
    format!("`{key}` is refused: {why}")
}

/// The 1-based line of the first line that starts (after indentation and
/// a list dash) with `key:`, for messages about values.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            t.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

fn err(text: &str, key: &str, message: impl Into<String>) -> ComposeError {
    ComposeError {
        line: line_of(text, key),
        message: message.into(),
    }
}

fn yaml_error(e: &serde_yaml::Error) -> ComposeError {
    let line = e.location().map(|l| l.line());
    let msg = e.to_string();
    if let Some(rest) = msg.split("unknown field `").nth(1)
        && let Some(key) = rest.split('`').next()
    {
        return ComposeError {
            line,
            message: refusal(key),
        };
    }
    // serde_yaml appends " at line L column C": the line is ours to show.
    let message = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    let message = if message.contains("repetition limit") || message.contains("recursion limit") {
        format!("{message}: YAML aliases expand too far (an alias bomb?)")
    } else {
        message
    };
    ComposeError { line, message }
}

/// Validates a compose file within the caps.
pub fn validate(text: &str, caps: &Caps) -> Result<Validated, ComposeError> {
    if text.len() > MAX_BYTES {
        return Err(ComposeError {
            line: None,
            message: format!(
                "the file is {} bytes; a compose file may have at most {MAX_BYTES}",
                text.len()
            ),
        });
    }
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| yaml_error(&e))?;
    let services = value
        .get("services")
        .and_then(|s| s.as_mapping())
        .ok_or_else(|| ComposeError {
            line: line_of(text, "services"),
            message: "the file needs `services:` with one service, `postgres`".into(),
        })?;
    let names: Vec<String> = services
        .keys()
        .map(|k| k.as_str().map_or_else(|| format!("{k:?}"), str::to_string))
        .collect();
    match names.as_slice() {
        [one] if one == "postgres" => {}
        [one] => {
            return Err(err(
                text,
                one,
                format!(
                    "the service is called `{one}`: call it `postgres` (the section's commands say `docker compose exec postgres ...`)"
                ),
            ));
        }
        [] => {
            return Err(err(
                text,
                "services",
                "`services:` is empty: write one service, `postgres`",
            ));
        }
        more => {
            let extra = more.iter().find(|n| *n != "postgres").unwrap_or(&more[1]);
            return Err(err(
                text,
                extra,
                format!(
                    "a second service `{extra}` is refused: your sandbox is one PostgreSQL server, the service `postgres`"
                ),
            ));
        }
    }
    let file: File = serde_yaml::from_str(text).map_err(|e| yaml_error(&e))?;
    let Some(service) = file.services.into_values().next() else {
        return Err(err(text, "services", "no service"));
    };
    check_service(text, service, file.volumes.unwrap_or_default(), caps)
}

fn check_service(
    text: &str,
    s: Service,
    declared: BTreeMap<String, Option<VolumeDecl>>,
    caps: &Caps,
) -> Result<Validated, ComposeError> {
    let mut notes = Vec::new();
    let image_written = s
        .image
        .ok_or_else(|| err(text, "postgres", "the service needs an `image`"))?;
    let image = caps
        .images
        .iter()
        .find(|(name, _)| *name == image_written)
        .map(|(_, image)| image.clone())
        .ok_or_else(|| {
            let allowed: Vec<&str> = caps.images.iter().map(|(n, _)| n.as_str()).collect();
            err(
                text,
                "image",
                format!(
                    "image `{image_written}` is not on the instructor's allow-list ({})",
                    allowed.join(", ")
                ),
            )
        })?;

    // Environment: only the official image's three, and pglab's names.
    let env: Vec<(String, Option<String>)> = match s.environment {
        None => Vec::new(),
        Some(Environment::Map(map)) => map
            .into_iter()
            .map(|(k, v)| (k, v.map(|v| v.text())))
            .collect(),
        Some(Environment::List(list)) => list
            .into_iter()
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (item, None),
            })
            .collect(),
    };
    for (key, value) in &env {
        let value = value.as_deref().unwrap_or("");
        match key.as_str() {
            "POSTGRES_USER" if value != LAB_USER => {
                return Err(err(
                    text,
                    key,
                    format!(
                        "POSTGRES_USER must be `{LAB_USER}`: pglab's console, checks and labs connect as it"
                    ),
                ));
            }
            "POSTGRES_DB" if value != LAB_DB => {
                return Err(err(
                    text,
                    key,
                    format!("POSTGRES_DB must be `{LAB_DB}`: the lessons and checks use it"),
                ));
            }
            "POSTGRES_USER" | "POSTGRES_DB" => {}
            "POSTGRES_PASSWORD" => notes.push(
                "POSTGRES_PASSWORD is not used: your server is reachable only through pglab, \
                 which gives it its own random password"
                    .into(),
            ),
            other => {
                return Err(err(
                    text,
                    other,
                    format!(
                        "environment variable `{other}` is refused: only POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB"
                    ),
                ));
            }
        }
    }

    // Volumes: one named volume at PGDATA, declared at the top level.
    let mut volume = None;
    for entry in s.volumes.unwrap_or_default() {
        let (source, target, kind) = match entry {
            VolumeEntry::Short(spec) => {
                let mut parts = spec.splitn(3, ':');
                let first = parts.next().unwrap_or("").to_string();
                match parts.next() {
                    Some(target) => {
                        let kind = if first.starts_with(['/', '.', '~']) {
                            "bind"
                        } else {
                            "volume"
                        };
                        (Some(first), target.to_string(), kind.to_string())
                    }
                    None => (None, first, "volume".to_string()),
                }
            }
            VolumeEntry::Long(long) => (long.source, long.target, long.kind),
        };
        let key_line = |needle: &str| text.lines().position(|l| l.contains(needle)).map(|i| i + 1);
        let line = key_line(&target).or_else(|| line_of(text, "volumes"));
        let refuse = |message: String| ComposeError { line, message };
        if kind == "bind" {
            return Err(refuse(format!(
                "a bind mount of `{}` is refused: the host's files are not the sandbox's; use a named volume",
                source.unwrap_or_default()
            )));
        }
        if kind != "volume" {
            return Err(refuse(format!(
                "volume type `{kind}` is refused: only a named volume (type: volume)"
            )));
        }
        if target.trim_end_matches('/') != PGDATA {
            return Err(refuse(format!(
                "a volume at `{target}` is refused: the one volume goes at {PGDATA}"
            )));
        }
        let Some(name) = source else {
            return Err(refuse(
                "an anonymous volume is refused: give it a name (`pgdata:/var/lib/postgresql/data`) or write no volume".into(),
            ));
        };
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(refuse(format!(
                "volume name `{name}`: use letters, digits, `_`, `-` and `.` (at most 64)"
            )));
        }
        if !declared.contains_key(&name) {
            return Err(refuse(format!(
                "volume `{name}` is not declared: add it under the top-level `volumes:` (`volumes:\\n  {name}:`)"
            )));
        }
        if volume.replace(name).is_some() {
            return Err(refuse("only one volume, at the data directory".into()));
        }
    }

    let healthcheck = match s.healthcheck {
        None => None,
        Some(h) => Some(check_health(text, h)?),
    };

    // Limits: either form, not both; never above the caps.
    let limits = s.deploy.and_then(|d| d.resources).and_then(|r| r.limits);
    let (mem, cpus, pids) = match limits {
        Some(l) => {
            if s.mem_limit.is_some() || s.cpus.is_some() || s.pids_limit.is_some() {
                return Err(err(
                    text,
                    "deploy",
                    "write limits once: either mem_limit/cpus/pids_limit or deploy.resources.limits",
                ));
            }
            (
                l.memory.map(|m| ("memory", m)),
                l.cpus.map(|c| ("cpus", c)),
                l.pids.map(|p| ("pids", p)),
            )
        }
        None => (
            s.mem_limit.map(|m| ("mem_limit", m)),
            s.cpus.map(|c| ("cpus", c)),
            s.pids_limit.map(|p| ("pids_limit", p)),
        ),
    };
    let memory_bytes = match mem {
        None => None,
        Some((key, value)) => {
            let bytes = parse_bytes(&value.text()).ok_or_else(|| {
                err(
                    text,
                    key,
                    format!("{key}: `{}` is not a size (256m, 1g)", value.text()),
                )
            })?;
            if bytes > caps.memory_bytes {
                return Err(err(
                    text,
                    key,
                    format!(
                        "{key} {} is above the instructor's cap of {} MiB: refused, not lowered",
                        value.text(),
                        caps.memory_bytes / MIB
                    ),
                ));
            }
            if bytes < 64 * MIB {
                return Err(err(
                    text,
                    key,
                    format!("{key} {}: PostgreSQL needs at least 64m", value.text()),
                ));
            }
            Some(bytes)
        }
    };
    let nano_cpus = match cpus {
        None => None,
        Some((key, value)) => {
            let cpus: f64 = value.text().trim().parse().map_err(|_| {
                err(
                    text,
                    key,
                    format!("cpus: `{}` is not a number (0.5)", value.text()),
                )
            })?;
            let nanos = (cpus * 1e9).round();
            if !nanos.is_finite() || nanos > caps.nano_cpus as f64 {
                return Err(err(
                    text,
                    key,
                    format!(
                        "cpus {} is above the instructor's cap of {}: refused, not lowered",
                        value.text(),
                        caps.nano_cpus as f64 / 1e9
                    ),
                ));
            }
            if nanos < 0.05e9 {
                return Err(err(text, key, "cpus: at least 0.05"));
            }
            Some(nanos as i64)
        }
    };
    let pids = match pids {
        None => None,
        Some((key, n)) if n > caps.pids => {
            return Err(err(
                text,
                key,
                format!(
                    "{key} {n} is above the instructor's cap of {}: refused, not lowered",
                    caps.pids
                ),
            ));
        }
        Some((key, n)) if n < 32 => {
            return Err(err(
                text,
                key,
                format!("{key} {n}: PostgreSQL needs at least 32"),
            ));
        }
        Some((_, n)) => Some(n),
    };

    let settings = match s.command {
        None => Vec::new(),
        Some(cmd) => check_command(text, cmd)?,
    };
    let (restart, restart_retries) = match s.restart.as_deref() {
        None => (None, None),
        Some(r @ ("no" | "always" | "unless-stopped" | "on-failure")) => {
            (Some(r.to_string()), None)
        }
        Some(r) => match r.strip_prefix("on-failure:").map(str::parse::<i64>) {
            Some(Ok(n)) if (0..=10).contains(&n) => (Some("on-failure".into()), Some(n)),
            _ => {
                return Err(err(
                    text,
                    "restart",
                    format!(
                        "restart `{r}`: use no, always, unless-stopped, on-failure or on-failure:N (N up to 10)"
                    ),
                ));
            }
        },
    };
    Ok(Validated {
        plan: ComposePlan {
            image_written,
            image,
            volume,
            healthcheck,
            memory_bytes,
            nano_cpus,
            pids,
            settings,
            restart,
            restart_retries,
        },
        notes,
    })
}

fn check_health(text: &str, h: HealthSpec) -> Result<Health, ComposeError> {
    if h.disable {
        return Ok(Health {
            test: vec!["NONE".into()],
            interval_ns: None,
            timeout_ns: None,
            retries: None,
            start_period_ns: None,
        });
    }
    let test = match h.test {
        None => return Err(err(text, "healthcheck", "healthcheck needs a `test`")),
        Some(StringOrList::One(s)) => vec!["CMD-SHELL".to_string(), s],
        Some(StringOrList::Many(list)) => list,
    };
    match test.first().map(String::as_str) {
        Some("CMD" | "CMD-SHELL") if test.len() >= 2 => {}
        Some("NONE") if test.len() == 1 => {}
        _ => {
            return Err(err(
                text,
                "test",
                "healthcheck test: a string, or a list starting with CMD or CMD-SHELL (or [\"NONE\"])",
            ));
        }
    }
    if test.iter().map(String::len).sum::<usize>() > 2000 {
        return Err(err(
            text,
            "test",
            "healthcheck test: at most 2000 characters",
        ));
    }
    let duration = |key: &str, value: Option<String>, min_ms: i64, max_ms: i64| {
        let Some(value) = value else {
            return Ok(None);
        };
        let ns = parse_duration(&value).ok_or_else(|| {
            err(
                text,
                key,
                format!("{key}: `{value}` is not a duration (10s, 1m30s, 500ms)"),
            )
        })?;
        if ns < min_ms * 1_000_000 || ns > max_ms * 1_000_000 {
            return Err(err(
                text,
                key,
                format!(
                    "{key} {value} is outside {}..{} (each check is a process in your container; more often costs the shared machine)",
                    fmt_ms(min_ms),
                    fmt_ms(max_ms)
                ),
            ));
        }
        Ok(Some(ns))
    };
    let interval_ns = duration("interval", h.interval, 5_000, 3_600_000)?;
    let timeout_ns = duration("timeout", h.timeout, 1_000, 60_000)?;
    let start_period_ns = duration("start_period", h.start_period, 0, 600_000)?;
    if let Some(r) = h.retries
        && !(1..=10).contains(&r)
    {
        return Err(err(text, "retries", format!("retries {r}: 1 to 10")));
    }
    Ok(Health {
        test,
        interval_ns,
        timeout_ns,
        retries: h.retries,
        start_period_ns,
    })
}

fn fmt_ms(ms: i64) -> String {
    if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

/// Server settings pglab's access depends on.
const FIXED_SETTINGS: &[&str] = &[
    "listen_addresses",
    "port",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
    "hba_file",
    "ident_file",
    "config_file",
    "data_directory",
    "external_pid_file",
    "password_encryption",
];

fn check_command(text: &str, cmd: StringOrList) -> Result<Vec<(String, String)>, ComposeError> {
    let words: Vec<String> = match cmd {
        StringOrList::One(s) => s.split_whitespace().map(str::to_string).collect(),
        StringOrList::Many(list) => list,
    };
    let refuse = |m: String| err(text, "command", m);
    let mut it = words.into_iter();
    match it.next().as_deref() {
        Some("postgres") => {}
        other => {
            return Err(refuse(format!(
                "command must start with `postgres` (got `{}`): `postgres -c name=value ...`",
                other.unwrap_or("")
            )));
        }
    }
    let mut settings = Vec::new();
    while let Some(word) = it.next() {
        let pair = match word.as_str() {
            "-c" => it
                .next()
                .ok_or_else(|| refuse("`-c` needs `name=value` after it".into()))?,
            w if w.starts_with("--") && w.contains('=') => w[2..].to_string(),
            w => {
                return Err(refuse(format!(
                    "command: `{w}` is refused: only `-c name=value` settings follow `postgres`"
                )));
            }
        };
        let Some((name, value)) = pair.split_once('=') else {
            return Err(refuse(format!("command: `{pair}` is not `name=value`")));
        };
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        let good_name = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
        if !good_name {
            return Err(refuse(format!("command: `{name}` is not a setting name")));
        }
        if FIXED_SETTINGS.contains(&name.as_str()) {
            return Err(refuse(format!(
                "command: `{name}` is refused: pglab reaches your server through its socket and needs it as it is"
            )));
        }
        if value.len() > 200 || value.chars().any(char::is_control) {
            return Err(refuse(format!(
                "command: the value of `{name}` is too long or has control characters"
            )));
        }
        settings.push((name, value.to_string()));
        if settings.len() > MAX_SETTINGS {
            return Err(refuse(format!("command: at most {MAX_SETTINGS} settings")));
        }
    }
    Ok(settings)
}

/// `256m`, `1g`, `512MiB`, `268435456`, `1.5g` → bytes.
pub fn parse_bytes(text: &str) -> Option<i64> {
    let t = text.trim().to_ascii_lowercase();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * mult;
    (bytes.is_finite() && bytes < 1e15).then_some(bytes.round() as i64)
}

/// Compose durations: `10s`, `1m30s`, `500ms`, `1h`, `2.5s` → nanoseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let ns = match &rest[..unit_end] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" => 1e3,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * ns;
    }
    (total < 1e16).then_some(total as i64)
}

/// pglab's own settings written as a compose file: what the editor shows
/// when the learner has written nothing, and a starting point.
pub fn default_file(caps: &Caps) -> String {
    let image = caps
        .images
        .iter()
        .find(|(n, _)| n.starts_with("postgres:"))
        .or(caps.images.first())
        .map_or("postgres:15", |(n, _)| n.as_str());
    format!(
        "# pglab's own settings are in force until you bring this file up.\n\
         services:\n  postgres:\n    image: {image}\n    environment:\n      \
         POSTGRES_USER: {LAB_USER}\n      POSTGRES_DB: {LAB_DB}\n    \
         command: postgres -c log_lock_waits=on\n    mem_limit: {}m\n    cpus: \"{}\"\n",
        caps.memory_bytes / MIB,
        caps.nano_cpus as f64 / 1e9
    )
}

// ---- the store --------------------------------------------------------

/// A learner's saved file and the settings in force.
#[derive(Clone, Debug)]
pub struct Saved {
    pub yaml: String,
    pub applied: Option<ComposePlan>,
    pub updated_at: i64,
}

/// The `sandbox_compose` table.
#[derive(Clone, Debug)]
pub struct ComposeFiles {
    pool: SqlitePool,
}

type StoreResult<T> = std::result::Result<T, SandboxError>;

impl ComposeFiles {
    pub fn new(store: &Store) -> Self {
        Self {
            pool: store.pool().clone(),
        }
    }

    /// The learner's saved file, if any.
    pub async fn get(&self, learner: LearnerId) -> StoreResult<Option<Saved>> {
        let row: Option<(String, Option<String>, i64)> = sqlx::query_as(
            "select yaml, applied, updated_at from sandbox_compose where learner_id = ?",
        )
        .bind(learner)
        .fetch_optional(&self.pool)
        .await
        .map_err(SandboxError::store)?;
        Ok(row.map(|(yaml, applied, updated_at)| Saved {
            yaml,
            applied: applied.and_then(|a| serde_json::from_str(&a).ok()),
            updated_at,
        }))
    }

    /// The settings a compose up put in force (`None`: pglab's own).
    pub async fn applied(&self, learner: LearnerId) -> StoreResult<Option<ComposePlan>> {
        Ok(self.get(learner).await?.and_then(|s| s.applied))
    }

    /// Saves a (validated) file; the settings in force stay as they were.
    pub async fn save(&self, learner: LearnerId, yaml: &str) -> StoreResult<()> {
        sqlx::query(
            "insert into sandbox_compose (learner_id, yaml) values (?, ?) \
             on conflict (learner_id) do update set yaml = excluded.yaml, updated_at = unixepoch()",
        )
        .bind(learner)
        .bind(yaml)
        .execute(&self.pool)
        .await
        .map_err(SandboxError::store)?;
        Ok(())
    }

    /// Puts the plan in force (the row must exist: [`Self::save`] first).
    pub async fn set_applied(&self, learner: LearnerId, plan: &ComposePlan) -> StoreResult<()> {
        let json = serde_json::to_string(plan).map_err(SandboxError::store)?;
        sqlx::query("update sandbox_compose set applied = ? where learner_id = ?")
            .bind(json)
            .bind(learner)
            .execute(&self.pool)
            .await
            .map_err(SandboxError::store)?;
        Ok(())
    }

    /// Forgets the file: pglab's own settings again.
    pub async fn clear(&self, learner: LearnerId) -> StoreResult<()> {
        sqlx::query("delete from sandbox_compose where learner_id = ?")
            .bind(learner)
            .execute(&self.pool)
            .await
            .map_err(SandboxError::store)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Caps {
        Caps {
            memory_bytes: 256 * MIB,
            nano_cpus: 500_000_000,
            pids: 256,
            images: vec![
                ("pglab/sandbox:15".into(), "pglab/sandbox:15".into()),
                ("postgres:15".into(), "pglab/sandbox:15".into()),
            ],
        }
    }

    const GOOD: &str = "services:
  postgres:
    image: postgres:15
    environment:
      POSTGRES_USER: labuser
      POSTGRES_PASSWORD: secret
      POSTGRES_DB: labdb
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: [\"CMD-SHELL\", \"pg_isready -U labuser -d labdb\"]
      interval: 10s
      timeout: 5s
      retries: 5
      start_period: 30s
    deploy:
      resources:
        limits:
          memory: 200M
          cpus: '0.25'
    command: postgres -c shared_buffers=32MB -c log_lock_waits=on
    restart: unless-stopped
volumes:
  pgdata:
";

    #[test]
    fn a_full_file_gives_its_plan() {
        let v = validate(GOOD, &caps()).unwrap();
        let p = v.plan;
        assert_eq!(p.image, "pglab/sandbox:15");
        assert_eq!(p.volume.as_deref(), Some("pgdata"));
        assert_eq!(p.memory_bytes, Some(200 * MIB));
        assert_eq!(p.nano_cpus, Some(250_000_000));
        assert_eq!(p.healthcheck.unwrap().interval_ns, Some(10_000_000_000));
        assert_eq!(p.settings[0], ("shared_buffers".into(), "32MB".into()));
        assert_eq!(p.restart.as_deref(), Some("unless-stopped"));
        assert_eq!(v.notes.len(), 1, "the password note");
    }

    fn refused(text: &str) -> ComposeError {
        validate(text, &caps()).expect_err("must be refused")
    }

    #[test]
    fn unsafe_keys_are_refused_with_line_and_reason() {
        let e = refused("services:\n  postgres:\n    image: postgres:15\n    privileged: true\n");
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("privileged"), "{e}");
        let e =
            refused("services:\n  postgres:\n    image: postgres:15\n    ports: ['5432:5432']\n");
        assert!(e.message.contains("no network"), "{e}");
        let e = refused(
            "services:\n  postgres:\n    image: postgres:15\n    volumes:\n      - /:/var/lib/postgresql/data\n",
        );
        assert_eq!(e.line, Some(5));
        assert!(e.message.contains("bind mount of `/`"), "{e}");
        let e =
            refused("services:\n  postgres:\n    image: postgres:15\n  web:\n    image: nginx\n");
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("second service"), "{e}");
        let e = refused("services:\n  postgres:\n    image: nginx:latest\n");
        assert!(e.message.contains("allow-list"), "{e}");
        let e = refused("services:\n  postgres:\n    image: postgres:15\n    mem_limit: 4g\n");
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("above the instructor's cap"), "{e}");
        let e = refused("services:\n  postgres:\n    image: postgres:15\n    cpus: 2\n");
        assert!(e.message.contains("cap"), "{e}");
        let e = refused(
            "services:\n  postgres:\n    image: postgres:15\n    command: bash -c 'rm -rf /'\n",
        );
        assert!(e.message.contains("start with `postgres`"), "{e}");
        let e = refused(
            "services:\n  postgres:\n    image: postgres:15\n    command: postgres -c listen_addresses=*\n",
        );
        assert!(e.message.contains("listen_addresses"), "{e}");
        let e = refused("services:\n  postgres:\n    image: postgres:15\n    bogus_key: 1\n");
        assert!(e.message.contains("bogus_key"), "{e}");
    }

    #[test]
    fn huge_files_and_alias_bombs_are_refused() {
        let big = format!(
            "services:\n  postgres:\n    image: postgres:15\n# {}\n",
            "x".repeat(10 << 20)
        );
        assert!(refused(&big).message.contains("at most"));
        let mut bomb = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let mut prev = 'a';
        for c in 'b'..='i' {
            bomb.push_str(&format!("{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
            prev = c;
        }
        bomb.push_str("services:\n  postgres:\n    image: postgres:15\n");
        let started = std::time::Instant::now();
        let e = refused(&bomb);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(!e.message.is_empty());
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("256m"), Some(256 * MIB));
        assert_eq!(parse_bytes("1g"), Some(1024 * MIB));
        assert_eq!(parse_bytes("512MiB"), Some(512 * MIB));
        assert_eq!(parse_bytes("12 parsecs"), None);
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("10"), None);
    }

    #[test]
    fn the_default_file_is_valid() {
        validate(&default_file(&caps()), &caps()).unwrap();
    }
}
