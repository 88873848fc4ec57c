//! The command line's own errors: exit code 2 and one `wsrun: ...` line, before anything is loaded or connected;
//! `--help` and `--version` are not errors.

use crate::util::{run_with_input, Run};

/// Exit 2, nothing on stdout, exactly one line on stderr: `wsrun: ` and then something containing `needle`.
fn assert_usage_error(run: &Run, needle: &str) {
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {run:?}");
    assert!(lines[0].starts_with("wsrun: ") && lines[0].contains(needle), "expected {needle:?}: {run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_are_one_line_and_exit_2() {
    // Port 9 (discard) is never listened on by the tests: nothing may get as far as connecting anyway.
    let url = "ws://127.0.0.1:9/";
    let cases: &[(&[&str], &str)] = &[
        (&["--frobnicate", url], "unknown option --frobnicate (see wsrun --help)"),
        (&[], "missing URL"),
        (&["echo"], "missing URL after the guest echo"),
        (&["--timeout", "soon", url], "invalid value 'soon' for '--timeout <DURATION>'"),
        (&["--timeout", "5d", url], "'5d' for '--timeout <DURATION>': invalid duration unit \"d\" (use ms, s, m or h)"),
        (
            &["--close-timeout", "-1s", url],
            "'-1s' for '--close-timeout <DURATION>': invalid duration \"-1s\" (try 500ms, 2s or 1m)",
        ),
        (&["--max-memory", "12Q", url], "invalid size unit in \"12Q\""),
        (
            &["--max-message-size", "lots", url],
            "'lots' for '--max-message-size <SIZE>': invalid size \"lots\" (try 65536, 64K or 16M)",
        ),
        (&["--max-connections", "many", url], "invalid value 'many' for '--max-connections <N>'"),
        (&["--timeout"], "a value is required for '--timeout <DURATION>'"),
        (&["--env", "NOVALUE", url], "expected NAME=VALUE"),
        (
            &["--allow", "ws://a:b:c", url],
            "invalid origin pattern \"ws://a:b:c\": the port must be a number up to 65535",
        ),
        (&["--proxy", "ftp://127.0.0.1:9", url], "only http:// proxies"),
        (&["--no-cache", "--cache-dir", "/tmp", url], "cannot be used with"),
        (&["--jsonl", url], "--jsonl is an option of the client guest: put it after the URL"),
        (&["compile"], "usage: wsrun compile GUEST -o FILE"),
        (&["compile", "echo"], "usage: wsrun compile GUEST -o FILE"),
        (&["compile", "echo", "-o"], "usage: wsrun compile GUEST -o FILE"),
        (&["compile", "echo", "--out", "x.cwasm"], "usage: wsrun compile GUEST -o FILE"),
        (&["compile", "nosuchguest", "-o", "x.cwasm"], "no guest named nosuchguest"),
        // A host and port where a URL was meant, a URL of another scheme or out of range: each says the fix.
        (&["127.0.0.1:8765"], "missing URL after the guest 127.0.0.1:8765: did you mean ws://127.0.0.1:8765/?"),
        (&["http://127.0.0.1:9/x"], "http://127.0.0.1:9/x is not a WebSocket URL: did you mean ws://127.0.0.1:9/x?"),
        (&["https://127.0.0.1:9/"], "did you mean wss://127.0.0.1:9/?"),
        (&["ws://127.0.0.1:99999/"], "invalid URL ws://127.0.0.1:99999/: invalid port number"),
        (&["ws://:9000/"], "invalid URL ws://:9000/"),
        (&["echo", "ftp://127.0.0.1:9/"], "the scheme is ftp, not ws or wss"),
        // Misspelled, or in the wrong place.
        (&["--timout", "5s", url], "unknown option --timout; did you mean --timeout? (see wsrun --help)"),
        (&[url, "--timeout", "5s"], "--timeout is a wsrun option: put it before the URL (wsrun --timeout ... URL)"),
        (&["echo", url, "-v"], "-v is a wsrun option: put it before the URL"),
        (&[url, "--sessions=3"], "--sessions is a wsrun option: put it before the URL"),
    ];
    for (args, needle) in cases {
        let run = run_with_input(args, b"").await;
        assert_usage_error(&run, needle);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundled_guests_refuse_what_they_do_not_take() {
    let url = "ws://127.0.0.1:9/";
    // The echo guest takes the URL alone: an argument after it used to be ignored (a --duration meant for wsrun let
    // it run for ten minutes).
    let run = run_with_input(&["echo", url, "extra"], b"").await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(run.stderr, "wsrun: echo: unexpected argument \"extra\" (usage: wsrun echo URL)\n");
    // The client: a header the handshake sets, and a misspelled option.
    let run = run_with_input(&[url, "-H", "Sec-WebSocket-Protocol: chat"], b"").await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("use --protocol chat"), "{run:?}");
    let run = run_with_input(&[url, "--protocl", "chat"], b"").await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("unknown option --protocl; did you mean --protocol?"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn help_and_version_exit_0() {
    for subcommand in ["compile", "report"] {
        let run = run_with_input(&[subcommand, "--help"], b"").await;
        assert_eq!(run.code(), Some(0), "{subcommand} --help: {run:?}");
        assert!(run.stdout.starts_with(&format!("usage: wsrun {subcommand}")), "{run:?}");
    }
    for flag in ["--help", "-h"] {
        let run = run_with_input(&[flag], b"").await;
        assert_eq!(run.code(), Some(0), "{run:?}");
        assert!(run.stdout.contains("Usage: wsrun") && run.stdout.contains("Exit codes:"), "{run:?}");
        assert_eq!(run.stderr, "", "{run:?}");
    }
    let run = run_with_input(&["--version"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.stdout, format!("wsrun {}\n", env!("CARGO_PKG_VERSION")), "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
}
