//! Builds the bundled guests (`client`, `echo`, `roundtrip`) for wasm32-wasip2 and leaves them in OUT_DIR for `include_bytes!`.

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    wsrun_guest_builder::build(&root, &["client", "echo", "roundtrip"]);
}
