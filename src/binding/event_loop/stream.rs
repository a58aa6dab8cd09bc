//! A TCP socket served on the event loop: reads and writes go straight to the socket,
//! and one that would block waits for the socket's libuv poll handle.

use std::ffi::c_int;
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::uv::{self, Uv, UvHandle, READABLE, WRITABLE};
use super::{current, EventLoop};
use crate::server::lock::lock;
use crate::server::ready::ReadReady;

/// What a socket's poll handle shares with its stream (the handle's data).
#[derive(Default)]
struct Watch {
    /// The task waiting to read.
    reader: Mutex<Option<Waker>>,
    /// The task waiting to write.
    writer: Mutex<Option<Waker>>,
    /// The events the handle watches for.
    events: AtomicI32,
    /// Input may be there: set by libuv, cleared by a read that would block.
    readable: AtomicBool,
}

/// A connected TCP socket whose waits are libuv's.
pub struct LoopStream {
    socket: TcpStream,
    handle: *mut UvHandle,
    watch: Arc<Watch>,
    home: Arc<EventLoop>,
}

// SAFETY: the handle pointer is only used on the loop's thread: the stream belongs to a
// task that is polled and dropped there only (a task dropped anywhere else leaks its
// future instead of dropping it, see `Task`'s `Drop`).
unsafe impl Send for LoopStream {}

impl LoopStream {
    /// Watches `socket` on `home`'s loop (on its thread); gives the socket back when
    /// libuv cannot watch it.
    pub fn new(home: Arc<EventLoop>, socket: TcpStream) -> Result<LoopStream, TcpStream> {
        let watch = Arc::new(Watch {
            readable: AtomicBool::new(true),
            ..Watch::default()
        });
        let data = Arc::into_raw(Arc::clone(&watch)) as *mut std::ffi::c_void;
        // SAFETY: on the loop's thread (`EventLoop::start`), with the loop alive and the
        // socket open.
        let handle = unsafe { home.uv.new_poll(home.uv_loop, socket.as_raw_fd(), data) };
        if handle.is_null() {
            // SAFETY: the handle was not made, so the reference is still ours.
            drop(unsafe { Arc::from_raw(data as *const Watch) });
            return Err(socket);
        }
        lock(&home.polls).insert(handle as usize);
        Ok(LoopStream {
            socket,
            handle,
            watch,
            home,
        })
    }

    /// Adds `events` to what the handle watches for.
    fn want(&self, events: c_int) {
        let now = self.watch.events.load(Ordering::Relaxed);
        if now & events != events {
            self.watch.events.store(now | events, Ordering::Relaxed);
            // SAFETY: on the loop's thread with the live handle (see `Send`).
            unsafe { self.home.uv.watch(self.handle, now | events, on_poll) };
        }
    }

    fn wait_readable(&self, cx: &Context<'_>) {
        self.watch.readable.store(false, Ordering::Relaxed);
        *lock(&self.watch.reader) = Some(cx.waker().clone());
        self.want(READABLE);
    }
}

impl AsyncRead for LoopStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if !self.watch.readable.load(Ordering::Relaxed) {
            // the last read emptied the socket: the watch (level-triggered) says when
            // there is more, without a read that would block
            self.wait_readable(cx);
            return Poll::Pending;
        }
        loop {
            // SAFETY: `recv` writes at most `unfilled.len()` bytes into it, and the
            // `n` it reports are then initialized.
            let n = unsafe {
                let unfilled = buf.unfilled_mut();
                libc::recv(
                    self.socket.as_raw_fd(),
                    unfilled.as_mut_ptr().cast(),
                    unfilled.len(),
                    0,
                )
            };
            if let Ok(n) = usize::try_from(n) {
                if n > 0 && n < buf.remaining() {
                    // a short read took all there was
                    self.watch.readable.store(false, Ordering::Relaxed);
                }
                // SAFETY: `recv` initialized these `n` bytes.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    self.wait_readable(cx);
                    return Poll::Pending;
                }
                _ => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl AsyncWrite for LoopStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            match (&self.socket).write(data) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *lock(&self.watch.writer) = Some(cx.waker().clone());
                    self.want(WRITABLE);
                    return Poll::Pending;
                }
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.socket.shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

impl ReadReady for LoopStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.watch.readable.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        self.wait_readable(cx);
        Poll::Pending
    }
}

impl Drop for LoopStream {
    fn drop(&mut self) {
        if self.home.dead.load(Ordering::Acquire) {
            // torn down: the handle was closed with the environment
            return;
        }
        lock(&self.home.polls).remove(&(self.handle as usize));
        // SAFETY: on the loop's thread (see `Send`) with the live handle, closed once.
        unsafe { close_poll(self.home.uv, self.handle) };
    }
}

/// Closes a poll handle; its callback frees it and its [`Watch`].
///
/// # Safety
/// On the loop's thread, with `handle` made by [`LoopStream::new`], live and not closing.
pub unsafe fn close_poll(uv: &Uv, handle: *mut UvHandle) {
    // SAFETY: per this function's contract.
    unsafe { uv.close(handle, poll_closed) }
}

unsafe extern "C" fn poll_closed(handle: *mut UvHandle) {
    let Some(uv) = uv::uv() else { return };
    // SAFETY: the handle's data is the `Watch` reference `LoopStream::new` gave it,
    // taken back once, here; then libuv is done with the handle.
    unsafe {
        drop(Arc::from_raw(uv.data(handle) as *const Watch));
        uv::free_handle(handle);
    }
}

/// The poll handle's callback: wakes the task waiting for what happened, then drains.
unsafe extern "C" fn on_poll(handle: *mut UvHandle, status: c_int, events: c_int) {
    let Some(uv) = uv::uv() else { return };
    let Some(home) = current() else { return };
    // SAFETY: the handle is live (this is its callback) and carries its `Watch`.
    let watch = unsafe { &*(uv.data(handle) as *const Watch) };
    // an error (the socket failed) wakes both sides: their next call reports it
    let fired = if status < 0 {
        READABLE | WRITABLE
    } else {
        events
    };
    // the reader and the writer to wake (no allocation on this per-readiness path)
    let mut woken: [Option<Waker>; 2] = [None, None];
    let now = watch.events.load(Ordering::Relaxed);
    let mut keep = now;
    if fired & READABLE != 0 {
        watch.readable.store(true, Ordering::Relaxed);
        match lock(&watch.reader).take() {
            // the reader reads until the socket would block: the watch stays
            Some(w) => woken[0] = Some(w),
            // nobody reads now: stop watching, or the loop would call again at once
            None => keep &= !READABLE,
        }
    }
    if fired & WRITABLE != 0 {
        keep &= !WRITABLE;
        woken[1] = lock(&watch.writer).take();
    }
    if status < 0 {
        keep = 0;
    }
    if keep != now || status < 0 {
        watch.events.store(keep, Ordering::Relaxed);
        // SAFETY: on the loop's thread (this callback), with the live handle.
        unsafe { uv.watch(handle, keep, on_poll) };
    }
    home.from_callback(|| woken.into_iter().flatten().for_each(Waker::wake));
}
