//! The roundtrip guest's options.

use std::time::Duration;

pub const USAGE: &str = "usage: wsrun roundtrip URL [--interval DURATION | --rate N/s | --rate max] [--count N] [--duration DURATION]
       [--message TEMPLATE] [--size BYTES] [--binary] [--no-ping | --ping-only] [--reply-timeout DURATION] [--quiet]
       [--no-metrics]

Sends a message (and a ping) at each interval (sessions spread over it by their index, the first at once) and times the round trip of each: the server's pong to the ping, and
an echo-like server's reply to the message (trend `rtt`, tagged kind=ping or kind=echo; check `echo reply`). Ends
after --count messages or --duration, once the replies are in (or --reply-timeout has passed for them).
TEMPLATE may hold {session} (the session's index), {n} (the message's number) and {time} (Unix time in ms);
default: \"roundtrip {session} {n}\". --size pads each message to that many bytes. --rate max sends each message as soon
as the previous one's reply (and pong) came. --no-metrics records nothing (to measure what recording costs).";

#[derive(Debug, PartialEq)]
pub struct Options {
    /// Zero: each message as soon as the previous one's reply (and pong) came (`--rate max`).
    pub interval: Duration,
    pub metrics: bool,
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub template: String,
    pub size: usize,
    pub binary: bool,
    pub ping: bool,
    pub echo: bool,
    pub reply_timeout: Duration,
    pub quiet: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            interval: Duration::from_secs(1),
            metrics: true,
            count: None,
            duration: None,
            template: "roundtrip {session} {n}".to_owned(),
            size: 0,
            binary: false,
            ping: true,
            echo: true,
            reply_timeout: Duration::from_secs(5),
            quiet: false,
        };
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
                _ => (arg.as_str(), None),
            };
            let mut value = || inline.clone().or_else(|| rest.next().cloned()).ok_or(format!("{name} needs a value"));
            match name {
                "--interval" => options.interval = positive(duration(&value()?)?, name)?,
                "--rate" => {
                    let text = value()?;
                    if text == "max" {
                        options.interval = Duration::ZERO;
                        continue;
                    }
                    let per_second: f64 = text
                        .strip_suffix("/s")
                        .unwrap_or(&text)
                        .parse()
                        .ok()
                        .filter(|r: &f64| *r > 0.0 && r.is_finite())
                        .ok_or(format!("--rate {text:?}: messages per second above 0, like 20/s"))?;
                    options.interval = Duration::from_secs_f64(1.0 / per_second);
                }
                "--count" => options.count = Some(value()?.parse().map_err(|_| "--count takes a number")?),
                "--duration" => options.duration = Some(positive(duration(&value()?)?, name)?),
                "--message" => options.template = value()?,
                "--size" => options.size = value()?.parse().map_err(|_| "--size takes a number of bytes")?,
                "--reply-timeout" => options.reply_timeout = positive(duration(&value()?)?, name)?,
                "--binary" => options.binary = true,
                "--no-ping" => options.ping = false,
                "--ping-only" => options.echo = false,
                "--quiet" | "-q" => options.quiet = true,
                "--no-metrics" => options.metrics = false,
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        if !options.ping && !options.echo {
            return Err("--no-ping with --ping-only leaves nothing to send".to_owned());
        }
        Ok(options)
    }
}

fn positive(duration: Duration, name: &str) -> Result<Duration, String> {
    if duration.is_zero() {
        return Err(format!("{name} must be longer than 0"));
    }
    Ok(duration)
}

/// `500ms`, `1.5s`, `2m`, `10us`; a bare number is seconds.
pub fn duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let number: f64 = text[..split].parse().map_err(|_| format!("invalid duration {text:?} (like 500ms, 1s, 2m)"))?;
    let seconds = match &text[split..] {
        "" | "s" => number,
        "ms" => number / 1e3,
        "us" => number / 1e6,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        unit => return Err(format!("invalid duration unit {unit:?} in {text:?} (us, ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("invalid duration {text:?}"))
}
