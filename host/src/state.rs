//! The data of a session's store: WASI, the resource table, the WebSocket state and the store's limits.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::limits::SessionLimiter;
use crate::websocket::{WebsocketCtx, WebsocketCtxView, WebsocketView};

/// What a session's `Store` holds.
pub struct SessionState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) websocket: WebsocketCtx,
    pub(crate) limiter: SessionLimiter,
}

impl WasiView for SessionState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WebsocketView for SessionState {
    fn websocket(&mut self) -> WebsocketCtxView<'_> {
        WebsocketCtxView { ctx: &mut self.websocket, table: &mut self.table }
    }
}
