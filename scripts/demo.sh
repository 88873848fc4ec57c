#!/usr/bin/env bash
# Builds everything and runs one real session: a local echo server (no internet needed) and the bundled client
# guest sending two lines to it through wsrun.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh rust
cargo build --release --bin wsrun --example echo_server

server_out=$(mktemp)
target/release/examples/echo_server >"$server_out" &
server=$!
trap 'kill "$server" 2>/dev/null; rm -f "$server_out"' EXIT
for _ in $(seq 100); do [ -s "$server_out" ] && break; sleep 0.05; done
url=$(head -n 1 "$server_out")

echo "\$ printf 'Hello, wsrun!\\nSecond line\\n' | wsrun $url"
printf 'Hello, wsrun!\nSecond line\n' | target/release/wsrun "$url"
