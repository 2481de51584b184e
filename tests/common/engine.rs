//! A private Docker engine for fault tests: its own `dockerd` (and the
//! containerd it manages) on its own unix socket, data root, exec root and
//! pid file, with no bridge and no iptables rules, so a test may stop and
//! start it freely while the shared engine at /var/run/docker.sock (used by
//! everyone else) is never touched.
//!
//! The daemon runs in a network namespace of its own (`ip netns add`, then
//! `nsenter --net=...`): a second `dockerd` with `--bridge=none` in the
//! machine's namespace deletes the machine engine's `docker0` bridge, after
//! which no default-network `docker run` works on the machine. Its sandboxes
//! need no network anyway (PostgreSQL on a unix socket in a bind-mounted
//! folder, which the namespace does not change).
//!
//! The sandbox image is copied in from the shared engine (`docker save |
//! docker -H PRIVATE load`, about 7 s). Every step has a deadline. On drop
//! the engine's containers are removed, the engine is stopped (killed if it
//! will not stop), whatever it left mounted is unmounted and its folder is
//! removed: nothing outlives the test.
//!
//! Needs root and `dockerd`; [`PrivateEngine::available`] says whether this
//! machine can run one.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `dockerd` of the test's own.
pub struct PrivateEngine {
    dir: PathBuf,
    /// The network namespace the daemon runs in (`/var/run/netns/NAME`).
    netns: String,
    /// Whether the namespace is this engine's own (made and deleted by it)
    /// or the caller's (a swarm node's, see tests/common/swarm.rs).
    own_netns: bool,
    /// More `dockerd` arguments, kept for restarts (a swarm node's TLS
    /// listener).
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl PrivateEngine {
    /// Whether a private engine can run here (root, dockerd installed, the
    /// shared engine answering so the image can be copied). Under CI=true a
    /// missing engine is a failure, as for every Docker test.
    pub fn available() -> bool {
        let root = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        let dockerd = Command::new("dockerd")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !(root && dockerd) {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("a private dockerd needs root and dockerd, and CI=true");
            }
            eprintln!("SKIPPED: a private dockerd needs root and dockerd");
            return false;
        }
        super::require_docker()
    }

    /// Starts a private engine and loads `image` into it from the shared one.
    pub fn start(image: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pglab-engine-")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let netns = format!("pglab-eng-{}-{:x}", std::process::id(), rand_suffix(&dir));
        run_deadline(
            Command::new("ip").args(["netns", "add", &netns]),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("making the private engine's network namespace: {e}"));
        let mut engine = Self {
            dir,
            netns,
            own_netns: true,
            extra_args: Vec::new(),
            child: None,
        };
        engine.start_daemon();
        let load = format!(
            "docker save {image} | docker -H {} load",
            engine.host_address()
        );
        run_deadline(
            Command::new("sh").args(["-c", &load]),
            Duration::from_secs(180),
        )
        .unwrap_or_else(|e| panic!("loading {image} into the private engine: {e}"));
        engine
    }

    /// Starts a private engine in the caller's network namespace `netns`
    /// (which the caller removes after dropping the engine), with no image
    /// and `extra_args` for `dockerd`.
    pub fn start_in(netns: &str, extra_args: Vec<String>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pglab-engine-")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let mut engine = Self {
            dir,
            netns: netns.to_string(),
            own_netns: false,
            extra_args,
            child: None,
        };
        engine.start_daemon();
        engine
    }

    /// The engine's folder (data root, exec root, socket, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `unix:///tmp/pglab-engine-XXXX/docker.sock`, for `--docker-host`.
    pub fn host_address(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// Whether the daemon process runs now.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Starts the daemon (again) and waits until it answers (60 s deadline).
    pub fn start_daemon(&mut self) {
        assert!(!self.is_running(), "the private engine already runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", self.netns))
            .arg("dockerd")
            .arg("--host")
            .arg(self.host_address())
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("docker.pid"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--ip-forward=false",
            ])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.docker(&["info"], Duration::from_secs(10)).is_ok() {
                return;
            }
            if !self.is_running() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                panic!("the private dockerd did not come up:\n{}", tail.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the daemon like an operator would (SIGTERM: the engine stops
    /// its containers and exits); SIGKILL after 60 s. Returns the time it
    /// took.
    pub fn stop_daemon(&mut self) -> Duration {
        let began = Instant::now();
        let Some(mut child) = self.child.take() else {
            return Duration::ZERO;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        began.elapsed()
    }

    /// Runs `docker -H PRIVATE ARGS` with a deadline; stdout, or the error.
    pub fn docker(&self, args: &[&str], deadline: Duration) -> Result<String, String> {
        run_deadline(
            Command::new("docker")
                .arg("-H")
                .arg(self.host_address())
                .args(args),
            deadline,
        )
    }

    /// Names of running containers carrying `label` (e.g. `pglab.managed=true`).
    pub fn running_containers(&self, label: &str) -> Vec<String> {
        self.docker(
            &[
                "ps",
                "--filter",
                &format!("label={label}"),
                "--format",
                "{{.Names}}",
            ],
            Duration::from_secs(20),
        )
        .map(|out| out.lines().map(str::to_string).collect())
        .unwrap_or_default()
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.is_running()
            && let Ok(ids) = self.docker(&["ps", "-aq"], Duration::from_secs(20))
        {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.docker(&args, Duration::from_secs(60));
            }
        }
        self.stop_daemon();
        kill_pidfile(&self.dir.join("exec/containerd/containerd.pid"));
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.own_netns {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.netns])
                .status();
        }
    }
}

/// A short distinct suffix from the engine's temporary folder name.
fn rand_suffix(dir: &Path) -> u32 {
    dir.file_name()
        .map(|n| {
            n.as_encoded_bytes()
                .iter()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(*b)))
        })
        .unwrap_or(0)
}

/// Runs a command to its end within `deadline` (killed after it); its
/// stdout, or what went wrong with its stderr.
pub fn run_deadline(cmd: &mut Command, deadline: Duration) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    // Drain both pipes on threads so a chatty command never blocks.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let end = Instant::now() + deadline;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no end within {deadline:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    if status.success() {
        Ok(out.trim().to_string())
    } else {
        Err(format!("{status}: {}", err.trim()))
    }
}

fn kill_pidfile(path: &Path) {
    if let Ok(pid) = std::fs::read_to_string(path)
        && let Ok(pid) = pid.trim().parse::<u32>()
        && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.contains("containerd"))
    {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// Lazily unmounts everything mounted below `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
}
