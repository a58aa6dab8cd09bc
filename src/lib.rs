//! smtp-server-rs: an SMTP/LMTP server library for Node.js and Bun with a Rust core,
//! compatible with the `smtp-server` npm package.
//!
//! - [`protocol`]: the protocol without I/O (parsers, replies, the session state machine);
//! - [`server`]: tokio listeners and connections;
//! - [`binding`]: the napi class that `index.js` drives.

#![deny(clippy::unwrap_used)]

pub mod binding;
pub mod protocol;
pub mod server;
