//! The few libuv functions the event loop driver uses, looked up in the running process
//! (Node exports libuv; nothing is linked at build time), with the handles they need.

use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

/// libuv's loop (`uv_loop_t`), only ever handled by pointer.
#[repr(C)]
pub struct UvLoop {
    _opaque: [u8; 0],
}

/// Any libuv handle (`uv_handle_t`, `uv_poll_t`, `uv_async_t`), only handled by pointer.
#[repr(C)]
pub struct UvHandle {
    _opaque: [u8; 0],
}

/// `uv_poll_cb`.
pub type PollCb = unsafe extern "C" fn(*mut UvHandle, c_int, c_int);
/// `uv_async_cb` and `uv_close_cb`.
pub type HandleCb = unsafe extern "C" fn(*mut UvHandle);

/// `UV_ASYNC` of `uv_handle_type`.
const ASYNC: c_int = 1;
/// `UV_CHECK` of `uv_handle_type`.
const CHECK: c_int = 2;
/// `UV_POLL` of `uv_handle_type`.
const POLL: c_int = 8;
/// `UV_READABLE`.
pub const READABLE: c_int = 1;
/// `UV_WRITABLE`.
pub const WRITABLE: c_int = 2;

type HandleSize = unsafe extern "C" fn(c_int) -> usize;
type HandleSetData = unsafe extern "C" fn(*mut UvHandle, *mut c_void);
type HandleGetData = unsafe extern "C" fn(*const UvHandle) -> *mut c_void;
type PollInit = unsafe extern "C" fn(*mut UvLoop, *mut UvHandle, c_int) -> c_int;
type PollStart = unsafe extern "C" fn(*mut UvHandle, c_int, PollCb) -> c_int;
type HandleFn = unsafe extern "C" fn(*mut UvHandle) -> c_int;
type AsyncInit = unsafe extern "C" fn(*mut UvLoop, *mut UvHandle, HandleCb) -> c_int;
type CheckInit = unsafe extern "C" fn(*mut UvLoop, *mut UvHandle) -> c_int;
type CheckStart = unsafe extern "C" fn(*mut UvHandle, HandleCb) -> c_int;
type Close = unsafe extern "C" fn(*mut UvHandle, Option<HandleCb>);
type Unref = unsafe extern "C" fn(*mut UvHandle);

/// The libuv entry points, found by name.
pub struct Uv {
    handle_size: HandleSize,
    handle_set_data: HandleSetData,
    handle_get_data: HandleGetData,
    poll_init: PollInit,
    poll_start: PollStart,
    poll_stop: HandleFn,
    async_init: AsyncInit,
    async_send: HandleFn,
    check_init: CheckInit,
    check_start: CheckStart,
    check_stop: HandleFn,
    close: Close,
    unref: Unref,
}

/// libuv, when the process exports it.
pub fn uv() -> Option<&'static Uv> {
    static UV: OnceLock<Option<Uv>> = OnceLock::new();
    UV.get_or_init(find).as_ref()
}

/// Looks one symbol up in the whole process.
fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: `dlsym` with `RTLD_DEFAULT` only reads the loaded objects' symbol tables;
    // `name` is a valid NUL-terminated string.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!found.is_null()).then_some(found)
}

fn find() -> Option<Uv> {
    macro_rules! look_up {
        ($name:literal => $kind:ty) => {{
            let found = symbol($name)?;
            // SAFETY: the symbol is libuv's function of that name, whose C signature
            // (libuv 1.x, stable since 1.0; `uv_handle_set_data` since 1.19) is `$kind`:
            // function pointers and data pointers have the same size here.
            unsafe { std::mem::transmute::<*mut c_void, $kind>(found) }
        }};
    }
    Some(Uv {
        handle_size: look_up!(c"uv_handle_size" => HandleSize),
        handle_set_data: look_up!(c"uv_handle_set_data" => HandleSetData),
        handle_get_data: look_up!(c"uv_handle_get_data" => HandleGetData),
        poll_init: look_up!(c"uv_poll_init" => PollInit),
        poll_start: look_up!(c"uv_poll_start" => PollStart),
        poll_stop: look_up!(c"uv_poll_stop" => HandleFn),
        async_init: look_up!(c"uv_async_init" => AsyncInit),
        async_send: look_up!(c"uv_async_send" => HandleFn),
        check_init: look_up!(c"uv_check_init" => CheckInit),
        check_start: look_up!(c"uv_check_start" => CheckStart),
        check_stop: look_up!(c"uv_check_stop" => HandleFn),
        close: look_up!(c"uv_close" => Close),
        unref: look_up!(c"uv_unref" => Unref),
    })
}

/// Allocates a zeroed handle of `kind`'s size (freed by [`Uv::close`]'s callback with
/// [`free_handle`]).
fn alloc_handle(uv: &Uv, kind: c_int) -> *mut UvHandle {
    // SAFETY: `uv_handle_size` is a pure lookup; `calloc` returns memory aligned for
    // any C type (or null, checked by the callers through libuv's init).
    unsafe { libc::calloc(1, (uv.handle_size)(kind)).cast() }
}

/// Frees a handle allocated by [`alloc_handle`]; for use in close callbacks.
///
/// # Safety
/// `handle` came from [`alloc_handle`] and libuv is done with it (its close callback runs).
pub unsafe fn free_handle(handle: *mut UvHandle) {
    // SAFETY: per this function's contract.
    unsafe { libc::free(handle.cast()) }
}

impl Uv {
    /// A handle of `kind`, initialized by `init` (libuv's `uv_*_init` for that kind),
    /// not keeping the loop alive; null when libuv refuses it.
    fn new_handle(&self, kind: c_int, init: impl FnOnce(*mut UvHandle) -> c_int) -> *mut UvHandle {
        let handle = alloc_handle(self, kind);
        if handle.is_null() {
            return handle;
        }
        if init(handle) != 0 {
            // SAFETY: libuv refused the handle, so it never saw it.
            unsafe { free_handle(handle) };
            return std::ptr::null_mut();
        }
        // SAFETY: `handle` was just initialized.
        unsafe { (self.unref)(handle) };
        handle
    }

    /// A poll handle watching `fd` on `uv_loop`, carrying `data`, not keeping the loop
    /// alive; null when libuv refuses it.
    ///
    /// # Safety
    /// Called on the loop's thread, with the loop alive and `fd` open.
    pub unsafe fn new_poll(
        &self,
        uv_loop: *mut UvLoop,
        fd: c_int,
        data: *mut c_void,
    ) -> *mut UvHandle {
        // SAFETY: the handle is zeroed memory of `uv_poll_t`'s size; per the contract
        // the loop is alive on this thread.
        self.new_handle(POLL, |handle| unsafe {
            let status = (self.poll_init)(uv_loop, handle, fd);
            if status == 0 {
                (self.handle_set_data)(handle, data);
            }
            status
        })
    }

    /// An async handle on `uv_loop` calling `cb`, not keeping the loop alive; null when
    /// libuv refuses it.
    ///
    /// # Safety
    /// Called on the loop's thread, with the loop alive.
    pub unsafe fn new_async(&self, uv_loop: *mut UvLoop, cb: HandleCb) -> *mut UvHandle {
        // SAFETY: as in `new_poll`.
        self.new_handle(ASYNC, |handle| unsafe {
            (self.async_init)(uv_loop, handle, cb)
        })
    }

    /// A check handle on `uv_loop` (its callback runs after each poll phase while it
    /// is started), not keeping the loop alive; null when libuv refuses it.
    ///
    /// # Safety
    /// Called on the loop's thread, with the loop alive.
    pub unsafe fn new_check(&self, uv_loop: *mut UvLoop) -> *mut UvHandle {
        // SAFETY: as in `new_poll`.
        self.new_handle(CHECK, |handle| unsafe {
            (self.check_init)(uv_loop, handle)
        })
    }

    /// Starts (`Some(cb)`; again is harmless) or stops a check handle.
    ///
    /// # Safety
    /// On the loop's thread, with `handle` a live check handle.
    pub unsafe fn check(&self, handle: *mut UvHandle, cb: Option<HandleCb>) {
        // SAFETY: per this function's contract.
        unsafe {
            match cb {
                Some(cb) => (self.check_start)(handle, cb),
                None => (self.check_stop)(handle),
            };
        }
    }

    /// Watches a poll handle for `events` (none: stops watching).
    ///
    /// # Safety
    /// On the loop's thread, with `handle` a live poll handle.
    pub unsafe fn watch(&self, handle: *mut UvHandle, events: c_int, cb: PollCb) {
        // SAFETY: per this function's contract.
        unsafe {
            if events == 0 {
                (self.poll_stop)(handle);
            } else {
                (self.poll_start)(handle, events, cb);
            }
        }
    }

    /// Wakes the loop to run an async handle's callback; from any thread.
    ///
    /// # Safety
    /// `handle` is a live async handle.
    pub unsafe fn send(&self, handle: *mut UvHandle) {
        // SAFETY: per this function's contract; `uv_async_send` is thread-safe.
        unsafe {
            (self.async_send)(handle);
        }
    }

    /// The data a handle carries.
    ///
    /// # Safety
    /// `handle` is a live handle.
    pub unsafe fn data(&self, handle: *const UvHandle) -> *mut c_void {
        // SAFETY: per this function's contract.
        unsafe { (self.handle_get_data)(handle) }
    }

    /// Closes a handle; `cb` runs on a later turn of the loop and must free it.
    ///
    /// # Safety
    /// On the loop's thread, with `handle` live and not closing.
    pub unsafe fn close(&self, handle: *mut UvHandle, cb: HandleCb) {
        // SAFETY: per this function's contract.
        unsafe { (self.close)(handle, Some(cb)) }
    }
}
