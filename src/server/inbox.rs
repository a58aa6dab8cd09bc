//! A connection's mailbox: the answers and requests the application sends
//! ([`ConnMsg`]) wait here until the connection's task takes them.
//!
//! Lighter than a channel: an idle connection holds an empty queue and a `Notify`
//! (about a hundred bytes) instead of a preallocated block of slots.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;

use super::lock::lock;
use super::ServerState;
use crate::protocol::session::{AuthOutcome, DataAnswer, HookOutcome, Question};

/// An answer or request from the application to one connection.
#[derive(Debug)]
pub enum ConnMsg {
    /// Result of a reverse lookup: the first name, if any.
    Reverse(Option<String>),
    /// Result of `onConnect`, `onSecure`, `onMailFrom` or `onRcptTo`, or the `connect`
    /// listeners done: applied only when it answers the question the connection waits for.
    Hook(Question, HookOutcome),
    /// Result of `onAuth`.
    Auth(AuthOutcome),
    /// Result of `onData`. `discard` means the application answered without reading
    /// the whole body, so the rest is dropped.
    Data {
        /// What the application answered.
        answer: DataAnswer,
        /// Drop the rest of the body.
        discard: bool,
    },
    /// A body piece was consumed.
    Ack,
    /// The application has seen a stream aborted (a BDAT transaction reset): results
    /// and acknowledgements sent before that were about the old stream.
    AbortSeen,
    /// `session.disabledCommands` was set (or cleared) by the application.
    Disabled(Option<Vec<String>>),
    /// `connection.send(code, text)`.
    Send(u16, String),
    /// Bytes written as they are (`connection._socket.write()`).
    Raw(Vec<u8>),
    /// `connection.close()`.
    Close,
    /// The server moved on to this state.
    State(ServerState),
}

/// Messages for one connection, in the order they were sent.
#[derive(Debug, Default)]
pub struct Inbox {
    queue: Mutex<VecDeque<ConnMsg>>,
    notify: Notify,
    closed: AtomicBool,
}

impl Inbox {
    /// Queues `msg` and wakes the connection; false once the connection has ended.
    pub fn send(&self, msg: ConnMsg) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        lock(&self.queue).push_back(msg);
        self.notify.notify_one();
        true
    }

    /// The next message, waiting for one if none is queued.
    pub async fn recv(&self) -> ConnMsg {
        loop {
            if let Some(msg) = lock(&self.queue).pop_front() {
                return msg;
            }
            // a message sent between the check and this wait leaves a permit behind,
            // so the wait ends at once
            self.notify.notified().await;
        }
    }

    /// The connection has ended: later messages are refused and queued ones dropped.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        lock(&self.queue).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_and_refuses_after_close() {
        let inbox = std::sync::Arc::new(Inbox::default());
        let sender = std::sync::Arc::clone(&inbox);
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            assert!(sender.send(ConnMsg::Ack));
            assert!(sender.send(ConnMsg::Close));
        });
        assert!(matches!(inbox.recv().await, ConnMsg::Ack));
        assert!(matches!(inbox.recv().await, ConnMsg::Close));
        let _ = task.await;
        inbox.close();
        assert!(!inbox.send(ConnMsg::Ack));
    }
}
