//! Memory that comes back after a burst, with glibc's malloc (Linux, gnu).
//!
//! Message body pieces are allocated on a tokio worker and freed on the JavaScript thread
//! when the garbage collector drops their Buffer; connections are allocated and freed on
//! the workers. glibc keeps what a worker's arena freed inside that arena, where it is
//! reused but never given back: after a 200 MB message or 10,000 connections a Node
//! process stayed 60-80 MiB above its baseline (a Bun process up to 25 MiB).
//!
//! The global allocator here is glibc's (`System`) that also counts the bytes allocated
//! and freed in blocks of [`COUNTED`] bytes or more. A task on the runtime looks at the
//! counts every [`PERIOD`]: once at least [`ENOUGH`] was freed since the last trim and
//! less than [`QUIET`] was allocated during the period (the burst is over), it asks
//! glibc to give free pages back to the system (`malloc_trim`, every arena). Under
//! steady load nothing is trimmed (the pages would only be faulted in again); an idle
//! server never trims twice.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Blocks of this size or more are counted.
const COUNTED: usize = 512;
/// Bytes freed since the last trim that make a quiet period trim.
const ENOUGH: usize = 4 * 1024 * 1024;
/// Bytes allocated in a period below which the period counts as quiet.
const QUIET: usize = 1024 * 1024;
/// How often the count is looked at.
const PERIOD: Duration = Duration::from_millis(500);

/// Bytes freed (in counted blocks) since the last trim.
static FREED: AtomicUsize = AtomicUsize::new(0);
/// Bytes allocated (in counted blocks) since the last tick.
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

/// glibc's allocator, counting what is allocated and freed.
pub struct CountingAllocator;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// this allocator upholds `GlobalAlloc`'s contract exactly as `System` does; counting
// touches only an atomic integer and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCATED, layout.size());
        // SAFETY: forwarded as received (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCATED, layout.size());
        // SAFETY: forwarded as received (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        count(&FREED, layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received (see the impl).
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if moved.is_null() {
            // the old block is still there
        } else if moved != ptr {
            count(&ALLOCATED, new_size);
            count(&FREED, layout.size());
        } else if new_size < layout.size() {
            count(&FREED, layout.size() - new_size);
        } else {
            count(&ALLOCATED, new_size - layout.size());
        }
        moved
    }
}

/// Adds `size` to `counter` when the block is large enough to count.
fn count(counter: &AtomicUsize, size: usize) {
    if size >= COUNTED {
        counter.fetch_add(size, Ordering::Relaxed);
    }
}

extern "C" {
    /// glibc: gives free memory at the top of the main heap and free whole pages inside
    /// every arena back to the system; `pad` bytes are left at the top. Thread-safe.
    fn malloc_trim(pad: usize) -> std::os::raw::c_int;
}

/// Runs for the life of the runtime: every [`PERIOD`], trims glibc's arenas when at
/// least [`ENOUGH`] bytes were freed since the last trim and the period was quiet.
pub async fn give_back_freed_memory() {
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let allocated = ALLOCATED.swap(0, Ordering::Relaxed);
        if allocated < QUIET && FREED.load(Ordering::Relaxed) >= ENOUGH {
            FREED.store(0, Ordering::Relaxed);
            // SAFETY: malloc_trim takes no pointer and locks each arena itself; it may be
            // called from any thread at any time.
            unsafe { malloc_trim(0) };
        }
    }
}
