//! The line being typed, when stdin and stdout are a terminal: wsrun edits it (rustyline: arrows, Home/End, history
//! within the session, Ctrl+U/W, Ctrl+D on an empty line ends the input) and prints everything the guest writes above
//! it, redrawing the prompt and what was typed so far. The guest reads whole lines, as from a terminal in cooked
//! mode, and its output is not a terminal to it (it draws no prompt of its own).
//!
//! The terminal is in raw mode while a line is edited, so Ctrl+C arrives as a key: it is turned into the SIGINT it
//! would have been, and means what it always means (interrupt, 130, 1001 to the server). Whatever way wsrun ends
//! (the session's end, a second Ctrl+C, SIGTERM, a panic), the terminal gets back the settings it had at the start:
//! [`restore`] is called on every way out.

use std::io::{IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, OnceLock};

use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor, ExternalPrinter};

/// The prompt in front of the line being typed.
const PROMPT: &str = "> ";

/// The terminal's settings before wsrun changed anything, to put back on the way out.
static SAVED: OnceLock<libc::termios> = OnceLock::new();

/// Output the guest wrote that does not end a line yet, and the printer while a line is being edited.
static PRINTING: Mutex<Printing> = Mutex::new(Printing { printer: None, partial: Vec::new(), handed: None });

struct Printing {
    printer: Option<Box<dyn ExternalPrinter + Send>>,
    partial: Vec<u8>,
    /// When a line last went to the printer, whose thread prints it when it next runs.
    handed: Option<std::time::Instant>,
}

impl Printing {
    /// Print through the editor no more: whether it was printing, and the unfinished line it held.
    fn stop(&mut self) -> (bool, Vec<u8>) {
        (self.printer.take().is_some(), std::mem::take(&mut self.partial))
    }
}

/// Edit lines for the guest when stdin and stdout are both a terminal: the guest's stdin, or `None` (a pipe, a file:
/// nothing changes). Must be called from within the async runtime the session runs on.
pub fn start() -> Option<impl wsrun::StdinStream> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return None;
    }
    let mut editor = DefaultEditor::with_config(Config::builder().auto_add_history(true).build()).ok()?;
    let printer = editor.create_external_printer().ok()?;
    let (lines, typed) = UnixStream::pair().ok()?;
    typed.set_nonblocking(true).ok()?;
    let typed = tokio::net::UnixStream::from_std(typed).ok()?;
    save();
    restore_on_panic();
    // SAFETY: registers a function without arguments that only calls tcsetattr.
    unsafe { libc::atexit(reset_at_exit) };
    PRINTING.lock().unwrap_or_else(|e| e.into_inner()).printer = Some(Box::new(printer));
    wsrun::stdio::write_through(Box::new(print_above));
    std::thread::Builder::new().name("wsrun-editor".into()).spawn(move || edit(editor, lines)).ok()?;
    Some(wsrun::stdio::typed_lines(typed))
}

/// Read lines until the end of input (Ctrl+D on an empty line) and hand each to the guest.
fn edit(mut editor: DefaultEditor, mut lines: UnixStream) {
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                if lines.write_all(format!("{line}\n").as_bytes()).is_err() {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => {
                // SAFETY: raise(3) has no preconditions; wsrun's handler takes the signal as it takes a real one.
                unsafe { libc::raise(libc::SIGINT) };
                // The session is stopping: no new prompt. rustyline has put the terminal back in its usual mode,
                // where a second Ctrl+C is the kernel's SIGINT, which exits at once.
                break;
            }
            Err(_) => break,
        }
    }
    // The end of input: the guest reads it, and what it writes from now on goes straight to the terminal, which
    // rustyline has put back in its usual mode.
    drop(lines);
    if stop_printing() {
        let _ = write_out(b"\n");
    }
}

/// The guest's output, printed above the line being typed, a whole line at a time.
fn print_above(_stream: wsrun::stdio::Output, bytes: &[u8]) -> std::io::Result<()> {
    let mut printing = PRINTING.lock().unwrap_or_else(|e| e.into_inner());
    let Printing { printer, partial, handed } = &mut *printing;
    let Some(printer) = printer else {
        return write_out(bytes);
    };
    partial.extend_from_slice(bytes);
    let Some(end) = partial.iter().rposition(|&byte| byte == b'\n') else { return Ok(()) };
    // With its end of line: the printer writes the text straight to the terminal when no line is being edited (just
    // before a prompt is drawn, or after), and a line without its end would be erased by the prompt drawn over it.
    let text = String::from_utf8_lossy(&partial[..=end]).into_owned();
    partial.drain(..=end);
    *handed = Some(std::time::Instant::now());
    printer.print(text).map_err(std::io::Error::other)
}

/// Straight to the terminal (no line is being edited).
fn write_out(bytes: &[u8]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}

/// No line is edited any more: the guest's output goes straight to the terminal, after what it left unfinished.
/// Whether a line was being edited.
fn stop_printing() -> bool {
    // Held while the unfinished line is written, so the guest's next bytes come after it.
    let mut printing = PRINTING.lock().unwrap_or_else(|e| e.into_inner());
    let (editing, partial) = printing.stop();
    if editing && !partial.is_empty() {
        let _ = write_out(&partial);
    }
    editing
}

fn save() {
    // SAFETY: tcgetattr writes the settings of stdin, a terminal, into a struct it is given.
    unsafe {
        let mut settings: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut settings) == 0 {
            let _ = SAVED.set(settings);
        }
    }
}

/// The guest ended by itself: the last lines it printed may still wait for the editor's thread, which prints them
/// when it next runs (rustyline's printer hands them over a channel), and the process must not end first. There is no
/// telling when that thread has printed them, so it gets a moment when a line went to it lately (never after Ctrl+C,
/// whose way out stays immediate).
pub fn settle() {
    let handed = PRINTING.lock().unwrap_or_else(|e| e.into_inner()).handed;
    if handed.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1)) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Put the terminal back as it was before wsrun edited lines on it, on the way out: the line being typed is cleared
/// (what follows is wsrun's last word, and the guest's unfinished line), and the settings restored. Does nothing when
/// no line was edited.
pub fn restore() {
    let Some(settings) = SAVED.get() else { return };
    // Not waited for: the writer thread holds it while the printer takes a line, and the way out must not hang on a
    // terminal that is not being read.
    let (editing, partial) = match PRINTING.try_lock() {
        Ok(mut printing) => printing.stop(),
        Err(_) => (true, Vec::new()),
    };
    if editing {
        let _ = write_out(b"\r\x1b[K");
        if !partial.is_empty() {
            let _ = write_out(&partial);
            let _ = write_out(b"\r\n");
        }
    }
    reset(settings);
}

fn reset(settings: &libc::termios) {
    // SAFETY: tcsetattr with settings tcgetattr gave for the same terminal.
    unsafe { libc::tcsetattr(0, libc::TCSANOW, settings) };
}

/// At the process's exit, the settings once more: the editor's thread may have switched to raw mode again after
/// [`restore`] (a key pressed meanwhile).
extern "C" fn reset_at_exit() {
    if let Some(settings) = SAVED.get() {
        reset(settings);
    }
}

/// A panic restores the terminal before it is reported.
fn restore_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        report(info);
    }));
}
