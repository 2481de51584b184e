//! A Docker Swarm of several nodes on this one machine, for the swarm
//! backend's tests (FACTS.md, "Docker Swarm on one machine").
//!
//! - One host bridge [`BRIDGE`] with 10.77.0.1/24 (no other test uses this
//!   name or subnet), and per node a network namespace with one end of a
//!   veth pair (10.77.0.11, .12, ...) on that bridge. The namespaces get no
//!   default route: the engines reach each other and the host, nothing else
//!   (an image pull fails at once instead of trying a registry).
//! - The machine's engine sets iptables FORWARD to DROP and bridged traffic
//!   goes through iptables, so one rule accepts traffic within the bridge;
//!   it is deleted on drop.
//! - Per node a private `dockerd` ([`PrivateEngine::start_in`]: own data
//!   root, exec root, socket and pid file, `--iptables=false
//!   --bridge=none`) in the node's namespace; the machine's engine and its
//!   `docker0` are never touched.
//! - Tasks on overlay networks may reach the nodes' TLS port (forwarded and
//!   masqueraded in the node's namespace), nothing else outside their node.
//! - Each engine also listens on `tcp://10.77.0.1i:2376` with
//!   `--tlsverify`: a test CA (made with the openssl CLI) signs each node's
//!   server certificate (its IP address as subject alternative name) and
//!   one client certificate, whose folder ([`Swarm::engine_tls`]) pglab gets
//!   as `--engine-tls`; a second CA's client certificate
//!   ([`Swarm::rogue_tls`]) must be refused.
//! - `swarm init` on node 1 (the only manager), `swarm join` of the others;
//!   every node gets the label `pglab.engine=tcp://10.77.0.1i:2376` (its
//!   engine's TLS port, as docs/operations.md tells operators to set) and
//!   the sandbox image, saved once from the machine's engine and loaded
//!   into each.
//! - Drop removes everything: engines stopped (their containers first),
//!   namespaces, veths, bridge, the iptables rule and the folders (the
//!   certificates' too).
//!
//! The set-up takes about half a minute; a test binary makes one swarm and
//! runs all its phases on it.

#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use super::engine::{PrivateEngine, run_deadline};

/// The host bridge of the test swarm.
pub const BRIDGE: &str = "pglab-sw0";
/// The host's address on [`BRIDGE`]; node `i` (1-based) is `10.77.0.1i`.
const HOST_ADDR: &str = "10.77.0.1/24";

/// One node: its namespace, address, engine and swarm node id.
pub struct SwarmNode {
    pub netns: String,
    /// The host end of the node's veth pair.
    host_veth: String,
    /// e.g. `10.77.0.12`.
    pub addr: String,
    /// The swarm's id of the node.
    pub id: String,
    engine: Option<PrivateEngine>,
}

/// The port of the nodes' TLS listeners (Docker's usual one).
pub const TLS_PORT: u16 = 2376;

impl SwarmNode {
    pub fn engine(&self) -> &PrivateEngine {
        self.engine.as_ref().unwrap()
    }

    /// `unix://...`: the node's own engine.
    pub fn host_address(&self) -> String {
        self.engine().host_address()
    }

    /// `tcp://10.77.0.1i:2376`: the node's engine over TLS.
    pub fn tls_address(&self) -> String {
        format!("tcp://{}:{TLS_PORT}", self.addr)
    }
}

/// Makes, in `dir`: `ca.pem` and `ca-key.pem` (the test CA); per node
/// `node<i>-cert.pem`/`node<i>-key.pem` for the engine at `addrs[i-1]`;
/// `client/` (ca.pem, cert.pem, key.pem) signed by the CA; `rogue/` the
/// same from another CA.
fn make_certs(dir: &std::path::Path, addrs: &[String]) {
    let mut script = String::from(
        "set -e\n\
         key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1\" 2>/dev/null; }\n\
         ca() { key \"$1-key.pem\"; openssl req -x509 -new -key \"$1-key.pem\" -out \"$1.pem\" -days 2 -subj \"/CN=$1\" \
           -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign; }\n\
         sign() { key \"$2-key.pem\"; openssl req -new -key \"$2-key.pem\" -subj \"/CN=$(echo $2 | tr / -)\" -out \"$2.csr\"; \
           printf '%s\\n' \"$3\" > \"$2.ext\"; \
           openssl x509 -req -in \"$2.csr\" -CA \"$1.pem\" -CAkey \"$1-key.pem\" -CAcreateserial -days 2 \
             -extfile \"$2.ext\" -out \"$2-cert.pem\" 2>/dev/null; rm \"$2.csr\" \"$2.ext\"; }\n\
         client() { mkdir -p \"$2\"; sign \"$1\" \"$2/c\" 'extendedKeyUsage=clientAuth'; \
           mv \"$2/c-cert.pem\" \"$2/cert.pem\"; mv \"$2/c-key.pem\" \"$2/key.pem\"; cp ca.pem \"$2/ca.pem\"; \
           chmod 600 \"$2/key.pem\"; }\n\
         ca ca\n\
         client ca client\n\
         ca rogue-ca\n\
         client rogue-ca rogue\n",
    );
    for (i, addr) in addrs.iter().enumerate() {
        script.push_str(&format!(
            "sign ca node{} 'subjectAltName=IP:{addr}\nextendedKeyUsage=serverAuth'\n",
            i + 1
        ));
    }
    run_deadline(
        Command::new("sh").arg("-c").arg(&script).current_dir(dir),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("making the test swarm's certificates: {e}"));
}

/// A running swarm; everything goes on drop.
pub struct Swarm {
    pub nodes: Vec<SwarmNode>,
    rule: bool,
    bridge: bool,
    /// The certificates ([`make_certs`]).
    certs: std::path::PathBuf,
    /// Held while the swarm lives: swarms of other test processes wait for
    /// it (they share [`BRIDGE`] and its subnet). Released on drop, after
    /// everything else went (the field drops last).
    _turn: std::fs::File,
}

/// The lock file that gives one test process at a time the swarm bridge.
const TURN: &str = "/run/lock/pglab-swarm.lock";

fn ip(args: &[&str]) -> Result<String, String> {
    run_deadline(Command::new("ip").args(args), Duration::from_secs(10))
}

fn forward_rule(action: &str) -> Result<String, String> {
    run_deadline(
        Command::new("iptables").args([
            action, "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT",
        ]),
        Duration::from_secs(10),
    )
}

impl Swarm {
    /// Whether a swarm can run here: what a private engine needs, plus `ip`,
    /// `iptables` and `nsenter`.
    pub fn available() -> bool {
        if !PrivateEngine::available() {
            return false;
        }
        let tools = ["ip", "iptables", "nsenter"].iter().all(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        if !tools {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("a test swarm needs ip, iptables and nsenter, and CI=true");
            }
            eprintln!("SKIPPED: a test swarm needs ip, iptables and nsenter");
        }
        tools
    }

    /// Starts a swarm of `n` nodes (node 1 the manager) with `image` on each.
    pub fn start(n: usize, image: &str) -> Self {
        assert!((1..=9).contains(&n), "1 to 9 nodes");
        let turn = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(TURN)
            .unwrap();
        if turn.try_lock().is_err() {
            eprintln!("another test process has the swarm bridge: waiting for its turn ({TURN})");
            turn.lock().unwrap();
        }
        assert!(
            !std::path::Path::new(&format!("/sys/class/net/{BRIDGE}")).exists(),
            "the bridge {BRIDGE} exists: another swarm test runs, or a crashed one left it \
             (remove it with `ip link del {BRIDGE}`)"
        );
        let certs = tempfile::Builder::new()
            .prefix("pglab-swarm-tls-")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let addrs: Vec<String> = (1..=n).map(|i| format!("10.77.0.1{i}")).collect();
        make_certs(&certs, &addrs);
        let mut swarm = Self {
            nodes: Vec::new(),
            rule: false,
            bridge: false,
            certs,
            _turn: turn,
        };
        ip(&["link", "add", BRIDGE, "type", "bridge"]).unwrap();
        swarm.bridge = true;
        ip(&["addr", "add", HOST_ADDR, "dev", BRIDGE]).unwrap();
        ip(&["link", "set", BRIDGE, "up"]).unwrap();
        forward_rule("-I").unwrap();
        swarm.rule = true;
        let pid = std::process::id();
        for i in 1..=n {
            let netns = format!("pglab-sw{i}-{pid}");
            let host_veth = format!("pglsw{i}-{}", pid % 10_000_000);
            let addr = format!("10.77.0.1{i}");
            ip(&["netns", "add", &netns]).unwrap();
            swarm.nodes.push(SwarmNode {
                netns: netns.clone(),
                host_veth: host_veth.clone(),
                addr: addr.clone(),
                id: String::new(),
                engine: None,
            });
            ip(&[
                "link", "add", &host_veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ])
            .unwrap();
            ip(&["link", "set", &host_veth, "master", BRIDGE, "up"]).unwrap();
            let inside = |args: &[&str]| {
                let mut all = vec!["-n", netns.as_str()];
                all.extend_from_slice(args);
                ip(&all).unwrap();
            };
            inside(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            inside(&["link", "set", "eth0", "up"]);
            inside(&["link", "set", "lo", "up"]);
            // A task on an overlay network leaves its node through the
            // engine's docker_gwbridge (172.16.0.0/12), which the engines
            // (--iptables=false) do not NAT: the namespace forwards and
            // masquerades that, to the other nodes' engine TLS port only, so
            // pglab deployed as a stack reaches their engines as on real
            // machines, and the tasks reach nothing else.
            let sh = |cmd: String| {
                run_deadline(
                    Command::new("ip").args(["netns", "exec", &netns, "sh", "-c", &cmd]),
                    Duration::from_secs(10),
                )
                .unwrap_or_else(|e| panic!("{cmd}: {e}"));
            };
            sh("sysctl -qw net.ipv4.ip_forward=1".into());
            sh(format!(
                "iptables -A FORWARD -s 172.16.0.0/12 -o eth0 -p tcp --dport {TLS_PORT} -j ACCEPT && \
                 iptables -A FORWARD -s 172.16.0.0/12 -o eth0 -j DROP && \
                 iptables -t nat -A POSTROUTING -s 172.16.0.0/12 -o eth0 -j MASQUERADE"
            ));
            let cert = |f: &str| swarm.certs.join(f).to_str().unwrap().to_string();
            let tls = vec![
                "--host".to_string(),
                format!("tcp://{addr}:{TLS_PORT}"),
                "--tlsverify".into(),
                "--tlscacert".into(),
                cert("ca.pem"),
                "--tlscert".into(),
                cert(&format!("node{i}-cert.pem")),
                "--tlskey".into(),
                cert(&format!("node{i}-key.pem")),
            ];
            swarm.nodes[i - 1].engine = Some(PrivateEngine::start_in(&netns, tls));
        }
        let manager = &swarm.nodes[0];
        let long = Duration::from_secs(60);
        manager
            .engine()
            .docker(
                &[
                    "swarm",
                    "init",
                    "--advertise-addr",
                    &manager.addr,
                    "--listen-addr",
                    &format!("{}:2377", manager.addr),
                ],
                long,
            )
            .unwrap();
        let token = manager
            .engine()
            .docker(&["swarm", "join-token", "-q", "worker"], long)
            .unwrap();
        let join_to = format!("{}:2377", manager.addr);
        for node in &swarm.nodes[1..] {
            node.engine()
                .docker(
                    &[
                        "swarm",
                        "join",
                        "--advertise-addr",
                        &node.addr,
                        "--token",
                        &token,
                        &join_to,
                    ],
                    long,
                )
                .unwrap();
        }
        for node in &mut swarm.nodes {
            node.id = node
                .engine
                .as_ref()
                .unwrap()
                .docker(&["info", "--format", "{{.Swarm.NodeID}}"], long)
                .unwrap();
        }
        swarm.wait_ready(n, Duration::from_secs(60));
        for node in &swarm.nodes {
            swarm
                .manager(&[
                    "node",
                    "update",
                    "--label-add",
                    &format!("pglab.engine={}", node.tls_address()),
                    &node.id,
                ])
                .unwrap();
        }
        swarm.load_image(image);
        swarm
    }

    /// What a dropped swarm of this process would have left behind: the
    /// bridge, its iptables rule, node namespaces, host veths.
    pub fn leftovers() -> Vec<String> {
        // The bridge and the rule are shared by every swarm: look while no
        // other test process has one up (their turn ends with their drop).
        let turn = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(TURN)
            .unwrap();
        turn.lock().unwrap();
        let pid = std::process::id().to_string();
        let veth_pid = (std::process::id() % 10_000_000).to_string();
        let mut left = Vec::new();
        if std::path::Path::new(&format!("/sys/class/net/{BRIDGE}")).exists() {
            left.push(format!("bridge {BRIDGE}"));
        }
        if forward_rule("-C").is_ok() {
            left.push("iptables FORWARD rule".into());
        }
        let netns = ip(&["netns", "list"]).unwrap_or_default();
        left.extend(
            netns
                .lines()
                .filter(|l| l.starts_with("pglab-sw") && l.contains(&pid))
                .map(|l| format!("netns {l}")),
        );
        let links = ip(&["-o", "link", "show"]).unwrap_or_default();
        left.extend(
            links
                .lines()
                .filter(|l| l.contains(": pglsw") && l.contains(&format!("-{veth_pid}@")))
                .map(|l| format!("link {l}")),
        );
        left
    }

    /// Waits until `n` nodes are Ready.
    pub fn wait_ready(&self, n: usize, deadline: Duration) {
        let end = Instant::now() + deadline;
        loop {
            let out = self
                .manager(&["node", "ls", "--format", "{{.Status}}"])
                .unwrap_or_default();
            if out.lines().filter(|l| l.trim() == "Ready").count() == n {
                return;
            }
            assert!(
                Instant::now() < end,
                "the swarm's nodes are not ready: {out}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// `docker save IMAGE` once, then `docker -H NODE load` on every node.
    pub fn load_image(&self, image: &str) {
        let tar = self.nodes[0].engine().dir().join("image.tar");
        run_deadline(
            Command::new("docker").args(["save", "-o", tar.to_str().unwrap(), image]),
            Duration::from_secs(180),
        )
        .unwrap_or_else(|e| panic!("saving {image}: {e}"));
        for node in &self.nodes {
            node.engine()
                .docker(
                    &["load", "-i", tar.to_str().unwrap()],
                    Duration::from_secs(180),
                )
                .unwrap_or_else(|e| panic!("loading {image} into a node: {e}"));
        }
        let _ = std::fs::remove_file(tar);
    }

    /// The client certificate's folder, for pglab's `--engine-tls`.
    pub fn engine_tls(&self) -> std::path::PathBuf {
        self.certs.join("client")
    }

    /// A client certificate of another CA, which the engines refuse.
    pub fn rogue_tls(&self) -> std::path::PathBuf {
        self.certs.join("rogue")
    }

    /// `unix://...` of the manager's engine, for `--docker-host`.
    pub fn manager_address(&self) -> String {
        self.nodes[0].host_address()
    }

    /// `docker -H MANAGER ARGS` (30 s deadline).
    pub fn manager(&self, args: &[&str]) -> Result<String, String> {
        self.nodes[0].engine().docker(args, Duration::from_secs(30))
    }

    /// `docker -H NODE ARGS` on node `i` (0-based; 30 s deadline).
    pub fn on(&self, i: usize, args: &[&str]) -> Result<String, String> {
        self.nodes[i].engine().docker(args, Duration::from_secs(30))
    }

    /// The index of the node with this swarm id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// Stops node `i`'s engine as an operator would (SIGTERM: its containers
    /// stop with it).
    pub fn stop_engine(&mut self, i: usize) -> Duration {
        self.nodes[i].engine.as_mut().unwrap().stop_daemon()
    }

    /// Starts node `i`'s engine again; it rejoins the swarm by itself.
    pub fn start_engine(&mut self, i: usize) {
        self.nodes[i].engine.as_mut().unwrap().start_daemon();
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        // Services first, so that no manager re-creates what the engines'
        // drops remove.
        if let Ok(services) = self.manager(&["service", "ls", "-q"])
            && !services.trim().is_empty()
        {
            let mut args = vec!["service", "rm"];
            args.extend(services.split_whitespace());
            let _ = self.manager(&args);
        }
        for node in self.nodes.iter_mut().rev() {
            drop(node.engine.take());
            let _ = ip(&["link", "del", &node.host_veth]);
            let _ = ip(&["netns", "delete", &node.netns]);
        }
        if self.bridge {
            let _ = ip(&["link", "del", BRIDGE]);
        }
        if self.rule {
            let _ = forward_rule("-D");
        }
        let _ = std::fs::remove_dir_all(&self.certs);
    }
}
