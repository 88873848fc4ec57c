//! Example guest: the flow most real sessions start with. Ask an HTTP endpoint for a token, then open the WebSocket
//! with it as a bearer token, send one message and print the reply.
//!
//! ```text
//! wsrun --allow http://127.0.0.1:8080 token-then-connect.wasm ws://127.0.0.1:9000/ --token-url http://127.0.0.1:8080/token
//! ```
//!
//! Options after the URL: `--token-url URL` (required), `--method M` (POST), `--body TEXT` (empty), `--header
//! 'NAME: VALUE'` (repeatable), `--follow` (follow redirects, each a new request the host checks), `--timeout-ms N`,
//! `--repeat N` (make the request N times, for benchmarks), `--no-connect` (print the response and stop).

use std::time::Instant;

use wsrun_guest::http::{HttpError, Request, Response};
use wsrun_guest::{args, describe, escape, ConnectOptions, Connection, Header, Message, Stdout};

/// How many redirects `--follow` follows.
const MAX_REDIRECTS: usize = 5;

struct TokenThenConnect;

#[derive(Default)]
struct Options {
    token_url: Option<String>,
    method: Option<String>,
    body: String,
    headers: Vec<(String, String)>,
    follow: bool,
    timeout_ms: Option<u64>,
    repeat: usize,
    connect: bool,
}

impl wsrun_guest::Guest for TokenThenConnect {
    fn run() -> Result<(), ()> {
        let all = args();
        let Some(url) = all.get(1).cloned() else {
            eprintln!("token-then-connect: missing URL");
            return Err(());
        };
        let options = parse(&all[2..]).map_err(|why| {
            eprintln!("token-then-connect: {why}");
            wsrun_guest::wasi::cli::exit::exit_with_code(2);
        })?;
        let out = Stdout::get();
        let token_url = options.token_url.clone().expect("checked by parse");

        let started = Instant::now();
        let mut response = None;
        for _ in 0..options.repeat {
            response = Some(fetch(&options, &token_url, &out).map_err(|e| eprintln!("token-then-connect: HTTP: {e}"))?);
        }
        let response = response.expect("at least one request");
        if options.repeat > 1 {
            let seconds = started.elapsed().as_secs_f64();
            let _ = out.line(&format!("{} requests in {seconds:.3} s", options.repeat));
        }
        if !(200..300).contains(&response.status) {
            eprintln!("token-then-connect: the token request answered HTTP {}", response.status);
            return Err(());
        }
        let token = response.text().trim().to_owned();
        if !options.connect {
            let _ = out.line(&format!("body: {}", escape(&token)));
            return Ok(());
        }

        let connect = ConnectOptions {
            headers: vec![Header { name: "authorization".into(), value: format!("Bearer {token}") }],
            ..ConnectOptions::default()
        };
        let conn = Connection::connect(&url, &connect)
            .map_err(|e| eprintln!("token-then-connect: could not connect to {url}: {}", describe(&e)))?;
        conn.send(&Message::Text("hello".into())).map_err(|e| eprintln!("token-then-connect: {}", describe(&e)))?;
        match conn.receive() {
            Ok(Some(Message::Text(reply))) => {
                let _ = out.line(&format!("< {}", escape(&reply)));
            }
            Ok(Some(_)) | Ok(None) => eprintln!("token-then-connect: no text reply"),
            Err(e) => eprintln!("token-then-connect: {}", describe(&e)),
        }
        let _ = conn.close(1000, "");
        Ok(())
    }
}

/// One request (and, with `--follow`, the requests its redirects lead to), printing each status.
fn fetch(options: &Options, url: &str, out: &Stdout) -> Result<Response, HttpError> {
    let mut url = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let mut request = Request::new(options.method.as_deref().unwrap_or("POST"), &url);
        for (name, value) in &options.headers {
            request = request.header(name, value);
        }
        if !options.body.is_empty() {
            request = request.body(options.body.as_bytes());
        }
        if let Some(ms) = options.timeout_ms {
            request = request.timeout(std::time::Duration::from_millis(ms));
        }
        let response = request.send()?;
        if options.repeat == 1 {
            let _ = out.line(&format!("HTTP {} ({} bytes)", response.status, response.body.len()));
        }
        match response.redirect() {
            Some(location) if options.follow => {
                let _ = out.line(&format!("following the redirect to {}", escape(location)));
                url = wsrun_guest::http::resolve(&url, location);
            }
            _ => return Ok(response),
        }
    }
    Err(HttpError::InvalidUrl(format!("more than {MAX_REDIRECTS} redirects")))
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options { repeat: 1, connect: true, ..Options::default() };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--token-url" => options.token_url = Some(value(arg)?),
            "--method" => options.method = Some(value(arg)?),
            "--body" => options.body = value(arg)?,
            "--header" => {
                let header = value(arg)?;
                let (name, value) =
                    header.split_once(':').ok_or_else(|| format!("--header {header:?}: NAME: VALUE"))?;
                options.headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            "--follow" => options.follow = true,
            "--no-connect" => options.connect = false,
            "--timeout-ms" => options.timeout_ms = Some(value(arg)?.parse().map_err(|_| "--timeout-ms: a number")?),
            "--repeat" => options.repeat = value(arg)?.parse().map_err(|_| "--repeat: a number")?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.token_url.is_none() {
        return Err("--token-url URL is required".into());
    }
    if options.repeat == 0 {
        return Err("--repeat: at least 1".into());
    }
    Ok(options)
}

wsrun_guest::export!(TokenThenConnect);
