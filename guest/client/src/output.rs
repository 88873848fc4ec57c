//! Everything the client prints: plain lines for people (with a prompt on a terminal) or JSON lines for scripts.

use std::fmt::Write;

use wsrun_guest::wasi::clocks::wall_clock;
use wsrun_guest::{close_code_name, escape, CloseFrame, Message, Stdout};

use crate::encoding::{base64, hex, json_string};
use crate::options::Encoding;

/// Where output goes, and in which form.
pub struct Output {
    out: Stdout,
    jsonl: bool,
    binary: Encoding,
    /// A `> ` prompt follows every line printed (stdin and stdout are terminals).
    prompt: bool,
}

/// Which ping a pong answers, and how long it took.
#[derive(Clone, Copy, Debug)]
pub enum PongOf {
    /// A ping of the user's (`/ping`): shown in every mode.
    Own(f64),
    /// One of the host's keepalive pings: an event with `--jsonl`, nothing for a person otherwise.
    Keepalive(f64),
    /// Neither (a peer's unsolicited pong): as a keepalive one, without a time.
    Unknown,
}

/// Stdout is gone (a closed pipe): nobody is reading, so the guest should stop quietly.
pub struct Gone;

impl Output {
    pub fn new(jsonl: bool, binary: Encoding, prompt: bool) -> Self {
        Output { out: Stdout::get(), jsonl, binary, prompt: prompt && !jsonl }
    }

    pub fn opened(&self, url: &str, protocol: Option<&str>, compressed: bool) -> Result<(), Gone> {
        if self.jsonl {
            let protocol = protocol.map_or("null".to_owned(), json_string);
            let fields = format!(r#""url":{},"protocol":{protocol},"compressed":{compressed}"#, json_string(url));
            return self.event("open", &fields);
        }
        let mut notes = Vec::new();
        if let Some(protocol) = protocol {
            notes.push(format!("subprotocol {}", escape(protocol)));
        }
        if compressed {
            notes.push("compressed".to_owned());
        }
        match notes.is_empty() {
            true => self.line(&format!("Connected to {}.", escape(url))),
            false => self.line(&format!("Connected to {} ({}).", escape(url), notes.join(", "))),
        }
    }

    /// A message from the peer; `pong` says what a pong answers.
    pub fn received(&self, message: &Message, pong: PongOf) -> Result<(), Gone> {
        if self.jsonl {
            let fields = match message {
                Message::Text(text) => format!(r#""type":"text","data":{}"#, json_string(text)),
                Message::Binary(bytes) => {
                    format!(r#""type":"binary","data":"{}","encoding":"{}""#, self.encode(bytes), self.encoding_name())
                }
                Message::Ping(payload) => return self.event("ping", &format!(r#""data":"{}""#, hex(payload))),
                Message::Pong(payload) => {
                    let rtt = match pong {
                        PongOf::Own(ms) | PongOf::Keepalive(ms) => format!(r#","rtt_ms":{ms:.3}"#),
                        PongOf::Unknown => String::new(),
                    };
                    return self.event("pong", &format!(r#""data":"{}"{rtt}"#, hex(payload)));
                }
            };
            return self.event("message", &fields);
        }
        let line = match message {
            Message::Text(text) => format!("< {}", escape(text)),
            Message::Binary(bytes) => format!("< (binary) {}", self.encode(bytes)),
            Message::Pong(_) => match pong {
                PongOf::Own(ms) => format!("< (pong) {ms:.2} ms"),
                PongOf::Keepalive(_) | PongOf::Unknown => return Ok(()),
            },
            // The host has answered it; a person has no use for it.
            Message::Ping(_) => return Ok(()),
        };
        self.line(&line)
    }

    pub fn closed(&self, frame: &CloseFrame) -> Result<(), Gone> {
        if self.jsonl {
            let fields = format!(
                r#""code":{},"reason":{},"name":{}"#,
                frame.code,
                json_string(&frame.reason),
                json_string(close_code_name(frame.code))
            );
            return self.event("close", &fields);
        }
        let line = format!("Connection closed: {frame}.");
        if self.prompt {
            // The last line: no prompt after it.
            return self.out.write_all(format!("\r\x1b[K{line}\n").as_bytes()).map_err(|_| Gone);
        }
        self.out.line(&line).map_err(|_| Gone)
    }

    /// Text for the person at the terminal (the help of /help), never in JSON output.
    pub fn note(&self, text: &str) -> Result<(), Gone> {
        if self.jsonl {
            return Ok(());
        }
        self.line(text)
    }

    fn line(&self, text: &str) -> Result<(), Gone> {
        if self.prompt {
            // Replace the prompt on the current line, print, and prompt again below.
            return self.out.write_all(format!("\r\x1b[K{text}\n> ").as_bytes()).map_err(|_| Gone);
        }
        self.out.line(text).map_err(|_| Gone)
    }

    fn event(&self, event: &str, fields: &str) -> Result<(), Gone> {
        let now = wall_clock::now();
        let mut line = String::with_capacity(fields.len() + 48);
        let _ = write!(line, r#"{{"time":{}.{:06},"event":"{event}",{fields}}}"#, now.seconds, now.nanoseconds / 1000);
        self.out.line(&line).map_err(|_| Gone)
    }

    fn encode(&self, bytes: &[u8]) -> String {
        match self.binary {
            Encoding::Hex => hex(bytes),
            Encoding::Base64 => base64(bytes),
        }
    }

    fn encoding_name(&self) -> &'static str {
        match self.binary {
            Encoding::Hex => "hex",
            Encoding::Base64 => "base64",
        }
    }
}
