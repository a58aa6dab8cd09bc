//! Connections over a socket the application accepted (`server.connect(socket)`): the
//! bytes the JavaScript socket reads are pushed in here, and what the session writes
//! goes back out as events. The connection task sees an ordinary async stream.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::hooks::Hooks;
use super::lock::lock;
use super::ready::ReadReady;
use super::Server;

/// Queued input beyond which the application is asked to pause its socket.
const HIGH_WATER: usize = 256 * 1024;
/// Queued input below which a paused socket is resumed.
const LOW_WATER: usize = 64 * 1024;

/// How the input of a pipe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Still open.
    Open,
    /// The socket ended its side.
    Eof,
    /// The socket failed (reads as a connection reset).
    Failed,
}

/// The input side of a pipe, filled from JavaScript.
#[derive(Debug)]
struct Input {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already read.
    offset: usize,
    queued: usize,
    end: End,
    /// The application paused its socket; resume it once the queue drains.
    paused: bool,
    waker: Option<Waker>,
}

/// One pipe's shared input.
#[derive(Debug)]
pub struct PipeInput {
    input: Mutex<Input>,
}

/// The pipes of a server, by id.
#[derive(Debug, Default)]
pub struct Pipes {
    map: Mutex<HashMap<u32, Arc<PipeInput>>>,
    next: std::sync::atomic::AtomicU32,
}

impl Pipes {
    fn get(&self, id: u32) -> Option<Arc<PipeInput>> {
        lock(&self.map).get(&id).cloned()
    }

    fn remove(&self, id: u32) {
        lock(&self.map).remove(&id);
    }

    /// A new pipe and the stream its connection reads and writes.
    pub fn open(self: &Arc<Self>, hooks: Arc<dyn Hooks>) -> (u32, JsStream) {
        let input = Arc::new(PipeInput {
            input: Mutex::new(Input {
                chunks: VecDeque::new(),
                offset: 0,
                queued: 0,
                end: End::Open,
                paused: false,
                waker: None,
            }),
        });
        let mut map = lock(&self.map);
        let id = loop {
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !map.contains_key(&id) {
                break id;
            }
        };
        map.insert(id, Arc::clone(&input));
        drop(map);
        let stream = JsStream {
            id,
            input,
            pipes: Arc::clone(self),
            hooks,
            ended: false,
        };
        (id, stream)
    }

    /// Bytes the socket read. Returns true when the application should pause its
    /// socket until it hears the pipe drained.
    pub fn push(&self, id: u32, data: Vec<u8>) -> bool {
        let Some(pipe) = self.get(id) else {
            return false;
        };
        let mut input = lock(&pipe.input);
        if input.end != End::Open || data.is_empty() {
            return false;
        }
        input.queued += data.len();
        input.chunks.push_back(data);
        if let Some(w) = input.waker.take() {
            w.wake();
        }
        if input.queued > HIGH_WATER {
            input.paused = true;
        }
        input.paused
    }

    /// The socket ended (`failed`: with an error).
    pub fn finish(&self, id: u32, failed: bool) {
        let Some(pipe) = self.get(id) else {
            return;
        };
        let mut input = lock(&pipe.input);
        if input.end == End::Open {
            input.end = if failed { End::Failed } else { End::Eof };
        }
        if let Some(w) = input.waker.take() {
            w.wake();
        }
    }
}

/// The connection's end of a pipe.
pub struct JsStream {
    id: u32,
    input: Arc<PipeInput>,
    pipes: Arc<Pipes>,
    hooks: Arc<dyn Hooks>,
    ended: bool,
}

impl JsStream {
    fn end_output(&mut self) {
        if !self.ended {
            self.ended = true;
            self.hooks.pipe_end(self.id);
        }
    }
}

impl Drop for JsStream {
    fn drop(&mut self) {
        self.end_output();
        self.pipes.remove(self.id);
    }
}

impl ReadReady for JsStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut input = lock(&self.input.input);
        if !input.chunks.is_empty() || input.end != End::Open {
            return Poll::Ready(Ok(()));
        }
        input.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncRead for JsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut input = lock(&this.input.input);
        let mut read = 0;
        while buf.remaining() > 0 {
            let offset = input.offset;
            let Some(front) = input.chunks.front() else {
                break;
            };
            let n = (front.len() - offset).min(buf.remaining());
            buf.put_slice(&front[offset..offset + n]);
            let done = offset + n == front.len();
            read += n;
            if done {
                input.chunks.pop_front();
                input.offset = 0;
            } else {
                input.offset += n;
            }
        }
        input.queued -= read;
        if input.paused && input.queued < LOW_WATER {
            input.paused = false;
            this.hooks.pipe_drain(this.id);
        }
        if read > 0 {
            return Poll::Ready(Ok(()));
        }
        match input.end {
            End::Open => {
                input.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            End::Eof => Poll::Ready(Ok(())),
            End::Failed => Poll::Ready(Err(io::Error::from(io::ErrorKind::ConnectionReset))),
        }
    }
}

impl AsyncWrite for JsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::BrokenPipe)));
        }
        this.hooks.pipe_write(this.id, data.to_vec());
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().end_output();
        Poll::Ready(Ok(()))
    }
}

impl Server {
    /// Serves a connection over a socket the application accepted: no PROXY header and
    /// no implicit TLS handshake (the socket is taken as it is, as smtp-server's
    /// `connect()` takes it); STARTTLS works over it. Returns the pipe id.
    pub fn attach(self: &Arc<Self>, peer: crate::protocol::session::Peer) -> u32 {
        let (id, stream) = self.pipes.open(Arc::clone(self.hooks()));
        // counted now, so that the server is known to be in use before the task runs
        self.open.fetch_add(1, Ordering::SeqCst);
        napi::bindgen_prelude::spawn(super::connection::run_attached(
            Arc::clone(self),
            stream,
            peer,
        ));
        id
    }
}
