//! Starts a TTY exec and hands back the raw connection, without bollard's
//! output decoder.
//!
//! Why not `Docker::start_exec`: bollard 0.21 reads a hijacked exec stream
//! on a unix socket with a decoder that (1) holds bytes back until a newline,
//! so a shell prompt never shows, and (2) takes any chunk that starts with a
//! byte 0, 1 or 2 for a multiplexing header with a length, then waits for
//! that many bytes forever (`cat /dev/urandom` froze the terminal). A TTY
//! exec's stream is raw bytes both ways, so we speak the one HTTP request
//! ourselves: `POST /v<api>/exec/<id>/start` with `Upgrade: tcp`, read the
//! `101` answer's headers, then pass bytes through untouched.

use std::pin::Pin;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::engine::Engine;

use crate::sandbox::SandboxError;
use crate::sandbox::terminal::OutputStream;

/// Longest answer header accepted before the raw stream starts.
const MAX_HEADER: usize = 8 * 1024;
/// Bytes read from the stream at a time.
const CHUNK: usize = 16 * 1024;

fn failed(err: impl std::fmt::Display) -> SandboxError {
    SandboxError::Failed(format!("could not attach to the terminal: {err}"))
}

/// The started exec's output and input.
pub type Attached = (OutputStream, Pin<Box<dyn AsyncWrite + Send>>);

/// Starts exec `exec_id` (created with a TTY) on `engine` (`unix:///path`,
/// `tcp://host:port` plain or over TLS as the engine's client is) with API
/// version `api` ("1.41").
pub async fn start_tty(
    engine: &Engine,
    api: &str,
    exec_id: &str,
    deadline: Duration,
) -> Result<Attached, SandboxError> {
    let address = engine.address.as_str();
    let attach = async {
        if let Some(path) = address.strip_prefix("unix://") {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(failed)?;
            return handshake(stream, api, exec_id).await;
        }
        let host = ["tcp://", "http://", "https://"]
            .iter()
            .find_map(|p| address.strip_prefix(p))
            .ok_or_else(|| failed(format!("unsupported engine address {address}")))?
            .trim_end_matches('/');
        let stream = tokio::net::TcpStream::connect(host).await.map_err(failed)?;
        match &engine.tls {
            None => handshake(stream, api, exec_id).await,
            Some(tls) => {
                // The name the engine's certificate must carry: the host
                // without its port (an IP address or a DNS name).
                let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
                let name = name.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(name.to_string())
                    .map_err(|e| failed(format!("{name} is not a host name ({e})")))?;
                let stream = tokio_rustls::TlsConnector::from(tls.client())
                    .connect(name, stream)
                    .await
                    .map_err(|e| failed(format!("TLS with {address} failed ({e})")))?;
                handshake(stream, api, exec_id).await
            }
        }
    };
    tokio::time::timeout(deadline, attach)
        .await
        .map_err(|_| failed(format!("no answer within {deadline:?}")))?
}

async fn handshake<S>(mut stream: S, api: &str, exec_id: &str) -> Result<Attached, SandboxError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let body = r#"{"Detach":false,"Tty":true}"#;
    let request = format!(
        "POST /v{api}/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n\
         Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.map_err(failed)?;
    // Byte by byte up to the blank line, so that no terminal output is
    // read into a header buffer.
    let mut header = Vec::with_capacity(256);
    while !header.ends_with(b"\r\n\r\n") {
        if header.len() >= MAX_HEADER {
            return Err(failed("the engine's answer has no end of headers"));
        }
        let byte = stream.read_u8().await.map_err(failed)?;
        header.push(byte);
    }
    let head = String::from_utf8_lossy(&header);
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "101" && status != "200" {
        let first = head.lines().next().unwrap_or("").to_string();
        return Err(failed(format!("the engine answered {first}")));
    }
    let (reader, writer) = tokio::io::split(stream);
    let output = futures::stream::unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; CHUNK];
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), r))
            }
        }
    });
    Ok((Box::pin(output), Box::pin(writer)))
}
