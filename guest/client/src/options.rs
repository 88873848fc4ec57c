//! The client's own arguments (everything after the URL) and its help text.

use wsrun_guest::{Header, Keepalive};

pub const HELP: &str = "\
wsrun client: an interactive WebSocket client.

Usage: wsrun [HOST OPTIONS] [client] URL [CLIENT OPTIONS]

Sends each line of stdin as a message and prints each message received:
  < text                       a text message (control characters escaped)
  < (binary) 0102ff            a binary message, in hex (or base64 with --base64)
  < (pong) 0.42 ms             the answer to /ping, with its round-trip time
At the end of stdin it keeps printing what the server sends, and starts the closing
handshake once the connection has been quiet (no text or binary message received)
for the linger time (--linger, default 1s), counted from the end of stdin or the
last message received, whichever is later. When the server closes first, the client
closes at once. It then prints `Connection closed: CODE (REASON).`, the close that
ended the connection: the server's (its own code and reason) when the server closed
first. A server that does not answer our close within wsrun's --close-timeout (a host
option, default 1s) is dropped: `Connection closed: 1006`, exit 1.

Connection:
  -H, --header 'NAME: VALUE'   add a request header (repeatable)
      --protocol NAME          offer a subprotocol (repeatable; the chosen one is shown)
      --origin ORIGIN          set the Origin header
      --basic-auth USER:PASS   HTTP basic authentication
      --ping-interval DURATION send keepalive pings this often (e.g. 20s)
      --ping-timeout DURATION  give up when a pong takes longer (default 20s)
      --max-message-size SIZE  largest message to accept (e.g. 1048576, 64K, 16M)
      --close-code CODE        close code to send at the end (default 1000)
      --close-reason TEXT      close reason to send at the end
      --linger DURATION        after the end of stdin, close once the server has sent
                               nothing for this long (default 1s; 0: close at once,
                               then wait for the server's close)

Input and output:
      --binary                 send each line as a binary message
      --hex                    lines are hex, sent as binary; binary shown in hex (the default)
      --base64                 lines are base64, sent as binary; binary shown in base64
      --jsonl                  print one JSON object per event (open, message, ping, pong, close)
  -1, --once                   send stdin, print the first reply, close (at once)
      --exit-on-eof            at the end of stdin, print what has arrived, close and exit: replies still on
                               their way are not waited for
      --no-close               at the end of stdin, keep the connection open until the server closes
      --commands               accept /commands even when stdin is not a terminal
  -h, --help                   this help

Commands (when stdin is a terminal, or with --commands):
  /ping [DATA]                 send a ping; the pong is shown with its round-trip time
  /close [CODE [REASON]]       close the connection
  /binary HEX                  send a binary message
  /help                        list the commands
  //text                       send a line that starts with /

Exit codes:
  0    the connection closed with a closing handshake (whatever its code)
  1    could not connect, a send failed, or the connection was lost (no close frame,
       keepalive timeout)
  2    invalid arguments (wsrun's own: usage, load and link errors)
  130  interrupted (Ctrl+C)";

/// How binary payloads are written, in and out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

/// What the end of stdin does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnEof {
    /// Go on printing; once the server has sent nothing for `linger_ms` (counted from the end of stdin or the last
    /// message, whichever is later), send the close frame and print until the server's.
    Linger,
    /// Send the close frame and exit.
    Exit,
    /// Nothing: wait for the server to close.
    KeepOpen,
}

#[derive(Debug)]
pub struct Options {
    pub url: String,
    pub headers: Vec<Header>,
    pub subprotocols: Vec<String>,
    pub keepalive: Option<Keepalive>,
    pub max_message_size: Option<u64>,
    pub close_code: u16,
    pub close_reason: String,
    /// Send lines as binary: raw, or decoded from `input`.
    pub binary: bool,
    /// Lines are encoded binary (`--hex`, `--base64`).
    pub input: Option<Encoding>,
    pub output: Encoding,
    pub jsonl: bool,
    pub once: bool,
    pub on_eof: OnEof,
    /// The quiet time of [`OnEof::Linger`], in milliseconds; 0 closes at the end of stdin.
    pub linger_ms: u32,
    pub commands: bool,
}

pub enum Parsed {
    Run(Options),
    Help,
}

/// How long the server must have been quiet after the end of stdin before the client closes (`--linger`).
pub const DEFAULT_LINGER_MS: u32 = 1000;

/// Parse `[name, URL, options...]`.
pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut rest = args.iter().skip(1);
    let mut url = None;
    let mut options = Options {
        url: String::new(),
        headers: Vec::new(),
        subprotocols: Vec::new(),
        keepalive: None,
        max_message_size: None,
        close_code: 1000,
        close_reason: String::new(),
        binary: false,
        input: None,
        output: Encoding::Hex,
        jsonl: false,
        once: false,
        on_eof: OnEof::Linger,
        linger_ms: DEFAULT_LINGER_MS,
        commands: false,
    };
    let mut ping_interval = None;
    let mut ping_timeout = 20_000;
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| rest.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-H" | "--header" => {
                let header = value(arg)?;
                let (name, text) = header
                    .split_once(':')
                    .ok_or_else(|| format!("invalid header {header:?}: expected 'Name: value'"))?;
                let name = name.trim();
                match name.to_ascii_lowercase().as_str() {
                    "sec-websocket-protocol" => {
                        return Err(format!(
                            "-H {name}: use --protocol {} (the handshake sets this header)",
                            text.trim()
                        ))
                    }
                    "host" => {
                        return Err("-H Host: the Host header is the URL's host and port; put those in the URL".into())
                    }
                    _ => {}
                }
                options.headers.push(Header { name: name.to_owned(), value: text.trim().to_owned() });
            }
            "--protocol" => options.subprotocols.extend(value(arg)?.split(',').map(|p| p.trim().to_owned())),
            "--origin" => options.headers.push(Header { name: "Origin".into(), value: value(arg)? }),
            "--basic-auth" => {
                let credentials = value(arg)?;
                if !credentials.contains(':') {
                    return Err("--basic-auth expects USER:PASS".into());
                }
                let token = crate::encoding::base64(credentials.as_bytes());
                options.headers.push(Header { name: "Authorization".into(), value: format!("Basic {token}") });
            }
            "--ping-interval" => ping_interval = Some(millis(&value(arg)?)?),
            "--ping-timeout" => ping_timeout = millis(&value(arg)?)?,
            "--max-message-size" => options.max_message_size = Some(size(&value(arg)?)?),
            "--close-code" => {
                let code = value(arg)?;
                options.close_code = code.parse().map_err(|_| format!("invalid --close-code {code:?}"))?;
            }
            "--close-reason" => options.close_reason = value(arg)?,
            "--linger" => options.linger_ms = millis_or_zero(&value(arg)?)?,
            "--binary" => options.binary = true,
            "--hex" => (options.binary, options.input, options.output) = (true, Some(Encoding::Hex), Encoding::Hex),
            "--base64" => {
                (options.binary, options.input, options.output) = (true, Some(Encoding::Base64), Encoding::Base64)
            }
            "--jsonl" => options.jsonl = true,
            "-1" | "--once" => options.once = true,
            "--exit-on-eof" => options.on_eof = OnEof::Exit,
            "--no-close" => options.on_eof = OnEof::KeepOpen,
            "--commands" => options.commands = true,
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}{} (see wsrun client --help)", did_you_mean(other)))
            }
            other if url.is_none() => url = Some(other.to_owned()),
            other => return Err(format!("unexpected argument {other:?} (see wsrun client --help)")),
        }
    }
    options.url = url.ok_or("missing URL (see wsrun client --help)")?;
    options.keepalive = ping_interval.map(|interval_ms| Keepalive { interval_ms, timeout_ms: ping_timeout });
    Ok(Parsed::Run(options))
}

/// `500ms`, `2s`, `1.5s`, `2m`, or a bare number of seconds, in milliseconds (at least 1).
fn millis(text: &str) -> Result<u32, String> {
    duration(text, 1.0)
}

/// Like [`millis`], but `0` (or `0s`, `0ms`) is allowed.
fn millis_or_zero(text: &str) -> Result<u32, String> {
    duration(text, 0.0)
}

fn duration(text: &str, least_ms: f64) -> Result<u32, String> {
    let error = || format!("invalid duration {text:?} (try 500ms, 20s or 1m)");
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| error())?;
    let factor = match unit {
        "ms" => 1.0,
        "" | "s" => 1000.0,
        "m" => 60_000.0,
        _ => return Err(error()),
    };
    let ms = number * factor;
    if !(least_ms..=f64::from(u32::MAX)).contains(&ms) {
        return Err(error());
    }
    Ok(ms as u32)
}

/// Bytes, with an optional K/KiB/M/MiB/G/GiB suffix (powers of 1024).
fn size(text: &str) -> Result<u64, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("invalid size {text:?}"))?;
    let shift = match unit {
        "" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return Err(format!("invalid size unit in {text:?} (use K, M or G)")),
    };
    number.checked_mul(1 << shift).ok_or_else(|| format!("size {text:?} is too large"))
}

/// `; did you mean --protocol?` for a misspelled `--protocl`: the option at most two edits away, if one is.
fn did_you_mean(name: &str) -> String {
    let name = name.split_once('=').map_or(name, |(name, _)| name);
    // The options are those the help lists, first on their lines: one list, which cannot drift from the help.
    let options = HELP
        .lines()
        .filter(|line| line.trim_start().starts_with('-'))
        .flat_map(|line| line.split_whitespace().take(2))
        .map(|word| word.trim_end_matches(','))
        .filter(|word| word.starts_with("--"));
    let closest = options.map(|option| (edits(name, option), option)).min();
    match closest {
        Some((distance, option)) if distance <= 2 => format!("; did you mean {option}?"),
        _ => String::new(),
    }
}

/// Levenshtein distance: insertions, deletions and substitutions that turn `a` into `b`.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(extra: &[&str]) -> Result<Options, String> {
        let args: Vec<String> = ["client", "ws://127.0.0.1:9/"].iter().chain(extra).map(|s| s.to_string()).collect();
        match parse(&args)? {
            Parsed::Run(options) => Ok(options),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn the_end_of_input_lingers_one_second_by_default() {
        let options = parse_args(&[]).unwrap();
        assert_eq!((options.on_eof, options.linger_ms), (OnEof::Linger, 1000));
    }

    #[test]
    fn linger_takes_a_duration() {
        for (text, ms) in [("5s", 5000), ("250ms", 250), ("1.5s", 1500), ("2", 2000), ("1m", 60_000)] {
            let options = parse_args(&["--linger", text]).unwrap();
            assert_eq!((options.on_eof, options.linger_ms), (OnEof::Linger, ms), "{text}");
        }
    }

    #[test]
    fn linger_zero_closes_at_the_end_of_input() {
        for text in ["0", "0s", "0ms"] {
            assert_eq!(parse_args(&["--linger", text]).unwrap().linger_ms, 0, "{text}");
        }
    }

    #[test]
    fn linger_rejects_what_is_not_a_duration() {
        for text in ["-1s", "soon", "1h", "", "1.5.2s"] {
            let error = parse_args(&["--linger", text]).unwrap_err();
            assert!(error.starts_with("invalid duration"), "{text}: {error}");
        }
        assert_eq!(parse_args(&["--linger"]).unwrap_err(), "--linger needs a value");
    }

    #[test]
    fn the_other_end_of_input_modes_keep_their_meaning() {
        assert_eq!(parse_args(&["--exit-on-eof"]).unwrap().on_eof, OnEof::Exit);
        assert_eq!(parse_args(&["--no-close"]).unwrap().on_eof, OnEof::KeepOpen);
        let once = parse_args(&["--once", "--linger", "3s"]).unwrap();
        assert!(once.once);
        assert_eq!(once.linger_ms, 3000);
    }

    #[test]
    fn other_durations_still_refuse_zero() {
        assert!(parse_args(&["--ping-interval", "0"]).is_err());
    }

    #[test]
    fn headers_origin_and_basic_auth_become_request_headers() {
        let options = parse_args(&[
            "-H",
            " X-Trace :  abc: 1 ",
            "--header",
            "Cookie: a=b",
            "--origin",
            "https://app",
            "--basic-auth",
            "user:pa:ss",
        ])
        .unwrap();
        let headers: Vec<(&str, &str)> = options.headers.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
        assert_eq!(
            headers,
            [
                ("X-Trace", "abc: 1"),
                ("Cookie", "a=b"),
                ("Origin", "https://app"),
                ("Authorization", "Basic dXNlcjpwYTpzcw==")
            ]
        );
        assert_eq!(parse_args(&["-H", "no colon"]).unwrap_err(), "invalid header \"no colon\": expected 'Name: value'");
        assert_eq!(parse_args(&["--basic-auth", "user"]).unwrap_err(), "--basic-auth expects USER:PASS");
        assert_eq!(parse_args(&["-H"]).unwrap_err(), "-H needs a value");
    }

    #[test]
    fn protocol_lists_add_up_in_order() {
        let options = parse_args(&["--protocol", "a, b", "--protocol", "c"]).unwrap();
        assert_eq!(options.subprotocols, ["a", "b", "c"]);
    }

    #[test]
    fn keepalive_needs_an_interval_and_has_a_default_timeout() {
        assert!(parse_args(&[]).unwrap().keepalive.is_none());
        assert!(parse_args(&["--ping-timeout", "5s"]).unwrap().keepalive.is_none(), "a timeout alone pings nothing");
        let keepalive = parse_args(&["--ping-interval", "20s"]).unwrap().keepalive.unwrap();
        assert_eq!((keepalive.interval_ms, keepalive.timeout_ms), (20_000, 20_000));
        let keepalive = parse_args(&["--ping-timeout", "300ms", "--ping-interval", "0.1"]).unwrap().keepalive.unwrap();
        assert_eq!((keepalive.interval_ms, keepalive.timeout_ms), (100, 300));
    }

    #[test]
    fn sizes_and_close_frame() {
        let options =
            parse_args(&["--max-message-size", "64K", "--close-code", "4000", "--close-reason", "bye"]).unwrap();
        assert_eq!(
            (options.max_message_size, options.close_code, options.close_reason.as_str()),
            (Some(65536), 4000, "bye")
        );
        for (text, bytes) in [("1048576", 1 << 20), ("2M", 2 << 20), ("1GiB", 1 << 30), ("3KiB", 3 << 10)] {
            assert_eq!(parse_args(&["--max-message-size", text]).unwrap().max_message_size, Some(bytes), "{text}");
        }
        assert!(parse_args(&["--max-message-size", "1T"]).unwrap_err().contains("invalid size unit"));
        assert!(parse_args(&["--max-message-size", "lots"]).unwrap_err().contains("invalid size"));
        assert!(parse_args(&["--max-message-size", "99999999999G"]).unwrap_err().contains("too large"));
        assert_eq!(parse_args(&["--close-code", "70000"]).unwrap_err(), "invalid --close-code \"70000\"");
    }

    #[test]
    fn binary_modes_set_input_and_output() {
        let plain = parse_args(&[]).unwrap();
        assert_eq!((plain.binary, plain.input, plain.output), (false, None, Encoding::Hex));
        let raw = parse_args(&["--binary"]).unwrap();
        assert_eq!((raw.binary, raw.input, raw.output), (true, None, Encoding::Hex));
        let hex = parse_args(&["--hex"]).unwrap();
        assert_eq!((hex.binary, hex.input, hex.output), (true, Some(Encoding::Hex), Encoding::Hex));
        let base64 = parse_args(&["--base64"]).unwrap();
        assert_eq!((base64.binary, base64.input, base64.output), (true, Some(Encoding::Base64), Encoding::Base64));
    }

    #[test]
    fn flags() {
        let options = parse_args(&["--jsonl", "-1", "--commands"]).unwrap();
        assert!(options.jsonl && options.once && options.commands);
        assert!(parse_args(&["--once"]).unwrap().once);
        let defaults = parse_args(&[]).unwrap();
        assert!(!defaults.jsonl && !defaults.once && !defaults.commands);
        assert_eq!((defaults.close_code, defaults.close_reason.as_str()), (1000, ""));
    }

    #[test]
    fn help_wherever_it_is_asked_for() {
        for help in ["-h", "--help"] {
            let args: Vec<String> = ["client", "ws://h/", "--jsonl", help].iter().map(|s| s.to_string()).collect();
            assert!(matches!(parse(&args), Ok(Parsed::Help)), "{help}");
        }
        let args = vec!["client".to_owned(), "--help".to_owned()];
        assert!(matches!(parse(&args), Ok(Parsed::Help)), "no URL needed");
    }

    #[test]
    fn what_is_not_an_option() {
        assert_eq!(parse_args(&["--frobnicate"]).unwrap_err(), "unknown option --frobnicate (see wsrun client --help)");
        let header = parse_args(&["-H", "Sec-WebSocket-Protocol: chat"]).unwrap_err();
        assert_eq!(header, "-H Sec-WebSocket-Protocol: use --protocol chat (the handshake sets this header)");
        assert!(parse_args(&["-H", "host: x"]).unwrap_err().contains("the Host header is the URL's host"));
        let misspelled = parse_args(&["--protocl", "chat"]).unwrap_err();
        assert_eq!(misspelled, "unknown option --protocl; did you mean --protocol? (see wsrun client --help)");
        assert_eq!(parse_args(&["extra"]).unwrap_err(), "unexpected argument \"extra\" (see wsrun client --help)");
        let no_url = parse(&["client".to_owned(), "--jsonl".to_owned()]);
        assert_eq!(no_url.err().unwrap(), "missing URL (see wsrun client --help)");
        let url = parse_args(&[]).unwrap().url;
        assert_eq!(url, "ws://127.0.0.1:9/");
    }

    #[test]
    fn help_documents_linger() {
        assert!(HELP.contains("--linger DURATION"));
        assert!(HELP.contains("default 1s"));
    }
}
