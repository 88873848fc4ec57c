//! Text that someone else controls (a peer's messages and close reasons, header values, error details), made safe
//! to print: the rule wsrun's host applies to what it prints too.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` would act on a terminal instead of showing: C0 and C1 controls and DEL (an escape sequence can
/// retitle the window, clear the screen or write the clipboard), and the bidirectional controls (U+202A-U+202E,
/// U+2066-U+2069) that make text read in another order than it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every [unsafe](is_unsafe) character written as a Rust escape (`\n`, `\u{1b}`, `\u{202e}`), so a
/// line stays one line and does nothing to the terminal; borrowed when there is nothing to escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            let _ = write!(escaped, "{}", c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_escaped_and_the_rest_kept() {
        assert_eq!(escape("plain, é, 日本"), "plain, é, 日本");
        assert_eq!(escape("\x1b]0;pwned\x07\x1b[2J"), "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J");
        assert_eq!(escape("a\nb\tc\x7f"), "a\\nb\\tc\\u{7f}");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape("abc\u{202e}def\u{2066}"), "abc\\u{202e}def\\u{2066}");
    }
}
