//! `connect-options` asking for nothing special, as the WIT documents it: `ConnectOptions { headers, ..Default::default() }`.

use crate::{Compression, ConnectOptions};

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            headers: Vec::new(),
            subprotocols: Vec::new(),
            open_timeout_ms: None,
            max_message_size: None,
            control_frames: false,
            keepalive: None,
            compression: Compression::Offer,
        }
    }
}
