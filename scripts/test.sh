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
# Everything the tests run, with the tests' own features, in one build: the binaries, the tests, the examples, and
# the tool that embeds the library as a user's project would (host/examples/embed, outside the default members; run
# by tests/all/embedding.rs). The `cargo test` commands below then compile nothing more.
cargo build --release --workspace --bins --tests --examples
# The Python and JavaScript guests' tests run last and alone: their first starts compile 12-18 MB of wasm on every
# core, which would slow the timing-bounded tests (Ctrl+C within 2 s, ...) running beside them.
cargo test --release --workspace -- --skip scripting::
cargo test --release -p wsrun-cli --test all -- scripting::
# The client guest's own unit tests run natively (it is plain Rust apart from its bindings).
(cd guest && CARGO_TARGET_DIR=../target/guest-native cargo test -p client -p wsrun-guest)
