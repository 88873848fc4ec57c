//! A plugin host as a tool outside wsrun would write it: its plugins are wsrun guests that also import the tool's
//! own interfaces (`wit/bot.wit`: a shared key-value store and a notify call), and the tool watches each session's
//! events as they happen.
//!
//! ```text
//! plugin-host [--arg ARG]... [--cancel-after DURATION_MS] [--slow-observer MS] [--without-kv] URL PLUGIN.wasm...
//! ```
//! Each plugin runs as one session against URL, side by side, with `ARG`s as its arguments. The tool prints each
//! session's events (`event NAME: ...`), then each outcome, what the plugins said, the store, and how many plugins
//! still wait in `kv.wait` (none, however they ended). Exits 0 when every plugin exited 0, 1 otherwise, 2 when a
//! plugin does not load.

mod bot;

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wsrun::events::SessionEvent;
use wsrun::{Outcome, Runtime};

use bot::{Bot, Shared};

struct Options {
    args: Vec<String>,
    cancel_after: Option<Duration>,
    slow_observer: Option<Duration>,
    with_kv: bool,
    url: String,
    plugins: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(options) = options() else {
        eprintln!("usage: plugin-host [--arg ARG]... [--cancel-after MS] [--slow-observer MS] [--without-kv] URL PLUGIN.wasm...");
        return ExitCode::from(2);
    };
    // 1. The runtime, with the tool's interfaces beside wsrun's.
    let with_kv = options.with_kv;
    // The compiled-guest cache, as wsrun's: a Python plugin compiles for seconds, once.
    let builder = Runtime::builder().cache_dir(Runtime::default_cache_dir());
    let runtime = match builder.link::<Bot>(move |linker| bot::add_to_linker(linker, with_kv)).build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("plugin-host: {e}");
            return ExitCode::from(2);
        }
    };
    let shared = Arc::new(Shared::default());
    let mut sessions = Vec::new();
    for path in &options.plugins {
        // 2. Each plugin loaded: one that imports what the tool does not give fails here, naming it.
        let program = match runtime.load_file(path.as_ref()) {
            Ok(program) => program,
            Err(e) => {
                eprintln!("plugin-host: cannot load {path}: {e}");
                return ExitCode::from(2);
            }
        };
        let name = program.name().rsplit('/').next().unwrap_or_default().trim_end_matches(".wasm").to_owned();
        // 3. A session with the tool's state for it, and its events watched.
        let mut session = program
            .session(options.url.clone())
            .args(options.args.clone())
            .host_state(Bot { name: name.clone(), shared: shared.clone() });
        let events = session.events(64);
        let cancel = session.cancel_handle();
        let watcher = tokio::spawn(watch(name.clone(), events, options.slow_observer));
        if let Some(after) = options.cancel_after {
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                cancel.cancel();
            });
        }
        let started = Instant::now();
        sessions.push((name, tokio::spawn(async move { (session.run().await, started.elapsed()) }), watcher));
    }
    let mut all_ok = true;
    for (name, session, watcher) in sessions {
        let (outcome, took) = session.await.expect("the session's task");
        let missed = watcher.await.expect("the watcher's task");
        all_ok &= outcome == Outcome::Exited(0);
        println!("outcome {name}: {outcome:?} after {} ms; {missed} events missed", took.as_millis());
    }
    for note in shared.notes.lock().unwrap().iter() {
        println!("note {note}");
    }
    for (key, value) in shared.values() {
        println!("kv {key} = {value}");
    }
    println!("waiting {}", shared.waiting.load(Ordering::SeqCst));
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Step 4: print a session's events as they come (slowly, if asked: the session does not wait for it); how many
/// were missed.
async fn watch(name: String, mut events: wsrun::events::EventStream, slow: Option<Duration>) -> u64 {
    let mut missed = 0;
    while let Some(event) = events.recv().await {
        match &event {
            SessionEvent::Missed { count } => missed += count,
            // The peer's words (a close reason) and the guest's are escaped before they are printed.
            other => println!("event {name}: {}", wsrun::escape::escape(&format!("{other:?}"))),
        }
        if let Some(pause) = slow {
            tokio::time::sleep(pause).await;
        }
    }
    missed
}

fn options() -> Option<Options> {
    let mut options = Options {
        args: Vec::new(),
        cancel_after: None,
        slow_observer: None,
        with_kv: true,
        url: String::new(),
        plugins: Vec::new(),
    };
    let mut rest = std::env::args().skip(1);
    let millis = |text: Option<String>| text?.parse().ok().map(Duration::from_millis);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--arg" => options.args.push(rest.next()?),
            "--cancel-after" => options.cancel_after = Some(millis(rest.next())?),
            "--slow-observer" => options.slow_observer = Some(millis(rest.next())?),
            "--without-kv" => options.with_kv = false,
            _ if options.url.is_empty() => options.url = arg,
            _ => options.plugins.push(arg),
        }
    }
    (!options.url.is_empty() && !options.plugins.is_empty()).then_some(options)
}
