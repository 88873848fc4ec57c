//! A received message as `receive` and `try-receive` hand it to the guest: lowered into the guest's memory straight
//! from the buffer the host read it into.
//!
//! The generated `message` type holds `Vec<u8>`: every binary payload would be copied out of tungstenite's read
//! buffer into a `Vec` and then again into the guest: one of three passes over each message that a native client
//! does not make (a fifth of the instructions of a 1 MiB echo). [`Incoming`] is the same WIT variant over `Bytes`,
//! which wasmtime lowers as `list<u8>`; the linker's `receive` and `try-receive` are replaced with functions that
//! return it (`sent` does the same for `send`). The generated `HostConnection::receive` stays correct for callers
//! of the trait, copying into a `Message`.

use wasmtime::component::{ComponentType, LinkerInstance, Lower, Resource};

use tokio_tungstenite::tungstenite::Bytes;

use super::{guest_visible, Connection, WebsocketView};
use crate::bindings::websocket::Message;

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

/// Payloads at least this large stay in the buffer they were read into. A queued payload keeps that whole buffer
/// alive: smaller ones are copied out, so a peer cannot make a few queued bytes hold many read buffers.
const SHARE_FROM: usize = 64 << 10;

/// A payload as tungstenite read it, to queue: kept in the read buffer when it is large, copied out otherwise (a
/// ping or pong always is).
pub(crate) fn from_read_buffer(payload: Bytes) -> Bytes {
    if payload.len() >= SHARE_FROM {
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

    /// The memory the message holds while it waits, which the queue's limits count: a payload kept in its read
    /// buffer may share that buffer with up to one read of what came after it.
    pub(crate) fn held(&self) -> usize {
        let size = self.size();
        let kept = size >= SHARE_FROM && !matches!(self, Incoming::Text(_));
        if kept {
            size + super::dial::READ_BUFFER
        } else {
            size
        }
    }

    /// The payload size of a text or binary message; `None` for control frames, which the figures do not count.
    pub(crate) fn data_bytes(&self) -> Option<usize> {
        matches!(self, Incoming::Text(_) | Incoming::Binary(_)).then(|| self.size())
    }

    /// The generated type, for callers of the `HostConnection` trait (a copy of binary payloads).
    pub(crate) fn into_message(self) -> Message {
        match self {
            Incoming::Text(text) => Message::Text(text),
            Incoming::Binary(bytes) => Message::Binary(bytes.into()),
            Incoming::Ping(bytes) => Message::Ping(bytes.into()),
            Incoming::Pong(bytes) => Message::Pong(bytes.into()),
        }
    }
}

/// Replace the generated `receive` and `try-receive` in `interface` (shadowing must be allowed) with the ones that
/// lower [`Incoming`].
pub(super) fn replace_receive<T: WebsocketView + 'static>(
    interface: &mut LinkerInstance<'_, T>,
) -> wasmtime::Result<()> {
    interface.func_wrap_async("[method]connection.receive", |mut store, (conn,): (Resource<Connection>,)| {
        Box::new(async move {
            let received = store.data_mut().websocket().receive_incoming(conn).await;
            Ok((guest_visible(received)?,))
        })
    })?;
    interface.func_wrap_async("[method]connection.try-receive", |mut store, (conn,): (Resource<Connection>,)| {
        Box::new(async move { Ok((store.data_mut().websocket().try_receive_incoming(conn)?,)) })
    })
}
