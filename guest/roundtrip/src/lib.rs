//! The bundled `roundtrip` guest, for load runs: connects, sends a message and a ping at each interval, and records
//! the round-trip time of each through `wsrun:ws/metrics` (see `options::USAGE`).

mod options;

use std::collections::VecDeque;
use std::time::Duration;

use wsrun_guest::wasi::clocks::{monotonic_clock, wall_clock};
use wsrun_guest::wasi::io::poll;
use wsrun_guest::{args, describe, metrics, ConnectOptions, Connection, Guest, Message, Stdout};

use options::Options;

/// The most messages awaiting their reply; past it the oldest counts as lost (a server that does not echo must not
/// grow the guest's memory).
const MAX_OUTSTANDING: usize = 1024;

struct Roundtrip;

impl Guest for Roundtrip {
    fn run() -> Result<(), ()> {
        let arguments = args();
        let (url, rest) = match &arguments[..] {
            [_, url, rest @ ..] if !url.starts_with('-') => (url.clone(), rest.to_vec()),
            _ => {
                eprintln!("wsrun: roundtrip: {}", options::USAGE);
                return usage_error();
            }
        };
        if rest.iter().any(|a| a == "--help" || a == "-h") {
            let _ = Stdout::get().line(options::USAGE);
            return Ok(());
        }
        let options = match Options::parse(&rest) {
            Ok(options) => options,
            Err(why) => {
                eprintln!("wsrun: roundtrip: {why} (see wsrun roundtrip URL --help)");
                return usage_error();
            }
        };
        let connect = ConnectOptions { control_frames: options.ping, ..ConnectOptions::default() };
        let conn = Connection::connect(&url, &connect).map_err(|e| {
            eprintln!("wsrun: roundtrip: could not connect to {url}: {}", describe(&e));
        })?;
        Session::new(options, &conn).run()
    }
}

fn usage_error() -> Result<(), ()> {
    wsrun_guest::wasi::cli::exit::exit_with_code(2);
    Err(())
}

/// A message sent whose reply has not come yet.
struct Waiting {
    payload: Vec<u8>,
    number: u64,
    sent_ns: u64,
}

struct Session<'a> {
    options: Options,
    conn: &'a Connection,
    session: String,
    out: Stdout,
    sent: u64,
    replies: u64,
    lost: u64,
    unmatched: u64,
    waiting: VecDeque<Waiting>,
    /// Pings sent and not yet answered: number and when.
    pings: VecDeque<(u64, u64)>,
    pongs: u64,
}

impl<'a> Session<'a> {
    fn new(options: Options, conn: &'a Connection) -> Self {
        let session = std::env::var("WSRUN_SESSION_INDEX").unwrap_or_else(|_| "0".to_owned());
        Session {
            options,
            conn,
            session,
            out: Stdout::get(),
            sent: 0,
            replies: 0,
            lost: 0,
            unmatched: 0,
            waiting: VecDeque::new(),
            pings: VecDeque::new(),
            pongs: 0,
        }
    }

    fn run(mut self) -> Result<(), ()> {
        let start = monotonic_clock::now();
        let interval = nanos(self.options.interval);
        let end = self.options.duration.map(|d| start + nanos(d));
        let readable = self.conn.subscribe();
        // Sessions spread their sends over the interval by their index (session 0 at once): a thousand sessions
        // started together would otherwise send together, and measure their own burst rather than the server.
        let index: u64 = self.session.parse().unwrap_or(0);
        let phase = (index as f64 * 0.618_033_988_75).fract();
        let mut next_send = start + (interval as f64 * phase) as u64;
        let mut finishing_since: Option<u64> = None;
        loop {
            let now = monotonic_clock::now();
            let all_sent =
                self.options.count.is_some_and(|count| self.sent >= count) || end.is_some_and(|end| now >= end);
            if all_sent && finishing_since.is_none() {
                finishing_since = Some(now);
            }
            if let Some(since) = finishing_since {
                let waited_out = now >= since + nanos(self.options.reply_timeout);
                if (self.waiting.is_empty() && self.pings.is_empty()) || waited_out {
                    self.lose_all();
                    break;
                }
            } else if interval == 0 {
                if self.waiting.is_empty() && self.pings.is_empty() {
                    self.send_next(now)?;
                }
            } else if now >= next_send {
                self.send_next(now)?;
                next_send += interval;
                // Behind (a slow server, a paused process): the next one goes now, not a burst to catch up.
                next_send = next_send.max(now);
                continue;
            }
            let wake = match (finishing_since, interval) {
                (Some(since), _) => since + nanos(self.options.reply_timeout),
                // Closed loop: woken by the reply, or by the end of --duration.
                (None, 0) => end.unwrap_or(u64::MAX),
                (None, _) => next_send,
            };
            let timer = monotonic_clock::subscribe_instant(wake);
            poll::poll(&[&readable, &timer]);
            drop(timer);
            while let Some(received) = self.conn.try_receive() {
                match received {
                    Ok(Some(message)) => self.received(message),
                    Ok(None) => {
                        drop(readable);
                        return self.ended();
                    }
                    Err(e) => {
                        eprintln!("wsrun: roundtrip: {}", describe(&e));
                        return Err(());
                    }
                }
            }
        }
        drop(readable);
        self.say(&format!(
            "{} sent, {} replies, {} lost, {} not matching; {} pongs",
            self.sent, self.replies, self.lost, self.unmatched, self.pongs
        ));
        let _ = self.conn.close(1000, "");
        // Read to the server's close, so the close is clean; the host bounds the wait.
        while let Ok(Some(_)) = self.conn.receive() {}
        Ok(())
    }

    fn send_next(&mut self, now: u64) -> Result<(), ()> {
        self.sent += 1;
        let number = self.sent;
        if self.options.echo {
            let payload = self.message(number);
            let message = match self.options.binary {
                true => Message::Binary(payload.clone()),
                false => Message::Text(String::from_utf8_lossy(&payload).into_owned()),
            };
            self.conn.send(&message).map_err(|e| eprintln!("wsrun: roundtrip: send failed: {}", describe(&e)))?;
            if self.waiting.len() == MAX_OUTSTANDING {
                self.lose_oldest();
            }
            self.waiting.push_back(Waiting { payload, number, sent_ns: now });
        }
        if self.options.ping {
            self.conn
                .send(&Message::Ping(number.to_be_bytes().to_vec()))
                .map_err(|e| eprintln!("wsrun: roundtrip: ping failed: {}", describe(&e)))?;
            if self.pings.len() == MAX_OUTSTANDING {
                self.pings.pop_front();
            }
            self.pings.push_back((number, now));
        }
        Ok(())
    }

    fn message(&self, number: u64) -> Vec<u8> {
        let time = wall_clock::now();
        let millis = time.seconds * 1000 + u64::from(time.nanoseconds / 1_000_000);
        let mut text = self
            .options
            .template
            .replace("{session}", &self.session)
            .replace("{n}", &number.to_string())
            .replace("{time}", &millis.to_string())
            .into_bytes();
        if text.len() < self.options.size {
            text.resize(self.options.size, b'.');
        }
        text
    }

    fn received(&mut self, message: Message) {
        let now = monotonic_clock::now();
        match message {
            Message::Pong(payload) => {
                let Ok(bytes) = <[u8; 8]>::try_from(payload.as_slice()) else { return };
                let number = u64::from_be_bytes(bytes);
                // Pongs come in order; an older ping without its pong is dropped on the way.
                while let Some(&(waiting, sent_ns)) = self.pings.front() {
                    if waiting > number {
                        break;
                    }
                    self.pings.pop_front();
                    if waiting == number {
                        self.pongs += 1;
                        let took = Duration::from_nanos(now - sent_ns);
                        if self.options.metrics {
                            metrics::duration("rtt", took, &[("kind", "ping")]);
                        }
                        self.say(&format!("ping {number}: {:.3} ms", took.as_secs_f64() * 1e3));
                    }
                }
            }
            Message::Ping(_) => {}
            Message::Text(text) => self.reply(text.into_bytes(), now),
            Message::Binary(bytes) => self.reply(bytes, now),
        }
    }

    /// A message from the server: the reply to the oldest message sent that it matches (those before it are lost),
    /// or a message that is no reply.
    fn reply(&mut self, payload: Vec<u8>, now: u64) {
        let Some(at) = self.waiting.iter().position(|w| w.payload == payload) else {
            self.unmatched += 1;
            if self.options.metrics {
                metrics::count("unmatched", 1, &[]);
            }
            return;
        };
        for _ in 0..at {
            self.lose_oldest();
        }
        let waiting = self.waiting.pop_front().expect("found above");
        self.replies += 1;
        let took = Duration::from_nanos(now - waiting.sent_ns);
        if self.options.metrics {
            metrics::duration("rtt", took, &[("kind", "echo")]);
            metrics::check("echo reply", true, &[]);
        }
        self.say(&format!("echo {}: {:.3} ms", waiting.number, took.as_secs_f64() * 1e3));
    }

    fn lose_oldest(&mut self) {
        if self.waiting.pop_front().is_some() {
            self.lost += 1;
            if self.options.metrics {
                metrics::check("echo reply", false, &[]);
            }
        }
    }

    fn lose_all(&mut self) {
        while !self.waiting.is_empty() {
            self.lose_oldest();
        }
        self.pings.clear();
    }

    fn say(&self, line: &str) {
        if !self.options.quiet {
            let _ = self.out.line(line);
        }
    }

    /// The server ended the connection before the guest was done.
    fn ended(&self) -> Result<(), ()> {
        match self.conn.close_status() {
            Some(close) if matches!(close.code, 1000 | 1001 | 1005) => Ok(()),
            Some(close) => {
                eprintln!("wsrun: roundtrip: the connection ended: {close}");
                Err(())
            }
            None => Ok(()),
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

wsrun_guest::export!(Roundtrip);
