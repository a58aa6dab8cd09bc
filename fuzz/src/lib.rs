//! Fuzz targets for the sans-IO protocol code of smtp-server-rs.
//!
//! The addon is a napi `cdylib` whose full dependency tree (napi, tokio, rustls, ring) has
//! nothing to do with parsing; instrumenting all of it for libFuzzer would cost minutes of
//! build time per run. `src/protocol` only depends on `memchr` and `getrandom`, so this
//! crate compiles that directory as its own module, unchanged, from the addon's sources.
//!
//! - [`targets`]: one plain function per fuzz target, holding the checks; the libFuzzer
//!   entry points in `fuzz_targets/` and the stable runner in `examples/replay.rs` call them.
//! - [`mutate`]: the deterministic mutator of the stable runner.

#[path = "../../src/protocol/mod.rs"]
#[allow(dead_code)]
pub mod protocol;

pub mod mutate;
pub mod targets;
