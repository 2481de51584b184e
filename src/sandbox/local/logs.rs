//! The local cluster's server log (`server.log`, written by the postmaster
//! that `pg_ctl -l` started) as a followed stream: read from a byte offset,
//! polled every 50 ms, started over when the file shrinks (a reset).

use std::io::SeekFrom;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_stream::wrappers::ReceiverStream;

use super::LocalProvisioner;
use crate::sandbox::log::{LogStream, RawLogLine};
use crate::sandbox::{LearnerId, SandboxError};

const POLL: Duration = Duration::from_millis(50);

impl LocalProvisioner {
    pub(super) async fn follow_log(
        &self,
        learner: LearnerId,
        after: Option<String>,
        tail: usize,
    ) -> Result<LogStream, SandboxError> {
        let path = self.cluster(learner).log();
        let text = tokio::fs::read(&path).await.map_err(|e| {
            SandboxError::Failed(format!("no server log yet ({}: {e})", path.display()))
        })?;
        let len = text.len() as u64;
        let start = match after.and_then(|c| c.parse::<u64>().ok()) {
            Some(offset) if offset <= len => offset,
            _ => tail_offset(&text, tail),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            let mut offset = start;
            let mut buf = Vec::new();
            loop {
                let Ok(meta) = tokio::fs::metadata(&path).await else {
                    tokio::time::sleep(POLL).await;
                    continue;
                };
                if meta.len() < offset {
                    // Truncated or replaced (reset): read the new file.
                    offset = 0;
                    buf.clear();
                }
                if meta.len() > offset {
                    let Ok(mut file) = tokio::fs::File::open(&path).await else {
                        continue;
                    };
                    if file.seek(SeekFrom::Start(offset)).await.is_err() {
                        continue;
                    }
                    let mut chunk = Vec::new();
                    let Ok(n) = (&mut file)
                        .take(meta.len() - offset)
                        .read_to_end(&mut chunk)
                        .await
                    else {
                        continue;
                    };
                    // The file position of buf[0].
                    let base = offset - buf.len() as u64;
                    buf.extend_from_slice(&chunk);
                    offset += n as u64;
                    let mut pos = 0;
                    while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
                        let text = String::from_utf8_lossy(&buf[pos..pos + nl])
                            .trim_end_matches('\r')
                            .to_string();
                        pos += nl + 1;
                        // The cursor points just after the line.
                        let line = RawLogLine {
                            cursor: (base + pos as u64).to_string(),
                            text,
                        };
                        if tx.send(line).await.is_err() {
                            return;
                        }
                    }
                    buf.drain(..pos);
                } else if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(POLL).await;
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}

/// The byte offset where the last `lines` lines of `text` begin.
fn tail_offset(text: &[u8], lines: usize) -> u64 {
    let mut seen = 0;
    for (i, &b) in text.iter().enumerate().rev() {
        if b == b'\n' && i + 1 < text.len() {
            seen += 1;
            if seen == lines {
                return (i + 1) as u64;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::tail_offset;

    #[test]
    fn the_tail_starts_after_a_newline() {
        assert_eq!(tail_offset(b"a\nb\nc\n", 2), 2);
        assert_eq!(tail_offset(b"a\nb\nc\n", 5), 0);
        assert_eq!(tail_offset(b"", 5), 0);
    }
}
