//! The slash commands of an interactive session.

use crate::encoding::unhex;

pub const HELP: &str = "\
Commands:
  /ping [DATA]             send a ping; the pong is shown with its round-trip time
  /close [CODE [REASON]]   close the connection
  /binary HEX              send a binary message
  /help                    this list
  //text                   send a line that starts with /";

pub enum Command {
    /// Not a command: send this line (a leading `//` is one literal `/`).
    Send(Vec<u8>),
    Ping(Vec<u8>),
    Close(u16, String),
    Binary(Vec<u8>),
    Help,
}

/// Read a line typed at the prompt.
pub fn parse(line: &str) -> Result<Command, String> {
    if let Some(literal) = line.strip_prefix("//") {
        return Ok(Command::Send(format!("/{literal}").into_bytes()));
    }
    let Some(command) = line.strip_prefix('/') else { return Ok(Command::Send(line.as_bytes().to_vec())) };
    let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
    let rest = rest.trim();
    match name {
        "ping" => Ok(Command::Ping(rest.as_bytes().to_vec())),
        "close" => {
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            let code = if code.is_empty() {
                1000
            } else {
                code.parse().map_err(|_| format!("invalid close code {code:?}"))?
            };
            Ok(Command::Close(code, reason.trim().to_owned()))
        }
        "binary" => unhex(rest).map(Command::Binary).map_err(|e| format!("/binary: {e}")),
        "help" => Ok(Command::Help),
        other => Err(format!("unknown command /{other} (try /help)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_without_a_command_are_sent() {
        assert!(matches!(parse("hello /ping").unwrap(), Command::Send(line) if line == b"hello /ping"));
        assert!(matches!(parse("//ping").unwrap(), Command::Send(line) if line == b"/ping"));
        assert!(matches!(parse("//").unwrap(), Command::Send(line) if line == b"/"));
    }

    #[test]
    fn ping_with_or_without_data() {
        assert!(matches!(parse("/ping").unwrap(), Command::Ping(data) if data.is_empty()));
        assert!(matches!(parse("/ping  some data ").unwrap(), Command::Ping(data) if data == b"some data"));
    }

    #[test]
    fn close_with_code_and_reason() {
        assert!(matches!(parse("/close").unwrap(), Command::Close(1000, reason) if reason.is_empty()));
        assert!(matches!(parse("/close 4000").unwrap(), Command::Close(4000, reason) if reason.is_empty()));
        assert!(
            matches!(parse("/close 4001 see you  later").unwrap(), Command::Close(4001, reason) if reason == "see you  later")
        );
        assert_eq!(parse("/close soon").err().unwrap(), "invalid close code \"soon\"");
        assert_eq!(parse("/close 70000").err().unwrap(), "invalid close code \"70000\"");
    }

    #[test]
    fn binary_takes_hex_with_spaces() {
        assert!(matches!(parse("/binary 01 02ff").unwrap(), Command::Binary(bytes) if bytes == [1, 2, 0xff]));
        assert!(matches!(parse("/binary").unwrap(), Command::Binary(bytes) if bytes.is_empty()));
        assert_eq!(parse("/binary 0g").err().unwrap(), "/binary: 'g' is not a hex digit");
        assert_eq!(parse("/binary 012").err().unwrap(), "/binary: an odd number of hex digits");
    }

    #[test]
    fn help_and_unknown_commands() {
        assert!(matches!(parse("/help").unwrap(), Command::Help));
        assert_eq!(parse("/frobnicate now").err().unwrap(), "unknown command /frobnicate (try /help)");
        assert_eq!(parse("/").err().unwrap(), "unknown command / (try /help)");
        for command in ["/ping", "/close", "/binary", "/help", "//text"] {
            assert!(HELP.contains(&format!("  {command} ")), "HELP does not list {command}");
        }
    }
}
