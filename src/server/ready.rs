//! Waiting for a stream's input without holding a buffer for it: an idle connection
//! keeps no read buffer while it waits for its client's next command.

use std::io;
use std::task::{Context, Poll};

use tokio::net::{TcpStream, UnixStream};

/// A stream that can say when a read would make progress.
pub trait ReadReady {
    /// Ready once a read may return data, the end of input or an error. A wake-up
    /// with nothing to read is harmless: the read that follows waits again.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

impl ReadReady for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }
}

impl ReadReady for UnixStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        UnixStream::poll_read_ready(self, cx)
    }
}
