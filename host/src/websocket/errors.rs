//! Guest-visible errors (the WIT `error-code`) and how transport errors map onto them.

use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsProtocolError, ProtocolError};

use crate::bindings::websocket::{CloseFrame, ErrorCode};

/// The error of a `websocket` host function: an `error-code` for the guest, or a trap.
pub type WsError = wasmtime_wasi::TrappableError<ErrorCode>;

/// The close frame reported for a peer that went away without one (RFC 6455, 7.1.5).
pub(crate) fn abnormal_closure() -> CloseFrame {
    CloseFrame { code: 1006, reason: String::new() }
}

/// What a tungstenite error on an open connection means to the guest. `closed` is the close frame the connection
/// ended with, for errors that say "it is closed".
pub(crate) fn from_transport(error: WsProtocolError, closed: impl FnOnce() -> CloseFrame) -> ErrorCode {
    match error {
        WsProtocolError::ConnectionClosed | WsProtocolError::AlreadyClosed => ErrorCode::Closed(closed()),
        WsProtocolError::Io(e) => ErrorCode::Io(e.to_string()),
        WsProtocolError::Capacity(CapacityError::MessageTooLong { size, .. }) => {
            ErrorCode::MessageTooLarge(size as u64)
        }
        WsProtocolError::Protocol(ProtocolError::SendAfterClosing) => ErrorCode::Closed(closed()),
        WsProtocolError::Utf8(what) => ErrorCode::Protocol(format!("invalid UTF-8 in a text message: {what}")),
        WsProtocolError::Tls(e) => ErrorCode::Tls(e.to_string()),
        other => ErrorCode::Protocol(other.to_string()),
    }
}

/// An error code in words, for a tool watching the session's events: its WIT case and its detail
/// (`refused: 127.0.0.1:9000`). A peer's words in it are as they came: the tool escapes what it prints.
pub(crate) fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::InvalidUrl(why) => format!("invalid-url: {why}"),
        ErrorCode::InvalidArgument(why) => format!("invalid-argument: {why}"),
        ErrorCode::Denied(why) => format!("denied: {why}"),
        ErrorCode::Dns(why) => format!("dns: {why}"),
        ErrorCode::Refused(why) => format!("refused: {why}"),
        ErrorCode::Proxy(why) => format!("proxy: {why}"),
        ErrorCode::Tls(why) => format!("tls: {why}"),
        ErrorCode::Timeout => "timeout".to_owned(),
        ErrorCode::KeepaliveTimeout => "keepalive-timeout".to_owned(),
        ErrorCode::HttpStatus(response) => format!("http-status: {} {}", response.status, response.reason),
        ErrorCode::TooManyRedirects(last) => format!("too-many-redirects: {last}"),
        ErrorCode::Protocol(why) => format!("protocol: {why}"),
        ErrorCode::MessageTooLarge(size) => format!("message-too-large: {size}"),
        ErrorCode::Closed(frame) => format!("closed: {} {}", frame.code, frame.reason),
        ErrorCode::Limit(why) => format!("limit: {why}"),
        ErrorCode::Io(why) => format!("io: {why}"),
    }
}
