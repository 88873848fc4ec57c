//! The first thing most guests do: connect to the URL they were given, or say why not.

use crate::{args, describe, ConnectOptions, Connection};

/// Connect to the URL argument with default options. On failure, print one `wsrun: ...` line to stderr and return
/// `Err(())`, ready for `run`'s `?`.
pub fn connect_to_url_arg() -> Result<Connection, ()> {
    let Some(url) = args().get(1).cloned() else {
        eprintln!("wsrun: missing URL argument");
        return Err(());
    };
    Connection::connect(&url, &ConnectOptions::default()).map_err(|e| {
        eprintln!("wsrun: could not connect to {url}: {}", describe(&e));
    })
}
