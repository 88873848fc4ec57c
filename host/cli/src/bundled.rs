//! The guests compiled into the `wsrun` command at build time (see `build.rs`); the library has none.

/// Names of the bundled guests, the default first.
pub const NAMES: &[&str] = &["client", "echo", "roundtrip"];

/// The component bytes of a bundled guest.
pub fn get(name: &str) -> Option<&'static [u8]> {
    match name {
        "client" => Some(include_bytes!(concat!(env!("OUT_DIR"), "/client.wasm"))),
        "echo" => Some(include_bytes!(concat!(env!("OUT_DIR"), "/echo.wasm"))),
        "roundtrip" => Some(include_bytes!(concat!(env!("OUT_DIR"), "/roundtrip.wasm"))),
        _ => None,
    }
}
