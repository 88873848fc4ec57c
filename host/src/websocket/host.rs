//! The generated `websocket` host traits, implemented over [`Connection`] and [`dial`](super::dial).

use std::time::Duration;

use tokio_tungstenite::tungstenite::{Bytes, Message as WireMessage};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::DynPollable;

use super::connection::{ReadOptions, Received};
use super::dial::dial;
use super::received::Incoming;
use super::{Connection, WebsocketCtxView, WsError};
use crate::bindings::websocket::{CloseFrame, ConnectOptions, ErrorCode, Host, HostConnection, Message};

/// Largest ping or pong payload (a control frame carries at most 125 bytes).
const MAX_CONTROL_PAYLOAD: usize = 125;
/// Largest close reason: 125 bytes of control frame less the 2-byte code.
const MAX_CLOSE_REASON: usize = 123;

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
        let dialed = dial(&url, &options, &self.ctx.grant, &self.ctx.limits, &self.ctx.transport).await;
        let dialed = dialed.inspect_err(|_| self.ctx.stats.connect_failed())?;
        self.ctx.stats.connected(started.elapsed());
        let limits = &self.ctx.limits;
        let read = ReadOptions {
            queued_messages: limits.queued_messages,
            queued_bytes: limits.queued_bytes,
            session_budget: self.ctx.queue_budget.clone(),
            control_frames: options.control_frames,
            close_wait: self.ctx.close_wait,
            stall_timeout: limits.stall_timeout,
            keepalive: options.keepalive.map(|k| {
                (Duration::from_millis(k.interval_ms.max(1).into()), Duration::from_millis(k.timeout_ms.into()))
            }),
        };
        let conn = Connection::start(dialed.stream, dialed.url.to_string(), dialed.protocol, dialed.max_message, read);
        self.ctx.opened.push(conn.shared.clone());
        self.table.push(conn).map_err(WsError::trap)
    }

    async fn url(&mut self, conn: Resource<Connection>) -> wasmtime::Result<String> {
        Ok(self.table.get(&conn)?.url.clone())
    }

    async fn protocol(&mut self, conn: Resource<Connection>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&conn)?.protocol.clone())
    }

    async fn send(&mut self, conn: Resource<Connection>, message: Message) -> Result<(), WsError> {
        let shared = self.table.get(&conn).map_err(WsError::trap)?.shared.clone();
        let data_bytes = data_bytes(&message);
        let wire = match message {
            Message::Text(text) => WireMessage::text(text),
            Message::Binary(bytes) => WireMessage::binary(bytes),
            Message::Ping(payload) => WireMessage::Ping(control_payload(payload)?.into()),
            Message::Pong(payload) => WireMessage::Pong(control_payload(payload)?.into()),
        };
        shared.send(wire).await?;
        if let Some(bytes) = data_bytes {
            self.ctx.stats.sent(bytes);
        }
        Ok(())
    }

    // The guest calls `received::replace_receive`'s functions instead, which lower the payload without this copy.
    async fn receive(&mut self, conn: Resource<Connection>) -> Result<Option<Message>, WsError> {
        Ok(self.receive_incoming(conn).await?.map(Incoming::into_message))
    }

    async fn try_receive(
        &mut self,
        conn: Resource<Connection>,
    ) -> wasmtime::Result<Option<Result<Option<Message>, ErrorCode>>> {
        Ok(self.try_receive_incoming(conn)?.map(|received| received.map(|message| message.map(Incoming::into_message))))
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
        let shared = self.table.get(&conn).map_err(WsError::trap)?.shared.clone();
        Ok(shared.close(code, &reason).await?)
    }

    async fn close_status(&mut self, conn: Resource<Connection>) -> wasmtime::Result<Option<CloseFrame>> {
        Ok(self.table.get(&conn)?.shared.close_status())
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        let conn = self.table.delete(conn)?;
        conn.shared.release_handle();
        // A handle dropped while the connection is open means "done with it": start the closing handshake now. The
        // session still holds the connection and waits for the peer's close when it ends.
        if conn.shared.close_status().is_none() {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.shared.close(1000, "")).await;
        }
        Ok(())
    }
}

impl WebsocketCtxView<'_> {
    /// `receive`, with the message as the guest gets it.
    pub(super) async fn receive_incoming(&mut self, conn: Resource<Connection>) -> Result<Option<Incoming>, WsError> {
        let received = self.table.get_mut(&conn).map_err(WsError::trap)?.receive().await;
        self.count_received(&received);
        Ok(received?)
    }

    /// `try-receive`, with the message as the guest gets it.
    pub(super) fn try_receive_incoming(&mut self, conn: Resource<Connection>) -> wasmtime::Result<Option<Received>> {
        let received = self.table.get_mut(&conn)?.try_receive();
        if let Some(received) = &received {
            self.count_received(received);
        }
        Ok(received)
    }

    /// `send`, for a text or binary frame the host made of a payload of `size` bytes.
    pub(super) async fn send_frame(
        &mut self,
        conn: Resource<Connection>,
        frame: Bytes,
        size: usize,
    ) -> Result<(), WsError> {
        let shared = self.table.get(&conn).map_err(WsError::trap)?.shared.clone();
        shared.send_frame(frame).await?;
        self.ctx.stats.sent(size);
        Ok(())
    }

    fn count_received(&self, received: &Received) {
        if let Some(bytes) = received.as_ref().ok().and_then(|message| message.as_ref()?.data_bytes()) {
            self.ctx.stats.received(bytes);
        }
    }
}

/// The payload size of a text or binary message sent; `None` for control frames, which the figures do not count.
fn data_bytes(message: &Message) -> Option<usize> {
    match message {
        Message::Text(text) => Some(text.len()),
        Message::Binary(bytes) => Some(bytes.len()),
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
