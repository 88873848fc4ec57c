//! Running the command line: parse, load the guest, run one session with the process's stdio, and turn its
//! outcome into one message and an exit code.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use wsrun::{
    ConnectionLimits, Error, Grant, HttpLimits, Limits, Outcome, Program, Proxy, Runtime, RuntimeBuilder,
    SessionBuilder, TlsSettings, Transport,
};

use crate::args::{self, Args, Command, Invocation};
use crate::sessions::{self, report::MaxFailures};
use crate::signals::{self, Signals};
use crate::{bundled, logger, scaffold, terminal};

/// Exit code for usage, load and link errors.
const EXIT_USAGE: u8 = 2;

/// How long the guest's last output may take to be written after a stop.
const STOPPED_DRAIN: Duration = Duration::from_millis(200);

/// Run wsrun with this process's arguments and stdio.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        // --help and --version land here too: printed as they are, exit code 0.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wsrun: {}", usage_error(&e));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("wsrun: {message}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// A command-line error as one line, like every other failure: clap's first line, without its `error: `.
fn usage_error(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() == ErrorKind::MissingRequiredArgument {
        let missing = match error.get(ContextKind::InvalidArg) {
            Some(ContextValue::Strings(missing)) => missing.join(" "),
            _ => String::new(),
        };
        if missing.contains("--sessions") || missing.contains("--stages") {
            return "--ramp-up, --duration, --output, --shard and --spread go with --sessions N, --stages or --arrival-rate (see wsrun --help)".to_owned();
        }
        return "missing URL (see wsrun --help)".to_owned();
    }
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    format!("{} (see wsrun --help)", first.strip_prefix("error: ").unwrap_or(first))
}

/// Everything after parsing. `Err` is a usage or load error (exit 2); everything else is in the exit code.
fn run(args: Args) -> Result<ExitCode, String> {
    logger::init(args.verbose);
    let cache = match (&args.cache_dir, args.no_cache) {
        (_, true) => None,
        (Some(dir), false) => Some(dir.clone()),
        (None, false) => Runtime::default_cache_dir(),
    };
    let builder = Runtime::builder().fuel(args.fuel.is_some()).cache_dir(cache);
    match args.command()? {
        Command::Run(invocation) => one(&args, invocation, builder),
        Command::Sessions(invocation, shape) => many(&args, invocation, builder, shape),
        Command::Compile(compile) => precompile(builder, compile),
        Command::Wit(rest) => scaffold::wit(&rest),
        Command::New(rest) => scaffold::new(&rest),
        Command::ReportMerge(files) => {
            sessions::merge(&files, args.report.as_deref(), args.max_failures, args.html.as_deref(), &args.thresholds)
        }
        Command::Help(text) => {
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One session with this process's stdio, on a single-threaded runtime.
fn one(args: &Args, invocation: Invocation, builder: RuntimeBuilder) -> Result<ExitCode, String> {
    let settings = SessionSettings::new(args, &invocation, transport(args, &invocation.url)?);
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build();
    with_guest(
        tokio,
        builder,
        |e| e.to_string(),
        args,
        &invocation.guest,
        async |signals, program| {
            let mut session = settings.session(&program, 0).inherit_stdio();
            if let Some(typed) = terminal::start() {
                session = session.stdin(typed);
            }
            let single = sessions::Single {
                report: args.report.clone(),
                html: args.html.clone(),
                thresholds: args.thresholds.clone(),
                verbose: args.verbose,
            };
            let mut measured = None;
            if single.wanted() {
                let (measuring, run) = single.measure(session);
                (session, measured) = (measuring, Some(run));
            }
            signals.cancel_on_signal(session.cancel_handle());
            let outcome = session.run().await;
            drain_output(&outcome, signals).await;
            let code = report(&program, &outcome);
            let held = match measured {
                Some(run) => single.finish(run, program.name(), &invocation.url, &outcome)?,
                None => None,
            };
            // A guest that succeeded under failed thresholds: the run failed.
            exit_now(if code == 0 && held == Some(false) { 1 } else { code })
        },
    )
}

/// `--sessions N`: the sessions on a multi-threaded runtime, with a pooling allocator sized for them.
fn many(
    args: &Args,
    invocation: Invocation,
    builder: RuntimeBuilder,
    shape: sessions::Shape,
) -> Result<ExitCode, String> {
    let settings = SessionSettings::new(args, &invocation, transport(args, &invocation.url)?);
    if let (Some(ramp_up), Some(duration)) = (args.ramp_up, args.duration) {
        if ramp_up > duration {
            eprintln!("wsrun: warning: --ramp-up is longer than --duration: the sessions due after it never start");
        }
    }
    let plan = sessions::Plan {
        shape,
        duration: args.duration,
        output: args.output.clone(),
        max_output: args.max_output as u64,
        report: args.report.clone(),
        html: args.html.clone(),
        max_failures: args.max_failures.unwrap_or(MaxFailures::Count(0)),
        thresholds: args.thresholds.clone(),
        shard: sessions::shard_from(args.shard.as_deref(), |name| std::env::var(name).ok())?,
    };
    sessions::fd_limit::raise_open_file_limit();
    let own = plan.own_peak();
    for shortfall in sessions::fd_limit::shortfalls(own) {
        eprintln!("wsrun: warning: {shortfall}");
    }
    let too_many =
        move || format!("cannot hold {own} sessions in one process; run fewer per process with --shard INDEX/COUNT");
    let slots = u32::try_from(own).map_err(|_| too_many())?;
    let builder = builder.pooling(slots.max(1), args.max_memory);
    // The pool reserves address space and memory mappings for every session up front: that is what fails.
    let pool_error = move |e: Error| format!("{}: {e}", too_many());
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    with_guest(tokio, builder, pool_error, args, &invocation.guest, async |signals, program| {
        sessions::run(plan, program, &invocation.url, signals, |program, index| settings.session(program, index)).await
    })
}

/// On `tokio`, with the signals watched from the start: load the guest (a signal meanwhile is exit 130 at once),
/// then run `body` with it. What one session and many share.
fn with_guest(
    tokio: std::io::Result<tokio::runtime::Runtime>,
    builder: RuntimeBuilder,
    build_error: impl FnOnce(Error) -> String + Send + 'static,
    args: &Args,
    guest: &str,
    body: impl AsyncFnOnce(&Signals, Program) -> Result<ExitCode, String>,
) -> Result<ExitCode, String> {
    let tokio = tokio.map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let code = tokio.block_on(async {
        let signals = Signals::watch()?;
        let loaded = load_watching(&signals, builder, build_error, guest, args);
        let Some((_runtime, program)) = loaded.await? else {
            return Ok(ExitCode::from(signals::EXIT_INTERRUPTED));
        };
        body(&signals, program).await
    })?;
    // The stdin reader thread may be blocked in read(2); do not wait for it.
    tokio.shutdown_background();
    Ok(code)
}

/// What every session of this invocation gets: URL, arguments, grant, limits, transport and environment.
struct SessionSettings {
    /// The URL each session is given, in turn by index, with what it is allowed.
    urls: Vec<(String, Grant)>,
    /// The local addresses sessions connect from, in turn by index (none: the system's choice).
    local_addresses: Vec<std::net::IpAddr>,
    guest_args: Vec<String>,
    limits: Limits,
    transport: Transport,
    env: Vec<(String, String)>,
}

impl SessionSettings {
    fn new(args: &Args, invocation: &Invocation, transport: Transport) -> Self {
        let limits = Limits {
            memory: args.max_memory,
            timeout: args.timeout,
            close_wait: args.close_timeout,
            fuel: args.fuel,
            connections: ConnectionLimits {
                max_connections: args.max_connections,
                max_message_size: args.max_message_size,
                queued_messages: args.max_queued,
                queued_bytes: args.max_queued_bytes,
                session_queued_bytes: args.max_session_queued_bytes,
                open_timeout: args.open_timeout,
                stall_timeout: args.stall_timeout,
                compression: !args.no_compression,
            },
            http: HttpLimits {
                connect_timeout: args.open_timeout,
                deadline: args.http_timeout,
                ..HttpLimits::default()
            },
        };
        if args.allow_any {
            eprintln!("wsrun: warning: --allow-any lets the guest connect to any host");
        }
        let granted = |url: &String| {
            let mut grant = Grant::origin_of_url(url);
            for pattern in &args.allow {
                grant.allow(pattern.clone());
            }
            if args.allow_any {
                grant.allow_any();
            }
            (url.clone(), grant)
        };
        SessionSettings {
            urls: std::iter::once(&invocation.url).chain(&args.spread).map(granted).collect(),
            local_addresses: args.local_address.clone(),
            guest_args: invocation.guest_args.clone(),
            limits,
            transport,
            env: args.env.clone(),
        }
    }

    /// Session `index`'s builder (one session: index 0).
    fn session(&self, program: &Program, index: u64) -> SessionBuilder {
        let (url, grant) = &self.urls[(index % self.urls.len() as u64) as usize];
        program
            .session(url.clone())
            .args(self.guest_args.iter().cloned())
            .grant(grant.clone())
            .limits(self.limits.clone())
            .transport(match self.local_addresses.len() as u64 {
                0 => self.transport.clone(),
                // After every URL has had this address, the next: each address reaches every URL.
                n => {
                    let turn = index / self.urls.len() as u64;
                    self.transport.clone().from_address(self.local_addresses[(turn % n) as usize])
                }
            })
            .envs(self.env.iter().cloned())
    }
}

/// Build the runtime and load the guest off the async threads (a Python or JS guest compiles for seconds), while
/// a signal still stops it: `None` when one came first (`wsrun: interrupted` is said). `build_error` words a
/// runtime that cannot be built.
async fn load_watching(
    signals: &Signals,
    builder: RuntimeBuilder,
    build_error: impl FnOnce(Error) -> String + Send + 'static,
    guest: &str,
    args: &Args,
) -> Result<Option<(Runtime, Program)>, String> {
    let allow_precompiled = args.allow_precompiled;
    let guest = guest.to_owned();
    let guest_name = match !args.no_cache {
        true => format!("{} (the first run; cached for the next ones)", wsrun::escape::escape(&guest)),
        false => wsrun::escape::escape(&guest).into_owned(),
    };
    // A thread of its own rather than tokio's blocking pool, whose idle thread would linger for seconds: a thread
    // that is gone by the time the signal comes is one fewer for the exit to stop.
    let (loaded, loading) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("wsrun-load".into())
        .spawn(move || {
            let loaded_now = builder.build().map_err(build_error).and_then(|runtime| {
                let program = load(&runtime, &guest, allow_precompiled)?;
                Ok::<_, String>((runtime, program))
            });
            let _ = loaded.send(loaded_now);
        })
        .map_err(|e| format!("cannot start loading the guest: {e}"))?;
    let _notice = Compiling::notice(guest_name);
    tokio::select! {
        biased;
        () = signals.first() => {
            signals::say_interrupted();
            Ok(None)
        }
        loaded = loading => Ok(Some(loaded.map_err(|_| "loading the guest failed: the loading thread panicked".to_owned())??)),
    }
}

/// On a terminal, a guest that takes more than a moment to load says so on stderr while it compiles (a Python or
/// JavaScript guest's first run takes seconds; the compiled cache makes the next ones quick), with the time so far;
/// the line is gone once it is loaded. Nothing on a pipe, or when it loads at once.
struct Compiling {
    task: tokio::task::JoinHandle<()>,
    spinner: std::sync::Arc<std::sync::Mutex<Option<indicatif::ProgressBar>>>,
}

impl Compiling {
    /// Quick loads (a cache hit takes milliseconds) print nothing.
    const AFTER: Duration = Duration::from_millis(300);

    fn notice(guest: String) -> Option<Compiling> {
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return None;
        }
        let spinner: std::sync::Arc<std::sync::Mutex<Option<indicatif::ProgressBar>>> = Default::default();
        let shown = spinner.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Compiling::AFTER).await;
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} wsrun: compiling {msg} ({elapsed})...")
                    .expect("a valid template"),
            );
            bar.set_message(guest);
            bar.enable_steady_tick(Duration::from_millis(100));
            *shown.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
        });
        Some(Compiling { task, spinner })
    }
}

impl Drop for Compiling {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(bar) = self.spinner.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// After a stop (or a signal, whatever the outcome), what the guest wrote gets a moment to reach stdout (a terminal
/// takes it at once), not a wait on a stdout that nobody reads; otherwise all of it is written, unless a signal
/// comes first.
async fn drain_output(outcome: &Outcome, signals: &Signals) {
    if matches!(outcome, Outcome::Interrupted | Outcome::TimedOut(_)) || signals.has_come() {
        let _ = tokio::time::timeout(STOPPED_DRAIN, wsrun::stdio::drained()).await;
    } else {
        tokio::select! {
            () = wsrun::stdio::drained() => {}
            () = signals.first() => {}
        }
    }
}

/// The session's connections are closed and its output flushed (`report`): nothing else stands between the end and
/// the exit. The engine's code memory, the runtime's threads and the compiled guest are the kernel's to take back.
fn exit_now(code: u8) -> ! {
    std::process::exit(code.into())
}

/// `wsrun compile GUEST -o FILE`.
fn precompile(builder: RuntimeBuilder, compile: args::Compile) -> Result<ExitCode, String> {
    let runtime = builder.cache_dir(None).build().map_err(|e| e.to_string())?;
    let bytes = read_guest(&compile.guest)?;
    let compiled = runtime.precompile(&compile.guest, &bytes).map_err(|e| e.to_string())?;
    std::fs::write(&compile.output, compiled).map_err(|e| format!("cannot write {}: {e}", compile.output.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// TLS trust and proxy from the flags (and, without --proxy, the environment), for sessions that start at `url`.
fn transport(args: &Args, url: &str) -> Result<Transport, String> {
    let mut tls = TlsSettings { insecure: args.insecure, ..TlsSettings::default() };
    for path in &args.cacert {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read --cacert {}: {e}", path.display()))?;
        let certs = TlsSettings::read_pem(&pem).map_err(|e| format!("--cacert {}: {e}", path.display()))?;
        tls.extra_roots.extend(certs);
    }
    // Only where TLS may be used: a wss:// URL, or an allowed origin (a redirect's) that may be wss://.
    let tls_possible = url.starts_with("wss://")
        || args.allow_any
        || args.allow.iter().map(|pattern| pattern.to_string()).any(|p| p.starts_with("wss://") || !p.contains("://"));
    if args.insecure && tls_possible {
        eprintln!("wsrun: warning: --insecure: TLS certificates are NOT verified; anyone on the path can read and change this session");
    }
    let proxy = match &args.proxy {
        Some(url) => Proxy::Always(url.clone()),
        None => Proxy::from_environment()?,
    };
    Ok(Transport::new(tls, proxy))
}

/// Load GUEST for a session; a precompiled file only with --allow-precompiled. `Err` is the one line to print.
fn load(runtime: &Runtime, guest: &str, allow_precompiled: bool) -> Result<Program, String> {
    let bytes = read_guest(guest)?;
    let loaded = if allow_precompiled {
        // SAFETY: the user vouched for the file with --allow-precompiled, whose help says it is native code to be
        // trusted like a program binary.
        unsafe { runtime.load_precompiled(guest, &bytes) }
    } else {
        runtime.load(guest, &bytes)
    };
    loaded.map_err(|e| load_error(&e))
}

/// The one line for a load error, with what to do about a precompiled file.
fn load_error(error: &Error) -> String {
    match error {
        Error::Precompiled { name } => format!(
            "{name} is a precompiled guest: native code that would run unchecked inside wsrun. Run it only if you \
             trust it like a program binary, with --allow-precompiled"
        ),
        other => other.to_string(),
    }
}

/// The bytes of GUEST, for running and for `wsrun compile` alike. A bare name is a bundled guest, never a file of
/// that name in the current directory (which anyone who can write there could plant): a file is named by a path
/// (`./client`, `dir/guest`) or ends in `.wasm`.
fn read_guest(guest: &str) -> Result<Cow<'static, [u8]>, String> {
    let path = Path::new(guest);
    if !(guest.contains('/') || guest.ends_with(".wasm")) {
        if let Some(bytes) = bundled::get(guest) {
            return Ok(Cow::Borrowed(bytes));
        }
        let bundled = bundled::NAMES.join(", ");
        if path.exists() {
            return Err(format!(
                "{guest} is not a bundled guest ({bundled}); to run the file of that name, use ./{guest}"
            ));
        }
        return Err(format!("no guest named {guest}: not a bundled guest ({bundled}), nor a path (./FILE, FILE.wasm)"));
    }
    std::fs::read(path).map(Cow::Owned).map_err(|source| Error::ReadGuest { path: path.to_owned(), source }.to_string())
}

/// One line for outcomes the guest did not explain itself, and the exit code.
fn report(program: &Program, outcome: &Outcome) -> u8 {
    if let Outcome::Exited(_) = outcome {
        terminal::settle();
    }
    terminal::restore();
    let _ = std::io::stdout().flush();
    match outcome {
        Outcome::Exited(_) => {}
        Outcome::Trapped(trap) => eprintln!("wsrun: guest {} trapped: {trap}", program.name()),
        Outcome::Interrupted => signals::say_interrupted(),
        Outcome::TimedOut(after) => eprintln!("wsrun: timed out after {}", format_duration(*after)),
        // An outcome a newer library knows and this command does not.
        other => eprintln!("wsrun: the session ended: {other:?}"),
    }
    let _ = std::io::stderr().flush();
    exit_code(outcome)
}

/// The exit code of an outcome: the guest's own, 130 when interrupted, 1 for a trap or a timeout.
fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        // A guest's own code is a byte (WASI's `exit-with-code` takes a u8) and passes unchanged; were it outside
        // 0-255, it would be a failure like any other.
        Outcome::Exited(code) => u8::try_from(*code).unwrap_or(1),
        Outcome::Interrupted => signals::EXIT_INTERRUPTED,
        _ => 1,
    }
}

fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}
