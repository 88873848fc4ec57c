//! The bundled `client` guest: an interactive WebSocket client in the manner of `python -m websockets`, `wscat`
//! and `websocat`. `wsrun client --help` (the `options` module) lists what it does.
//!
//! It waits on stdin and the connection at once with `wasi:io/poll`, never busily; everything it sends and prints
//! goes through the host's `websocket` interface and stdio.
//!
//! The end of stdin is not the end of the server's answers: a server may stop sending as soon as it reads our close
//! frame (RFC 6455 allows it; python-websockets does it), so by default the client closes only once the server has
//! been quiet for the linger time (`--linger`), counted from the end of stdin or the last message received,
//! whichever is later, or at once when the server closes first.

mod commands;
mod encoding;
mod lines;
mod options;
mod output;

use wsrun_guest::wasi::cli::{exit, stdin, terminal_stdin, terminal_stdout};
use wsrun_guest::wasi::clocks::monotonic_clock;
use wsrun_guest::wasi::io::poll;
use wsrun_guest::{args, describe, CloseFrame, Compression, ConnectOptions, Connection, ErrorCode, Guest, Message};

use commands::Command;
use lines::LineSplitter;
use options::{Encoding, OnEof, Options, Parsed};
use output::{Gone, Output, PongOf};

/// How much of stdin to take in one read.
const STDIN_CHUNK: u64 = 64 * 1024;

/// What a pollable in the session's wait stands for, in the order the ready ones are handled: messages first, so
/// one that came just as the linger time ran out counts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Wake {
    Connection,
    Input,
    Linger,
}

struct Client;

impl Guest for Client {
    fn run() -> Result<(), ()> {
        let options = match options::parse(&args()) {
            Ok(Parsed::Run(options)) => options,
            Ok(Parsed::Help) => {
                let _ = wsrun_guest::Stdout::get().line(options::HELP);
                return Ok(());
            }
            Err(e) => {
                eprintln!("wsrun: client: {e}");
                exit::exit_with_code(2);
                return Err(());
            }
        };
        let interactive = terminal_stdin::get_terminal_stdin().is_some();
        let prompt = interactive && terminal_stdout::get_terminal_stdout().is_some();
        let out = Output::new(options.jsonl, options.output, prompt);
        let connect = ConnectOptions {
            headers: options.headers.clone(),
            subprotocols: options.subprotocols.clone(),
            open_timeout_ms: None,
            max_message_size: options.max_message_size,
            control_frames: true,
            keepalive: options.keepalive,
            compression: Compression::Offer,
        };
        let conn = Connection::connect(&options.url, &connect).map_err(|e| {
            eprintln!("wsrun: could not connect to {}: {}{}", options.url, describe(&e), fix(&e));
        })?;
        if out.opened(&conn.url(), conn.protocol().as_deref(), conn.compressed()).is_err() {
            return Ok(());
        }
        let commands = options.commands || interactive;
        Session {
            conn,
            out,
            options,
            commands,
            pings: Vec::new(),
            sent_pings: 0,
            closing: false,
            replied: false,
            lost: false,
            not_sent: 0,
            quiet_since: None,
        }
        .run()
    }
}

struct Session {
    conn: Connection,
    out: Output,
    options: Options,
    /// Lines starting with `/` are commands.
    commands: bool,
    /// Our pings waiting for their pong: payload and when it was sent (monotonic ns).
    pings: Vec<(Vec<u8>, u64)>,
    sent_pings: u64,
    /// Our close frame is sent: nothing more is sent.
    closing: bool,
    /// A message has come (with `--once`, nothing more is printed and the end of stdin waits for it).
    replied: bool,
    /// The connection was lost rather than closed (keepalive timeout, transport error).
    lost: bool,
    /// Input lines that could not be made into a message (invalid `--hex` or `--base64`): the run fails at the end.
    not_sent: u64,
    /// While lingering after the end of stdin: since when (monotonic ns) the server has sent nothing, i.e. the end
    /// of stdin or the last text or binary message received, whichever is later.
    quiet_since: Option<u64>,
}

/// What a step of the session decided: go on, or end with this result.
type Step = Option<Result<(), ()>>;

impl Session {
    /// Relay stdin to the connection and the connection to stdout until the connection ends.
    fn run(mut self) -> Result<(), ()> {
        let input = stdin::get_stdin();
        let input_ready = input.subscribe();
        let conn_ready = self.conn.subscribe();
        // Ready at the end of the quiet time as it stood when it was set; checked again when it fires, since a
        // message may have moved the end later meanwhile (one timer per quiet time, not one per message).
        let mut linger_timer = None;
        let mut lines = LineSplitter::default();
        let mut input_open = true;
        loop {
            match self.quiet_since {
                Some(since) if linger_timer.is_none() => {
                    linger_timer = Some(monotonic_clock::subscribe_instant(since + self.linger_ns()))
                }
                None => linger_timer = None,
                Some(_) => {}
            }
            let ready = {
                let mut waits = vec![(Wake::Connection, &conn_ready)];
                if input_open && !self.closing {
                    waits.push((Wake::Input, &input_ready));
                }
                if let Some(timer) = &linger_timer {
                    waits.push((Wake::Linger, timer));
                }
                let pollables: Vec<_> = waits.iter().map(|(_, pollable)| *pollable).collect();
                let mut ready: Vec<Wake> =
                    poll::poll(&pollables).into_iter().map(|index| waits[index as usize].0).collect();
                ready.sort();
                ready
            };
            for wake in ready {
                let step = match wake {
                    Wake::Connection => self.drain(),
                    Wake::Input => match input.read(STDIN_CHUNK) {
                        Ok(bytes) => lines.push(&bytes).into_iter().find_map(|line| self.line(line)),
                        Err(_) => {
                            input_open = false;
                            lines.finish().and_then(|line| self.line(line)).or_else(|| self.end_of_input())
                        }
                    },
                    Wake::Linger => {
                        linger_timer = None;
                        self.linger_elapsed()
                    }
                };
                if let Some(end) = step {
                    return end;
                }
            }
        }
    }

    /// One line of stdin: a command, or a message to send.
    fn line(&mut self, line: Vec<u8>) -> Step {
        if self.closing {
            return None;
        }
        let command = if self.commands && line.first() == Some(&b'/') {
            commands::parse(&String::from_utf8_lossy(&line))
        } else {
            Ok(Command::Send(line))
        };
        let step = match command {
            Ok(Command::Send(line)) => {
                let message = match self.encode_line(line) {
                    Ok(message) => message,
                    Err(e) => {
                        eprintln!("wsrun: not sent: {e}");
                        self.not_sent += 1;
                        return None;
                    }
                };
                self.send(message)
            }
            Ok(Command::Ping(mut payload)) => {
                if payload.is_empty() {
                    self.sent_pings += 1;
                    payload = format!("wsrun-{}", self.sent_pings).into_bytes();
                }
                self.pings.push((payload.clone(), monotonic_clock::now()));
                self.send(Message::Ping(payload))
            }
            Ok(Command::Close(code, reason)) => self.close(code, &reason),
            Ok(Command::Binary(bytes)) => self.send(Message::Binary(bytes)),
            Ok(Command::Help) => self.out.note(commands::HELP).err().map(|Gone| Ok(())),
            Err(e) => {
                eprintln!("wsrun: {e}");
                None
            }
        };
        // Print what came back meanwhile, so a peer that answers every line never waits on us.
        step.or_else(|| self.drain())
    }

    /// The message a line of input stands for. Large lines are common (`--binary` payloads): no needless copies.
    fn encode_line(&self, line: Vec<u8>) -> Result<Message, String> {
        Ok(match (self.options.binary, self.options.input) {
            (false, _) => Message::Text(
                String::from_utf8(line).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
            (true, None) => Message::Binary(line),
            (true, Some(Encoding::Hex)) => {
                Message::Binary(encoding::unhex(utf8(&line)?).map_err(|e| format!("not hex: {e}"))?)
            }
            (true, Some(Encoding::Base64)) => {
                Message::Binary(encoding::unbase64(utf8(&line)?).map_err(|e| format!("not base64: {e}"))?)
            }
        })
    }

    fn send(&mut self, message: Message) -> Step {
        match self.conn.send(&message) {
            Ok(()) => None,
            // The peer closed first; its close frame is on its way to `drain`.
            Err(ErrorCode::Closed(_)) => None,
            Err(e) => {
                eprintln!("wsrun: send failed: {}", describe(&e));
                self.lost = true;
                None
            }
        }
    }

    fn close(&mut self, code: u16, reason: &str) -> Step {
        self.closing = true;
        self.quiet_since = None;
        match self.conn.close(code, reason) {
            Ok(()) | Err(ErrorCode::Closed(_)) => None,
            Err(e) => {
                eprintln!("wsrun: could not close the connection: {}", describe(&e));
                Some(Err(()))
            }
        }
    }

    fn end_of_input(&mut self) -> Step {
        if self.options.once && !self.replied {
            // The close follows the reply.
            return None;
        }
        match self.options.on_eof {
            // Already closing (a /close command, or --once after its reply): the server's close is what remains.
            OnEof::Linger if self.closing => None,
            // With --once the reply has come: close at once.
            OnEof::Linger if self.options.linger_ms == 0 || self.options.once => {
                self.close(self.options.close_code, &self.options.close_reason.clone())
            }
            OnEof::Linger => {
                self.quiet_since = Some(monotonic_clock::now());
                None
            }
            // What has arrived is shown, then the close is sent and said; replies still on their way are not waited for
            // (the host finishes the closing handshake after the guest).
            OnEof::Exit => {
                if let Some(end) = self.drain() {
                    return Some(end);
                }
                let (code, reason) = (self.options.close_code, self.options.close_reason.clone());
                if let Some(end) = self.close(code, &reason) {
                    return Some(end);
                }
                let _ = self.out.closed(&CloseFrame { code, reason });
                Some(Ok(()))
            }
            OnEof::KeepOpen => None,
        }
    }

    fn linger_ns(&self) -> u64 {
        u64::from(self.options.linger_ms) * 1_000_000
    }

    /// The linger timer fired: close if the server has really been quiet for the linger time. The messages that
    /// came meanwhile are printed first, and count.
    fn linger_elapsed(&mut self) -> Step {
        if let Some(end) = self.drain() {
            return Some(end);
        }
        match self.quiet_since {
            Some(since) if monotonic_clock::now() >= since + self.linger_ns() => {
                self.close(self.options.close_code, &self.options.close_reason.clone())
            }
            // Not quiet long enough (or no longer lingering): `run` sets the timer again, for the new end.
            _ => None,
        }
    }

    /// Print every message queued on the connection; the end of the connection ends the session.
    fn drain(&mut self) -> Step {
        while let Some(next) = self.conn.try_receive() {
            match next {
                Ok(Some(message)) => {
                    if self.quiet_since.is_some() && matches!(message, Message::Text(_) | Message::Binary(_)) {
                        self.quiet_since = Some(monotonic_clock::now());
                    }
                    if self.replied && self.options.once {
                        continue;
                    }
                    let pong = match &message {
                        Message::Pong(payload) => match self.answered_ping(payload) {
                            Some(ms) => PongOf::Own(ms),
                            None => keepalive_rtt(payload).map_or(PongOf::Unknown, PongOf::Keepalive),
                        },
                        _ => PongOf::Unknown,
                    };
                    if self.out.received(&message, pong).is_err() {
                        return Some(Ok(()));
                    }
                    if self.options.once && matches!(message, Message::Text(_) | Message::Binary(_)) {
                        self.replied = true;
                        if let Some(end) = self.close(self.options.close_code, &self.options.close_reason.clone()) {
                            return Some(end);
                        }
                    }
                }
                Ok(None) => {
                    let frame = self.conn.close_status().unwrap_or(CloseFrame { code: 1006, reason: String::new() });
                    // An end without a closing handshake is a failure: one line says which, unless an error said it.
                    if frame.code == 1006 && !self.lost {
                        if self.closing {
                            // The host gives the server wsrun's --close-timeout to answer our close, then drops it.
                            eprintln!("wsrun: the server did not answer the close in time (wsrun --close-timeout)");
                        } else {
                            eprintln!("wsrun: connection lost: the server left without a close frame");
                        }
                    }
                    let _ = self.out.closed(&frame);
                    if self.not_sent > 0 {
                        eprintln!("wsrun: {} input lines were not sent (each said why above)", self.not_sent);
                    }
                    // A closing handshake, whatever its code, is the session ending as agreed; a vanished peer, or
                    // input that never left, is not.
                    return Some(if frame.code == 1006 || self.lost || self.not_sent > 0 { Err(()) } else { Ok(()) });
                }
                Err(e) => {
                    eprintln!("wsrun: {}", describe(&e));
                    self.lost = true;
                }
            }
        }
        None
    }

    /// The round-trip time in milliseconds, when `payload` answers one of our pings.
    fn answered_ping(&mut self, payload: &[u8]) -> Option<f64> {
        let index = self.pings.iter().position(|(sent, _)| sent == payload)?;
        let (_, sent_at) = self.pings.remove(index);
        Some(monotonic_clock::now().saturating_sub(sent_at) as f64 / 1e6)
    }
}

/// The round trip of a pong that echoes one of the host's keepalive pings: they carry the host's wall-clock time
/// at sending (8 bytes, nanoseconds since the Unix epoch, big-endian), the clock the guest reads too.
fn keepalive_rtt(payload: &[u8]) -> Option<f64> {
    let sent = u64::from_be_bytes(payload.try_into().ok()?);
    let now = wsrun_guest::wasi::clocks::wall_clock::now();
    let now = now.seconds.checked_mul(1_000_000_000)?.checked_add(u64::from(now.nanoseconds))?;
    // A clock that stepped back, or a payload that is not the host's: no figure rather than a wrong one.
    let rtt = now.checked_sub(sent).filter(|ns| *ns < 60_000_000_000)?;
    Some(rtt as f64 / 1e6)
}

fn utf8(line: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(line).map_err(|_| "the line is not UTF-8".to_owned())
}

wsrun_guest::export!(Client);

/// The wsrun option that changes the outcome of a failed connect, when one does.
fn fix(error: &ErrorCode) -> String {
    match error {
        ErrorCode::Timeout => " (the limit is wsrun --open-timeout, 10s unless set)".to_owned(),
        ErrorCode::Denied(why) => match origin_in(why) {
            Some(origin) => format!(" (wsrun --allow {origin} would admit it)"),
            None => String::new(),
        },
        _ => String::new(),
    }
}

/// The origin (`wss://host:port`) of the first `ws://` or `wss://` URL in `text`.
fn origin_in(text: &str) -> Option<String> {
    let start = text.find("ws://").into_iter().chain(text.find("wss://")).min()?;
    let url = text[start..].split_whitespace().next()?;
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}
