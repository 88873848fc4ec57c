//! The bundled client's input side: the slash commands, what text mode does to a line, the prompt on a real
//! terminal, and the failures a person can cause at the prompt.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use crate::servers::Server;
use crate::util::{run_with_input, within, BOUND};

#[tokio::test(flavor = "multi_thread")]
async fn binary_and_help_commands() {
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url, "--commands"], b"/binary 01 02ff\n/help\n/binary 0g\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< (binary) 0102ff"], "{run:?}");
    for command in ["/ping [DATA]", "/close [CODE [REASON]]", "/binary HEX", "/help", "//text"] {
        assert!(run.stdout.contains(&format!("\n  {command} ")), "/help does not list {command}: {run:?}");
    }
    assert_eq!(run.stderr, "wsrun: /binary: 'g' is not a hex digit\n", "{run:?}");

    // Without --commands (and without a terminal), a slash is text like any other.
    let run = run_with_input(&[&server.url], b"/help\n").await;
    assert_eq!(run.received(), ["< /help"], "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn protocol_takes_a_comma_separated_list() {
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url, "--protocol", "a, b", "--protocol", "c"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    // The test server picks the first offered.
    assert!(run.stdout.starts_with(&format!("Connected to {} (subprotocol a).\n", server.url)), "{run:?}");
    let offered = server.requests()[0].get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(offered.as_deref(), Some("a, b, c"));
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_needs_a_user_and_a_password() {
    let run = run_with_input(&["ws://127.0.0.1:9/", "--basic-auth", "nopassword"], b"").await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(run.stderr, "wsrun: client: --basic-auth expects USER:PASS\n", "{run:?}");
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url, "--basic-auth", "user:"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let authorization = server.requests()[0].get("authorization").map(|v| v.to_str().unwrap().to_owned());
    // base64("user:")
    assert_eq!(authorization.as_deref(), Some("Basic dXNlcjo="));
}

#[tokio::test(flavor = "multi_thread")]
async fn text_mode_strips_crlf_and_replaces_invalid_utf8() {
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url], b"one\r\ntwo\r\ncaf\xe9\r\nkeeps \r inside\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< one", "< two", "< caf\u{fffd}", r"< keeps \r inside"], "{run:?}");
    // In binary mode the bytes go as they are (but for the line's own `\r\n`).
    let run = run_with_input(&[&server.url, "--binary"], b"caf\xe9\r\n").await;
    assert_eq!(run.received(), ["< (binary) 636166e9"], "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_that_fails_is_reported_and_exits_1() {
    let server = Server::echo().await;
    // A ping carries at most 125 bytes: the host refuses this one.
    let input = format!("/ping {}\nstill works\n", "p".repeat(126));
    let run = run_with_input(&[&server.url, "--commands"], input.as_bytes()).await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(
        run.stderr, "wsrun: send failed: invalid argument: a ping or pong carries at most 125 bytes\n",
        "{run:?}"
    );
    assert_eq!(run.received(), ["< still works"], "{run:?}");
    assert!(run.stdout.ends_with("Connection closed: 1000 (OK).\n"), "{run:?}");
}

/// A pseudo-terminal: the master side for the test, the slave side for wsrun's stdin, stdout and stderr.
struct Pty {
    master: std::fs::File,
    slave: OwnedFd,
}

impl Pty {
    fn open() -> Pty {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two new file descriptors into the pointers it is given; the other arguments may
        // be null.
        let opened =
            unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned by nobody else.
        unsafe { Pty { master: std::fs::File::from_raw_fd(master), slave: OwnedFd::from_raw_fd(slave) } }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_client_prompts_and_takes_commands() {
    let server = Server::echo().await;
    let Pty { master, slave } = Pty::open();
    let mut command = crate::util::wsrun(&[&server.url]);
    command.stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave.try_clone().unwrap());
    let mut child = command.spawn().expect("spawn wsrun");
    // Only wsrun holds the terminal now: when it exits, reading the master side ends.
    drop((command, slave));

    // Everything wsrun writes to the terminal, read on a thread of its own (the master is a blocking file).
    let mut reader = master.try_clone().unwrap();
    let (screen_tx, mut screen) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        // Past wsrun's exit the read fails (EIO): the end.
        while let Ok(count @ 1..) = reader.read(&mut buffer) {
            if screen_tx.send(buffer[..count].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut seen = String::new();
    let mut wait_for = async |text: &str| {
        let found = async {
            while !seen.contains(text) {
                let Some(bytes) = screen.recv().await else { return false };
                seen.push_str(&String::from_utf8_lossy(&bytes));
            }
            true
        };
        let found = within(BOUND, &format!("{text:?} on the terminal"), found).await;
        assert!(found, "wsrun left the terminal without printing {text:?}: {seen:?}");
        seen.clone()
    };
    let mut typist = master;
    let mut type_line = |line: &[u8]| typist.write_all(line).expect("type on the terminal");

    wait_for(&format!("Connected to {}.\r\n> ", server.url)).await;
    type_line(b"/ping\n");
    let screen_now = wait_for(" ms\r\n> ").await;
    // The prompt line is cleared, the pong printed, and a new prompt shown.
    assert!(screen_now.contains("\r\x1b[K< (pong) "), "{screen_now:?}");
    type_line(b"hello\n");
    wait_for("\r\x1b[K< hello\r\n> ").await;
    type_line(b"/close 4000 see you\n");
    let screen_now = wait_for("Connection closed: 4000 (see you).\r\n").await;
    // The last line has no prompt after it.
    assert!(screen_now.ends_with("\r\x1b[KConnection closed: 4000 (see you).\r\n"), "{screen_now:?}");

    let status = within(BOUND, "wsrun's exit", child.wait()).await.expect("wait for wsrun");
    assert_eq!(status.code(), Some(0), "{seen:?}");
    assert_eq!(server.closes(1).await, vec![Some((4000, "see you".to_owned()))]);
}
