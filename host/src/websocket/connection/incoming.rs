//! A received message as it waits in the queue and as `receive` and `try-receive` hand it to the guest: the WIT
//! `message` variant over `Bytes`, lowered into the guest's memory straight from the buffer it was read into.
//!
//! The generated `message` type holds `Vec<u8>`: every binary payload would be copied into a `Vec` and then again
//! into the guest, a pass over each message that a native client does not make (a fifth of the instructions of a
//! 1 MiB echo). wasmtime lowers `Bytes` as `list<u8>` all the same (the glue, `host.rs`, replaces the linker's
//! `receive` and `try-receive` with functions that return this type).

use tokio_tungstenite::tungstenite::Bytes;
use wasmtime::component::{ComponentType, Lower};

use crate::websocket::net::wire::READ_BUFFER;
use crate::websocket::net::LARGE_PAYLOAD;

/// The WIT `message` variant as received: binary payloads in the buffer they were read into.
#[derive(ComponentType, Lower, Debug)]
#[component(variant)]
pub(crate) enum Incoming {
    #[component(name = "text")]
    Text(String),
    #[component(name = "binary")]
    Binary(Bytes),
    #[component(name = "ping")]
    Ping(Bytes),
    #[component(name = "pong")]
    Pong(Bytes),
}

/// A payload as the reader got it, to queue. A small one may be a slice of tungstenite's read buffer, which it would
/// keep alive whole: copied out (a ping or pong always is). A large one is a buffer of its own already (read past
/// tungstenite, see `net::scan`, or joined from fragments): kept.
pub(crate) fn from_read_buffer(payload: Bytes) -> Bytes {
    if payload.len() >= LARGE_PAYLOAD {
        payload
    } else {
        Bytes::copy_from_slice(&payload)
    }
}

impl Incoming {
    /// The payload size.
    pub(crate) fn size(&self) -> usize {
        match self {
            Incoming::Text(text) => text.len(),
            Incoming::Binary(bytes) | Incoming::Ping(bytes) | Incoming::Pong(bytes) => bytes.len(),
        }
    }

    /// The memory the message holds while it waits, which the queue's limits count: a large binary payload is
    /// counted with one read buffer more, a bound that holds whichever way it came.
    pub(crate) fn held(&self) -> usize {
        let size = self.size();
        let kept = size >= LARGE_PAYLOAD && !matches!(self, Incoming::Text(_));
        if kept {
            size + READ_BUFFER
        } else {
            size
        }
    }

    /// The payload size of a text or binary message; `None` for control frames, which the figures do not count.
    pub(crate) fn data_bytes(&self) -> Option<usize> {
        matches!(self, Incoming::Text(_) | Incoming::Binary(_)).then(|| self.size())
    }
}
