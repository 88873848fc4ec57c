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
            let code = if code.is_empty() { 1000 } else { code.parse().map_err(|_| format!("invalid close code {code:?}"))? };
            Ok(Command::Close(code, reason.trim().to_owned()))
        }
        "binary" => unhex(rest).map(Command::Binary).map_err(|e| format!("/binary: {e}")),
        "help" => Ok(Command::Help),
        other => Err(format!("unknown command /{other} (try /help)")),
    }
}
