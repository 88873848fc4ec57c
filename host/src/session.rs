//! One session: a fresh store for one run of a guest, its grant and limits, how it is stopped, and how it ends.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::cli::{StdinStream, StdoutStream};
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

use crate::cancel::{CancelHandle, StopReason};
use crate::events::{EventSink, EventStream};
use crate::grant::Grant;
use crate::http::HttpCtx;
use crate::limits::{Limits, SessionLimiter};
use crate::metrics::Metrics;
use crate::program::Program;
use crate::state::SessionState;
use crate::stats::SessionStats;
use crate::websocket::{Transport, WebsocketCtx};

/// With fuel metering, how much fuel a guest burns between yields to other tasks.
const FUEL_YIELD: u64 = 1_000_000;

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The guest finished: 0 when `run` returned `ok`, 1 when it returned `err`, or the code it exited with.
    Exited(i32),
    /// The guest trapped (a panic, `unreachable`, a limit hit); the text has wasmtime's message and backtrace.
    Trapped(String),
    /// The session was cancelled through its [`CancelHandle`].
    Interrupted,
    /// The session's wall-clock limit passed.
    TimedOut(Duration),
}

impl Outcome {
    /// The close code the host sends on connections the guest left open.
    fn close_code(&self) -> u16 {
        match self {
            Outcome::Exited(_) => 1000,
            Outcome::Trapped(_) => 1011,
            Outcome::Interrupted | Outcome::TimedOut(_) => 1001,
        }
    }
}

impl From<StopReason> for Outcome {
    fn from(reason: StopReason) -> Self {
        match reason {
            StopReason::Cancelled => Outcome::Interrupted,
            StopReason::TimedOut(after) => Outcome::TimedOut(after),
        }
    }
}

/// The trap the epoch callback raises in a guest that was told to stop.
#[derive(Debug, thiserror::Error)]
#[error("the session was stopped")]
struct Stopped;

/// Describes one session; [`run`](SessionBuilder::run) it to completion.
///
/// By default the guest gets the URL's origin and nothing else: no stdio (empty stdin, discarded output), no
/// environment, no files, no sockets of its own, and the default [`Limits`].
pub struct SessionBuilder {
    program: Program,
    url: String,
    args: Vec<String>,
    grant: Option<Grant>,
    limits: Limits,
    transport: Transport,
    wasi: WasiCtxBuilder,
    cancel: CancelHandle,
    stats: Arc<SessionStats>,
    metrics: Option<Arc<Metrics>>,
    events: EventSink,
    host_states: Vec<Box<dyn std::any::Any + Send>>,
}

impl SessionBuilder {
    pub(crate) fn new(program: Program, url: String) -> Self {
        let cancel = CancelHandle::new(program.engine().clone());
        SessionBuilder {
            program,
            url,
            args: Vec::new(),
            grant: None,
            limits: Limits::default(),
            transport: Transport::default(),
            wasi: WasiCtxBuilder::new(),
            cancel,
            stats: Arc::default(),
            metrics: None,
            events: EventSink::default(),
            host_states: Vec::new(),
        }
    }

    /// The guest's own arguments, after the URL.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// What the guest may connect to, instead of the URL's origin.
    pub fn grant(mut self, grant: Grant) -> Self {
        self.grant = Some(grant);
        self
    }

    /// The session's limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How connections reach servers: TLS trust and proxy. By default: the system's roots, no proxy.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Give the guest these environment variables (it has none otherwise).
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (name, value) in vars {
            self.wasi.env(name, value);
        }
        self
    }

    /// Give the guest this process's stdin, stdout and stderr. Its output is written by a thread of wsrun's (see
    /// [`stdio`](crate::stdio)), so a stdout that nobody reads cannot keep a cancel or the timeout from stopping the
    /// session; wait for [`stdio::drained`](crate::stdio::drained) before the process exits.
    pub fn inherit_stdio(mut self) -> Self {
        self.wasi.inherit_stdin();
        self.wasi.stdout(crate::stdio::stdout());
        self.wasi.stderr(crate::stdio::stderr());
        self
    }

    /// The guest's stdin (for example a `wasmtime_wasi::p2::pipe::MemoryInputPipe`).
    pub fn stdin(mut self, stdin: impl StdinStream + 'static) -> Self {
        self.wasi.stdin(stdin);
        self
    }

    /// The guest's stdout (for example a `wasmtime_wasi::p2::pipe::MemoryOutputPipe`).
    pub fn stdout(mut self, stdout: impl StdoutStream + 'static) -> Self {
        self.wasi.stdout(stdout);
        self
    }

    /// The guest's stderr.
    pub fn stderr(mut self, stderr: impl StdoutStream + 'static) -> Self {
        self.wasi.stderr(stderr);
        self
    }

    /// Record the guest's measurements (`wsrun:ws/metrics`) into `metrics`, which other sessions may share: a run's
    /// figures in one place. Without it, the session records into metrics of its own that nobody reads.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Watch what this session does: connections opened and closed, messages each way, errors, the outcome (see
    /// [`SessionEvent`](crate::events::SessionEvent)). At most `capacity` events wait for the tool; past that,
    /// events are dropped and counted, never waited for, so a slow tool neither stalls the session nor grows its
    /// memory. The stream ends after [`Ended`](crate::events::SessionEvent::Ended).
    pub fn events(&mut self, capacity: usize) -> EventStream {
        let (sink, stream) = EventSink::bounded(capacity);
        self.events = sink;
        stream
    }

    /// The tool's own state for this session, for the interfaces it linked with
    /// [`RuntimeBuilder::link::<T>`](crate::RuntimeBuilder::link) (without it, the session gets `T::default()`).
    /// Its functions reach it through [`SessionState::host`](crate::SessionState::host).
    pub fn host_state<T: Send + 'static>(mut self, state: T) -> Self {
        self.host_states.retain(|given| !given.is::<T>());
        self.host_states.push(Box::new(state));
        self
    }

    /// A handle that stops this session from anywhere, at any time.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// This session's traffic figures, live while it runs and kept after it ends.
    pub fn stats(&self) -> Arc<SessionStats> {
        self.stats.clone()
    }

    /// Run the guest to its end, then close every connection it left open (1000 after a normal end, 1001 after a
    /// cancel or timeout, 1011 after a trap) and wait, bounded, for the peers' close frames.
    pub async fn run(self) -> Outcome {
        let SessionBuilder {
            program,
            url,
            args,
            grant,
            limits,
            transport,
            mut wasi,
            cancel,
            stats,
            metrics,
            events,
            host_states,
        } = self;
        let grant = grant.unwrap_or_else(|| Grant::origin_of_url(&url));
        let mut arguments = vec![program.name().to_owned(), url];
        arguments.extend(args);
        // Deny by granting nothing: no environment, no preopened directories, no sockets of the guest's own.
        wasi.args(&arguments).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        let mut table = ResourceTable::new();
        table.set_max_capacity(crate::limits::MAX_HANDLES);
        let state = SessionState {
            wasi: wasi.build(),
            table,
            http: HttpCtx::new(Arc::new(grant.clone()), transport.clone(), limits.http.clone(), stats.clone()),
            websocket: WebsocketCtx::new(grant, limits.connections.clone(), transport)
                .close_wait(limits.close_wait)
                .stats(stats)
                .events(events.clone()),
            limiter: SessionLimiter::new(&limits),
            metrics: metrics.unwrap_or_default(),
            host: program.extensions().states(host_states),
        };
        let mut store = Store::new(program.engine(), state);
        store.limiter(|state| &mut state.limiter);
        // What one call may carry from the guest: no more than its memory holds, and a send over the message limit
        // is refused (`message-too-large`) after it is lifted as a view, before any copy. wasmtime's default, 128 MiB,
        // trapped a larger send under a larger memory limit instead.
        store.set_hostcall_fuel(limits.memory.max(128 << 20));
        if let Some(fuel) = limits.fuel {
            let metered = store.set_fuel(fuel).and_then(|()| store.fuel_async_yield_interval(Some(FUEL_YIELD)));
            if let Err(e) = metered {
                return Outcome::Trapped(format!("cannot limit fuel ({e}): build the runtime with fuel metering"));
            }
        }
        store.set_epoch_deadline(1);
        let stopped = cancel.clone();
        store.epoch_deadline_callback(move |_| match stopped.reason() {
            Some(_) => Err(wasmtime::Error::new(Stopped)),
            // Yield at each tick so a spinning guest cannot starve the other tasks on this thread.
            None => Ok(UpdateDeadline::Yield(1)),
        });

        let outcome = {
            let run = async {
                let client = program.pre().instantiate_async(&mut store).await?;
                client.wasi_cli_run().call_run(&mut store).await
            };
            let deadline = async {
                match limits.timeout {
                    Some(after) => {
                        tokio::time::sleep(after).await;
                        after
                    }
                    None => std::future::pending().await,
                }
            };
            // Dropping `run` here is what stops a guest that waits inside a host call.
            tokio::select! {
                biased;
                reason = cancel.stopped() => Outcome::from(reason),
                after = deadline => {
                    cancel.stop(StopReason::TimedOut(after));
                    Outcome::TimedOut(after)
                }
                result = run => outcome_of(result, &cancel),
            }
        };

        let opened = store.data_mut().websocket.take_opened();
        for conn in &opened {
            conn.discard_unread();
        }
        let code = outcome.close_code();
        let mut closing = std::pin::pin!(futures_util::future::join_all(
            opened.iter().map(|conn| conn.shut_down(code, limits.close_wait))
        ));
        // The first poll sends the close frames; the store (the guest's memory and stack) is freed while the peers
        // answer, not before the frames go out.
        let closed = futures_util::future::poll_immediate(closing.as_mut()).await;
        drop(store);
        if closed.is_none() {
            closing.await;
        }
        events.end(outcome.clone()).await;
        outcome
    }
}

fn outcome_of(result: wasmtime::Result<Result<(), ()>>, cancel: &CancelHandle) -> Outcome {
    match result {
        Ok(Ok(())) => Outcome::Exited(0),
        Ok(Err(())) => Outcome::Exited(1),
        Err(error) => {
            if let Some(exit) = error.downcast_ref::<I32Exit>() {
                return Outcome::Exited(exit.0);
            }
            match (error.downcast_ref::<Stopped>(), cancel.reason()) {
                (Some(_), Some(reason)) => Outcome::from(reason),
                _ => Outcome::Trapped(describe_trap(&error)),
            }
        }
    }
}

/// How many frames of a trap's backtrace are shown (a stack overflow has thousands).
const BACKTRACE_FRAMES: usize = 16;

/// The trap's causes on the first line, most general first, then the wasm backtrace, cut short.
fn describe_trap(error: &wasmtime::Error) -> String {
    let causes: Vec<String> = error
        .chain()
        .map(|cause| crate::escape::escape(&cause.to_string()).into_owned())
        // The backtrace is in the chain as a context of its own; it is shown below, shorter.
        .filter(|cause| !cause.starts_with("error while executing at wasm backtrace"))
        .collect();
    let mut text = causes.join(": ");
    if let Some(backtrace) = error.downcast_ref::<wasmtime::WasmBacktrace>() {
        text.push_str("\nwasm backtrace:");
        for (index, frame) in backtrace.frames().iter().enumerate().take(BACKTRACE_FRAMES) {
            // The guest names its functions: a name is printed, so it is escaped.
            let name = crate::escape::escape(frame.func_name().unwrap_or("<unnamed>"));
            match frame.module_offset() {
                Some(offset) => text.push_str(&format!("\n  {index:>2}: {name} (at {offset:#x})")),
                None => text.push_str(&format!("\n  {index:>2}: {name}")),
            }
        }
        let hidden = backtrace.frames().len().saturating_sub(BACKTRACE_FRAMES);
        if hidden > 0 {
            text.push_str(&format!("\n  ... {hidden} more frames"));
        }
    }
    text
}
