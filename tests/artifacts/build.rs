//! Builds the test-only guests (`guest/test-*`) and writes `artifacts.rs`: one path constant per guest.

use std::fmt::Write;
use std::path::Path;

const TEST_GUESTS: &[&str] =
    &["test-spin", "test-stdin-block", "test-big-send", "test-misbehave", "test-unknown-import", "test-no-run"];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = wsrun_guest_builder::build(&root, TEST_GUESTS);
    let mut code = String::new();
    for (name, path) in TEST_GUESTS.iter().zip(&built) {
        let constant = name.to_uppercase().replace('-', "_");
        writeln!(code, "/// The `{name}` guest component.\npub const {constant}: &str = {:?};", path.display().to_string())
            .unwrap();
    }
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::write(Path::new(&out).join("artifacts.rs"), code).unwrap();
}
