#!/usr/bin/env bash
# The test suite: installs the guest toolchain if missing, then builds the host, the bundled and test guests, and
# runs every test (unit, end-to-end, doc) in release mode, the same build the demo uses.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --release --workspace
# The guests' own unit tests run natively (they are plain Rust apart from their bindings).
(cd guest && CARGO_TARGET_DIR=../target/guest-native cargo test --workspace)
