//! The command line's flags and positional arguments.

use std::time::Duration;

use clap::Parser;

use wsrun::OriginPattern;

const AFTER_HELP: &str = "\
GUEST is a component file (client.wasm) or a bundled guest: client (the default), echo or roundtrip.
Everything after URL goes to the guest; `wsrun client --help` shows the client's own options.
`wsrun compile GUEST -o FILE` compiles a guest ahead of time; FILE then runs as GUEST on this wsrun with
--allow-precompiled. FILE is native code: trust it like a program binary.
`wsrun new LANGUAGE NAME` creates a guest project (rust, python or javascript; `wsrun new --list`);
`wsrun wit [DIR]` writes the WIT package this wsrun hosts, for any component toolchain.
`wsrun --sessions N ...` (or --stages, --arrival-rate) runs sessions side by side (a load test) and prints a
summary; `wsrun roundtrip URL --help` is the bundled load generator; `wsrun report merge FILE...` adds up the
--report files of several shards.

Exit codes:
  0    success
  N    the guest's own exit code, when it sets one
  1    guest failure or connection failure (the guest says which), a trap, or --timeout;
       with --sessions: more failed sessions than --max-failures allows, or a failed --threshold
  2    usage, load or link errors
  130  interrupted (Ctrl+C or SIGTERM)";

/// Run a WebSocket client session scripted by a sandboxed WebAssembly component.
///
/// The host owns every socket; the guest (a wasm32-wasip2 component of the wsrun:ws/client world) holds only
/// connection handles and may reach only the origin of URL. Ctrl+C stops the guest at once and closes its
/// connections cleanly; a second Ctrl+C exits immediately.
#[derive(Parser, Debug)]
#[command(name = "wsrun", version, after_help = AFTER_HELP)]
pub struct Args {
    /// Stop the session after this long (for example 30s, 500ms, 2m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// How long opening a connection may take: DNS, TCP, TLS, the handshake and redirects together.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub open_timeout: Duration,

    /// How long one HTTP request of the guest may take, from sending it to the last byte of the response's body
    /// (connecting within --open-timeout, the server silent at most 10 s at a time).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub http_timeout: Duration,

    /// When the guest is done or stopped, how long to wait for each peer's close frame; after a server's close, how
    /// long it has to end the connection.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
    pub close_timeout: Duration,

    /// How long a peer may read nothing of what wsrun has to send it (pongs, a close, the guest's messages) while
    /// it goes on sending, or the guest waits to send, before the connection is closed with 1008.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub stall_timeout: Duration,

    /// Do not offer compression (permessage-deflate, offered by default as browsers and python-websockets do) on
    /// any connection, whatever the guest asks.
    #[arg(long)]
    pub no_compression: bool,

    /// Also let the guest connect to origins matching PATTERN: [ws://|wss://|http://|https://]host[:port], where
    /// host may hold `*` wildcards (`*.example.com`, `127.0.0.*`): an address pattern matches only addresses, a `*`
    /// label whole labels; without a port, every port; without a scheme, all four. Repeatable. The WebSocket origin of
    /// URL is always allowed (HTTP requests only by a pattern); redirects are checked.
    #[arg(long = "allow", value_name = "PATTERN", value_parser = OriginPattern::parse)]
    pub allow: Vec<OriginPattern>,

    /// Let the guest connect anywhere (printed as a warning).
    #[arg(long)]
    pub allow_any: bool,

    /// Also trust the CA certificates in this PEM file for wss:// (beside the system's roots). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub cacert: Vec<std::path::PathBuf>,

    /// Do not verify TLS certificates at all (printed as a warning). Only for servers you control.
    #[arg(long)]
    pub insecure: bool,

    /// Tunnel connections through this HTTP proxy (http://[user:pass@]host:port), instead of the one named by
    /// the http_proxy / https_proxy / no_proxy environment variables.
    #[arg(long, value_name = "URL", value_parser = wsrun::parse_proxy_url)]
    pub proxy: Option<url::Url>,

    /// Make connections from this local address (one of this machine's; repeatable: sessions take them in turn, and
    /// with --spread, every pair of address and URL in turn).
    /// One local address reaches one server address and port from at most ~28,000 ports (ip_local_port_range):
    /// more connections to one server go from several (127.0.0.2, 127.0.0.3, ... on loopback).
    #[arg(long, value_name = "ADDRESS")]
    pub local_address: Vec<std::net::IpAddr>,

    /// Give the guest this environment variable (repeatable). It gets none otherwise.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// Memory of the guest: all its linear memories and tables together (e.g. 64M, 1G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "256M")]
    pub max_memory: usize,

    /// How many connections the guest may hold at once: open ones, and ended ones whose handle it has not dropped.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_connections: usize,

    /// Largest message accepted from a peer; a larger one closes the connection with 1009.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "16M")]
    pub max_message_size: usize,

    /// Received messages that may wait for the guest, per connection, before wsrun stops reading the socket.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_queued: usize,

    /// Received bytes that may wait for the guest, per connection, before wsrun stops reading the socket.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64M")]
    pub max_queued_bytes: usize,

    /// Received bytes that may wait for the guest on all its connections together before wsrun stops reading.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "256M")]
    pub max_session_queued_bytes: usize,

    /// CPU limit, in wasmtime fuel units (about one per wasm instruction). Metering makes guests slower.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

    /// Keep compiled guests in DIR instead of $XDG_CACHE_HOME/wsrun (~/.cache/wsrun).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,

    /// Compile the guest every time; read and write no compiled cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,

    /// Let GUEST be a precompiled file (`wsrun compile` output). Such a file is native machine code that runs inside
    /// wsrun unchecked, outside the sandbox: trust it like a program binary, and never run one you did not make.
    #[arg(long)]
    pub allow_precompiled: bool,

    /// Print wsrun's debug log on stderr (denied connections, queue figures, ...).
    #[arg(short, long)]
    pub verbose: bool,

    /// Run N sessions of the guest side by side, each in its own sandbox (stdin empty, output discarded or in
    /// --output), then print a summary. Exit code: 1 when more than --max-failures sessions failed.
    #[arg(long, value_name = "N", value_parser = parse_sessions, group = "load", help_heading = "Many sessions")]
    pub sessions: Option<u64>,

    /// Spread the sessions' starts evenly over this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "sessions", conflicts_with_all = ["stages", "arrival_rate"], help_heading = "Many sessions")]
    pub ramp_up: Option<Duration>,

    /// Start and stop sessions so that the number running follows these stages, k6's form: `30s:100,1m:1000,30s:0`
    /// moves the target from 0 to 100 over 30 s, to 1000 over a minute, down to 0 over 30 s. A session that ends by
    /// itself is replaced while the target wants it; one over the target is stopped (1001, counted as stopped), the
    /// newest first. The run ends with the last stage (or --duration, if sooner), stopping what still runs.
    #[arg(long, value_name = "D:N,...", value_parser = crate::sessions::parse_stages, group = "load", conflicts_with = "sessions", help_heading = "Many sessions")]
    pub stages: Option<crate::sessions::Shape>,

    /// Start new sessions at this fixed rate (like 10/s or 600/m) whatever the others do: --sessions of them, or as
    /// many as fit in --duration. At --duration those still running are stopped (1001) and those not started yet
    /// never start.
    #[arg(long, value_name = "RATE", value_parser = crate::sessions::parse_rate, group = "load", help_heading = "Many sessions")]
    pub arrival_rate: Option<f64>,

    /// Stop the sessions still running after this long, each with a clean close (1001); they count as stopped,
    /// not failed (but for those still connecting).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, requires = "load", help_heading = "Many sessions")]
    pub duration: Option<Duration>,

    /// Write each session's stdout and stderr to DIR/INDEX.log, made new (DIR must be yours and private, or
    /// sticky).
    #[arg(long, value_name = "DIR", requires = "load", help_heading = "Many sessions")]
    pub output: Option<std::path::PathBuf>,

    /// With --output, the most each session's log holds; what comes after is dropped (the log says where) and the
    /// session counted in the summary.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64M", requires = "output", help_heading = "Many sessions")]
    pub max_output: usize,

    /// Also write the summary as JSON, with its histograms, the guests' metrics and the time series (for `wsrun
    /// report merge`). Without --sessions: the one session's report.
    #[arg(long, value_name = "FILE", help_heading = "Many sessions")]
    pub report: Option<std::path::PathBuf>,

    /// Also write the report as one self-contained HTML page: the summary, the thresholds, why sessions failed,
    /// and plots of the time series.
    #[arg(long, value_name = "FILE", help_heading = "Many sessions")]
    pub html: Option<std::path::PathBuf>,

    /// A pass/fail criterion on a metric, k6's form (repeatable): `rtt.p99<50ms`, `checks.rate>0.99`,
    /// `connect.failed<1%`, `my_counter>100`, `rtt{kind:ping}.p95<=2ms`. Figures: count, rate, failed, avg, min,
    /// max, med, pNN. Any failed threshold makes the verdict fail (exit code 1).
    #[arg(long = "threshold", value_name = "EXPR", value_parser = crate::sessions::report::threshold::Threshold::parse, help_heading = "Many sessions")]
    pub thresholds: Vec<crate::sessions::report::threshold::Threshold>,

    /// How many sessions may fail (exit non-zero, trap, time out) with exit code 0: a count, or a share like 5%.
    #[arg(long, value_name = "N|P%", value_parser = crate::sessions::report::MaxFailures::parse, help_heading = "Many sessions")]
    pub max_failures: Option<crate::sessions::report::MaxFailures>,

    /// Spread the sessions over this URL too (repeatable): session s is given the URL and these in turn (s modulo
    /// their number), each allowed its own origin. One client address reaches one server address and port from about
    /// 28,000 local ports: past that, the server listens on several ports or addresses (127.0.0.2, ...), each named.
    #[arg(long, value_name = "URL", requires = "load", help_heading = "Many sessions")]
    pub spread: Vec<String>,

    /// Run only the sessions whose index s has s % COUNT == INDEX (one of COUNT processes or pods). Default: from
    /// JOB_COMPLETION_INDEX and WSRUN_SHARD_COUNT (a Kubernetes Indexed Job), else all.
    #[arg(long, value_name = "INDEX/COUNT", requires = "load", help_heading = "Many sessions")]
    pub shard: Option<String>,

    /// [GUEST] URL [GUEST ARGS]...
    #[arg(
        value_name = "[GUEST] URL [GUEST ARGS]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// The bundled client's own options (`wsrun client --help`), which people used to wscat and websocat put before
/// the URL, where wsrun reads its host options.
const CLIENT_OPTIONS: &[&str] = &[
    "-H",
    "--header",
    "--protocol",
    "--origin",
    "--basic-auth",
    "--ping-interval",
    "--ping-timeout",
    "--close-code",
    "--close-reason",
    "--binary",
    "--hex",
    "--base64",
    "--jsonl",
    "-1",
    "--once",
    "--exit-on-eof",
    "--no-close",
    "--commands",
    "--linger",
    "--max-message-size",
];

/// `compile GUEST -o FILE`, when that is what was asked.
pub struct Compile {
    pub guest: String,
    pub output: std::path::PathBuf,
}

/// What to run, once the positional arguments are sorted out.
#[derive(Debug)]
pub struct Invocation {
    pub guest: String,
    pub url: String,
    pub guest_args: Vec<String>,
}

/// What the command line asks for: each of wsrun's commands, sorted out in [`Args::command`] and run in one `match`.
pub enum Command {
    /// `[GUEST] URL [GUEST ARGS]`: one session with this process's stdio.
    Run(Invocation),
    /// `--sessions N [GUEST] URL [GUEST ARGS]` (or `--stages`, `--arrival-rate`): many sessions of one guest.
    Sessions(Invocation, crate::sessions::Shape),
    /// `wsrun compile GUEST -o FILE`.
    Compile(Compile),
    /// `wsrun wit ...`, with its arguments.
    Wit(Vec<String>),
    /// `wsrun new ...`, with its arguments.
    New(Vec<String>),
    /// `wsrun report merge FILE...`, with the files.
    ReportMerge(Vec<String>),
    /// A subcommand's `--help`: this text, on stdout.
    Help(&'static str),
}

/// `wsrun compile --help`.
const COMPILE_HELP: &str = "usage: wsrun compile GUEST -o FILE

Compile GUEST (a bundled guest's name or a component file) ahead of time into FILE, native code for this machine and
this wsrun. Run it with `wsrun --allow-precompiled FILE URL`: a precompiled guest is trusted like a program binary.";

impl Args {
    /// The command asked for. A first argument that names a subcommand (`wit`, `new`, `compile`, `report`) is that
    /// subcommand, unless a file of that name is there: then it is the guest.
    pub fn command(&self) -> Result<Command, String> {
        if let Some((first, rest)) = self.command.split_first() {
            let subcommand = if std::path::Path::new(first).is_file() { "" } else { first.as_str() };
            match subcommand {
                "wit" => return Ok(Command::Wit(rest.to_vec())),
                "new" => return Ok(Command::New(rest.to_vec())),
                "compile" => {
                    return match rest {
                        [flag] if flag == "--help" || flag == "-h" => Ok(Command::Help(COMPILE_HELP)),
                        [guest, flag, output] if flag == "-o" || flag == "--output" => {
                            Ok(Command::Compile(Compile { guest: guest.clone(), output: output.into() }))
                        }
                        _ => Err("usage: wsrun compile GUEST -o FILE".to_owned()),
                    }
                }
                "report" => {
                    return match rest.split_first() {
                        Some((flag, _)) if flag == "--help" || flag == "-h" => {
                            Ok(Command::Help(crate::sessions::USAGE))
                        }
                        Some((merge, files)) if merge == "merge" => Ok(Command::ReportMerge(files.to_vec())),
                        _ => Err(crate::sessions::USAGE.to_owned()),
                    }
                }
                _ => {}
            }
        }
        let invocation = self.invocation()?;
        Ok(match self.shape()? {
            Some(shape) => Command::Sessions(invocation, shape),
            None if self.max_failures.is_some() => {
                return Err("--max-failures goes with --sessions N (or wsrun report merge)".to_owned())
            }
            None => Command::Run(invocation),
        })
    }

    /// The load shape that `--sessions`, `--ramp-up`, `--stages` and `--arrival-rate` ask for, if any.
    fn shape(&self) -> Result<Option<crate::sessions::Shape>, String> {
        use crate::sessions::Shape;
        Ok(match (self.sessions, &self.stages, self.arrival_rate) {
            (_, Some(stages), _) => Some(stages.clone()),
            (sessions, None, Some(per_second)) => {
                let sessions = match (sessions, self.duration) {
                    (Some(sessions), _) => sessions,
                    (None, Some(duration)) => (duration.as_secs_f64() * per_second).floor() as u64,
                    (None, None) => {
                        return Err("--arrival-rate needs --sessions N (how many in all) or --duration".to_owned())
                    }
                };
                if sessions == 0 {
                    return Err("--arrival-rate with this --duration starts no session: raise either".to_owned());
                }
                Some(Shape::Arrival { sessions, per_second })
            }
            (Some(sessions), None, None) => Some(Shape::Ramp { sessions, ramp_up: self.ramp_up }),
            (None, None, None) => None,
        })
    }

    /// `[GUEST] URL [GUEST ARGS]`: a first argument with `://` is the URL of the default `client` guest.
    pub fn invocation(&self) -> Result<Invocation, String> {
        let (first, rest) = self.command.split_first().ok_or("missing URL")?;
        if first.starts_with('-') {
            let name = first.split_once('=').map_or(first.as_str(), |(name, _)| name);
            if CLIENT_OPTIONS.contains(&name) {
                return Err(format!(
                    "{name} is an option of the client guest: put it after the URL (wsrun URL {name} ...; see wsrun client --help)"
                ));
            }
            let known: Vec<String> = host_options()
                .chain(["--help", "--version"].into_iter().chain(CLIENT_OPTIONS.iter().copied()).map(str::to_owned))
                .collect();
            return Err(format!("unknown option {first}{} (see wsrun --help)", did_you_mean(name, &known)));
        }
        let invocation = if first.contains("://") {
            Invocation { guest: "client".into(), url: first.clone(), guest_args: rest.to_vec() }
        } else {
            let (url, guest_args) = rest.split_first().ok_or_else(|| match looks_like_an_address(first) {
                true => format!("missing URL after the guest {first}: did you mean ws://{first}/?"),
                false => format!("missing URL after the guest {first} (see wsrun --help)"),
            })?;
            Invocation { guest: first.clone(), url: url.clone(), guest_args: guest_args.to_vec() }
        };
        // `wsrun client --help`: the guest's own help, no URL.
        if !invocation.url.starts_with('-') {
            check_url(&invocation.url)?;
        }
        for url in &self.spread {
            check_url(url).map_err(|e| format!("--spread: {e}"))?;
        }
        if crate::bundled::NAMES.contains(&invocation.guest.as_str()) && !invocation.guest_args.is_empty() {
            // A bundled guest has none of wsrun's options: one after the URL was meant for wsrun.
            let host_options: Vec<String> = host_options().collect();
            for arg in &invocation.guest_args {
                let name = arg.split_once('=').map_or(arg.as_str(), |(name, _)| name);
                if !CLIENT_OPTIONS.contains(&name) && host_options.iter().any(|option| option == name) {
                    return Err(format!("{name} is a wsrun option: put it before the URL (wsrun {name} ... URL)"));
                }
            }
        }
        Ok(invocation)
    }
}

/// wsrun's own options, long (`--timeout`) and short (`-v`).
fn host_options() -> impl Iterator<Item = String> {
    let command = <Args as clap::CommandFactory>::command();
    let options: Vec<String> = command
        .get_arguments()
        .flat_map(|arg| {
            let long = arg.get_long().map(|long| format!("--{long}"));
            let short = arg.get_short().map(|short| format!("-{short}"));
            long.into_iter().chain(short)
        })
        .collect();
    options.into_iter()
}

/// `; did you mean --timeout?` for a misspelled `--timout`, or nothing when no option is close.
pub fn did_you_mean(name: &str, known: &[String]) -> String {
    let best =
        known.iter().map(|option| (strsim::jaro_winkler(name, option), option)).max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, option)) if score > 0.85 => format!("; did you mean {option}?"),
        _ => String::new(),
    }
}

/// `127.0.0.1:8765`, `localhost:9000`: a host and port where a URL was meant.
fn looks_like_an_address(text: &str) -> bool {
    match text.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// The URL a session is for: a `ws://` or `wss://` URL with a host (the grant is its origin).
fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL {text}: {e}"))?;
    match url.scheme() {
        "ws" | "wss" if url.host_str().is_some_and(|host| !host.is_empty()) => Ok(()),
        "ws" | "wss" => Err(format!("invalid URL {text}: no host")),
        "http" | "https" => {
            let scheme = if url.scheme() == "http" { "ws" } else { "wss" };
            let suggested = format!("{scheme}{}", &text[url.scheme().len()..]);
            Err(format!("{text} is not a WebSocket URL: did you mean {suggested}?"))
        }
        other => Err(format!("invalid URL {text}: the scheme is {other}, not ws or wss")),
    }
}

/// `NAME=VALUE`.
fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

/// Bytes, with an optional K/M/G suffix (powers of 1024, `KiB` spellings too).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number.parse().map_err(|_| format!("invalid size {text:?} (try 65536, 64K or 16M)"))?;
    let shift = match unit {
        "" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return Err(format!("invalid size unit in {text:?} (use K, M or G)")),
    };
    number.checked_mul(1 << shift).ok_or_else(|| format!("size {text:?} is too large"))
}

/// `--sessions N`: at least one.
fn parse_sessions(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("at least 1 session".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a number of sessions")),
    }
}

/// A duration above zero.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).and_then(|d| if d.is_zero() { Err("must be longer than 0".to_owned()) } else { Ok(d) })
}

/// `500ms`, `2s`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("invalid duration {text:?} (try 500ms, 2s or 1m)"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("invalid duration unit {unit:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(args: &[&str]) -> Result<Invocation, String> {
        let mut argv = vec!["wsrun"];
        argv.extend(args);
        Args::try_parse_from(argv).map_err(|e| e.to_string())?.invocation()
    }

    #[test]
    fn url_first_means_the_client_guest() {
        let run = invocation(&["ws://h/", "--binary"]).unwrap();
        assert_eq!((run.guest.as_str(), run.url.as_str()), ("client", "ws://h/"));
        assert_eq!(run.guest_args, ["--binary"]);
    }

    #[test]
    fn guest_then_url_then_guest_args() {
        let run = invocation(&["--timeout", "2s", "echo", "ws://h/", "-x", "--help"]).unwrap();
        assert_eq!((run.guest.as_str(), run.url.as_str()), ("echo", "ws://h/"));
        assert_eq!(run.guest_args, ["-x", "--help"]);
    }

    #[test]
    fn a_guest_without_url_is_a_usage_error() {
        assert!(invocation(&["echo"]).unwrap_err().contains("missing URL"));
    }

    #[test]
    fn a_client_option_before_the_url_says_where_it_goes() {
        let error = invocation(&["--jsonl", "ws://h/"]).unwrap_err();
        assert!(error.contains("--jsonl is an option of the client guest: put it after the URL"), "{error}");
        assert!(invocation(&["--nonsense", "ws://h/"]).unwrap_err().contains("unknown option --nonsense"));
    }

    #[test]
    fn subcommands_are_sorted_out_unless_a_file_has_their_name() {
        let command = |argv: &[&str]| Args::try_parse_from([&["wsrun"], argv].concat()).unwrap().command();
        assert!(matches!(command(&["new", "rust", "demo"]), Ok(Command::New(rest)) if rest == ["rust", "demo"]));
        assert!(matches!(command(&["wit"]), Ok(Command::Wit(rest)) if rest.is_empty()));
        assert!(matches!(command(&["report", "merge", "a"]), Ok(Command::ReportMerge(files)) if files == ["a"]));
        assert!(matches!(command(&["report", "a"]), Err(usage) if usage.contains("wsrun report merge")));
        assert!(matches!(command(&["compile", "echo", "-o", "x"]), Ok(Command::Compile(c)) if c.guest == "echo"));
        assert!(matches!(command(&["compile", "echo"]), Err(usage) if usage == "usage: wsrun compile GUEST -o FILE"));
        assert!(matches!(command(&["ws://h/", "new"]), Ok(Command::Run(run)) if run.guest_args == ["new"]));
        assert!(matches!(command(&["news", "ws://h/"]), Ok(Command::Run(run)) if run.guest == "news"));
        use crate::sessions::Shape;
        assert!(matches!(
            command(&["--sessions", "3", "ws://h/"]),
            Ok(Command::Sessions(_, Shape::Ramp { sessions: 3, .. }))
        ));
        assert!(matches!(command(&["--max-failures", "1", "ws://h/"]), Err(e) if e.contains("goes with --sessions N")));
        assert!(matches!(command(&["--report", "r", "ws://h/"]), Ok(Command::Run(_))));
        assert!(matches!(
            command(&["--arrival-rate", "4/s", "--duration", "2s", "ws://h/"]),
            Ok(Command::Sessions(_, Shape::Arrival { sessions: 8, .. }))
        ));
        assert!(matches!(command(&["--stages", "1s:2", "ws://h/"]), Ok(Command::Sessions(_, Shape::Stages(_)))));
        assert!(Args::try_parse_from(["wsrun", "--sessions", "0", "ws://h/"])
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert_eq!(parse_size("64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert!(parse_size("1T").is_err());
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
