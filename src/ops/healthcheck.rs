//! `pglab healthcheck`: one GET of `/healthz` on the server's own bind
//! address, exit 0 when it answers 200. The container image has no curl or
//! wget; its HEALTHCHECK and docker-compose.yml's run this instead.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

/// Arguments of `pglab healthcheck`.
#[derive(Clone, Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's listen address; 0.0.0.0 / [::] are probed on loopback.
    #[arg(long, env = "PGLAB_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Path to probe.
    #[arg(long, default_value = "/healthz")]
    pub path: String,
    /// Seconds before giving up.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

/// Probes the server once; an error says what went wrong.
pub fn run(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let addr = probe_addr(args.bind);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("healthcheck: cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // HTTP/1.0 with Connection: close: the server ends the answer by closing.
    write!(
        stream,
        "GET {} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        args.path
    )?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .with_context(|| format!("healthcheck: no answer from {addr}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        bail!("healthcheck: {addr}{} answered {status_line:?}", args.path);
    }
    println!("healthy: {addr}{} answered 200", args.path);
    Ok(())
}

/// A wildcard bind address is reached through loopback of the same family.
fn probe_addr(bind: SocketAddr) -> SocketAddr {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bind.port())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wildcard_binds_are_probed_on_loopback() {
        assert_eq!(
            probe_addr("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            probe_addr("[::]:80".parse().unwrap()),
            "[::1]:80".parse().unwrap()
        );
        assert_eq!(
            probe_addr("10.0.0.2:81".parse().unwrap()),
            "10.0.0.2:81".parse().unwrap()
        );
    }
}
