//! The data of a session's store: WASI, the resource table, the WebSocket and HTTP state, the store's limits and the
//! metrics its guest records into.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::http::HttpCtx;

use crate::limits::SessionLimiter;
use crate::metrics::{Metrics, MetricsView};
use crate::websocket::{WebsocketCtx, WebsocketCtxView, WebsocketView};

/// What a session's `Store` holds.
pub struct SessionState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) websocket: WebsocketCtx,
    pub(crate) http: HttpCtx,
    pub(crate) limiter: SessionLimiter,
    pub(crate) metrics: std::sync::Arc<Metrics>,
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

impl WasiHttpView for SessionState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http.ctx, table: &mut self.table, hooks: &mut self.http.policy }
    }
}

impl MetricsView for SessionState {
    fn metrics(&mut self) -> &Metrics {
        &self.metrics
    }
}
