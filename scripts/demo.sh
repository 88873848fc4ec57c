#!/usr/bin/env bash
# Builds everything and runs one real session: a local echo server (no internet needed) and the bundled client
# guest sending two lines to it through wsrun.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh rust
# Two binaries and nothing else: no test or example, whose dev-dependencies need the Python and JavaScript tools.
cargo build --release --bin wsrun --bin echo_server
bin="${CARGO_TARGET_DIR:-target}/release"

server_out=$(mktemp)
"$bin/echo_server" >"$server_out" &
server=$!
trap 'kill "$server" 2>/dev/null; rm -f "$server_out"' EXIT
for _ in $(seq 100); do [ -s "$server_out" ] && break; sleep 0.05; done
url=$(head -n 1 "$server_out")
[ -n "$url" ] || { echo "demo: the echo server did not print its URL within 5 s" >&2; exit 1; }

echo "\$ printf 'Hello, wsrun!\\nSecond line\\n' | wsrun $url"
printf 'Hello, wsrun!\nSecond line\n' | "$bin/wsrun" "$url"
