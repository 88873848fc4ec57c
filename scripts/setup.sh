#!/usr/bin/env bash
# Installs what building wsrun's guests (wasm32-wasip2 components) needs, when it is missing.
#
# Rust guests:
# 1. rustup's own target, the usual route on a connected machine: `rustup target add wasm32-wasip2`.
# 2. Where rustup cannot download it: Debian's Rust 1.96 with std sources, lld's wasm-ld and wasi-libc, with which
#    the build compiles std itself (-Zbuild-std). The host build (host/guest-builder) finds either route.
# Python and JavaScript guests: componentize-py (PyPI) and componentize-js (npm, pinned in guest/js/package-lock.json).
# Safe to run again: it installs only what is missing.
set -euo pipefail

debian_packages=(rustc-web cargo-web rust-web-src lld-22 wasi-libc)
componentize_py_version=0.25.1
websockets_version=15.0.1

have_rustup_target() {
    local sysroot
    sysroot=$(rustc --print sysroot 2>/dev/null) || return 1
    [ -d "$sysroot/lib/rustlib/wasm32-wasip2/lib" ]
}

have_debian_route() {
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ] \
        && [ -f /usr/lib/wasm32-wasi/libc.a ] && compgen -G '/usr/lib/llvm-*/bin/wasm-ld' >/dev/null
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "setup: need root to run: $*" >&2; return 1
    fi
}

rust_guests() {
    if have_rustup_target; then
        echo "setup: using rustup's wasm32-wasip2 target"
        return
    fi
    # rustup's target first even where the Debian route is installed: a project made by `wsrun new rust` builds
    # with plain `cargo build --target wasm32-wasip2`, which only rustup's target allows.
    if command -v rustup >/dev/null && timeout 300 rustup target add wasm32-wasip2 && have_rustup_target; then
        echo "setup: installed rustup's wasm32-wasip2 target"
        return
    fi
    if have_debian_route; then
        echo "setup: using Debian's Rust with -Zbuild-std for wasm32-wasip2"
        return
    fi
    echo "setup: rustup cannot add wasm32-wasip2 here; installing Debian's Rust with std sources instead"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q "${debian_packages[@]}"
    have_debian_route || { echo "setup: the Debian route is still incomplete after installing ${debian_packages[*]}" >&2; exit 1; }
    echo "setup: installed ${debian_packages[*]}"
}

# The Python and JavaScript guests (guest/python, guest/js), built by the tests' build script.
script_guests() {
    if [ "$(componentize-py --version 2>/dev/null)" != "componentize-py $componentize_py_version" ]; then
        python3 -m pip install -q "componentize-py==$componentize_py_version"
    fi
    echo "setup: $(componentize-py --version)"
    # The compression tests' peer: a real python-websockets server.
    if ! python3 -c 'import websockets, sys; sys.exit(websockets.__version__ != "'"$websockets_version"'")' 2>/dev/null; then
        python3 -m pip install -q "websockets==$websockets_version"
    fi
    echo "setup: python-websockets $websockets_version"
    if [ ! -x guest/js/node_modules/.bin/componentize-js ]; then
        (cd guest/js && npm ci --no-audit --no-fund --loglevel=error)
    fi
    echo "setup: componentize-js $(cd guest/js && node -p "require('./node_modules/@bytecodealliance/componentize-js/package.json').version")"
}

# The browser the --html report's test opens the page in (Debian's Chromium, headless).
browser() {
    if ! command -v chromium >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get update -q
        as_root apt-get install -y -q chromium
    fi
    echo "setup: $(chromium --version 2>/dev/null | tail -1)"
}

cd "$(dirname "$0")/.."
rust_guests
# `setup.sh rust`: only what the bundled (Rust) guests need, as the demo does.
if [ "${1:-}" != "rust" ]; then
    script_guests
    browser
fi
