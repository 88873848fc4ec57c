//! The one place where host bindings are generated from `wit/`.
//!
//! WASI interfaces come from `wasmtime_wasi::p2::bindings`, so WASI resources are the very types wasmtime-wasi
//! links; the `connection` resource is our [`Connection`](crate::websocket::Connection), and the WIT's
//! `error-code` becomes a [`WsError`](crate::websocket::WsError) that is either that code or a trap.

wasmtime::component::bindgen!({
    path: "wit",
    world: "client",
    // Recording a measurement is a few map operations under a lock: called in place, not as a future.
    imports: {
        "wsrun:ws/metrics.count": trappable,
        "wsrun:ws/metrics.duration": trappable,
        "wsrun:ws/metrics.value": trappable,
        "wsrun:ws/metrics.rate": trappable,
        "wsrun:ws/metrics.check": trappable,
        default: async | trappable,
    },
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi": wasmtime_wasi::p2::bindings,
        "wsrun:ws/websocket.connection": crate::websocket::Connection,
    },
    trappable_error_type: {
        "wsrun:ws/websocket.error-code" => crate::websocket::WsError,
    },
    require_store_data_send: true,
});

pub use self::wsrun::ws::websocket;

/// `connect-options` asking for nothing special, as the WIT documents it (the tests build theirs on it).
#[cfg(test)]
impl Default for websocket::ConnectOptions {
    fn default() -> Self {
        websocket::ConnectOptions {
            headers: Vec::new(),
            subprotocols: Vec::new(),
            open_timeout_ms: None,
            max_message_size: None,
            control_frames: false,
            keepalive: None,
            compression: websocket::Compression::Offer,
        }
    }
}
