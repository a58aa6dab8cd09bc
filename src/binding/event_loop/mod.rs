//! Serving connections on the JavaScript thread's own event loop (Node's libuv).
//!
//! A connection whose commands wait for JavaScript handlers would otherwise spend most
//! of its CPU handing work between threads: the native thread that read a command wakes
//! the JavaScript thread, and the handler's answer wakes the native thread again (on a
//! virtual machine each such wake-up costs more than the handler itself). Here the
//! connection's task runs on the JavaScript thread: libuv says when the socket is
//! readable, the task reads, parses and asks the handlers on that thread, and an answer
//! is applied and its reply written before the thread goes back to its loop.
//!
//! The task is the same [`connection::run`] the native threads run; only where it is
//! polled ([`EventLoop`]) and how its socket waits ([`stream::LoopStream`]) differ.
//! Timers stay on the native runtime's clock, whose thread wakes the loop when one fires.

mod stream;
mod uv;

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::ffi::c_void;
use std::future::Future;
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};

use napi::{sys, Env};

use crate::protocol::session::Peer;
use crate::server::connection;
use crate::server::listener::serve_natively;
use crate::server::lock::lock;
use crate::server::{Host, Server};
use stream::LoopStream;
use uv::{Uv, UvHandle, UvLoop};

/// Tasks one drain polls before it lets the loop run its other callbacks.
const BUDGET: usize = 1024;

/// Work for the JavaScript thread, run once a drain started by the loop ends (outside
/// any JavaScript): a server's queued events go to its dispatcher.
pub trait Deferred: Send + Sync {
    /// Runs it, inside a callback scope (microtasks and ticks run when it closes).
    fn run(&self, env: &Env) -> napi::Result<()>;
}

/// A connection's task, polled on the loop's thread.
struct Task {
    future: Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>,
    /// In the ready queue (a wake-up while queued adds nothing).
    queued: AtomicBool,
    home: Arc<EventLoop>,
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            lock(&self.home.ready).push_back(Arc::clone(self));
            self.home.notify();
        }
    }
}

impl Task {
    /// Polls the task once; a finished task drops its future (and its socket) here, on
    /// the loop's thread.
    fn run(self: &Arc<Self>) {
        self.queued.store(false, Ordering::Release);
        let waker = Waker::from(Arc::clone(self));
        let mut slot = lock(&self.future);
        let done = slot
            .as_mut()
            .is_some_and(|f| f.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
        if done {
            *slot = None;
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // a future still running holds its socket's handle, which only the loop's
        // thread may close: dropped anywhere else, it is left alone (this happens only
        // once the environment is gone)
        let left = lock(&self.future).take();
        if let Some(future) = left {
            if !self.home.on_loop_thread() {
                std::mem::forget(future);
            }
        }
    }
}

thread_local! {
    /// The event loop of this thread's JavaScript environment, from its first use until
    /// the environment is torn down.
    static CURRENT: RefCell<Option<Arc<EventLoop>>> = const { RefCell::new(None) };
}

/// This thread's event loop, if it has one.
fn current() -> Option<Arc<EventLoop>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The driver of one JavaScript thread's connections.
pub struct EventLoop {
    uv: &'static Uv,
    uv_loop: *mut UvLoop,
    env: sys::napi_env,
    /// The async context the dispatcher's direct calls run in.
    async_context: sys::napi_async_context,
    /// The loop's thread is in one of the loop's callbacks (not in JavaScript): work
    /// for JavaScript waits in `deferred` for the check handle, which runs it once
    /// every socket ready in this turn of the loop was served.
    in_callback: AtomicBool,
    deferred: Mutex<Vec<Arc<dyn Deferred>>>,
    /// The check handle.
    check: AtomicPtr<UvHandle>,
    /// Wakes the loop's thread to drain: the async handle.
    wake: AtomicPtr<UvHandle>,
    /// The loop's thread is draining, or will drain before it returns to the loop:
    /// a wake-up on that thread only queues.
    busy: AtomicBool,
    /// The environment is gone: nothing touches libuv any more.
    dead: AtomicBool,
    ready: Mutex<VecDeque<Arc<Task>>>,
    /// Connections accepted on a native thread, waiting to start here.
    arrivals: Mutex<Vec<(Arc<Server>, TcpStream, Peer)>>,
    /// Live poll handles (as addresses), closed with the environment.
    polls: Mutex<HashSet<usize>>,
    runtime: tokio::runtime::Handle,
}

// SAFETY: `uv_loop` and the handles are libuv's, and only used on the loop's thread
// (`on_loop_thread` guards every use) except through `uv_async_send`, which libuv makes
// safe from any thread; the rest is atomics and mutexes.
unsafe impl Send for EventLoop {}
// SAFETY: as for `Send`.
unsafe impl Sync for EventLoop {}

impl EventLoop {
    /// The event loop of the JavaScript environment `env` (made on first use, on its
    /// thread); `None` where libuv is not there to drive it (Bun) or cannot be used.
    pub fn of(env: sys::napi_env) -> Option<Arc<EventLoop>> {
        if let Some(this) = current() {
            return Some(this);
        }
        let uv = uv::uv()?;
        let runtime = crate::binding::runtime()?;
        let mut uv_loop: *mut sys::uv_loop_s = std::ptr::null_mut();
        // SAFETY: called on the JavaScript thread with its env, as napi requires.
        let status = unsafe { sys::napi_get_uv_event_loop(env, &mut uv_loop) };
        if status != sys::Status::napi_ok || uv_loop.is_null() {
            return None;
        }
        let mut async_context = std::ptr::null_mut();
        // SAFETY: on the JavaScript thread with its env, inside the napi call that
        // passed it (so a handle scope is open for the name string).
        let status = unsafe {
            let mut name = std::ptr::null_mut();
            sys::napi_create_string_utf8(env, c"smtp-server-rs".as_ptr(), 14, &mut name);
            sys::napi_async_init(env, std::ptr::null_mut(), name, &mut async_context)
        };
        if status != sys::Status::napi_ok {
            return None;
        }
        let this = Arc::new(EventLoop {
            uv,
            uv_loop: uv_loop.cast(),
            env,
            async_context,
            in_callback: AtomicBool::new(false),
            deferred: Mutex::default(),
            check: AtomicPtr::new(std::ptr::null_mut()),
            wake: AtomicPtr::new(std::ptr::null_mut()),
            busy: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            ready: Mutex::default(),
            arrivals: Mutex::default(),
            polls: Mutex::default(),
            runtime,
        });
        // SAFETY: on the loop's thread with the live loop.
        let (wake, check) = unsafe {
            (
                uv.new_async(this.uv_loop, on_wake),
                uv.new_check(this.uv_loop),
            )
        };
        if wake.is_null() || check.is_null() {
            // SAFETY: on the JavaScript thread; each handle libuv did make is closed once,
            // and the async context is not used again.
            unsafe {
                for handle in [wake, check].into_iter().filter(|h| !h.is_null()) {
                    uv.close(handle, free_closed);
                }
                sys::napi_async_destroy(env, async_context);
            }
            return None;
        }
        this.wake.store(wake, Ordering::Release);
        this.check.store(check, Ordering::Release);
        let held = Arc::into_raw(Arc::clone(&this)) as *mut c_void;
        // SAFETY: on the JavaScript thread with its env; `tear_down` takes back the
        // reference passed as its argument, once.
        let status = unsafe { sys::napi_add_env_cleanup_hook(env, Some(tear_down), held) };
        if status != sys::Status::napi_ok {
            // SAFETY: the hook was not registered: the reference is still ours.
            drop(unsafe { Arc::from_raw(held as *const EventLoop) });
            return None;
        }
        CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(&this)));
        Some(this)
    }

    fn on_loop_thread(&self) -> bool {
        CURRENT.with(|c| {
            c.borrow()
                .as_ref()
                .is_some_and(|l| std::ptr::eq(Arc::as_ptr(l), self))
        })
    }

    /// Makes sure queued work is drained soon.
    fn notify(&self) {
        if self.busy.load(Ordering::Acquire) && self.on_loop_thread() {
            return;
        }
        if self.dead.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: the async handle lives until `tear_down` marks the loop dead.
        unsafe { self.uv.send(self.wake.load(Ordering::Acquire)) };
    }

    /// Takes `job` to run after this turn's poll phase (with the work of every other
    /// socket served in it); false outside the loop's callbacks (the caller calls
    /// JavaScript its own way).
    pub fn defer(&self, job: Arc<dyn Deferred>) -> bool {
        if !self.in_callback.load(Ordering::Acquire) || !self.on_loop_thread() {
            return false;
        }
        lock(&self.deferred).push(job);
        // SAFETY: on the loop's thread, with the check handle alive until `tear_down`
        // (which empties `deferred` and makes `in_callback` false for good).
        unsafe {
            self.uv
                .check(self.check.load(Ordering::Acquire), Some(on_check))
        };
        true
    }

    /// What a libuv callback of this loop does: `f` (which wakes tasks), then the
    /// drain; the JavaScript work it leaves waits for the check handle.
    fn from_callback(self: &Arc<Self>, f: impl FnOnce()) {
        self.in_callback.store(true, Ordering::Release);
        self.batch(f);
        self.in_callback.store(false, Ordering::Release);
    }

    /// The check handle's work: the JavaScript work the turn's callbacks left, in one
    /// call per server inside one callback scope. JavaScript that answers at once (in a
    /// microtask) has its replies written before the scope closes, and the work those
    /// leave is done in the same turn.
    fn run_deferred(self: &Arc<Self>) {
        // SAFETY: on the loop's thread (the check callback), with the live handle.
        unsafe { self.uv.check(self.check.load(Ordering::Acquire), None) };
        self.in_callback.store(true, Ordering::Release);
        loop {
            let jobs = std::mem::take(&mut *lock(&self.deferred));
            if jobs.is_empty() {
                break;
            }
            self.call_js(&jobs);
        }
        self.in_callback.store(false, Ordering::Release);
    }

    /// Runs `jobs` inside a handle scope and a callback scope; an exception goes to
    /// the process as uncaught, as one from any callback would.
    fn call_js(&self, jobs: &[Arc<dyn Deferred>]) {
        if self.dead.load(Ordering::Acquire) {
            return;
        }
        let env = self.env;
        // SAFETY: on the loop's thread (the callers are its libuv callbacks), outside
        // JavaScript, with the env alive (not torn down); each scope opened here is
        // closed here, innermost first.
        unsafe {
            let mut handles = std::ptr::null_mut();
            if sys::napi_open_handle_scope(env, &mut handles) != sys::Status::napi_ok {
                return;
            }
            let mut resource = std::ptr::null_mut();
            let mut scope = std::ptr::null_mut();
            sys::napi_create_object(env, &mut resource);
            let opened =
                sys::napi_open_callback_scope(env, resource, self.async_context, &mut scope)
                    == sys::Status::napi_ok;
            let js = Env::from_raw(env);
            for job in jobs {
                if job.run(&js).is_err() {
                    let mut pending = false;
                    sys::napi_is_exception_pending(env, &mut pending);
                    if pending {
                        let mut error = std::ptr::null_mut();
                        sys::napi_get_and_clear_last_exception(env, &mut error);
                        sys::napi_fatal_exception(env, error);
                    }
                }
            }
            if opened {
                sys::napi_close_callback_scope(env, scope);
            }
            sys::napi_close_handle_scope(env, handles);
        }
    }

    /// Runs `f` on the loop's thread, then drains what it woke (an answer's reply is
    /// written before `f`'s caller returns to JavaScript).
    pub fn batch<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        if self.busy.swap(true, Ordering::AcqRel) {
            return f();
        }
        let result = f();
        self.busy.store(false, Ordering::Release);
        self.drain();
        result
    }

    /// Polls every woken task (and starts arrived connections), up to [`BUDGET`].
    fn drain(self: &Arc<Self>) {
        if self.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let _runtime = self.runtime.enter();
        let mut budget = BUDGET;
        loop {
            let arrived = std::mem::take(&mut *lock(&self.arrivals));
            for (server, socket, peer) in arrived {
                self.start(server, socket, peer);
            }
            if budget == 0 {
                if !lock(&self.ready).is_empty() {
                    self.busy.store(false, Ordering::Release);
                    self.notify();
                    return;
                }
                break;
            }
            let next = lock(&self.ready).pop_front();
            let Some(task) = next else { break };
            budget -= 1;
            task.run();
        }
        self.busy.store(false, Ordering::Release);
    }

    /// Starts serving a connection here, or on the native threads when its socket
    /// cannot be watched.
    fn start(self: &Arc<Self>, server: Arc<Server>, socket: TcpStream, peer: Peer) {
        match LoopStream::new(Arc::clone(self), socket) {
            Ok(stream) => {
                crate::server::stats::add(&server.stats.event_loop_connections, 1);
                let task = Arc::new(Task {
                    future: Mutex::new(Some(Box::pin(connection::run(server, stream, peer)))),
                    queued: AtomicBool::new(true),
                    home: Arc::clone(self),
                });
                task.run();
            }
            Err(socket) => serve_natively(server, socket, peer),
        }
    }
}

impl Host for EventLoop {
    fn serve(&self, server: Arc<Server>, socket: TcpStream, peer: Peer) {
        if self.dead.load(Ordering::Acquire) {
            serve_natively(server, socket, peer);
            return;
        }
        lock(&self.arrivals).push((server, socket, peer));
        self.notify();
    }
}

/// The async handle's callback: drain on the loop's thread.
unsafe extern "C" fn on_wake(_handle: *mut UvHandle) {
    // the handle belongs to this thread's loop, which is current until torn down
    if let Some(this) = current() {
        this.from_callback(|| {});
    }
}

/// The check handle's callback: run the deferred JavaScript work.
unsafe extern "C" fn on_check(_handle: *mut UvHandle) {
    if let Some(this) = current() {
        this.run_deferred();
    }
}

/// A closed handle's callback: frees it.
unsafe extern "C" fn free_closed(handle: *mut UvHandle) {
    // SAFETY: libuv is done with the handle, which `uv::alloc_handle` allocated.
    unsafe { uv::free_handle(handle) }
}

/// The environment's cleanup hook: stops using libuv, closes the handles.
unsafe extern "C" fn tear_down(arg: *mut c_void) {
    // SAFETY: `arg` is the reference `EventLoop::of` gave up for this hook.
    let this = unsafe { Arc::from_raw(arg as *const EventLoop) };
    this.dead.store(true, Ordering::Release);
    lock(&this.deferred).clear();
    // SAFETY: on the JavaScript thread, with its env still alive in its cleanup hook.
    unsafe { sys::napi_async_destroy(this.env, this.async_context) };
    CURRENT.with(|c| c.borrow_mut().take());
    let polls: Vec<usize> = lock(&this.polls).drain().collect();
    // SAFETY: on the loop's thread, before the loop is closed; every handle is live
    // (a stream's drop removes its handle from `polls` before closing it itself).
    unsafe {
        for handle in polls {
            stream::close_poll(this.uv, handle as *mut UvHandle);
        }
        this.uv
            .close(this.wake.load(Ordering::Acquire), free_closed);
        this.uv
            .close(this.check.load(Ordering::Acquire), free_closed);
    }
}
