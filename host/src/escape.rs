//! Text that someone else controls, made safe to print: a peer's words (close reasons, status lines, header values
//! in errors) and a guest's (the function names in a trap's backtrace). The same rule as the guest SDK's
//! `wsrun_guest::escape`, which the bundled guests print through; a guest's own stdout and stderr stay its own.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` would act on a terminal instead of showing: C0 and C1 controls and DEL (an escape sequence can
/// retitle the window, clear the screen or write the clipboard), and the bidirectional controls (U+202A-U+202E,
/// U+2066-U+2069) that make text read in another order than it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every [unsafe](is_unsafe) character written as a Rust escape (`\n`, `\u{1b}`, `\u{202e}`), so it
/// stays on its line and does nothing to the terminal; borrowed when there is nothing to escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    match text.find(is_unsafe) {
        None => Cow::Borrowed(text),
        Some(first) => {
            let mut escaped = String::with_capacity(text.len() + 8);
            escaped.push_str(&text[..first]);
            for c in text[first..].chars() {
                match is_unsafe(c) {
                    true => write!(escaped, "{}", c.escape_default()).expect("writing to a String"),
                    false => escaped.push(c),
                }
            }
            Cow::Owned(escaped)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn terminal_controls_are_escaped_and_the_rest_kept() {
        let cases = [
            ("plain, é, 日本", "plain, é, 日本"),
            ("\x1b]0;pwned\x07\x1b[2J", "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"),
            ("a\nb\tc\x7f", "a\\nb\\tc\\u{7f}"),
            ("\u{9b}31m", "\\u{9b}31m"),
            ("abc\u{202e}def\u{2066}", "abc\\u{202e}def\\u{2066}"),
        ];
        for (text, shown) in cases {
            assert_eq!(escape(text), shown, "{text:?}");
        }
    }
}
