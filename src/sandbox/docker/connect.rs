//! How pglab reaches a Docker engine from its address: a unix socket, a
//! plain `tcp://`/`http://` port, or TLS with a client certificate.
//!
//! TLS is Docker's own scheme (`dockerd --tlsverify`, `docker --tlsverify`):
//! the folder of `--engine-tls` holds `ca.pem` (the CA that signed the
//! engines' server certificates), and `cert.pem` with `key.pem` (pglab's
//! client certificate, signed by the CA the engines trust). With it, every
//! `tcp://` and `https://` address (`--docker-host` and the swarm nodes'
//! `pglab.engine` labels) is reached over TLS, the engine's certificate
//! checked against `ca.pem` and the address (an IP address needs an IP
//! subject alternative name); `http://` stays plain, by its name. Without
//! the folder a `tcp://` address is plain, as with the docker CLI, and an
//! `https://` address is refused with the flag to set.
//!
//! The files are checked when pglab starts, so a wrong path is an error at
//! start-up rather than a failed handshake at a learner's first terminal.
//!
//! Over TLS the API calls go through pglab's own hyper client (bollard's
//! custom transport) rather than bollard's TLS client: its only roots are
//! `ca.pem`'s certificates (bollard's adds the machine's CAs too), and it
//! keeps up to [`IDLE_PER_ENGINE`] idle connections per engine for
//! [`IDLE_FOR`] (bollard's keeps none, so every call to a node engine
//! paid a TCP and TLS handshake).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::{API_DEFAULT_VERSION, Docker};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// bollard's per-connection timeout, in seconds.
const TIMEOUT_SECS: u64 = 30;
/// Idle TLS connections kept per engine, and for how long.
const IDLE_PER_ENGINE: usize = 8;
const IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a new connection to an engine may take.
const CONNECT_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// The checked TLS folder of `--engine-tls`, as a rustls client (for the
/// API calls and the terminal's raw stream alike).
#[derive(Clone)]
pub struct EngineTls {
    ca: PathBuf,
    client: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for EngineTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineTls").field("ca", &self.ca).finish()
    }
}

/// The three files of a TLS folder, with what each holds (for errors).
const FILES: [(&str, &str); 3] = [
    ("ca.pem", "CERTIFICATE"),
    ("cert.pem", "CERTIFICATE"),
    ("key.pem", "PRIVATE KEY"),
];

impl EngineTls {
    /// Checks that `dir` holds readable `ca.pem`, `cert.pem` and `key.pem`
    /// in PEM form.
    pub fn open(dir: &Path) -> Result<Self, String> {
        for (name, kind) in FILES {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "--engine-tls {}: cannot read {name} ({e}); the folder holds ca.pem, \
                     cert.pem and key.pem as for `docker --tlsverify` (docs/operations.md)",
                    dir.display()
                )
            })?;
            // "BEGIN CERTIFICATE", or "BEGIN [RSA |EC ]PRIVATE KEY".
            let pem = text
                .lines()
                .any(|l| l.starts_with("-----BEGIN ") && l.contains(kind));
            if !pem {
                return Err(format!(
                    "--engine-tls {}: {name} is not a PEM {} (-----BEGIN {kind}-----)",
                    dir.display(),
                    kind.to_lowercase()
                ));
            }
        }
        warn_if_others_read(&dir.join("key.pem"));
        let (ca, cert, key) = (
            dir.join("ca.pem"),
            dir.join("cert.pem"),
            dir.join("key.pem"),
        );
        let client = client_config(&ca, &cert, &key)
            .map_err(|e| format!("--engine-tls {}: {e}", dir.display()))?;
        Ok(Self {
            ca,
            client: Arc::new(client),
        })
    }

    /// The rustls client settings: the engines' CA, pglab's certificate.
    pub fn client(&self) -> Arc<rustls::ClientConfig> {
        self.client.clone()
    }
}

/// The folder as a rustls client, built once here so that a file that
/// does not parse is an error at start-up: `ca.pem`'s certificates are the
/// only roots (of the API calls and of the terminal's stream), and
/// `cert.pem` with `key.pem` is the client certificate.
fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(ca)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("ca.pem does not parse ({e})"))?;
    let (added, _) = roots.add_parsable_certificates(cas);
    if added == 0 {
        return Err("ca.pem holds no usable CA certificate".into());
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cert.pem does not parse ({e})"))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("key.pem does not parse ({e})"))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("cert.pem and key.pem do not make a client certificate ({e})"))
}

/// The TLS settings an engine at `address` is reached with, if any (for
/// [`super::engine::Engine::tls`]).
pub fn tls_for(address: &str, tls: Option<&EngineTls>) -> Option<EngineTls> {
    tls.filter(|_| is_tls(address, tls)).cloned()
}

/// The engine at `address` (`tcp://` or `https://`) through a pooled
/// hyper client over TLS with the folder's settings (see the module doc).
fn tls_engine(address: &str, tls: &EngineTls) -> Result<Docker, bollard::errors::Error> {
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::{TokioExecutor, TokioTimer};

    let authority = address
        .strip_prefix("tcp://")
        .or_else(|| address.strip_prefix("https://"))
        .unwrap_or(address)
        .trim_end_matches('/');
    let mut http = HttpConnector::new();
    // The connector sees https:// URIs; TLS is the wrapper's.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_FOR));
    let https = hyper_rustls::HttpsConnector::from((http, (*tls.client).clone()));
    let client = Arc::new(
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(IDLE_PER_ENGINE)
            .pool_idle_timeout(IDLE_FOR)
            .pool_timer(TokioTimer::new())
            .build(https),
    );
    Docker::connect_with_custom_transport(
        move |request: bollard::BollardRequest| {
            let client = Arc::clone(&client);
            async move {
                client
                    .request(request)
                    .await
                    .map_err(bollard::errors::Error::from)
            }
        },
        Some(format!("https://{authority}")),
        TIMEOUT_SECS,
        API_DEFAULT_VERSION,
    )
}

/// Whether `address` is reached over TLS with `tls` set.
pub fn is_tls(address: &str, tls: Option<&EngineTls>) -> bool {
    address.starts_with("https://") || (address.starts_with("tcp://") && tls.is_some())
}

/// A private key others may read is worth a warning, not a refusal (the
/// operator may have reasons, e.g. a read-only secret mount).
fn warn_if_others_read(key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(key)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(
            key = %key.display(),
            "the engine TLS client key is readable by every user of this machine (chmod 600 it)"
        );
    }
}

/// Connects (lazily: nothing is sent yet) to the engine at `host`, or the
/// default socket. Returns the client and the address for messages.
pub fn open_engine(
    host: Option<&str>,
    tls: Option<&EngineTls>,
) -> Result<(Docker, String), String> {
    match host {
        Some(h) if is_tls(h, tls) => {
            let Some(tls) = tls else {
                return Err(format!(
                    "the Docker engine at {h} speaks TLS: give pglab its client certificate \
                     with --engine-tls DIR (ca.pem, cert.pem, key.pem)"
                ));
            };
            tls_engine(h, tls)
                .map(|d| (d, h.to_string()))
                .map_err(|e| format!("cannot use the Docker engine at {h} over TLS ({e})"))
        }
        Some(h) if h.starts_with("tcp://") || h.starts_with("http://") => {
            Docker::connect_with_http(h, TIMEOUT_SECS, API_DEFAULT_VERSION)
                .map(|d| (d, h.to_string()))
                .map_err(|e| format!("cannot use the Docker engine at {h} ({e})"))
        }
        Some(h) => {
            let address = if h.starts_with("unix://") {
                h.to_string()
            } else {
                format!("unix://{h}")
            };
            Docker::connect_with_socket(h, TIMEOUT_SECS, API_DEFAULT_VERSION)
                .map(|d| (d, address.clone()))
                .map_err(|_| {
                    format!(
                        "no Docker engine at {}",
                        address.trim_start_matches("unix://")
                    )
                })
        }
        None => Docker::connect_with_local_defaults()
            .map(|d| (d, "unix:///var/run/docker.sock".to_string()))
            .map_err(|_| "no Docker engine at /var/run/docker.sock".to_string()),
    }
}

/// `--engine-tls`, checked, if given.
pub fn engine_tls(dir: Option<&Path>) -> Result<Option<EngineTls>, String> {
    dir.map(EngineTls::open).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA, and a client certificate it signed, made with the openssl CLI
    /// (as docs/operations.md tells operators to), in `dir`.
    fn real_folder(key_kind: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let genkey = match key_kind {
            "rsa" => "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048",
            _ => "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256",
        };
        let script = format!(
            "set -e\n\
             {genkey} -out ca-key.pem 2>/dev/null\n\
             openssl req -x509 -new -key ca-key.pem -out ca.pem -days 1 -subj /CN=ca \
               -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign\n\
             {genkey} -out key.pem 2>/dev/null\n\
             openssl req -new -key key.pem -subj /CN=pglab -out c.csr\n\
             printf 'extendedKeyUsage=clientAuth\\n' > c.ext\n\
             openssl x509 -req -in c.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 1 \
               -extfile c.ext -out cert.pem 2>/dev/null\n"
        );
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        dir
    }

    #[test]
    fn a_folder_of_real_pem_files_is_accepted_whatever_the_key_kind() {
        for kind in ["ec", "rsa"] {
            let dir = real_folder(kind);
            let tls = EngineTls::open(dir.path()).unwrap();
            assert_eq!(tls.ca, dir.path().join("ca.pem"));
            assert!(tls.client().client_auth_cert_resolver.has_certs());
        }
    }

    #[test]
    fn a_missing_wrong_or_mismatched_file_is_named_in_the_error() {
        let dir = real_folder("ec");
        let p = |f: &str| dir.path().join(f);
        std::fs::rename(p("key.pem"), p("key.keep")).unwrap();
        let err = EngineTls::open(dir.path()).unwrap_err();
        assert!(err.contains("cannot read key.pem"), "{err}");
        // A certificate where the key should be.
        std::fs::copy(p("cert.pem"), p("key.pem")).unwrap();
        let err = EngineTls::open(dir.path()).unwrap_err();
        assert!(err.contains("key.pem is not a PEM private key"), "{err}");
        // The CA's key with the client's certificate: not a pair.
        std::fs::copy(p("ca-key.pem"), p("key.pem")).unwrap();
        let err = EngineTls::open(dir.path()).unwrap_err();
        assert!(err.contains("do not make a client certificate"), "{err}");
        // A key where the certificate should be.
        std::fs::rename(p("key.keep"), p("key.pem")).unwrap();
        std::fs::rename(p("cert.pem"), p("cert.keep")).unwrap();
        std::fs::copy(p("key.pem"), p("cert.pem")).unwrap();
        let err = EngineTls::open(dir.path()).unwrap_err();
        assert!(err.contains("cert.pem is not a PEM certificate"), "{err}");
        // A truncated CA certificate.
        std::fs::rename(p("cert.keep"), p("cert.pem")).unwrap();
        EngineTls::open(dir.path()).unwrap();
        std::fs::write(p("ca.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
        let err = EngineTls::open(dir.path()).unwrap_err();
        assert!(err.contains("ca.pem does not parse"), "{err}");
    }

    #[test]
    fn which_addresses_speak_tls() {
        let dir = real_folder("ec");
        let tls = EngineTls::open(dir.path()).unwrap();
        assert!(is_tls("tcp://10.0.0.12:2376", Some(&tls)));
        assert!(is_tls("https://10.0.0.12:2376", None));
        assert!(!is_tls("tcp://10.0.0.12:2375", None));
        assert!(!is_tls("http://10.0.0.12:2375", Some(&tls)));
        assert!(!is_tls("unix:///var/run/docker.sock", Some(&tls)));
        let err = open_engine(Some("https://10.0.0.12:2376"), None).unwrap_err();
        assert!(err.contains("--engine-tls"), "{err}");
        assert!(open_engine(Some("tcp://10.0.0.12:2376"), Some(&tls)).is_ok());
        assert!(open_engine(Some("http://10.0.0.12:2375"), None).is_ok());
    }
}
