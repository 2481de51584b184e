//! The console's in-process relay between sqlx and a learner's server, so
//! that NOTICE and WARNING messages keep all their fields.
//!
//! sqlx 0.8 reads a NoticeResponse and only logs its message text; nothing of
//! it reaches the caller. So each console connection goes through a relay of
//! its own:
//! 1. [`Relay::start`] binds a unix socket `DIR/.s.PGSQL.PORT` in a fresh
//!    private directory (0700) and gives back connect options that point sqlx
//!    there (same user, password, database and settings; no TLS on that
//!    hop);
//! 2. every connection sqlx opens on it is linked to a new connection to
//!    the real target (the provisioner's socket or host and port), and bytes
//!    go both ways unchanged, with no extra copy;
//! 3. on the way to sqlx, the server's messages are followed frame by frame
//!    (type byte and length: with no TLS every server message is framed, from
//!    the first one after the startup packet), and only the bodies of
//!    NoticeResponses (`N`) are copied out, into the connection's
//!    [`NoticeQueue`], **before** the bytes are passed on: by the time sqlx
//!    has read the statement's ReadyForQuery, its notices are queued.
//!
//! Everything else (rows, notifications, COPY in both directions, errors,
//! the Terminate message) passes through untouched. When either side closes
//! or fails (a killed sandbox, a closed session), the link closes the other
//! side and ends; dropping the [`Relay`] ends its accept task and every link
//! (they live in the task's `JoinSet`) and removes the socket and its
//! directory. Cancel requests are not needed: the console cancels with
//! `pg_cancel_backend` on a side connection that does not use a relay.

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::task::JoinSet;

use super::notices::{MAX_FRAME_BYTES, NoticeQueue};

/// Bytes read from the server at once.
const READ_BUF: usize = 64 << 10;

/// A running relay; dropping it ends it (links included) and removes its
/// socket.
pub struct Relay {
    task: tokio::task::JoinHandle<()>,
    /// Removed on drop, after the task is aborted (field order).
    dir: tempfile::TempDir,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where the real server is.
#[derive(Clone, Debug)]
enum Target {
    Unix(PathBuf),
    Tcp(String, u16),
}

impl Target {
    /// As sqlx itself would connect with `options`: a socket directory (or a
    /// host starting with `/`) means the unix socket `.s.PGSQL.PORT` in it.
    fn of(options: &PgConnectOptions) -> Self {
        let port = options.get_port();
        let dir = match options.get_socket() {
            Some(dir) => Some(dir.clone()),
            None if options.get_host().starts_with('/') => Some(options.get_host().into()),
            None => None,
        };
        match dir {
            Some(dir) => Self::Unix(dir.join(format!(".s.PGSQL.{port}"))),
            None => Self::Tcp(options.get_host().to_string(), port),
        }
    }
}

impl Relay {
    /// Starts a relay to the server `target` points at; its notices go to
    /// `notices`. Returns the options sqlx connects with instead.
    pub fn start(
        target: &PgConnectOptions,
        notices: Arc<NoticeQueue>,
    ) -> std::io::Result<(PgConnectOptions, Self)> {
        let to = Target::of(target);
        // A unix socket path has at most 107 bytes: a long TMPDIR falls back
        // to /tmp.
        let mut base = std::env::temp_dir();
        if base.as_os_str().len() > 64 {
            base = PathBuf::from("/tmp");
        }
        let dir = tempfile::Builder::new()
            .prefix("pglab-relay-")
            .tempdir_in(base)?;
        let port = target.get_port();
        let listener = UnixListener::bind(dir.path().join(format!(".s.PGSQL.{port}")))?;
        let task = tokio::spawn(accept(listener, to, notices));
        let options = target
            .clone()
            .socket(dir.path())
            .ssl_mode(PgSslMode::Disable);
        Ok((options, Self { task, dir }))
    }

    /// The private directory holding the relay's socket (gone once the
    /// relay is dropped).
    pub fn socket_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Accepts sqlx's connections (one at a time in practice: a pool of one)
/// and links each to a new server connection.
async fn accept(listener: UnixListener, to: Target, notices: Arc<NoticeQueue>) {
    let mut links = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    links.spawn(link(client, to.clone(), notices.clone()));
                }
                Err(e) => {
                    // Out of file descriptors, say: sqlx's connect fails and
                    // says so; try again a moment later.
                    tracing::warn!(error = %e, "console relay: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = links.join_next(), if !links.is_empty() => {}
        }
    }
}

/// One sqlx connection linked to one server connection, until either ends.
async fn link(client: UnixStream, to: Target, notices: Arc<NoticeQueue>) {
    let (client_read, mut client_write) = client.into_split();
    let failed = match &to {
        Target::Unix(path) => match UnixStream::connect(path).await {
            Ok(server) => {
                let (r, w) = server.into_split();
                return pump(client_read, client_write, r, w, &notices).await;
            }
            Err(e) => e,
        },
        Target::Tcp(host, port) => match TcpStream::connect((host.as_str(), *port)).await {
            Ok(server) => {
                let _ = server.set_nodelay(true);
                let (r, w) = server.into_split();
                return pump(client_read, client_write, r, w, &notices).await;
            }
            Err(e) => e,
        },
    };
    // Tell sqlx why, as a server would: a FATAL ErrorResponse.
    let message = format!("could not connect to the server: {failed}");
    let _ = client_write.write_all(&fatal(&message)).await;
    let _ = client_write.shutdown().await;
}

/// An ErrorResponse of severity FATAL, SQLSTATE 08006, with `message`.
fn fatal(message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (code, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "08006"),
        (b'M', message),
    ] {
        body.push(code);
        body.extend_from_slice(value.replace('\0', " ").as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut frame = vec![b'E'];
    frame.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Moves bytes both ways until one side closes; then both are closed.
async fn pump<CR, CW, SR, SW>(
    mut client_read: CR,
    mut client_write: CW,
    mut server_read: SR,
    mut server_write: SW,
    notices: &NoticeQueue,
) where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
{
    let up = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; READ_BUF];
        let mut frames = Frames::default();
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            frames.feed(&buf[..n], |body| notices.push_frame(body));
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Follows the server's message frames across reads, copying out only the
/// bodies of NoticeResponses.
#[derive(Debug, Default)]
struct Frames {
    /// The type byte and length of the next frame, as far as read.
    head: [u8; 5],
    head_len: usize,
    /// Body bytes of the current frame still to come.
    left: usize,
    /// The current frame's body, when it is a NoticeResponse.
    notice: Option<Vec<u8>>,
    /// A length made no sense: stop looking (bytes still pass).
    lost: bool,
}

impl Frames {
    fn feed(&mut self, mut data: &[u8], mut found: impl FnMut(&[u8])) {
        while !data.is_empty() && !self.lost {
            if self.left == 0 {
                let take = (5 - self.head_len).min(data.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&data[..take]);
                self.head_len += take;
                data = &data[take..];
                if self.head_len < 5 {
                    return;
                }
                self.head_len = 0;
                let len =
                    i32::from_be_bytes([self.head[1], self.head[2], self.head[3], self.head[4]]);
                let Some(body) = usize::try_from(len).ok().and_then(|l| l.checked_sub(4)) else {
                    self.lost = true;
                    return;
                };
                self.left = body;
                if self.head[0] == b'N' {
                    if body == 0 {
                        found(&[]);
                    } else if data.len() >= body {
                        // Whole in this read: no copy.
                        found(&data[..body]);
                        data = &data[body..];
                        self.left = 0;
                    } else {
                        self.notice = Some(Vec::with_capacity(body.min(MAX_FRAME_BYTES)));
                    }
                }
            } else {
                let take = self.left.min(data.len());
                if let Some(notice) = self.notice.as_mut() {
                    let room = MAX_FRAME_BYTES.saturating_sub(notice.len());
                    notice.extend_from_slice(&data[..take.min(room)]);
                }
                self.left -= take;
                data = &data[take..];
                if self.left == 0
                    && let Some(notice) = self.notice.take()
                {
                    found(&notice);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut f = vec![kind];
        f.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    /// A stream of frames, fed in pieces of every size from 1 byte up, gives
    /// the same notice bodies in the same order.
    #[test]
    fn finds_notices_across_any_read_boundaries() {
        let mut stream = Vec::new();
        stream.extend(frame(b'D', b"\x00\x01\x00\x00\x00\x01N"));
        stream.extend(frame(b'N', b"SNOTICE\0Mone\0\0"));
        stream.extend(frame(b'C', b"SELECT 1\0"));
        stream.extend(frame(b'N', b""));
        stream.extend(frame(b'N', b"SWARNING\0Mtwo\0\0"));
        stream.extend(frame(b'Z', b"I"));
        let want: Vec<Vec<u8>> = vec![
            b"SNOTICE\0Mone\0\0".to_vec(),
            Vec::new(),
            b"SWARNING\0Mtwo\0\0".to_vec(),
        ];
        for piece in 1..=stream.len() {
            let mut frames = Frames::default();
            let mut got = Vec::new();
            for chunk in stream.chunks(piece) {
                frames.feed(chunk, |b| got.push(b.to_vec()));
            }
            assert_eq!(got, want, "pieces of {piece}");
            assert!(!frames.lost && frames.left == 0 && frames.head_len == 0);
        }
    }

    #[test]
    fn a_nonsense_length_stops_looking() {
        let mut frames = Frames::default();
        let mut got = 0;
        frames.feed(b"N\x00\x00\x00\x02rest", |_| got += 1);
        assert!(frames.lost);
        frames.feed(&frame(b'N', b"SNOTICE\0\0"), |_| got += 1);
        assert_eq!(got, 0);
    }

    #[test]
    fn the_target_is_found_as_sqlx_finds_it() {
        let o = PgConnectOptions::new().socket("/run/x").port(5433);
        assert!(
            matches!(Target::of(&o), Target::Unix(p) if p == std::path::Path::new("/run/x/.s.PGSQL.5433"))
        );
        let o = PgConnectOptions::new().host("/tmp/pg").port(5432);
        assert!(
            matches!(Target::of(&o), Target::Unix(p) if p == std::path::Path::new("/tmp/pg/.s.PGSQL.5432"))
        );
        let o = PgConnectOptions::new().host("10.0.0.2").port(6000);
        assert!(matches!(Target::of(&o), Target::Tcp(h, 6000) if h == "10.0.0.2"));
    }

    #[test]
    fn a_fatal_frame_is_well_formed() {
        let f = fatal("nope");
        assert_eq!(f[0], b'E');
        let len = i32::from_be_bytes([f[1], f[2], f[3], f[4]]) as usize;
        assert_eq!(len + 1, f.len());
        assert!(f.ends_with(b"Mnope\0\0"));
    }
}
