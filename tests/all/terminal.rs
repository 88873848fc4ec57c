//! The line being typed, on a real (pseudo-)terminal: edited by wsrun, never erased by what arrives meanwhile, and
//! the terminal given back in its usual mode on every way out. What the person sees is read from a terminal emulator
//! fed with everything wsrun wrote.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::servers::{Server, Ws};
use crate::util::{within, BOUND};

const ROWS: u16 = 24;
const COLUMNS: u16 = 100;

/// wsrun on the slave side of a new pseudo-terminal, and what it has shown there so far.
pub struct OnTerminal {
    child: tokio::process::Child,
    /// What the person types.
    keyboard: std::fs::File,
    /// For the terminal's settings.
    master: OwnedFd,
    screen: vt100::Parser,
    output: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl OnTerminal {
    pub fn spawn(args: &[&str]) -> OnTerminal {
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize { ws_row: ROWS, ws_col: COLUMNS, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: openpty writes two new descriptors into the pointers it is given; the name may be null.
        let opened = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
        assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned by nobody else.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut command = crate::util::wsrun(args);
        command.env("TERM", "xterm-256color");
        command.stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave.try_clone().unwrap());
        let child = command.spawn().expect("spawn wsrun");
        // Only wsrun holds the terminal now: when it exits, reading the master side ends.
        drop((command, slave));
        let mut reader = std::fs::File::from(master.try_clone().unwrap());
        let (screen_tx, output) = mpsc::unbounded_channel();
        // The master is a blocking file: read on a thread of its own, which ends with wsrun (EIO once the last
        // slave descriptor is closed; the child is killed when the test drops it).
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(count @ 1..) = reader.read(&mut buffer) {
                if screen_tx.send(buffer[..count].to_vec()).is_err() {
                    return;
                }
            }
        });
        let keyboard = std::fs::File::from(master.try_clone().unwrap());
        OnTerminal { child, keyboard, master, screen: vt100::Parser::new(ROWS, COLUMNS, 0), output }
    }

    pub fn type_keys(&mut self, keys: &[u8]) {
        self.keyboard.write_all(keys).expect("type on the terminal");
    }

    /// Wait (a few seconds at most) until the screen shows `text` somewhere; the screen's contents then.
    pub async fn wait_for(&mut self, text: &str) -> String {
        let wait = async {
            loop {
                let contents = self.screen.screen().contents();
                if contents.contains(text) {
                    return Some(contents);
                }
                let bytes = self.output.recv().await?;
                self.screen.process(&bytes);
            }
        };
        let shown = tokio::time::timeout(BOUND, wait).await.unwrap_or_else(|_| {
            panic!("{text:?} on the screen: nothing within {BOUND:?}; the screen:\n{}", self.screen.screen().contents())
        });
        shown.unwrap_or_else(|| panic!("wsrun left without showing {text:?}:\n{}", self.screen.screen().contents()))
    }

    /// The row the cursor is on: the line being typed.
    fn cursor_row(&self) -> String {
        let screen = self.screen.screen();
        let (row, _) = screen.cursor_position();
        screen.rows(0, COLUMNS).nth(row.into()).unwrap_or_default()
    }

    /// Wait for wsrun's exit: its exit code, and the terminal's settings then (as the shell will find them).
    pub async fn exit(mut self) -> (Option<i32>, libc::termios) {
        let status = within(BOUND, "wsrun's exit", self.child.wait()).await.expect("wait for wsrun");
        // SAFETY: tcgetattr on the master of a pseudo-terminal reads the terminal's settings into a struct of ours.
        let settings = unsafe {
            let mut settings: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(self.master.as_raw_fd(), &mut settings), 0, "tcgetattr");
            settings
        };
        (status.code(), settings)
    }
}

/// The terminal is in its usual (cooked) mode: lines edited by the kernel and echoed, Ctrl+C a signal.
pub fn assert_cooked(settings: &libc::termios) {
    let local = settings.c_lflag;
    assert!(local & libc::ICANON != 0 && local & libc::ECHO != 0 && local & libc::ISIG != 0, "left in raw mode");
}

/// A server that sends `tick N` every `every` and hands on every text message it gets.
async fn ticking(every: Duration) -> (Server, mpsc::UnboundedReceiver<String>) {
    let (got, received) = mpsc::unbounded_channel();
    let server = Server::start(move |ws: Ws| {
        let got = got.clone();
        async move {
            let (mut sink, mut stream) = ws.split();
            let ticker = tokio::spawn(async move {
                for tick in 1.. {
                    tokio::time::sleep(every).await;
                    if sink.send(Message::text(format!("tick {tick}"))).await.is_err() {
                        return;
                    }
                }
            });
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message {
                    let _ = got.send(text.as_str().to_owned());
                }
            }
            ticker.abort();
            None
        }
    })
    .await;
    (server, received)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_typed_while_messages_arrive_stays_whole_on_the_screen_and_on_the_wire() {
    let (server, mut received) = ticking(Duration::from_millis(150)).await;
    let mut terminal = OnTerminal::spawn(&[&server.url]);
    terminal.wait_for(&format!("Connected to {}.", server.url)).await;
    // Typed across several pushes: each arrives above the line being typed.
    for (piece, tick) in [("I am", 2), (" typi", 4), ("ng", 6)] {
        terminal.type_keys(piece.as_bytes());
        terminal.wait_for(&format!("< tick {tick}\n")).await;
    }
    let typed = terminal.cursor_row();
    assert_eq!(typed.trim_end(), "> I am typing", "the line being typed:\n{}", terminal.screen.screen().contents());
    terminal.type_keys(b"\r");
    assert_eq!(within(BOUND, "the typed line", received.recv()).await.as_deref(), Some("I am typing"));

    // Ctrl+C is still an interrupt, though the terminal is in raw mode while a line is edited.
    terminal.type_keys(b"\x03");
    let (code, settings) = terminal.exit().await;
    assert_eq!(code, Some(130));
    assert_cooked(&settings);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_edit_the_line_and_ctrl_d_ends_the_input() {
    let server = Server::echo().await;
    let mut terminal = OnTerminal::spawn(&[&server.url]);
    terminal.wait_for(&format!("Connected to {}.", server.url)).await;
    // Left arrow, then a letter put in the middle.
    terminal.type_keys(b"helo\x1b[Dl\r");
    terminal.wait_for("< hello").await;
    // Ctrl+U drops what was typed.
    terminal.type_keys(b"garbage\x15ok\r");
    terminal.wait_for("< ok").await;
    // Up arrow: the line before, from this session's history; Home, then a letter at the start.
    terminal.type_keys(b"\x1b[A\x1b[H!\r");
    terminal.wait_for("< !ok").await;
    // Ctrl+D on an empty line: the end of input, after which the client closes.
    terminal.type_keys(b"\x04");
    terminal.wait_for("Connection closed: 1000 (OK).").await;
    let (code, settings) = terminal.exit().await;
    assert_eq!(code, Some(0));
    assert_cooked(&settings);
    assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_terminal_is_restored_after_a_trap_and_a_timeout() {
    let server = Server::echo().await;
    let misbehave = wsrun_test_artifacts::TEST_MISBEHAVE;
    let mut terminal = OnTerminal::spawn(&[misbehave, &server.url, "unreachable"]);
    terminal.wait_for("trapped").await;
    let (code, settings) = terminal.exit().await;
    assert_eq!(code, Some(1));
    assert_cooked(&settings);

    let mut terminal = OnTerminal::spawn(&["--timeout", "1s", &server.url]);
    terminal.wait_for("> ").await;
    terminal.wait_for("timed out after 1s").await;
    let (code, settings) = terminal.exit().await;
    assert_eq!(code, Some(1));
    assert_cooked(&settings);
}
