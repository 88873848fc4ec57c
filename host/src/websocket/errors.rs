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
