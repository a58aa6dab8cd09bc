//! Live counters of a server: updated by every connection with relaxed atomic adds,
//! read at any time without stopping anything.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters one server keeps over its whole life (across `listen()` calls).
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Messages answered with a 2xx (under LMTP: for at least one recipient).
    pub messages_accepted: AtomicU64,
    /// Messages answered with an error for every recipient.
    pub messages_rejected: AtomicU64,
    /// Bytes read from clients.
    pub bytes_received: AtomicU64,
    /// Bytes written to clients.
    pub bytes_sent: AtomicU64,
    /// TLS handshakes completed (implicit TLS and STARTTLS).
    pub tls_handshakes: AtomicU64,
    /// TLS handshakes that failed.
    pub tls_failures: AtomicU64,
    /// Errors reported to the application (`error` events).
    pub errors: AtomicU64,
    /// Connections served on the JavaScript thread's event loop.
    pub event_loop_connections: AtomicU64,
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Reads a counter.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
