//! smtp-server-rs: an SMTP/LMTP server library for Node.js and Bun with a Rust core,
//! compatible with the `smtp-server` npm package.
//!
//! - [`protocol`]: the protocol without I/O (parsers, replies, the session state machine);
//! - [`server`]: tokio listeners and connections;
//! - [`binding`]: the napi class that `index.js` drives;
//! - `allocator` (Linux with glibc): the global allocator and the task that gives freed
//!   memory back to the system.

#![deny(clippy::unwrap_used)]

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub mod allocator;
pub mod binding;
pub mod protocol;
pub mod server;

/// glibc's allocator, counting freed bytes so that they can be given back (see
/// [`allocator`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: allocator::CountingAllocator = allocator::CountingAllocator;
