//! Reading the PROXY header before a session starts, and the stream wrapper that hands
//! the bytes received after the header on to the session (or to TLS).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::ready::ReadReady;
use crate::protocol::proxy::{parse, ProxyHeader, ProxyParse};

/// How long a refused PROXY client may stay to read the `* BAD` line.
const REJECT_LINGER: Duration = Duration::from_secs(1);

/// A stream that first returns bytes already read from it.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// Wraps `inner` with nothing buffered.
    pub fn new(inner: S) -> Self {
        Prefixed {
            prefix: Vec::new(),
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos >= this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: ReadReady> ReadReady for Prefixed<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_read_ready(cx)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Reads a PROXY header. `None` means the connection is to be dropped (invalid header,
/// already answered with `* BAD Invalid PROXY header`, or the client left).
pub async fn read_header<S>(stream: &mut Prefixed<S>) -> Option<ProxyHeader>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(128);
    loop {
        match parse(&buf) {
            ProxyParse::Complete { len, header } => {
                stream.prefix = buf.split_off(len);
                stream.pos = 0;
                return Some(header);
            }
            ProxyParse::Invalid(_) => {
                let _ = stream
                    .inner
                    .write_all(b"* BAD Invalid PROXY header\r\n")
                    .await;
                let _ = stream.inner.shutdown().await;
                let mut scratch = [0u8; 512];
                let _ = tokio::time::timeout(REJECT_LINGER, async {
                    while let Ok(n) = stream.inner.read(&mut scratch).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
                return None;
            }
            ProxyParse::Incomplete => {
                buf.reserve(512);
                match stream.inner.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        }
    }
}
