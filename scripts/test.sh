#!/usr/bin/env bash
# The test suite: installs the guest toolchain if missing, then builds the host, the bundled and test guests, and
# runs every test (unit, end-to-end, doc) in release mode, the same build the demo uses.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The tests' scratch directories of earlier runs (hundreds of MB after a few): gone; their compiled-guest cache kept,
# less the entries made over two days ago (mostly guests built since; one still in use is compiled again once).
if [ -d target/tmp ]; then
    find target/tmp -mindepth 1 -maxdepth 1 ! -name xdg-cache -exec rm -rf {} +
    find target/tmp/xdg-cache -type f -mtime +2 -delete 2>/dev/null || true
fi
# A tool outside this workspace that embeds the library, as a user's project would (run by tests/all/embedding.rs).
# It shares the target directory, so only the library and the tool itself are compiled again.
CARGO_TARGET_DIR=target cargo build --release --manifest-path host/examples/embed/Cargo.toml
# The Python and JavaScript guests' tests run last and alone: their first starts compile 12-18 MB of wasm on every
# core, which would slow the timing-bounded tests (Ctrl+C within 2 s, ...) running beside them.
cargo test --release --workspace -- --skip scripting::
cargo test --release -p wsrun-cli --test all -- scripting::
# The client guest's own unit tests run natively (it is plain Rust apart from its bindings).
(cd guest && CARGO_TARGET_DIR=../target/guest-native cargo test -p client)
