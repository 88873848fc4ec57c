//! The extensions of the opening handshake: what the host offers (permessage-deflate, RFC 7692, or nothing) and
//! whether the server's answer keeps within it. RFC 6455 (4.1) has the client fail a connection whose server names an
//! extension, or a parameter, it was not offered; tungstenite leaves that check to its user.

/// The offer, as python-websockets makes it: the server may limit the window of our compressor (a client that offers
/// `client_max_window_bits` can follow any limit), and chooses the rest.
pub(crate) const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// permessage-deflate as the server accepted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deflate {
    /// The server starts each message with an empty window: the host may drop its inflater between messages.
    pub server_no_context_takeover: bool,
    /// The host must start each message it compresses with an empty window.
    pub client_no_context_takeover: bool,
    /// The window the server compresses with (8 to 15 bits; 15 when it did not say).
    pub server_max_window_bits: u8,
    /// The largest window the host may compress with (8 to 15 bits; 15 when the server did not say).
    pub client_max_window_bits: u8,
}

/// Check the server's `Sec-WebSocket-Extensions` values against what was offered (permessage-deflate when `offered`,
/// nothing otherwise): the compression agreed on, or why the connection must fail.
pub(crate) fn accept<'a>(values: impl IntoIterator<Item = &'a str>, offered: bool) -> Result<Option<Deflate>, String> {
    let mut accepted = None;
    for value in values {
        for extension in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = extension.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            if !offered || !name.eq_ignore_ascii_case("permessage-deflate") {
                return Err(format!("the server accepted an extension wsrun did not offer: {extension}"));
            }
            if accepted.is_some() {
                return Err("the server accepted permessage-deflate twice".to_owned());
            }
            accepted = Some(parameters(parts).map_err(|e| format!("the server's permessage-deflate {e}"))?);
        }
    }
    Ok(accepted)
}

fn parameters<'a>(parts: impl Iterator<Item = &'a str>) -> Result<Deflate, String> {
    let mut deflate = Deflate {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut seen = Vec::new();
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (part, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return Err(format!("names {name} twice"));
        }
        match (name.as_str(), value) {
            ("server_no_context_takeover", None) => deflate.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => deflate.client_no_context_takeover = true,
            ("server_max_window_bits", Some(bits)) => deflate.server_max_window_bits = window_bits(&name, bits)?,
            // Offered without a value, so the server may set it (RFC 7692, 7.1.2.2).
            ("client_max_window_bits", Some(bits)) => deflate.client_max_window_bits = window_bits(&name, bits)?,
            (
                "server_no_context_takeover"
                | "client_no_context_takeover"
                | "server_max_window_bits"
                | "client_max_window_bits",
                _,
            ) => return Err(format!("has an invalid {part}")),
            _ => return Err(format!("has a parameter wsrun did not offer: {part}")),
        }
        seen.push(name);
    }
    Ok(deflate)
}

/// A window size: a number from 8 to 15, without leading zeros (RFC 7692, 7.1.2).
fn window_bits(name: &str, value: &str) -> Result<u8, String> {
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) if !value.starts_with('0') && !value.starts_with('+') => Ok(bits),
        _ => Err(format!("has an invalid {name}={value}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_servers_answer() {
        assert_eq!(accept([], true), Ok(None));
        let python = accept(["permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"], true);
        assert_eq!(
            python,
            Ok(Some(Deflate {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 12,
                client_max_window_bits: 12,
            }))
        );
        let both = accept(["permessage-deflate;server_no_context_takeover; Client_No_Context_Takeover"], true)
            .unwrap()
            .unwrap();
        assert!(both.server_no_context_takeover && both.client_no_context_takeover);
        assert_eq!((both.server_max_window_bits, both.client_max_window_bits), (15, 15));
        assert!(accept(["permessage-deflate; client_max_window_bits=\"9\""], true).is_ok());
    }

    #[test]
    fn refuses_what_was_not_offered_or_is_invalid() {
        for (answer, offered) in [
            ("permessage-deflate", false),
            ("x-webkit-deflate-frame", true),
            ("permessage-deflate, permessage-deflate", true),
            ("permessage-deflate; server_max_window_bits=7", true),
            ("permessage-deflate; server_max_window_bits=16", true),
            ("permessage-deflate; server_max_window_bits=010", true),
            ("permessage-deflate; server_max_window_bits", true),
            ("permessage-deflate; client_max_window_bits", true),
            ("permessage-deflate; server_no_context_takeover=1", true),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", true),
            ("permessage-deflate; mux", true),
        ] {
            assert!(accept([answer], offered).is_err(), "{answer} (offered: {offered})");
        }
        assert!(accept(["permessage-deflate", "x-foo"], true).is_err(), "a second header");
    }
}
