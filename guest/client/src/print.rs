//! How received messages are shown: one message per line, control characters escaped.

use std::fmt::Write;

use wsrun_guest::Message;

/// `< text` or `< (binary) 0102ff`.
pub fn received(message: &Message) -> String {
    match message {
        Message::Text(text) => {
            let mut line = String::with_capacity(text.len() + 2);
            line.push_str("< ");
            for c in text.chars() {
                if c.is_control() {
                    // A raw newline or escape sequence would break the one-message-per-line output, or the terminal.
                    let _ = write!(line, "{}", c.escape_default());
                } else {
                    line.push(c);
                }
            }
            line
        }
        Message::Binary(bytes) => {
            let mut line = String::with_capacity(bytes.len() * 2 + 11);
            line.push_str("< (binary) ");
            for byte in bytes {
                let _ = write!(line, "{byte:02x}");
            }
            line
        }
    }
}
