//! The `wsrun:ws/websocket` interface (`wit/websocket.wit`): where each of its functions is implemented.
//!
//! The generated `Host` and `HostConnection` traits are implemented here over the connection layer
//! (`connection`, opened by `dial`). A guest takes those trait methods for `connect`, `url`, `protocol`,
//! `subscribe`, `close`, `close-status` and the handle's drop. Three functions the guest calls are replaced in the
//! linker by [`add_to_linker`], below, so that payloads cross the component boundary with fewer copies:
//!
//! - `[method]connection.send` lifts the message as views of guest memory ([`Outgoing`]): a text or binary payload
//!   of at least [`LARGE_PAYLOAD`] bytes is framed and masked straight from there (`net::wire::frame`); anything smaller
//!   is copied into the generated `message` and takes [`HostConnection::send`], whose writer buffer gathers many
//!   small messages into one write.
//! - `[method]connection.receive` and `try-receive` return the queued [`Incoming`] (payloads as `Bytes`), which
//!   wasmtime lowers into guest memory without the copy into the generated `message` that the trait methods make.
//!   Those trait methods stay correct for callers of the traits.
//!
//! Instantiation type-checks the replacements against the guest's imports like any other function.

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;
use tokio_tungstenite::tungstenite::{Bytes, Message as WireMessage};
use wasmtime::component::{ComponentType, HasData, Lift, Linker, LinkerInstance, Resource, WasmList, WasmStr};
use wasmtime::{AsContext, StoreContext};
use wasmtime_wasi::p2::DynPollable;

use super::connection::{self, Incoming, KeepaliveTimes, QueueLimits, Received};
use super::connection::{Connection, LiveConnection};
use super::ctx::{WebsocketCtxView, WebsocketView};
use super::dial::dial;
use super::errors::WsError;
use super::net::deflate;
use super::net::wire::frame;
use super::net::LARGE_PAYLOAD;
use crate::bindings::websocket::{CloseFrame, ConnectOptions, ErrorCode, Host, HostConnection, Message};
use crate::events::{Direction, SessionEvent};
use crate::websocket::errors::describe;

/// Largest ping or pong payload (a control frame carries at most 125 bytes).
const MAX_CONTROL_PAYLOAD: usize = 125;
/// Largest close reason: 125 bytes of control frame less the 2-byte code.
const MAX_CLOSE_REASON: usize = 123;

/// The interface as the guest imports it: the package and version of `wit/world.wit`.
pub(crate) const INTERFACE: &str = "wsrun:ws/websocket@0.2.0";

struct HasWebsocket;

impl HasData for HasWebsocket {
    type Data<'a> = WebsocketCtxView<'a>;
}

/// Add the `wsrun:ws/websocket` interface to `linker`: the generated functions, then the three replaced (see the
/// header). This leaves the linker's [`allow_shadowing`](Linker::allow_shadowing) off, wasmtime's default, whatever it
/// was before.
pub fn add_to_linker<T: WebsocketView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    crate::bindings::websocket::add_to_linker::<T, HasWebsocket>(linker, T::websocket)?;
    linker.allow_shadowing(true);
    let replaced = (|| {
        let mut interface = linker.instance(INTERFACE)?;
        replace_send(&mut interface)?;
        replace_receive(&mut interface)
    })();
    linker.allow_shadowing(false);
    replaced
}

/// `[method]connection.send`: large payloads framed straight out of guest memory.
fn replace_send<T: WebsocketView + 'static>(interface: &mut LinkerInstance<'_, T>) -> wasmtime::Result<()> {
    interface.func_wrap_async(
        "[method]connection.send",
        |mut store, (conn, message): (Resource<Connection>, Outgoing)| {
            Box::new(async move {
                let handle = store.data_mut().websocket().table.get(&conn)?;
                let (limit, live) = (handle.max_message, handle.live.clone());
                let sent = match message.prepare(store.as_context(), limit, &live)? {
                    Prepared::Message(message) => store.data_mut().websocket().send(conn, message).await,
                    Prepared::TooLarge(size) => Err(ErrorCode::MessageTooLarge(size as u64).into()),
                    prepared => store.data_mut().websocket().send_prepared(conn, prepared).await,
                };
                Ok((guest_visible(sent)?,))
            })
        },
    )
}

/// `[method]connection.receive` and `[method]connection.try-receive`: the queued [`Incoming`], lowered as it is.
fn replace_receive<T: WebsocketView + 'static>(interface: &mut LinkerInstance<'_, T>) -> wasmtime::Result<()> {
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

impl Host for WebsocketCtxView<'_> {
    fn convert_error_code(&mut self, error: WsError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }
}

impl HostConnection for WebsocketCtxView<'_> {
    async fn connect(&mut self, url: String, options: ConnectOptions) -> Result<Resource<Connection>, WsError> {
        self.ctx.opened.retain(|shared| shared.is_held());
        let limit = self.ctx.limits.max_connections;
        if self.ctx.opened.len() >= limit {
            return Err(ErrorCode::Limit(format!(
                "at most {limit} connections per session, counting ended ones whose handle is not dropped"
            ))
            .into());
        }
        let started = std::time::Instant::now();
        // Opening, and starting the connection's tasks, run as a task of their own, not on the guest's fiber stack:
        // their deep call chains (DNS, TLS, the handshake) and large values (the stream, the reader's future) left
        // up to 90 KiB of every session's 2 MiB stack resident for the session's life (BENCHMARKS, "what a session
        // holds"). Dropped, the task is aborted: a cancel during the opening stops it too.
        let opening = {
            let ctx = &self.ctx;
            let (url, options) = (url.clone(), options.clone());
            let (grant, limits, transport, stats) =
                (ctx.grant.clone(), ctx.limits.clone(), ctx.transport.clone(), ctx.stats.clone());
            let run = connection::Options {
                queue: QueueLimits { messages: limits.queued_messages, bytes: limits.queued_bytes },
                session_budget: ctx.queue_budget.clone(),
                control_frames: options.control_frames,
                close_wait: ctx.close_wait,
                stall_timeout: limits.stall_timeout,
                keepalive: options.keepalive.map(|k| KeepaliveTimes {
                    interval: Duration::from_millis(k.interval_ms.max(1).into()),
                    timeout: Duration::from_millis(k.timeout_ms.into()),
                }),
                events: ctx.events.clone(),
                number: 0,
            };
            super::spawn_built_there(move || async move {
                let dialed = dial(&url, &options, &grant, &limits, &transport, &stats).await?;
                // Numbered once open, so that connections that failed to open take no number.
                let number = run.events.next_connection();
                Ok::<_, ErrorCode>(Connection::start(dialed, connection::Options { number, ..run }))
            })
        };
        let conn = opening.await.inspect_err(|e| {
            self.ctx.stats.connect_failed();
            if self.ctx.events.is_on() {
                self.ctx.events.emit(SessionEvent::ConnectFailed { url: url.clone(), error: describe(e) });
            }
        })?;
        self.ctx.stats.connected(started.elapsed());
        if self.ctx.events.is_on() {
            self.ctx.events.emit(SessionEvent::Opened {
                connection: conn.number,
                url: conn.url.clone(),
                protocol: conn.protocol.clone(),
                compressed: conn.compressed,
            });
        }
        self.ctx.opened.push(conn.live.clone());
        self.table.push(conn).map_err(WsError::trap)
    }

    async fn url(&mut self, conn: Resource<Connection>) -> wasmtime::Result<String> {
        Ok(self.table.get(&conn)?.url.clone())
    }

    async fn protocol(&mut self, conn: Resource<Connection>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&conn)?.protocol.clone())
    }

    async fn compressed(&mut self, conn: Resource<Connection>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&conn)?.compressed)
    }

    // A guest's small messages, pings and pongs come here by way of the replaced `send` (see the header).
    async fn send(&mut self, conn: Resource<Connection>, message: Message) -> Result<(), WsError> {
        let handle = self.table.get(&conn).map_err(WsError::trap)?;
        let (live, number) = (handle.live.clone(), handle.number);
        let data = data_payload(&message);
        if let Some(prepared) = data.and_then(|(opcode, payload)| compressed(&live, opcode, payload)) {
            return self.send_prepared(conn, prepared).await;
        }
        let data_bytes = data.map(|(_, payload)| payload.len());
        let wire = match message {
            Message::Text(text) => WireMessage::text(text),
            Message::Binary(bytes) => WireMessage::binary(bytes),
            Message::Ping(payload) => WireMessage::Ping(control_payload(payload)?.into()),
            Message::Pong(payload) => WireMessage::Pong(control_payload(payload)?.into()),
        };
        live.send(wire).await?;
        if let Some(bytes) = data_bytes {
            self.ctx.stats.sent(bytes);
            self.observe(number, Direction::Sent, bytes);
        }
        Ok(())
    }

    // Not what a guest calls: see the header.
    async fn receive(&mut self, conn: Resource<Connection>) -> Result<Option<Message>, WsError> {
        Ok(self.receive_incoming(conn).await?.map(into_message))
    }

    async fn try_receive(
        &mut self,
        conn: Resource<Connection>,
    ) -> wasmtime::Result<Option<Result<Option<Message>, ErrorCode>>> {
        Ok(self.try_receive_incoming(conn)?.map(|received| received.map(|message| message.map(into_message))))
    }

    async fn subscribe(&mut self, conn: Resource<Connection>) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, conn)
    }

    async fn close(&mut self, conn: Resource<Connection>, code: u16, reason: String) -> Result<(), WsError> {
        if !may_send_close_code(code) {
            return Err(ErrorCode::InvalidArgument(format!("close code {code} may not be sent")).into());
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(
                ErrorCode::InvalidArgument(format!("a close reason has at most {MAX_CLOSE_REASON} bytes")).into()
            );
        }
        let live = self.table.get(&conn).map_err(WsError::trap)?.live.clone();
        Ok(live.close(code, &reason).await?)
    }

    async fn close_status(&mut self, conn: Resource<Connection>) -> wasmtime::Result<Option<CloseFrame>> {
        Ok(self.table.get(&conn)?.live.close_status())
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        let conn = self.table.delete(conn)?;
        conn.live.release_handle();
        // A handle dropped while the connection is open means "done with it": start the closing handshake now. The
        // session still holds the connection and waits for the peer's close when it ends.
        if conn.live.close_status().is_none() {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.live.close(1000, "")).await;
        }
        Ok(())
    }
}

impl WebsocketCtxView<'_> {
    /// `receive`, with the message as the guest gets it.
    async fn receive_incoming(&mut self, conn: Resource<Connection>) -> Result<Option<Incoming>, WsError> {
        let handle = self.table.get_mut(&conn).map_err(WsError::trap)?;
        let number = handle.number;
        let received = handle.receive().await;
        self.count_received(number, &received);
        Ok(received?)
    }

    /// `try-receive`, with the message as the guest gets it.
    fn try_receive_incoming(&mut self, conn: Resource<Connection>) -> wasmtime::Result<Option<Received>> {
        let handle = self.table.get_mut(&conn)?;
        let (number, received) = (handle.number, handle.try_receive());
        if let Some(received) = &received {
            self.count_received(number, received);
        }
        Ok(received)
    }

    /// `send`, for a text or binary message made ready for the wire: a frame the host made, or a compressed message.
    async fn send_prepared(&mut self, conn: Resource<Connection>, prepared: Prepared) -> Result<(), WsError> {
        let handle = self.table.get(&conn).map_err(WsError::trap)?;
        let (live, number) = (handle.live.clone(), handle.number);
        let size = match prepared {
            Prepared::Frame(frame, size) => live.send_frame(frame).await.map(|()| size),
            Prepared::Compressed(message, size) => live.send(message).await.map(|()| size),
            Prepared::Message(_) | Prepared::TooLarge(_) => unreachable!("sent as they are, or refused"),
        };
        let size = size?;
        self.ctx.stats.sent(size);
        self.observe(number, Direction::Sent, size);
        Ok(())
    }

    fn count_received(&self, number: u64, received: &Received) {
        if let Some(bytes) = received.as_ref().ok().and_then(|message| message.as_ref()?.data_bytes()) {
            self.ctx.stats.received(bytes);
            self.observe(number, Direction::Received, bytes);
        }
    }

    /// A message crossed: an event for a tool watching the session.
    fn observe(&self, connection: u64, direction: Direction, bytes: usize) {
        if self.ctx.events.is_on() {
            self.ctx.events.emit(SessionEvent::Message { connection, direction, bytes: bytes as u64 });
        }
    }
}

/// The WIT `message` variant as the guest sends it: payloads still in guest memory.
#[derive(ComponentType, Lift)]
#[component(variant)]
enum Outgoing {
    #[component(name = "text")]
    Text(WasmStr),
    #[component(name = "binary")]
    Binary(WasmList<u8>),
    #[component(name = "ping")]
    Ping(Vec<u8>),
    #[component(name = "pong")]
    Pong(Vec<u8>),
}

/// What to send: a frame already made or a compressed message for tungstenite, with the payload size the guest
/// gave, or a message for tungstenite as it is; or nothing, for a payload over the connection's message limit (its
/// size).
enum Prepared {
    Frame(Bytes, usize),
    Compressed(WireMessage, usize),
    Message(Message),
    TooLarge(usize),
}

impl Outgoing {
    /// Compress a text or binary payload where compression was agreed on, or frame a large one; copy anything else
    /// into the generated type. A payload over `limit` bytes is refused before any copy.
    fn prepare<T: 'static>(
        self,
        store: StoreContext<'_, T>,
        limit: usize,
        live: &LiveConnection,
    ) -> wasmtime::Result<Prepared> {
        Ok(match self {
            Outgoing::Binary(bytes) if bytes.len() > limit => Prepared::TooLarge(bytes.len()),
            Outgoing::Text(text) => {
                let text = text.to_str(store)?;
                if text.len() > limit {
                    return Ok(Prepared::TooLarge(text.len()));
                }
                match compressed(live, Data::Text, text.as_bytes()).or_else(|| framed(Data::Text, text.as_bytes())) {
                    Some(prepared) => prepared,
                    None => Prepared::Message(Message::Text(text.into_owned())),
                }
            }
            Outgoing::Binary(bytes) => {
                let bytes = bytes.as_le_slice(store);
                compressed(live, Data::Binary, bytes)
                    .or_else(|| framed(Data::Binary, bytes))
                    .unwrap_or_else(|| Prepared::Message(Message::Binary(bytes.to_vec())))
            }
            Outgoing::Ping(payload) => Prepared::Message(Message::Ping(payload)),
            Outgoing::Pong(payload) => Prepared::Message(Message::Pong(payload)),
        })
    }
}

/// The frame of `payload` when it is large enough for the host to make it.
fn framed(opcode: Data, payload: &[u8]) -> Option<Prepared> {
    (payload.len() >= LARGE_PAYLOAD)
        .then(|| Prepared::Frame(frame(opcode, payload, rand::random(), false), payload.len()))
}

/// `payload` compressed, when the connection compresses it: framed by the host when still large, else as a
/// message for tungstenite.
fn compressed(live: &LiveConnection, opcode: Data, payload: &[u8]) -> Option<Prepared> {
    let deflated = live.deflate(payload)?;
    Some(if deflated.len() >= LARGE_PAYLOAD {
        Prepared::Frame(frame(opcode, &deflated, rand::random(), true), payload.len())
    } else {
        Prepared::Compressed(deflate::message(opcode, deflated), payload.len())
    })
}

/// The opcode and payload of a text or binary message sent; `None` for control frames, which are neither compressed
/// nor counted in the figures.
fn data_payload(message: &Message) -> Option<(Data, &[u8])> {
    match message {
        Message::Text(text) => Some((Data::Text, text.as_bytes())),
        Message::Binary(bytes) => Some((Data::Binary, bytes)),
        Message::Ping(_) | Message::Pong(_) => None,
    }
}

fn control_payload(payload: Vec<u8>) -> Result<Vec<u8>, ErrorCode> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(ErrorCode::InvalidArgument(format!("a ping or pong carries at most {MAX_CONTROL_PAYLOAD} bytes")));
    }
    Ok(payload)
}

/// Codes an endpoint may put in a close frame (RFC 6455, 7.4): not 1004-1006 or 1015, which are reserved for
/// reporting, nor anything below 1000 or unassigned in 1016-2999.
fn may_send_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The generated type, for callers of the `HostConnection` trait (a copy of binary payloads).
fn into_message(incoming: Incoming) -> Message {
    match incoming {
        Incoming::Text(text) => Message::Text(text),
        Incoming::Binary(bytes) => Message::Binary(bytes.into()),
        Incoming::Ping(bytes) => Message::Ping(bytes.into()),
        Incoming::Pong(bytes) => Message::Pong(bytes.into()),
    }
}

/// A guest-visible error becomes the WIT `error-code`; a trap stays one.
fn guest_visible<V>(result: Result<V, WsError>) -> wasmtime::Result<Result<V, ErrorCode>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(error) => Ok(Err(error.downcast()?)),
    }
}
