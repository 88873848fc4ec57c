//! The data of a session's store: WASI, the resource table, the WebSocket and HTTP state, the store's limits and the
//! metrics its guest records into.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::extension::HostStates;
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
    /// The tool's own state for its own interfaces ([`RuntimeBuilder::link`](crate::RuntimeBuilder::link)).
    pub(crate) host: HostStates,
}

impl SessionState {
    /// The tool's state of type `T` in this session: what [`SessionBuilder::host_state`](crate::SessionBuilder::host_state)
    /// gave, or `T::default()`. Made for the getter of a tool's `add_to_linker` (`|state| state.host()`).
    ///
    /// # Panics
    /// When no interface was linked with `T` ([`RuntimeBuilder::link::<T>`](crate::RuntimeBuilder::link)): every
    /// session of such a runtime has one.
    pub fn host<T: 'static>(&mut self) -> &mut T {
        match self.host.get::<T>() {
            Some(state) => state,
            None => panic!(
                "no state of type {} in the session: link with RuntimeBuilder::link::<T>",
                std::any::type_name::<T>()
            ),
        }
    }

    /// The session's resource table, for a tool's interfaces that hand out resources (bounded like wsrun's own:
    /// the handles a session may hold at once).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
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
